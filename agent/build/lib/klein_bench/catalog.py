"""The models the agent runs and the presets it runs them in.

A preset maps to the configuration fields the server groups results by (precision and
offload); runtime, resolution and steps are fields of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from klein_bench.errors import KleinBenchError

RUNTIMES = ("diffusers", "comfyui")


@dataclass(frozen=True)
class ModelSpec:
    slug: str
    name: str
    hf_repo: str | None
    width: int
    height: int
    # Built in code with random weights: runs anywhere, downloads nothing.
    built_in: bool


KLEIN_4B = ModelSpec(
    slug="flux-2-klein-4b",
    name="FLUX.2 [klein] 4B",
    hf_repo="black-forest-labs/FLUX.2-klein-4B",
    width=1024,
    height=1024,
    built_in=False,
)
KLEIN_TINY = ModelSpec(
    slug="klein-tiny-random",
    name="Klein tiny random (test model)",
    hf_repo=None,
    width=64,
    height=64,
    built_in=True,
)
MODELS = {m.slug: m for m in (KLEIN_4B, KLEIN_TINY)}


@dataclass(frozen=True)
class Preset:
    name: str
    precision: str
    offload: str
    # Rough VRAM (GiB) that Klein 4B needs in this preset at 1024x1024, from the
    # published figures (REFERENCE: ~20 GB resident, ~13 GB offloaded, ~9 GB FP8).
    needs_gb: float
    description: str


PRESETS = {
    p.name: p
    for p in (
        Preset(
            "bf16-resident",
            "bf16",
            "none",
            20.0,
            "BF16, the whole pipeline on the GPU (fastest; ~20 GB of VRAM).",
        ),
        Preset(
            "bf16-model-offload",
            "bf16",
            "model",
            13.0,
            "BF16 with enable_model_cpu_offload(): one component on the GPU at a time "
            "(~13 GB of VRAM, ~20 GB of system RAM).",
        ),
        Preset(
            "fp8",
            "fp8",
            "none",
            9.0,
            "FP8 weight storage (diffusers layerwise casting of the transformer and the "
            "text encoder), computed in BF16 (~9 GB of VRAM).",
        ),
    )
}
DEFAULT_PRESET = "bf16-resident"


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
