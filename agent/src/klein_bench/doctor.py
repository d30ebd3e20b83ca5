"""`klein-bench doctor`: what this machine has, what is wrong, and how to fix each thing.

Works without a GPU, without torch and without diffusers: whatever is missing becomes a
finding with its fix. With `--runtime comfyui`, or when a ComfyUI answers at the default
address, it checks that server too; torch, diffusers and the Hugging Face weights are
then needed only for the diffusers runtime, so their absence is no problem.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from klein_bench import gpu, measure, weights
from klein_bench.contract.catalog import FP8_COMPUTE_CAPABILITY, KLEIN_TINY, PRESETS, Preset
from klein_bench.contract.work import KLEIN_4B as KLEIN_4B_ARCHITECTURE
from klein_bench.errors import KleinBenchError

# Offload keeps the whole BF16 pipeline (~16 GB) in system RAM between uses.
OFFLOAD_NEEDS_RAM_GB = 24.0
# Below this even loading the real model to move it onto the GPU is a squeeze.
LOW_RAM_GB = 16.0
RECOMMENDED_DIFFUSERS = "0.42.1"
GIB = 1024**3
# Memory beyond the weights at 1024x1024, 4 steps: the largest activations (the VAE
# decode's) and the caching allocator's slack. Derived from the published ~20 GB peak of
# BF16 fully resident (20 GiB less 14.9 GiB of weights and the CUDA context) until
# `make gpu-check` measures it on a GPU: it prints the measured figure (peak allocated
# less the weights), which replaces this one.
ACTIVATION_GIB = 4.6
# The CUDA context and cuBLAS workspaces, which no allocator figure includes.
CONTEXT_GIB = 0.5
# Why a dependency's minimum matters, for the finding.
WHY_MINIMUM = {
    "transformers": "Qwen3, the text encoder, needs 4.51 or newer",
    "diffusers": "Flux2KleinPipeline arrived in 0.37",
    "accelerate": "model offload needs it",
    "torchao": "the fp8-compute preset needs it",
}


@dataclass
class Finding:
    level: str  # "ok", "info", "warning" or "problem"
    topic: str
    text: str
    fix: str | None = None


@dataclass
class PresetFit:
    preset: str
    needs_gb: float
    verdict: str  # "fits", "tight" or "does not fit"
    note: str = ""


@dataclass
class Report:
    gpus: list[gpu.GpuInfo]
    nvml_problem: str | None
    driver: str | None
    cuda_driver: str | None
    torch: gpu.TorchInfo
    diffusers: str | None
    transformers: str | None
    system_ram_gb: float
    free_disk_gb: float | None
    disk_path: Path
    weights: weights.WeightsLocation | None
    weights_problem: str | None
    fits: dict[int, list[PresetFit]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # The runtime the checks are for: "diffusers", "comfyui", or None for both.
    runtime: str | None = None
    comfyui: list[Finding] | None = None

    @property
    def needs_diffusers(self) -> bool:
        return self.runtime == "diffusers" or (self.runtime is None and self.comfyui is None)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "problem"]

    @property
    def gpu_usable(self) -> bool:
        """Whether torch can benchmark an NVIDIA GPU here (else only the tiny model runs)."""
        return bool(self.gpus) and self.torch.cuda_available


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def needs_gib(chosen: Preset) -> float:
    """GPU memory Klein 4B needs in a preset: its weights on the GPU at once (from the
    architecture's component sizes at the preset's storage), activations and context."""
    weights_gib = chosen.weight_bytes_on_gpu(KLEIN_4B_ARCHITECTURE) / GIB
    return weights_gib + ACTIVATION_GIB + CONTEXT_GIB


def preset_fit(info: gpu.GpuInfo, chosen: Preset, system_ram_gb: float) -> PresetFit:
    """Whether Klein 4B should fit on this GPU in this preset, from its free VRAM."""
    total_gb = (info.memory_total_mb or 0) / 1024
    used_gb = (info.memory_used_mb or 0) / 1024
    usable_gb = total_gb - used_gb
    note = f"{usable_gb:.1f} GiB free of {total_gb:.1f} GiB"
    if used_gb >= 0.5:
        reason = "the display and other programs" if info.drives_display else "other programs"
        note += f" ({used_gb:.1f} GiB used by {reason})"
    needs_gb = needs_gib(chosen)
    capability = info.compute_capability
    if (
        chosen.needs_fp8_tensor_cores
        and capability
        and tuple(int(p) for p in capability.split(".")) < FP8_COMPUTE_CAPABILITY
    ):
        return PresetFit(chosen.name, needs_gb, "not supported", "no FP8 tensor cores")
    if usable_gb >= needs_gb + 1:
        verdict = "fits"
    elif usable_gb >= needs_gb:
        verdict = "tight"
    else:
        verdict = "does not fit"
    if (
        chosen.offload != "none"
        and system_ram_gb < OFFLOAD_NEEDS_RAM_GB
        and verdict != "does not fit"
    ):
        verdict = "tight"
        note += (
            f"; offload wants ~{OFFLOAD_NEEDS_RAM_GB:.0f} GiB of system RAM, "
            f"this has {system_ram_gb:.0f} GiB"
        )
    return PresetFit(chosen.name, needs_gb, verdict, note)


def diagnose(
    weights_path: Path | None = None,
    *,
    runtime: str | None = None,
    comfyui_url: str | None = None,
) -> Report:
    comfyui = None
    if runtime in (None, "comfyui"):
        from klein_bench.runners import comfyui_doctor
        from klein_bench.runners.comfyui_client import DEFAULT_URL

        comfyui = comfyui_doctor.findings(
            comfyui_url or DEFAULT_URL, explicit=runtime == "comfyui" or comfyui_url is not None
        )
    gpus, nvml_problem = gpu.gpus_or_reason()
    driver = cuda_driver = None
    if nvml_problem is None:
        driver, cuda_driver = gpu.driver_versions()
    torch = gpu.torch_info()
    cache = weights.hf_cache_dir()
    disk_path = _existing_parent(weights_path.expanduser() if weights_path else cache)
    try:
        free_disk_gb: float | None = shutil.disk_usage(disk_path).free / 1024**3
    except OSError:
        free_disk_gb = None
    location = weights_problem = None
    try:
        location = weights.locate(weights_path)
    except KleinBenchError as exc:
        weights_problem = exc.message
    report = Report(
        gpus=gpus,
        nvml_problem=nvml_problem,
        driver=driver,
        cuda_driver=cuda_driver,
        torch=torch,
        diffusers=gpu.package_version("diffusers"),
        transformers=gpu.package_version("transformers"),
        system_ram_gb=measure.system_ram_mb() / 1024,
        free_disk_gb=free_disk_gb,
        disk_path=disk_path,
        weights=location,
        weights_problem=weights_problem,
        runtime=runtime,
        comfyui=comfyui,
    )
    for info in gpus:
        report.fits[info.index] = [
            preset_fit(info, chosen, report.system_ram_gb) for chosen in PRESETS.values()
        ]
    report.findings = _findings(report)
    if not report.needs_diffusers:
        report.findings = [_for_comfyui_only(f) for f in report.findings]
    report.findings.extend(comfyui or [])
    return report


# What only the diffusers runtime needs: missing, they are facts, not problems.
_DIFFUSERS_TOPICS = ("torch", "diffusers", "transformers", "weights", "disk")


def _for_comfyui_only(finding: Finding) -> Finding:
    if finding.topic not in _DIFFUSERS_TOPICS or finding.level not in ("problem", "warning"):
        return finding
    return Finding(
        "info",
        finding.topic,
        f"{finding.text} Only the diffusers runtime needs it; ComfyUI runs the model in its "
        "own process.",
        finding.fix,
    )


def _findings(report: Report) -> list[Finding]:
    findings: list[Finding] = []
    add = findings.append
    blackwell = any(info.is_blackwell for info in report.gpus)
    tag = gpu.cuda_wheel_tag(report.cuda_driver, blackwell=blackwell)
    torch = report.torch

    # GPUs and the driver.
    if report.nvml_problem:
        add(Finding("info" if not report.gpus else "problem", "GPU", report.nvml_problem))
    elif not report.gpus:
        add(
            Finding(
                "info",
                "GPU",
                "NVML works but sees no NVIDIA GPU: only the tiny test model can run here.",
                f"klein-bench run --model {KLEIN_TINY.slug}",
            )
        )
    for info in report.gpus:
        if info.drives_display:
            add(
                Finding(
                    "info",
                    f"GPU {info.index}",
                    f"{info.name} drives a display, which keeps some VRAM and clock time; "
                    "results record it.",
                    "For the most VRAM, run headless or move the display to another GPU.",
                )
            )

    # torch.
    if not torch.installed:
        if torch.error:
            add(
                Finding(
                    "problem",
                    "torch",
                    f"torch is installed but fails to import ({torch.error}).",
                    f"Reinstall it: {gpu.torch_install_command(tag)}",
                )
            )
        else:
            add(
                Finding(
                    "problem",
                    "torch",
                    "torch is not installed.",
                    gpu.torch_install_command(tag)
                    if report.gpus
                    else "pip install torch --index-url https://download.pytorch.org/whl/cpu",
                )
            )
    elif torch.is_cpu_build and not report.gpus:
        add(
            Finding(
                "warning",
                "torch",
                f"torch {torch.version} is a CPU-only build: only --model {KLEIN_TINY.slug} "
                "runs here. For an NVIDIA GPU, install the CUDA build (on Blackwell, RTX 50, "
                "it must be CUDA 12.8 or newer).",
                gpu.torch_install_command(tag).replace("--upgrade", "--force-reinstall"),
            )
        )
    elif report.gpus and torch.is_cpu_build:
        add(
            Finding(
                "problem",
                "torch",
                f"torch {torch.version} is a CPU-only build and cannot use your GPU.",
                gpu.torch_install_command(tag).replace("--upgrade", "--force-reinstall"),
            )
        )
    elif report.gpus and not torch.cuda_available:
        add(
            Finding(
                "problem",
                "torch",
                f"torch {torch.version} (CUDA {torch.cuda}) cannot use the GPU"
                + (f": {torch.error}" if torch.error else "")
                + (
                    f"; the driver supports CUDA up to {report.cuda_driver}."
                    if report.cuda_driver
                    else "."
                ),
                f"Update the NVIDIA driver, or install a build for your driver: "
                f"{gpu.torch_install_command(tag)}",
            )
        )
    elif torch.installed:
        add(
            Finding(
                "ok",
                "torch",
                f"torch {torch.version}" + (f" (CUDA {torch.cuda})" if torch.cuda else " (CPU)"),
            )
        )
    if torch.installed and torch.cuda_available:
        for info in report.gpus:
            if info.compute_capability and not gpu.supports_capability(
                torch.arch_list, info.compute_capability
            ):
                card_tag = gpu.cuda_wheel_tag(report.cuda_driver, blackwell=info.is_blackwell)
                add(
                    Finding(
                        "problem",
                        f"GPU {info.index}",
                        f"torch {torch.version} has no kernels for the {info.name} ({info.sm}); "
                        f"it was built for {', '.join(torch.arch_list) or 'no GPU'}."
                        + (" Blackwell cards need CUDA 12.8 builds." if info.is_blackwell else ""),
                        gpu.torch_install_command(card_tag),
                    )
                )
        if blackwell:
            add(
                Finding(
                    "info",
                    "attention",
                    "FlashAttention-2 crashes on Blackwell (sm_120); the agent uses PyTorch SDPA.",
                    "Leave DIFFUSERS_ATTN_BACKEND unset (or set it to native).",
                )
            )

    # diffusers and every other dependency's minimum.
    if report.diffusers is None:
        add(Finding("problem", "diffusers", "diffusers is not installed.", gpu.DIFFUSERS_INSTALL))
    elif gpu.version_tuple(report.diffusers) < gpu.version_tuple(gpu.MIN_DIFFUSERS):
        add(
            Finding(
                "problem",
                "diffusers",
                f"diffusers {report.diffusers} has no Flux2KleinPipeline (added in 0.37).",
                gpu.DIFFUSERS_UPGRADE,
            )
        )
    elif gpu.version_tuple(report.diffusers) < gpu.version_tuple(RECOMMENDED_DIFFUSERS):
        add(
            Finding(
                "warning",
                "diffusers",
                f"diffusers {report.diffusers} works, but {RECOMMENDED_DIFFUSERS} fixes device "
                "placement under model offload.",
                gpu.DIFFUSERS_UPGRADE,
            )
        )
    else:
        add(Finding("ok", "diffusers", f"diffusers {report.diffusers}"))
    if report.diffusers is not None:
        findings.extend(dependency_findings())

    # Memory and disk.
    if report.system_ram_gb < LOW_RAM_GB:
        add(
            Finding(
                "warning",
                "memory",
                f"{report.system_ram_gb:.0f} GiB of system RAM: loading Klein 4B (~15 GiB of "
                "weights) will swap, and offload runs may be killed during VAE decode.",
                "Close other programs, add swap, or use the fp8-storage preset.",
            )
        )

    # Weights.
    location = report.weights
    if report.weights_problem:
        add(Finding("problem", "weights", report.weights_problem))
    elif location is None:
        needs = weights.DOWNLOAD_NEEDS_GB
        if report.free_disk_gb is not None and report.free_disk_gb < needs:
            add(
                Finding(
                    "problem",
                    "disk",
                    f"{report.free_disk_gb:.1f} GiB free in {report.disk_path}; the weights need "
                    f"about {needs:.0f} GiB.",
                    "Free some space, or set HF_HUB_CACHE to a bigger disk.",
                )
            )
        add(
            Finding(
                "info",
                "weights",
                "FLUX.2 [klein] 4B weights are not in the Hugging Face cache "
                f"({weights.hf_cache_dir()}).",
                "klein-bench run --download (about 15 GiB), --weights PATH for a local copy"
                + (", or --synthetic to measure without them." if report.gpu_usable else "."),
            )
        )
    elif not location.complete:
        add(
            Finding(
                "problem",
                "weights",
                f"The weights in {location.path} are incomplete (missing "
                f"{', '.join(location.missing[:4])}).",
                f"hf download {weights.HF_REPO}, or klein-bench run --download",
            )
        )
    else:
        revision = f" at revision {location.revision}" if location.revision else ""
        add(Finding("ok", "weights", f"FLUX.2 [klein] 4B weights in {location.path}{revision}"))

    # Presets.
    for index, fits in report.fits.items():
        if report.gpus and all(fit.verdict == "does not fit" for fit in fits):
            add(
                Finding(
                    "warning",
                    f"GPU {index}",
                    "No preset is expected to fit in this GPU's free VRAM.",
                    "Close programs that use the GPU, or try `--synthetic --preset fp8-storage` to "
                    "measure it before downloading.",
                )
            )
    return findings


def dependency_findings() -> list[Finding]:
    """Each dependency the agent declares (its own package metadata: one source of
    truth) that is missing or older than its minimum, with the command that fixes it."""
    try:
        declared = importlib.metadata.requires("klein-bench") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    findings = []
    for text in declared:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        extra = next(
            (e for e in ("diffusers", "fp8") if marker and marker.evaluate({"extra": e})), None
        )
        if marker is not None and extra is None:
            continue
        version = gpu.package_version(requirement.name)
        why = WHY_MINIMUM.get(requirement.name)
        if version is None:
            if extra == "fp8" or requirement.name == "diffusers":
                continue  # optional, or reported above
            findings.append(
                Finding(
                    "problem",
                    requirement.name,
                    f"{requirement.name} is not installed" + (f" ({why})." if why else "."),
                    f'pip install "{requirement.name}{requirement.specifier}"',
                )
            )
            continue
        try:
            ok = requirement.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            continue
        if not ok:
            wanted = f"{requirement.name}{requirement.specifier}"
            findings.append(
                Finding(
                    "problem",
                    requirement.name,
                    f"{requirement.name} {version} is older than klein-bench needs ({wanted}"
                    + (f"; {why})." if why else ")."),
                    f'pip install --upgrade "{wanted}"',
                )
            )
    return findings
