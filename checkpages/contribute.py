"""What a submission contains, in words, for the /contribute page.

The list is built from the payload's JSON Schema (klein_bench/contract/schemas/result-v1.json),
so a field added to the schema appears on the page at once; EXPLANATIONS says what each
one means to a contributor. tests/test_pages_contribute.py fails when a schema field has
no explanation here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klein_bench.contract.figures import MEMORY_FIGURES
from klein_bench.contract.schema import result_schema

GROUPS = {
    "schema": "What was run",
    "protocol": "What was run",
    "model": "What was run",
    "synthetic": "What was run",
    "configuration": "What was run",
    "gpu": "Your GPU",
    "outcome": "What happened",
    "timings": "What happened",
    "memory": "Memory",
    "energy": "Power and clocks",
    "telemetry": "Power and clocks",
    "environment": "Software",
    "evidence": "The generated image",
    "kernels": "What ran",
    "work": "What was run",
    "reproduction_of": "What was run",
}

EXPLANATIONS = {
    "schema": "The payload format version.",
    "protocol.id": "Which standard benchmark ran (prompts, seeds, size, steps).",
    "protocol.hash": "A fingerprint of that benchmark definition, so results compare.",
    "model": "The model benchmarked, e.g. flux-2-klein-4b.",
    "synthetic": "Whether the run used random weights of the full-size model (speed and "
    "memory only) instead of the real weights.",
    "configuration.runtime": "diffusers or ComfyUI.",
    "configuration.precision": "BF16 or FP8 weights.",
    "configuration.offload": "Whether parts of the model were moved to the CPU.",
    "configuration.width": "Image width in pixels.",
    "configuration.height": "Image height in pixels.",
    "configuration.steps": "Denoising steps.",
    "configuration.preset": "The preset name you chose, if any.",
    "configuration.fp8_method": "How FP8 weights were used, when FP8.",
    "gpu.device": "cuda or cpu.",
    "gpu.name": "The card's model name as the driver reports it.",
    "gpu.memory_total_mb": "The card's memory size.",
    "gpu.compute_capability": "The CUDA architecture version, e.g. 8.9.",
    "gpu.uuid_hash": "A salted hash of the card's UUID, to count distinct cards; never "
    "the UUID itself.",
    "gpu.drives_display": "Whether the card also drives a monitor (it then has less memory free).",
    "gpu.power_limit_w": "The power limit in watts.",
    "gpu.pcie_generation": "PCIe link generation.",
    "gpu.pcie_width": "PCIe link width.",
    "outcome.status": "Success, out of memory, or error.",
    "outcome.stage": "Where a failed run stopped (model load, denoising, VAE decode...).",
    "outcome.message": "The error's message, for failed runs.",
    "timings.load_seconds": "Time to load the model.",
    "timings.warmup_seconds": "Time of the untimed warm-up image.",
    "timings.runs[].seconds": "Seconds for each timed image.",
    "timings.runs[].text_encoding_seconds": "Of which text encoding.",
    "timings.runs[].denoising_seconds": "Of which denoising.",
    "timings.runs[].vae_decode_seconds": "Of which VAE decode.",
    "timings.runs[].wall_seconds": "Wall-clock seconds for the image.",
    "timings.runs[].prompt_index": "Which of the benchmark's fixed prompts it was.",
    "timings.runs[].seed": "The fixed seed used.",
    "timings.runs[].energy_joules": "Energy the card used for the image.",
    "memory.sample_interval_ms": "How often memory was sampled.",
    "energy.joules_per_image": "Energy per image.",
    "energy.average_power_w": "Average power while generating.",
    "telemetry.max_sm_clock_mhz": "Highest GPU clock seen.",
    "telemetry.max_memory_clock_mhz": "Highest memory clock seen.",
    "telemetry.max_temperature_c": "Highest GPU temperature seen.",
    "telemetry.throttle_reasons": "Why the card slowed down, if it did (power, heat).",
    "environment.agent": "The klein-bench agent's version.",
    "environment.os": "Operating system and its major version (e.g. Linux 6.8); not the "
    "machine's name.",
    "environment.python": "Python version.",
    "environment.torch": "PyTorch version.",
    "environment.cuda": "CUDA version PyTorch was built with.",
    "environment.driver": "NVIDIA driver version.",
    "environment.cuda_driver": "CUDA version the driver supports.",
    "environment.diffusers": "diffusers version.",
    "environment.transformers": "transformers version.",
    "environment.runtime_version": "The runtime's version (diffusers or ComfyUI).",
    "environment.runtime_flags": "Options that change speed, e.g. ComfyUI launch flags.",
    "environment.cpu": "The CPU's model name.",
    "environment.attention": "The attention implementation (e.g. sdpa).",
    "evidence.phash": "A perceptual hash of the first image, to spot results that did not "
    "really generate an image, or whose image differs from what other contributors got.",
    "reproduction_of": "The id of the result this run reproduces (klein-bench reproduce ID); "
    "empty otherwise.",
    "evidence.thumbnail_png": "A thumbnail (at most 128x128) of the first image, made from "
    "the benchmark's fixed prompt.",
    "gpu.default_power_limit_w": "The card's default power limit in watts.",
    "gpu.pcie_max_generation": "The card's fastest PCIe generation.",
    "gpu.pcie_max_width": "The card's widest PCIe link.",
    "gpu.max_sm_clock_mhz": "The card's highest core clock.",
    "gpu.mig": "Whether the run used a MIG slice of the card.",
    "outcome.phase": "The phase a failed run stopped in: load, warm-up or timed images.",
    "memory.peak_vram_mb": "The headline: the most VRAM the process held, CUDA context included.",
    "memory.vram_source": "How the headline was read on this platform.",
    "memory.context_mb": "The CUDA context's memory.",
    "memory.shared_peak_mb": "System memory Windows lent the GPU, where it says.",
    "memory.peak_phase": "The phase the headline peak fell in.",
    "memory.peak_stage": "The pipeline stage the headline peak fell in.",
    "telemetry.power_limit_share": "The power limit as a share of the card's default.",
    "telemetry.capped": "Whether the power limit is below the card's default.",
    "telemetry.throttled": "Whether the card slowed itself down while timing.",
    "telemetry.sm_clock_share": "The highest core clock while timing over the card's highest.",
    "kernels.source": "Where what ran was read: observed by the agent while it generated "
    "(diffusers), ComfyUI's own log, or the model file and ComfyUI's launch flags when its "
    "log was not available.",
    "kernels.model_file": "The diffusion model file ComfyUI ran (its name only).",
    "kernels.weight_dtypes.transformer": "How the transformer's weights were stored (e.g. "
    "bfloat16, float8_e4m3fn).",
    "kernels.weight_dtypes.text_encoder": "How the text encoder's weights were stored.",
    "kernels.weight_dtypes.vae": "How the VAE's weights were stored.",
    "kernels.compute_dtypes.transformer": "The number format the transformer's matrix "
    "multiplications computed in.",
    "kernels.compute_dtypes.text_encoder": "The same for the text encoder.",
    "kernels.compute_dtypes.vae": "The same for the VAE.",
    "kernels.matmul_dtypes": "The number formats the matrix multiplications saw (where the "
    "agent observed them).",
    "kernels.matmuls": "How many matrix multiplications one image ran (where observed).",
    "kernels.fp8_matmuls": "How many of them ran an FP8 kernel (where observed).",
    "kernels.fp8_matmul": "Whether FP8 matrix-multiply kernels ran.",
    "kernels.attention": "The attention kernel that ran (or the one ComfyUI's launch flags chose).",
    "kernels.loading.transformer": "Whether ComfyUI loaded the transformer onto the GPU "
    "fully, partially (the rest streamed from system RAM) or dynamically.",
    "kernels.loading.text_encoder": "The same for the text encoder.",
    "kernels.loading.vae": "The same for the VAE.",
    "kernels.offloaded_mb": "How much of a partially loaded model stayed in system RAM.",
    "work.transformer_tflop": "The transformer's work per image, in TFLOP.",
    "work.text_encoder_tflop": "The text encoder's work per image, in TFLOP.",
    "work.vae_decode_tflop": "The VAE decode's work per image, in TFLOP.",
    "work.total_tflop": "All the work of one image, in TFLOP.",
    "memory.phases.load.peak_vram_mb": "During the load: peak VRAM (the headline).",
    "memory.phases.load.peak_allocated_mb": "During the load: PyTorch's peak allocated memory.",
    "memory.phases.load.peak_reserved_mb": "During the load: PyTorch's peak reserved memory.",
    "memory.phases.load.peak_process_mb": "During the load: the driver's per-process peak.",
    "memory.phases.load.peak_device_mb": "During the load: the whole card's peak.",
    "memory.phases.load.peak_rss_mb": "During the load: peak system RAM.",
    "memory.phases.load.stage": "During the load: the pipeline stage the peak fell in.",
    "memory.phases.warmup.peak_vram_mb": "During the warm-up: peak VRAM (the headline).",
    "memory.phases.warmup.peak_allocated_mb": "During the warm-up: PyTorch's allocated peak.",
    "memory.phases.warmup.peak_reserved_mb": "During the warm-up: PyTorch's peak reserved memory.",
    "memory.phases.warmup.peak_process_mb": "During the warm-up: the driver's per-process peak.",
    "memory.phases.warmup.peak_device_mb": "During the warm-up: the whole card's peak.",
    "memory.phases.warmup.peak_rss_mb": "During the warm-up: peak system RAM.",
    "memory.phases.warmup.stage": "During the warm-up: the pipeline stage the peak fell in.",
    "memory.phases.timed.peak_vram_mb": "During the timed: peak VRAM (the headline).",
    "memory.phases.timed.peak_allocated_mb": "During the timed: PyTorch's peak allocated memory.",
    "memory.phases.timed.peak_reserved_mb": "During the timed: PyTorch's peak reserved memory.",
    "memory.phases.timed.peak_process_mb": "During the timed: the driver's per-process peak.",
    "memory.phases.timed.peak_device_mb": "During the timed: the whole card's peak.",
    "memory.phases.timed.peak_rss_mb": "During the timed: peak system RAM.",
    "memory.phases.timed.stage": "During the timed: the pipeline stage the peak fell in.",
}

# Each memory figure in the contract's own words (klein_bench.contract.figures).
EXPLANATIONS.update(
    (f"memory.{name}", f"{figure.meaning[0].upper()}{figure.meaning[1:]}, in {figure.unit}.")
    for name, figure in MEMORY_FIGURES.items()
)

ENVELOPE = [
    ("key_id", "Your contributor key's fingerprint: the only identity we know."),
    ("public_key", "Your public key, to check the signature."),
    ("signature", "The Ed25519 signature over the whole submission."),
    ("created_at", "When the agent signed it (UTC)."),
    ("nonce", "A random value that prevents replaying the submission."),
    ("submission_id", "A random id, so a retried upload is not counted twice."),
]


@dataclass(frozen=True)
class Field:
    path: str
    explanation: str


@dataclass(frozen=True)
class FieldGroup:
    title: str
    fields: list[Field]


def schema_paths(schema: dict[str, Any] | None = None, prefix: str = "") -> list[str]:
    """Every leaf field of the payload, as dotted paths ('timings.runs[].seconds')."""
    node = schema if schema is not None else result_schema()
    paths = []
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        if child.get("properties"):
            paths.extend(schema_paths(child, f"{path}."))
        elif isinstance(child.get("items"), dict) and child["items"].get("properties"):
            paths.extend(schema_paths(child["items"], f"{path}[]."))
        else:
            paths.append(path)
    return paths


def collected_fields() -> list[FieldGroup]:
    groups: dict[str, list[Field]] = {}
    for path in schema_paths():
        title = GROUPS.get(path.split(".")[0].split("[")[0], "Other")
        explanation = EXPLANATIONS.get(path, "")
        groups.setdefault(title, []).append(Field(path, explanation))
    result = [FieldGroup(title, fields) for title, fields in groups.items()]
    result.append(
        FieldGroup("The signature around it", [Field(name, why) for name, why in ENVELOPE])
    )
    return result
