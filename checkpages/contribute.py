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
    "really generate an image.",
    "evidence.thumbnail_png": "A thumbnail (at most 128x128) of the first image, made from "
    "the benchmark's fixed prompt.",
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
