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
    )
}
# The VRAM peaks, in the order pages fall back through when a figure is missing.
PEAK_VRAM_FIGURES = ("peak_process_mb", "peak_reserved_mb", "peak_allocated_mb", "peak_device_mb")
# Memory figures aggregated per configuration (median and largest).
AGGREGATED_MEMORY_FIGURES = (
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
    "error": "error",
    "spilled": "spilled into system memory",
}
STAGES: dict[str, str] = {
    "load": "model load",
    "warmup": "warm-up",
    "text_encoding": "text encoding",
    "denoising": "denoising",
    "vae_decode": "VAE decode",
    "other": "other",
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
OFFLOADS: dict[str, str] = {
    "none": "none (fully resident)",
    "model": "model CPU offload",
    "sequential": "sequential CPU offload",
}
