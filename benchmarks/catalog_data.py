"""The catalog: models, GPUs, standard configurations and published claims.

`loadcatalog` (and the data migration that calls it) writes these idempotently: each
entry is matched by its natural key and updated in place, never duplicated.
"""

from __future__ import annotations

from klein_bench.contract.catalog import PRESETS

MODELS = [
    {
        "slug": "flux-2-klein-4b",
        "name": "FLUX.2 [klein] 4B",
        "hf_repo": "black-forest-labs/FLUX.2-klein-4B",
        "licence": "Apache-2.0",
        "parameters_billion": "4.00",
        "default_steps": 4,
        "default_guidance": 1.0,
        "default_width": 1024,
        "default_height": 1024,
        "description": (
            "Black Forest Labs' step-distilled 4B text-to-image model: a 3.9B-parameter "
            "Flux2 transformer, the Qwen3-4B text encoder and the Flux.2 VAE. 4 steps, "
            "guidance 1.0, 1024x1024. About 15 GiB of BF16 weights."
        ),
        "is_test_model": False,
        "sort_order": 10,
    },
    {
        "slug": "flux-2-klein-base-4b",
        "name": "FLUX.2 [klein] Base 4B",
        "hf_repo": "black-forest-labs/FLUX.2-klein-base-4B",
        "licence": "Apache-2.0",
        "parameters_billion": "4.00",
        "default_steps": 50,
        "default_guidance": 4.0,
        "default_width": 1024,
        "default_height": 1024,
        "description": (
            "The undistilled base of FLUX.2 [klein] 4B, for fine-tuning and LoRA training: "
            "50 steps with classifier-free guidance around 4 to 5."
        ),
        "is_test_model": False,
        "sort_order": 20,
    },
    {
        "slug": "klein-tiny-random",
        "name": "Klein tiny random (test model)",
        "hf_repo": "",
        "licence": "Apache-2.0",
        "parameters_billion": None,
        "default_steps": 4,
        "default_guidance": 1.0,
        "default_width": 64,
        "default_height": 64,
        "description": (
            "A tiny randomly initialised Flux2KleinPipeline built in code by the agent. It "
            "runs the real diffusers code path in seconds on a CPU; its figures say nothing "
            "about Klein 4B and are never mixed with it."
        ),
        "is_test_model": True,
        "sort_order": 90,
    },
]


def _gpu(slug, name, family, nvml, vram_gb, arch, cc, bandwidth, tflops, power, order, **extra):
    major, minor = cc.split(".")
    # FP8 tensor cores arrived with Ada Lovelace and Hopper (compute capability 8.9), at
    # twice the BF16 rate with the same accumulation.
    has_fp8 = tflops is not None and (int(major), int(minor)) >= (8, 9)
    return {
        "slug": slug,
        "name": name,
        "vendor": extra.pop("vendor", "NVIDIA"),
        "family": family,
        "nvml_names": nvml,
        "vram_mb": round(vram_gb * 1024) if vram_gb is not None else None,
        "architecture": arch,
        "compute_capability": cc if cc != "0.0" else "",
        "sm": f"sm_{major}{minor}" if cc != "0.0" else "",
        "memory_bandwidth_gbs": bandwidth,
        "bf16_tflops": tflops,
        "fp8_tflops": round(tflops * 2, 1) if has_fp8 else None,
        "board_power_w": power,
        "is_laptop": extra.pop("is_laptop", False),
        "sort_order": order,
    }


# Dense BF16 tensor TFLOPS with FP32 accumulate (NVIDIA architecture whitepapers; half the
# FP16-accumulate figure on GeForce cards); FP8 is twice that where the card has it. VRAM
# in GiB as marketed.
GPUS = [
    _gpu(
        "rtx-3090",
        "NVIDIA GeForce RTX 3090",
        "GeForce RTX 30",
        ["NVIDIA GeForce RTX 3090"],
        24,
        "Ampere",
        "8.6",
        936,
        71.0,
        350,
        300,
    ),
    _gpu(
        "rtx-4070",
        "NVIDIA GeForce RTX 4070",
        "GeForce RTX 40",
        ["NVIDIA GeForce RTX 4070"],
        12,
        "Ada Lovelace",
        "8.9",
        504,
        58.3,
        200,
        400,
    ),
    _gpu(
        "rtx-4070-ti",
        "NVIDIA GeForce RTX 4070 Ti",
        "GeForce RTX 40",
        ["NVIDIA GeForce RTX 4070 Ti"],
        12,
        "Ada Lovelace",
        "8.9",
        504,
        80.2,
        285,
        410,
    ),
    _gpu(
        "rtx-4080",
        "NVIDIA GeForce RTX 4080",
        "GeForce RTX 40",
        ["NVIDIA GeForce RTX 4080"],
        16,
        "Ada Lovelace",
        "8.9",
        716.8,
        97.5,
        320,
        420,
    ),
    _gpu(
        "rtx-4090",
        "NVIDIA GeForce RTX 4090",
        "GeForce RTX 40",
        ["NVIDIA GeForce RTX 4090"],
        24,
        "Ada Lovelace",
        "8.9",
        1008,
        165.2,
        450,
        430,
    ),
    _gpu(
        "rtx-5060-ti-16gb",
        "NVIDIA GeForce RTX 5060 Ti 16 GB",
        "GeForce RTX 50",
        ["NVIDIA GeForce RTX 5060 Ti"],
        16,
        "Blackwell",
        "12.0",
        448,
        47.4,
        180,
        500,
    ),
    _gpu(
        "rtx-5070",
        "NVIDIA GeForce RTX 5070",
        "GeForce RTX 50",
        ["NVIDIA GeForce RTX 5070"],
        12,
        "Blackwell",
        "12.0",
        672,
        61.7,
        250,
        510,
    ),
    _gpu(
        "rtx-5070-ti",
        "NVIDIA GeForce RTX 5070 Ti",
        "GeForce RTX 50",
        ["NVIDIA GeForce RTX 5070 Ti"],
        16,
        "Blackwell",
        "12.0",
        896,
        87.9,
        300,
        520,
    ),
    _gpu(
        "rtx-5080",
        "NVIDIA GeForce RTX 5080",
        "GeForce RTX 50",
        ["NVIDIA GeForce RTX 5080"],
        16,
        "Blackwell",
        "12.0",
        960,
        112.6,
        360,
        530,
    ),
    _gpu(
        "rtx-5090",
        "NVIDIA GeForce RTX 5090",
        "GeForce RTX 50",
        ["NVIDIA GeForce RTX 5090"],
        32,
        "Blackwell",
        "12.0",
        1792,
        209.5,
        575,
        540,
    ),
    _gpu(
        "h100",
        "NVIDIA H100 80GB",
        "Data centre",
        ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100"],
        80,
        "Hopper",
        "9.0",
        3350,
        989.4,
        700,
        800,
    ),
    _gpu(
        "h200",
        "NVIDIA H200 141GB",
        "Data centre",
        ["NVIDIA H200", "NVIDIA H200 NVL"],
        141,
        "Hopper",
        "9.0",
        4800,
        989.4,
        700,
        810,
    ),
    _gpu("cpu", "CPU (no GPU)", "CPU", [], None, "", "0.0", None, None, None, 900, vendor=""),
]

