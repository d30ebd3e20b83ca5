"""Looking up the contract's models and presets by the names users type."""

from __future__ import annotations

from klein_bench.contract.catalog import MODELS, PRESETS, ModelSpec, Preset
from klein_bench.errors import KleinBenchError

RUNTIMES = ("diffusers", "comfyui")

# Rough VRAM (GiB) Klein 4B needs in each preset at 1024x1024, from the published figures
# (REFERENCE: ~20 GB resident, ~13 GB offloaded, ~9 GB with FP8 weights).
NEEDS_GB = {"bf16-resident": 20.0, "bf16-model-offload": 13.0, "fp8-storage": 9.0}


def model_spec(slug: str) -> ModelSpec:
    try:
        return MODELS[slug]
    except KeyError:
        raise KleinBenchError(
            f"Unknown model {slug!r}: choose one of {', '.join(MODELS)}."
        ) from None


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KleinBenchError(
            f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}."
        ) from None
