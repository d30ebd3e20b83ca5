"""The figures a result carries: names, units, what each one is and where it comes from.

Both sides read these tables: the agent to fill the payload, the server to store,
aggregate and label the figures. A new figure is added here, in the payload's schema and
as a Result column (and, if it is aggregated, as Summary columns).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    # One line a reader understands: what the number is and what measured it.
    meaning: str


# Memory figures, in MiB (2**20 bytes). The four VRAM peaks answer different questions;
# docs/measurements.md says which one pages lead with and why.
MEMORY_FIGURES: dict[str, Figure] = {
    f.name: f
    for f in (
        Figure(
            "baseline_device_mb",
            "MiB",
            "the whole card's used memory before the model loaded (NVML device-wide)",
        ),
        Figure(
            "peak_allocated_mb",
            "MiB",
            "the most memory PyTorch's tensors held (torch.cuda.max_memory_allocated)",
        ),
        Figure(
            "peak_reserved_mb",
            "MiB",
            "the most memory PyTorch's caching allocator held (torch.cuda.max_memory_reserved)",
        ),
        Figure(
            "peak_process_mb",
            "MiB",
            "the most GPU memory the driver charged the benchmark's process, CUDA context "
            "included (NVML per process)",
        ),
        Figure(
            "peak_device_mb",
            "MiB",
            "the most memory in use on the whole card, display and other programs included "
            "(NVML device-wide)",
        ),
        Figure(
            "peak_rss_mb",
            "MiB",
            "the most system RAM the benchmark's process held (resident set size)",
        ),
        Figure("system_ram_mb", "MiB", "the machine's total system RAM"),
        Figure(
            "peak_vram_mb",
            "MiB",
            "the headline: the most GPU memory the benchmark's process held, CUDA context "
            "included, the same quantity on every platform (vram_source says how it was read)",
        ),
    )
}
# Where the headline peak_vram_mb came from, best first. Each one is the process's GPU
# memory with its CUDA context; docs/measurements.md says how they relate.
VRAM_SOURCES: dict[str, str] = {
    "nvml-process": "NVML's per-process figure (what nvidia-smi lists for the process)",
    "torch-reserved+context": "torch's peak reserved memory plus the CUDA context, measured "
    "as the card's NVML use after CUDA started minus before (where NVML has no per-process "
    "figure: Windows, WSL, containers)",
    "torch-reserved": "torch's peak reserved memory, without the CUDA context (no NVML at all)",
    "nvml-device-delta": "the card's NVML use minus its use before loading (another process, "
    "such as ComfyUI, whose per-process figure is hidden)",
}
# The phases of a run, in order; per-phase peaks are recorded for each.
PHASES: dict[str, str] = {
    "load": "model load",
    "warmup": "warm-up",
    "timed": "timed images",
}
# The VRAM peaks, in the order pages fall back through when a figure is missing.
PEAK_VRAM_FIGURES = (
    "peak_vram_mb",
    "peak_process_mb",
    "peak_reserved_mb",
    "peak_allocated_mb",
    "peak_device_mb",
)
# Memory figures aggregated per configuration (median and largest).
AGGREGATED_MEMORY_FIGURES = (
    "peak_vram_mb",
    "peak_allocated_mb",
    "peak_reserved_mb",
    "peak_process_mb",
    "peak_device_mb",
    "peak_rss_mb",
)

# How a run ended, and where a failed one stopped, with the words pages use.
OUTCOMES: dict[str, str] = {
    "success": "success",
    "out_of_memory": "out of memory",
    # The run finished only because the driver put GPU memory in system RAM (Windows'
    # "system memory fallback"): slow, and evidence that the configuration does not fit.
    "spilled": "spilled into system memory",
    "error": "error",
}
# Outcomes that say a configuration does not fit the card.
NOT_FITTING = ("out_of_memory", "spilled")
STAGES: dict[str, str] = {
    "load": "model load",
    "warmup": "warm-up",
    "text_encoding": "text encoding",
    "denoising": "denoising",
    "vae_decode": "VAE decode",
    "other": "other",
}

# Where a result's kernel path (its `kernels` section) was read, with the words pages use.
KERNEL_SOURCES: dict[str, str] = {
    "observed": "observed in the agent's process (torch function and dispatch modes)",
    "comfyui-log": "ComfyUI's own log lines and launch flags",
    "file-and-launch-flags": "the model file and ComfyUI's launch flags (its log was not "
    "available)",
}
# How ComfyUI put each model on the GPU (its loader's log lines), with the words pages use.
KERNEL_LOADINGS: dict[str, str] = {
    "full": "fully",
    "partial": "partially (the rest streamed from system RAM)",
    "dynamic": "by DynamicVRAM (weights staged on demand)",
}

# The configuration fields a result is grouped by, with the words pages use.
RUNTIMES: dict[str, str] = {"diffusers": "diffusers", "comfyui": "ComfyUI"}
# The kernel path the weights and matmuls took: BF16 throughout; FP8 weights upcast to
# BF16 for every matmul (storage only: less memory, no faster maths); FP8 matmuls.
PRECISIONS: dict[str, str] = {
    "bf16": "BF16",
    "fp8-storage": "FP8 weights, BF16 compute",
    "fp8-compute": "FP8 compute",
}
# What the matmuls of each precision run at: the card's dense tensor peak to compare with
# (the catalog's bf16_tflops or fp8_tflops).
PEAK_FOR_PRECISION: dict[str, str] = {
    "bf16": "bf16",
    "fp8-storage": "bf16",
    "fp8-compute": "fp8",
}
# Telemetry labels: a power limit below this share of the card's default is a cap someone
# set (a boot-time cap cost peer users days of false reports).
CAPPED_BELOW_SHARE = 0.95
# Clock-limit reasons (NVML's) that mean the card slowed itself down, not that it idled or
# ran at its normal power limit.
THROTTLE_REASONS = (
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_slowdown",
    "hw_power_brake_slowdown",
)
OFFLOADS: dict[str, str] = {
    "none": "none (fully resident)",
    "model": "model CPU offload",
    "sequential": "sequential CPU offload",
}
