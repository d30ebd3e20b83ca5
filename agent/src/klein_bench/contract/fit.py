"""Does it fit: a model's peak GPU memory in a configuration, and the verdict on a card.

One rule for everything that answers the question: `klein-bench doctor` (against the free
VRAM it reads) and the server's estimates (benchmarks/services/estimates.py, which
calibrate `peak_mib` by the measurements of the same configuration on any card and then
judge with the same `verdict`). docs/estimates.md gives the method and its error.

The peak is each component's weights at its precision (the architecture's parameter
counts), plus the larger activations (the transformer's, linear in tokens with SDPA, or
the VAE decoder's full-resolution feature maps: they never run at once), plus the
runtime's overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

from klein_bench.contract.catalog import DEFAULT_PRESET, PRESETS
from klein_bench.contract.work import Architecture

MIB = 2**20
# The transformer holds about this many bytes per token and hidden unit at its peak; the
# VAE decoder about this many per output pixel.
TRANSFORMER_BYTES_PER_TOKEN_UNIT = 48
VAE_DECODE_BYTES_PER_PIXEL = 1536
# The CUDA context, cuBLAS workspaces and the caching allocator's slack.
RUNTIME_OVERHEAD_MIB = 1024
# How uncertain the peak is from the architecture alone, each side.
ARCHITECTURE_SPREAD = 0.20

FITS = "fits"
TIGHT = "tight"  # within the card's memory, but not safely (or not beside a display)
DOES_NOT_FIT = "does_not_fit"
VERDICT_WORDS = {FITS: "fits", TIGHT: "tight", DOES_NOT_FIT: "does not fit"}


@dataclass(frozen=True)
class Range:
    value: float
    low: float
    high: float


def storage_bytes(precision: str) -> dict[str, float]:
    """Bytes per weight of each component at a precision, as the presets store them (a
    precision no preset has counts as BF16)."""
    for preset in PRESETS.values():
        if preset.precision == precision:
            return preset.storage_bytes
    return PRESETS[DEFAULT_PRESET].storage_bytes


def weights_mib(architecture: Architecture, precision: str, offload: str) -> float:
    """The weights on the GPU at the peak: all of them fully resident, the largest
    component under model offload (one at a time), next to none under sequential offload."""
    sizes = storage_bytes(precision)
    components = [n * sizes[name] / MIB for name, n in architecture.parameters.items()]
    if offload == "none":
        return sum(components)
    if offload == "model":
        return max(components)
    return 0.0


def activation_mib(architecture: Architecture, width: int, height: int, text_tokens: int) -> float:
    side = architecture.pixels_per_token_side
    tokens = (width // side) * (height // side) + text_tokens
    transformer = tokens * architecture.transformer.hidden * TRANSFORMER_BYTES_PER_TOKEN_UNIT
    vae = width * height * VAE_DECODE_BYTES_PER_PIXEL
    return max(transformer, vae) / MIB


def peak_mib(
    architecture: Architecture,
    *,
    precision: str,
    offload: str,
    width: int,
    height: int,
    text_tokens: int,
) -> float:
    """Peak GPU memory from the architecture alone (before any calibration)."""
    return (
        weights_mib(architecture, precision, offload)
        + activation_mib(architecture, width, height, text_tokens)
        + RUNTIME_OVERHEAD_MIB
    )


def architecture_range(value_mib: float) -> Range:
    """The peak from the architecture alone, with its uncertainty."""
    return Range(
        value_mib, value_mib * (1 - ARCHITECTURE_SPREAD), value_mib * (1 + ARCHITECTURE_SPREAD)
    )


def verdict(memory: Range, capacity_mib: float | None, usable_mib: float | None = None) -> str:
    """FITS when the whole range is within what is usable (the card's memory less what a
    display or other programs hold, where known), DOES_NOT_FIT when the estimate itself is
    over the card's memory, TIGHT between; "" when the card's memory is unknown."""
    if not capacity_mib:
        return ""
    if memory.value > capacity_mib:
        return DOES_NOT_FIT
    if memory.high <= (usable_mib or capacity_mib):
        return FITS
    return TIGHT
