"""Where the diffusers runtime runs and how it builds the pipeline: the device (a CUDA GPU
matched to NVML's, or the CPU for the tiny model), the refusals with their fixes, and
Flux2KleinPipeline loaded as the preset says (BF16, FP8 storage, FP8 compute through
torchao; resident or with model CPU offload)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from klein_bench import gpu
from klein_bench.backends.diffusers import tiny, weights
from klein_bench.contract.catalog import FP8_COMPUTE_CAPABILITY, Preset
from klein_bench.contract.models import DEFAULT_MODEL, MODELS
from klein_bench.contract.registry import ModelSpec
from klein_bench.errors import KleinBenchError

FP8_METHODS = {
    "fp8-storage": "diffusers-layerwise-casting:transformer,text_encoder",
    "fp8-compute": "torchao-float8-dynamic:transformer",
}
# Kept in BF16 under FP8 storage: the embedding is tied to lm_head, and the pipeline takes
# the prompt embeddings' dtype from the text encoder's first parameter.
_TEXT_ENCODER_FP8_SKIP = ("embed_tokens", "lm_head", "norm")
MIN_TORCHAO = "0.14.0"
FP8_INSTALL = 'pip install "klein-bench[fp8]"'


@dataclass
class Target:
    """Where the benchmark runs: torch's device, NVML's device and what NVML says."""

    device: str
    nvml: gpu.NvmlDevice | None
    info: gpu.GpuInfo | None
    driver: str | None = None
    cuda_driver: str | None = None
    # Something the user should know about the measurement (shown before it starts).
    note: str | None = None


def _refuse_fp8_compute(info: gpu.GpuInfo) -> None:
    """fp8-compute needs FP8 tensor cores and torchao; say which is missing."""
    capability = info.compute_capability
    if capability and tuple(int(p) for p in capability.split(".")) < FP8_COMPUTE_CAPABILITY:
        raise KleinBenchError(
            f"--preset fp8-compute runs FP8 matmuls, and the {info.name} ({info.sm}) has no "
            "FP8 tensor cores (RTX 40 series and newer do): use --preset fp8-storage for FP8 "
            "weights with BF16 compute."
        )
    version = gpu.package_version("torchao")
    if version is None or gpu.version_tuple(version) < gpu.version_tuple(MIN_TORCHAO):
        found = f"torchao {version} is too old" if version else "torchao is not installed"
        raise KleinBenchError(
            f"--preset fp8-compute runs FP8 matmuls through torchao, and {found}: install it "
            f"with `{FP8_INSTALL}`."
        )


def _cpu_refusal(spec: ModelSpec, chosen: Preset, gpu_index: int | None, synthetic: bool, why: str):
    if gpu_index is not None:
        return (
            f"--gpu {gpu_index} needs CUDA, but {why}: install a CUDA build of torch "
            "(`klein-bench doctor` prints the command) or leave out --gpu."
        )
    if synthetic or not spec.built_in:
        what = f"--synthetic (the full-size {spec.name})" if synthetic else spec.name
        tiny_slug = spec.tiny or MODELS[DEFAULT_MODEL].tiny
        return (
            f"{what} needs an NVIDIA GPU with CUDA, but {why}: install a CUDA build of "
            "torch (`klein-bench doctor` prints the command), or try the agent on the "
            f"CPU with --model {tiny_slug}."
        )
    if chosen.offload != "none":
        return (
            f"--preset {chosen.name} moves components between the GPU and system RAM, "
            "which needs a CUDA GPU: on the CPU use --preset bf16-resident."
        )
    if chosen.needs_fp8_tensor_cores:
        return (
            f"--preset {chosen.name} runs FP8 matmuls, which need an NVIDIA GPU with FP8 "
            "tensor cores (RTX 40 series or newer) and CUDA: on the CPU use --preset "
            "bf16-resident."
        )
    return None


def choose_target(spec: ModelSpec, chosen: Preset, gpu_index: int | None, synthetic: bool):
    """The device to run on, or a KleinBenchError saying why this run cannot happen here."""
    torch = gpu.require_torch()
    info = gpu.torch_info()
    if not info.cuda_available:
        if info.is_cpu_build:
            why = f"torch {info.version} is a CPU-only build"
        else:
            why = f"torch {info.version} (CUDA {info.cuda}) sees no usable NVIDIA GPU"
        refusal = _cpu_refusal(spec, chosen, gpu_index, synthetic, why)
        if refusal:
            raise KleinBenchError(refusal)
        return Target(device="cpu", nvml=None, info=None)

    _, nvml_problem = gpu.gpus_or_reason()
    if nvml_problem is None:
        # Without --gpu: torch's first device (what CUDA_VISIBLE_DEVICES leaves visible).
        torch_index = 0 if gpu_index is None else gpu.torch_index_for(gpu_index)
        device = gpu.resolve_device(torch_index, gpu_index)
        info_nvml = gpu.gpu_info(device.index, device)
        driver, cuda_driver = gpu.driver_versions()
        target = Target(
            device=f"cuda:{torch_index}",
            nvml=device,
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
            nvml=None,
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
    if chosen.needs_fp8_tensor_cores:
        _refuse_fp8_compute(info_nvml)
    return target


def _fp8_compute_config() -> Any:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())


def load_pipeline(
    spec: ModelSpec,
    chosen: Preset,
    device: str,
    *,
    synthetic: bool,
    location: weights.WeightsLocation | None,
    cfg: bool,
) -> Any:
    """The pipeline, where and as the preset puts it. One built in code (a tiny variant,
    or `synthetic`) is undistilled when the protocol runs guidance (`cfg`), as the real
    base model's own model_index.json says."""
    import torch

    dtype = torch.bfloat16
    fp8_compute = chosen.precision == "fp8-compute"
    if spec.built_in:
        pipe = tiny.build_pipeline(spec.architecture, cfg=cfg, seed=0, dtype=dtype)
    elif synthetic:
        # Resident BF16: build straight on the GPU (no detour of the whole model through
        # RAM). The others start on the CPU, as loading real weights does.
        resident = chosen.offload == "none" and chosen.precision == "bf16"
        pipe = tiny.build_pipeline(
            spec.architecture, cfg=cfg, device=device if resident else "cpu", dtype=dtype
        )
    else:
        from diffusers import Flux2KleinPipeline

        assert location is not None
        options: dict[str, Any] = {}
        if fp8_compute:
            from diffusers import PipelineQuantizationConfig, TorchAoConfig

            options["quantization_config"] = PipelineQuantizationConfig(
                quant_mapping={"transformer": TorchAoConfig(_fp8_compute_config())}
            )
        pipe = Flux2KleinPipeline.from_pretrained(
            location.path, torch_dtype=dtype, local_files_only=True, **options
        )
        pipe.set_progress_bar_config(disable=True)

    if fp8_compute and (spec.built_in or synthetic):
        # What TorchAoConfig does while loading, for a pipeline built in code.
        from torchao.quantization import quantize_

        quantize_(pipe.transformer, _fp8_compute_config(), device=device)
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
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def runtime_flags(chosen: Preset) -> list[str]:
    import torch

    flags = []
    if chosen.offload == "model":
        flags.append("enable_model_cpu_offload")
    if chosen.precision == "fp8-storage":
        flags.append("layerwise_casting:float8_e4m3fn")
    if chosen.precision == "fp8-compute":
        flags.append("torchao:float8_dynamic_activation_float8_weight")
    alloc = os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF")
    if alloc:
        flags.append(f"alloc_conf:{alloc}"[:64])
    if torch.backends.cuda.matmul.allow_tf32:
        flags.append("tf32")
    return flags
