"""Looking up the contract's models and presets by the names users type."""

from __future__ import annotations

from klein_bench.contract.catalog import MODELS, PRESETS, ModelSpec, Preset
from klein_bench.errors import KleinBenchError

RUNTIMES = ("diffusers", "comfyui")


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
