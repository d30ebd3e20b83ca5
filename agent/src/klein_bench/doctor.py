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

from klein_bench import gpu, measure
from klein_bench.backends.diffusers import weights
from klein_bench.contract import fit
from klein_bench.contract.catalog import FP8_COMPUTE_CAPABILITY, PRESETS, Preset
from klein_bench.contract.models import DEFAULT_MODEL, MODELS
from klein_bench.contract.registry import ModelSpec
from klein_bench.errors import KleinBenchError
from klein_bench.findings import Finding

# Offload keeps the whole BF16 pipeline in system RAM between uses, and the system some
# more besides.
OFFLOAD_RAM_MARGIN_GB = 8.0
RECOMMENDED_DIFFUSERS = "0.42.1"
GIB = 1024**3
# Why a dependency's minimum matters, for the finding.
WHY_MINIMUM = {
    "transformers": "Qwen3, the text encoder, needs 4.51 or newer",
    "diffusers": "Flux2KleinPipeline arrived in 0.37",
    "accelerate": "model offload needs it",
    "torchao": "the fp8-compute preset needs it",
}


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
    # The model the fits and the weights are about (its slug).
    model: str = DEFAULT_MODEL
    fits: dict[int, list[PresetFit]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # The runtime the checks are for: "diffusers", "comfyui", or None for both.
    runtime: str | None = None
    comfyui: list[Finding] | None = None

    @property
    def spec(self) -> ModelSpec:
        return MODELS[self.model]

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


def needs_gib(spec: ModelSpec, chosen: Preset) -> float:
    """GPU memory the model needs in a preset at its protocol's size: the contract's fit
    rule (klein_bench.contract.fit), as the server's estimates start from it."""
    return (
        fit.peak_mib(
            spec.architecture,
            precision=chosen.precision,
            offload=chosen.offload,
            width=spec.width,
            height=spec.height,
            text_tokens=spec.protocol.max_sequence_length,
        )
        / 1024
    )


def weights_gb(spec: ModelSpec) -> float:
    """The model's BF16 weights, in GiB: what loading it, or offloading it, holds in RAM."""
    return sum(spec.architecture.parameters.values()) * 2 / GIB


def offload_needs_ram_gb(spec: ModelSpec) -> float:
    return weights_gb(spec) + OFFLOAD_RAM_MARGIN_GB


def preset_fit(
    info: gpu.GpuInfo, chosen: Preset, system_ram_gb: float, spec: ModelSpec
) -> PresetFit:
    """Whether the model should fit on this GPU in this preset: the contract's verdict on
    the card's memory, beside what other programs hold now."""
    total_gb = (info.memory_total_mb or 0) / 1024
    used_gb = (info.memory_used_mb or 0) / 1024
    usable_gb = total_gb - used_gb
    note = f"{usable_gb:.1f} GiB free of {total_gb:.1f} GiB"
    if used_gb >= 0.5:
        reason = "the display and other programs" if info.drives_display else "other programs"
        note += f" ({used_gb:.1f} GiB used by {reason})"
    needs_gb = needs_gib(spec, chosen)
    capability = info.compute_capability
    if (
        chosen.needs_fp8_tensor_cores
        and capability
        and tuple(int(p) for p in capability.split(".")) < FP8_COMPUTE_CAPABILITY
    ):
        return PresetFit(chosen.name, needs_gb, "not supported", "no FP8 tensor cores")
    found = fit.verdict(fit.architecture_range(needs_gb * 1024), total_gb * 1024, usable_gb * 1024)
    verdict = fit.VERDICT_WORDS.get(found, "does not fit")
    ram_gb = offload_needs_ram_gb(spec)
    if chosen.offload != "none" and system_ram_gb < ram_gb and verdict != "does not fit":
        verdict = "tight"
        note += f"; offload wants ~{ram_gb:.0f} GiB of system RAM, this has {system_ram_gb:.0f} GiB"
    return PresetFit(chosen.name, needs_gb, verdict, note)


def diagnose(
    weights_path: Path | None = None,
    *,
    runtime: str | None = None,
    comfyui_url: str | None = None,
    model: str = DEFAULT_MODEL,
) -> Report:
    comfyui = None
    if runtime in (None, "comfyui"):
        from klein_bench.backends.comfyui import doctor as comfyui_doctor
        from klein_bench.backends.comfyui.client import DEFAULT_URL

        comfyui = comfyui_doctor.findings(
            comfyui_url or DEFAULT_URL,
            explicit=runtime == "comfyui" or comfyui_url is not None,
            model=MODELS[model],
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
    spec = MODELS[model]
    location = weights_problem = None
    if spec.hf is not None:
        try:
            location = weights.locate(spec, weights_path)
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
        model=spec.slug,
        runtime=runtime,
        comfyui=comfyui,
    )
    for info in gpus:
        report.fits[info.index] = [
            preset_fit(info, PRESETS[name], report.system_ram_gb, spec) for name in spec.presets
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
    spec = report.spec
    tiny = spec.tiny or MODELS[DEFAULT_MODEL].tiny

    # GPUs and the driver.
    if report.nvml_problem:
        add(Finding("info" if not report.gpus else "problem", "GPU", report.nvml_problem))
    elif not report.gpus:
        add(
            Finding(
                "info",
                "GPU",
                "NVML works but sees no NVIDIA GPU: only the tiny test models can run here.",
                f"klein-bench run --model {tiny}",
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
                f"torch {torch.version} is a CPU-only build: only the tiny test models "
                f"(--model {tiny}) run here. For an NVIDIA GPU, install the CUDA build (on "
                "Blackwell, RTX 50, it must be CUDA 12.8 or newer).",
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

    findings.extend(_memory_and_weights_findings(report))

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


def _memory_and_weights_findings(report: Report) -> list[Finding]:
    """System RAM against the model's weights, and the weights on disk."""
    spec = report.spec
    findings: list[Finding] = []
    add = findings.append
    weights_gib = weights_gb(spec)
    if not spec.built_in and report.system_ram_gb < weights_gib:
        add(
            Finding(
                "warning",
                "memory",
                f"{report.system_ram_gb:.0f} GiB of system RAM: loading {spec.name} "
                f"(~{weights_gib:.0f} GiB of weights) will swap, and offload runs may be killed "
                "during VAE decode.",
                "Close other programs, add swap, or use the fp8-storage preset.",
            )
        )
    if spec.hf is None:
        return findings
    location = report.weights
    if report.weights_problem:
        add(Finding("problem", "weights", report.weights_problem))
    elif location is None:
        needs = weights.download_needs_gib(spec.hf)
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
                f"{spec.name} weights are not in the Hugging Face cache "
                f"({weights.hf_cache_dir()}).",
                f"klein-bench run --model {spec.slug} --download (about "
                f"{spec.hf.download_gib:.0f} GiB), --weights PATH for a local copy"
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
                f"hf download {spec.hf.repo}, or klein-bench run --model {spec.slug} --download",
            )
        )
    else:
        revision = f" at revision {location.revision}" if location.revision else ""
        add(Finding("ok", "weights", f"{spec.name} weights in {location.path}{revision}"))
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
