"""The protocol on diffusers' Flux2KleinPipeline, in this process.

One untimed warm-up generation (kernel selection, allocator growth, offload hooks), then
the timed generations. Each is synchronized with the device before and after; stage
times come from CUDA events recorded around `encode_prompt` and `vae.decode`. Model load
is timed on its own. A failure at any point (out of memory above all) ends the run and
becomes a result naming the stage: evidence that a configuration does not fit.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klein_bench import evidence, gpu, measure, result, tiny, weights
from klein_bench.catalog import model_spec, preset
from klein_bench.contract.catalog import KLEIN_TINY, ModelSpec, Preset
from klein_bench.contract.protocol import CURRENT, Protocol
from klein_bench.errors import KleinBenchError
from klein_bench.progress import Progress

FP8_METHOD = "diffusers-layerwise-casting:transformer,text_encoder"
# Kept in BF16 under FP8 storage: the embedding is tied to lm_head, and the pipeline takes
# the prompt embeddings' dtype from the text encoder's first parameter.
_TEXT_ENCODER_FP8_SKIP = ("embed_tokens", "lm_head", "norm")


@dataclass
class Target:
    """Where the benchmark runs: torch's device, NVML's index and what NVML says."""

    device: str
    nvml_index: int | None
    info: gpu.GpuInfo | None
    driver: str | None = None
    cuda_driver: str | None = None
    # Something the user should know about the measurement (shown before it starts).
    note: str | None = None


class StageClock:
    """Times the pipeline's stages and knows which one is running (to blame a failure).

    Wraps `pipe.encode_prompt` and `pipe.vae.decode`: text encoding is the first call,
    denoising runs from its end to the start of VAE decode (the transformer steps, and
    under offload moving the transformer onto the GPU), VAE decode is the second call.
    """

    def __init__(self, pipe: Any, device: str, progress: Progress):
        self.device = device
        self.progress = progress
        self.current: str | None = None
        self.watch = measure.Stopwatch(device)
        encode_prompt = pipe.encode_prompt
        decode = pipe.vae.decode

        def timed_encode_prompt(*args: Any, **kwargs: Any) -> Any:
            self.current = "text_encoding"
            self.watch.mark("text_start")
            output = encode_prompt(*args, **kwargs)
            self.watch.mark("text_end")
            self.current = "denoising"
            return output

        def timed_decode(*args: Any, **kwargs: Any) -> Any:
            self.current = "vae_decode"
            self.watch.mark("vae_start")
            output = decode(*args, **kwargs)
            self.watch.mark("vae_end")
            self.current = "other"
            return output

        pipe.encode_prompt = timed_encode_prompt
        pipe.vae.decode = timed_decode

    def begin(self) -> None:
        self.watch = measure.Stopwatch(self.device)
        self.current = None

    def on_step_end(self, pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        self.progress.advance()
        return kwargs

    def seconds(self) -> dict[str, float | None]:
        return {
            "text_encoding_seconds": self.watch.seconds("text_start", "text_end"),
            "denoising_seconds": self.watch.seconds("text_end", "vae_start"),
            "vae_decode_seconds": self.watch.seconds("vae_start", "vae_end"),
        }


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    kinds = tuple(
        k
        for k in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError)
        if k is not None
    )
    if isinstance(exc, (*kinds, MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "CUBLAS_STATUS_ALLOC_FAILED" in text
    )


def _failure_message(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def choose_target(spec: ModelSpec, chosen: Preset, gpu_index: int | None, synthetic: bool):
    """The device to run on, or a KleinBenchError saying why this run cannot happen here."""
    torch = gpu.require_torch()
    info = gpu.torch_info()
    if not info.cuda_available:
        if info.is_cpu_build:
            why = f"torch {info.version} is a CPU-only build"
        else:
            why = f"torch {info.version} (CUDA {info.cuda}) sees no usable NVIDIA GPU"
        if gpu_index is not None:
            raise KleinBenchError(
                f"--gpu {gpu_index} needs CUDA, but {why}: install a CUDA build of torch "
                "(`klein-bench doctor` prints the command) or leave out --gpu."
            )
        if synthetic or not spec.built_in:
            what = "--synthetic (the full-size architecture)" if synthetic else spec.name
            raise KleinBenchError(
                f"{what} needs an NVIDIA GPU with CUDA, but {why}: install a CUDA build of "
                "torch (`klein-bench doctor` prints the command), or try the agent on the "
                f"CPU with --model {KLEIN_TINY.slug}."
            )
        if chosen.offload != "none":
            raise KleinBenchError(
                f"--preset {chosen.name} moves components between the GPU and system RAM, "
                "which needs a CUDA GPU: on the CPU use --preset bf16-resident."
            )
        return Target(device="cpu", nvml_index=None, info=None)

    _, nvml_problem = gpu.gpus_or_reason()
    if nvml_problem is None:
        # Without --gpu: torch's first device (what CUDA_VISIBLE_DEVICES leaves visible).
        nvml_index = gpu_index
        if nvml_index is None:
            nvml_index = gpu.nvml_index_for_torch(0)
            nvml_index = 0 if nvml_index is None else nvml_index
        info_nvml = gpu.gpu_info(nvml_index)
        torch_index = gpu.torch_index_for(nvml_index)
        driver, cuda_driver = gpu.driver_versions()
        target = Target(
            device=f"cuda:{torch_index}",
            nvml_index=nvml_index,
            info=info_nvml,
            driver=driver,
            cuda_driver=cuda_driver,
        )
    else:
        # CUDA works without NVML (some containers and WSL setups): measure what torch
        # can and leave the NVML figures empty.
        torch_index = 0 if gpu_index is None else gpu_index
        if torch_index >= torch.cuda.device_count():
            raise KleinBenchError(
                f"There is no GPU {torch_index}: torch sees {torch.cuda.device_count()}; "
                "pick one with --gpu."
            )
        properties = torch.cuda.get_device_properties(torch_index)
        info_nvml = gpu.GpuInfo(
            index=torch_index,
            name=properties.name,
            uuid=None,
            memory_total_mb=properties.total_memory / gpu.MIB,
            memory_used_mb=None,
            compute_capability=f"{properties.major}.{properties.minor}",
            drives_display=None,
            power_limit_w=None,
            pcie_generation=None,
            pcie_width=None,
            pcie_max_generation=None,
            pcie_max_width=None,
        )
        target = Target(
            device=f"cuda:{torch_index}",
            nvml_index=None,
            info=info_nvml,
            note=(
                "NVML (the NVIDIA driver's monitoring library) is unavailable, so the NVML "
                "VRAM figures, energy and clocks stay empty; torch's memory figures are "
                "still measured (`klein-bench doctor` says why)."
            ),
        )
    if info_nvml.compute_capability and not gpu.supports_capability(
        info.arch_list, info_nvml.compute_capability
    ):
        tag = gpu.cuda_wheel_tag(target.cuda_driver, blackwell=info_nvml.is_blackwell)
        raise KleinBenchError(
            f"torch {info.version} has no kernels for the {info_nvml.name} "
            f"({info_nvml.sm}; it has {', '.join(info.arch_list) or 'none'}): install a "
            f"build that does with `{gpu.torch_install_command(tag)}`."
        )
    return target


def _load(
    spec: ModelSpec,
    chosen: Preset,
    target: Target,
    *,
    synthetic: bool,
    location: weights.WeightsLocation | None,
) -> Any:
    import torch

    dtype = torch.bfloat16
    if spec.built_in:
        pipe = tiny.build_tiny_pipeline(seed=0, dtype=dtype)
    elif synthetic:
        # Resident: build straight on the GPU (no 16 GB detour through RAM). Offload and
        # FP8 start on the CPU, as loading real weights does.
        build_on = (
            target.device if chosen.offload == "none" and chosen.precision == "bf16" else "cpu"
        )
        pipe = tiny.build_synthetic_pipeline(device=build_on, dtype=dtype)
    else:
        from diffusers import Flux2KleinPipeline

        assert location is not None
        pipe = Flux2KleinPipeline.from_pretrained(
            location.path, torch_dtype=dtype, local_files_only=True
        )
        pipe.set_progress_bar_config(disable=True)

    if chosen.precision == "fp8-storage":
        from diffusers.hooks import apply_layerwise_casting

        pipe.transformer.enable_layerwise_casting(
            storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype
        )
        apply_layerwise_casting(
            pipe.text_encoder,
            storage_dtype=torch.float8_e4m3fn,
            compute_dtype=dtype,
            skip_modules_pattern=_TEXT_ENCODER_FP8_SKIP,
        )
    if chosen.offload == "model":
        pipe.enable_model_cpu_offload(device=target.device)
    else:
        pipe.to(target.device)
    return pipe


def _runtime_flags(chosen: Preset) -> list[str]:
    import torch

    flags = []
    if chosen.offload == "model":
        flags.append("enable_model_cpu_offload")
    if chosen.precision == "fp8-storage":
        flags.append("layerwise_casting:float8_e4m3fn")
    alloc = os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF")
    if alloc:
        flags.append(f"alloc_conf:{alloc}"[:64])
    if torch.backends.cuda.matmul.allow_tf32:
        flags.append("tf32")
    return flags


def run_protocol(
    *,
    model: str,
    preset_name: str,
    runs: int,
    gpu_index: int | None,
    progress: Progress,
    salt: bytes,
    weights_path: Path | None = None,
    synthetic: bool = False,
    download: bool = False,
    protocol: Protocol = CURRENT,
) -> dict[str, Any]:
    """Run the protocol and return the result payload (a failed run is a result too).

    Raises KleinBenchError only for what stops a run from starting: missing packages, no
    suitable device, no weights.
    """
    spec = model_spec(model)
    chosen = preset(preset_name)
    if runs < protocol.min_timed_runs:
        raise KleinBenchError(
            f"--runs {runs} is too few: the protocol times at least "
            f"{protocol.min_timed_runs} generations."
        )
    if synthetic and spec.built_in:
        raise KleinBenchError(
            f"--synthetic builds the full-size Klein 4B architecture; {spec.slug} is built "
            "in code already: leave out one of them."
        )
    diffusers_version = gpu.require_diffusers()
    progress.stage("Importing torch and diffusers")
    target = choose_target(spec, chosen, gpu_index, synthetic)
    import torch

    # Imported before the load is timed: a cold import takes seconds and is no part of
    # loading the model.
    from diffusers import Flux2KleinPipeline  # noqa: F401
    from transformers import Qwen3ForCausalLM  # noqa: F401

    location = None
    if not spec.built_in and not synthetic:
        found = weights.locate(weights_path)
        if download and (found is None or not found.complete):
            # huggingface_hub draws its own download bars.
            progress.done()
        location = weights.require(weights_path, download=download)

    width, height = spec.width, spec.height
    call_options: dict[str, Any] = {
        "height": height,
        "width": width,
        "num_inference_steps": protocol.steps,
        "guidance_scale": protocol.guidance_scale,
        "max_sequence_length": protocol.max_sequence_length,
    }
    if spec.built_in:
        call_options["text_encoder_out_layers"] = tiny.TINY_TEXT_ENCODER_OUT_LAYERS

    if target.note:
        progress.note(target.note)
    if target.device.startswith("cuda"):
        torch.cuda.set_device(torch.device(target.device))
    sampler = measure.MemorySampler(target.nvml_index)
    meter = measure.EnergyMeter(target.nvml_index)
    sampler.start()
    measure.reset_torch_peaks(target.device)

    stage: str | None = "load"
    load_seconds = warmup_seconds = None
    timed: list[dict[str, Any]] = []
    first_image = None
    failure: BaseException | None = None
    pipe = None
    clock: StageClock | None = None

    def generate(run_index: int | None) -> tuple[Any, float]:
        assert clock is not None
        prompt, seed = (
            protocol.warmup_prompt_and_seed
            if run_index is None
            else protocol.prompt_and_seed(run_index)
        )
        generator = torch.Generator(device="cpu").manual_seed(seed)
        clock.begin()
        measure.synchronize(target.device)
        start = time.perf_counter()
        output = pipe(
            prompt=prompt,
            generator=generator,
            callback_on_step_end=clock.on_step_end,
            **call_options,
        )
        measure.synchronize(target.device)
        return output.images[0], time.perf_counter() - start

    try:
        progress.stage(f"Loading {spec.name}{' (synthetic)' if synthetic else ''}")
        start = time.perf_counter()
        pipe = _load(spec, chosen, target, synthetic=synthetic, location=location)
        measure.synchronize(target.device)
        load_seconds = time.perf_counter() - start
        clock = StageClock(pipe, target.device, progress)

        stage = "warmup"
        progress.stage("Warm-up (not timed)", total=protocol.steps)
        _, warmup_seconds = generate(None)

        for index in range(runs):
            stage = "other"
            progress.stage(f"Timed run {index + 1}/{runs}", total=protocol.steps)
            wall_start = time.perf_counter()
            joules_before = meter.read_joules()
            image, seconds = generate(index)
            joules_after = meter.read_joules()
            prompt_index = index % len(protocol.prompts)
            timed.append(
                result.run_record(
                    seconds=seconds,
                    prompt_index=prompt_index,
                    seed=protocol.prompt_and_seed(index)[1],
                    wall_seconds=time.perf_counter() - wall_start,
                    energy_joules=measure.EnergyMeter.delta(joules_before, joules_after),
                    **clock.seconds(),
                )
            )
            if first_image is None:
                first_image = image
        stage = None
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        failure = exc
        if clock is not None and clock.current not in (None, "other"):
            stage = clock.current
    finally:
        progress.done()
        sampler.stop()
        peak_allocated, peak_reserved = measure.torch_peaks(target.device)
        if failure is not None:
            # Free the GPU before anything else runs in this process.
            pipe = clock = None
            gc.collect()
            if target.device.startswith("cuda"):
                torch.cuda.empty_cache()

    if failure is None:
        outcome = result.outcome_section("success")
    else:
        status = "out_of_memory" if is_out_of_memory(failure) else "error"
        outcome = result.outcome_section(status, stage, _failure_message(failure))

    payload = result.build_payload(
        model=spec.slug,
        synthetic=synthetic,
        configuration=result.configuration_section(
            runtime="diffusers",
            precision=chosen.precision,
            offload=chosen.offload,
            width=width,
            height=height,
            steps=protocol.steps,
            preset=chosen.name,
            fp8_method=FP8_METHOD if chosen.precision == "fp8-storage" else None,
        ),
        gpu=result.gpu_section(
            target.info,
            salt=salt,
            pcie_generation=sampler.max_pcie_generation,
            pcie_width=sampler.max_pcie_width,
        ),
        outcome=outcome,
        runs=timed,
        memory=result.memory_from_sampler(
            sampler,
            peak_allocated_mb=peak_allocated,
            peak_reserved_mb=peak_reserved,
            system_ram_mb=measure.system_ram_mb(),
        ),
        environment=result.environment_section(
            runtime_version=diffusers_version,
            runtime_flags=_runtime_flags(chosen),
            attention=os.environ.get("DIFFUSERS_ATTN_BACKEND", "sdpa")[:32],
            driver=target.driver,
            cuda_driver=target.cuda_driver,
        ),
        load_seconds=load_seconds,
        warmup_seconds=warmup_seconds,
        energy=measure.energy_section(timed),
        telemetry=sampler.telemetry(),
        evidence=evidence.evidence_section(first_image),
        protocol=protocol,
    )
    return payload