# The standard configurations: every preset of the contract in diffusers, and ComfyUI in
# the recipes' path (FP8 weights, BF16 compute).
CONFIGURATIONS = [
    *(
        {"runtime": "diffusers", "precision": preset.precision, "offload": preset.offload}
        for preset in PRESETS.values()
    ),
    {"runtime": "comfyui", "precision": "fp8-storage", "offload": "none"},
]
STANDARD_RESOLUTION = {"width": 1024, "height": 1024, "steps": 4}

MODEL_CARD = "https://huggingface.co/black-forest-labs/FLUX.2-klein-4B"
COMFY_TUTORIAL = "https://docs.comfy.org/tutorials/flux/flux-2-klein"
BFL_README = "https://github.com/black-forest-labs/flux2"

# Published figures for FLUX.2 [klein] 4B (shared/REFERENCE.md), shown beside the
# community's medians. "configuration" names the runtime, precision and offload.
CLAIMS = [
    {
        "model": "flux-2-klein-4b",
        "gpu": "rtx-4090",
        "gpu_label": "RTX 4090 24 GB",
        "path": "diffusers BF16 full-resident",
        "configuration": ("diffusers", "bf16", "none"),
        "figure": "works, ~20 GB peak",
        "seconds_per_image": None,
        "peak_vram_gb": 20.0,
        "usable_vram_gb": None,
        "source": "Community benchmark (RTX 4090 recipe)",
        "source_url": "",
        "note": "Speed not published for this card.",
    },
    {
        "model": "flux-2-klein-4b",
        "gpu": None,
        "gpu_label": "16 GB-class cards",
        "path": "diffusers BF16 + enable_model_cpu_offload()",
        "configuration": ("diffusers", "bf16", "model"),
        "figure": "~13 GB VRAM",
        "seconds_per_image": None,
        "peak_vram_gb": 13.0,
        "usable_vram_gb": None,
        "source": "BFL model card",
        "source_url": MODEL_CARD,
        "note": '"Fits in ~13GB VRAM and is accessible on NVIDIA RTX 3090/4070 and above."',
    },
    {
        "model": "flux-2-klein-4b",
        "gpu": "rtx-5090",
        "gpu_label": "RTX 5090",
        "path": "ComfyUI FP8 distilled",
        "configuration": ("comfyui", "fp8-storage", "none"),
        "figure": "~1.2 s per image, ~8.4 GB VRAM",
        "seconds_per_image": 1.2,
        "peak_vram_gb": 8.4,
        "usable_vram_gb": None,
        "source": "docs.comfy.org Klein tutorial",
        "source_url": COMFY_TUTORIAL,
        "note": "Measured on an RTX 5090; the speed does not transfer to smaller cards.",
    },
    {
        "model": "flux-2-klein-4b",
        "gpu": None,
        "gpu_label": "modern hardware",
        "path": "not stated",
        "configuration": None,
        "figure": "sub-second",
        "seconds_per_image": None,
        "peak_vram_gb": None,
        "usable_vram_gb": None,
        "source": "BFL flux2 README",
        "source_url": BFL_README,
        "note": '"Generate or edit images under a second on modern hardware"; no card named.',
    },
    {
        "model": "flux-2-klein-4b",
        "gpu": "rtx-5070",
        "gpu_label": "RTX 5070 12 GB",
        "path": "display attached",
        # The recipe's claim is about its own path: FP8 in ComfyUI on a display card.
        "configuration": ("comfyui", "fp8-storage", "none"),
        "figure": "~10.5-11.3 GB usable VRAM",
        "seconds_per_image": None,
        "peak_vram_gb": None,
        "usable_vram_gb": 10.5,
        "source": "RTX 5070 recipe",
        "source_url": "",
        "note": (
            "A 12 GB card that drives a display has about 10.5-11.3 GB free for the model: "
            "the BF16 + offload path (~13 GB) is too tight; FP8 (~8.4 GB) fits."
        ),
    },
]
