"""Estimates for a model on a card in a configuration nobody has measured there.

Memory hardly depends on the card: the peak is each component's weights at its precision
(the contract's parameter counts), plus activation memory at the resolution, plus the
runtime's overhead; measurements of the same configuration on any card (real or
synthetic) calibrate that formula. Speed follows the work per image (the contract's
floating-point count) and the card's tensor peak and memory bandwidth: the least time the
card could take, divided by the share of it that cards of the same architecture reach in
that configuration (a wider range when only other architectures were measured). With no
measurement of the configuration anywhere, both come from the architecture alone, and say
so. docs/estimates.md gives the method and its measured error.

Everything here returns estimates only: callers show them apart from measurements and
label them as estimates. The pure functions (`estimate`, `estimate_pair`) take plain
values, so tests and the held-out evaluation (perf/estimates.py) run them without a
database; `observations`, `card` and `setups_for` read the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from klein_bench.contract import fit
from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.figures import PEAK_VRAM_FIGURES, PRECISIONS, RUNTIMES
from klein_bench.contract.fit import DOES_NOT_FIT as DOES_NOT_FIT
from klein_bench.contract.fit import FITS as FITS
from klein_bench.contract.fit import TIGHT as TIGHT
from klein_bench.contract.fit import Range as Range
from klein_bench.contract.fit import storage_bytes
from klein_bench.contract.models import MODELS
from klein_bench.contract.registry import ModelSpec

MIB = fit.MIB


def needs_fp8_tensor_cores(precision: str) -> bool:
    return any(p.needs_fp8_tensor_cores for p in PRESETS.values() if p.precision == precision)


# The memory formula and the fit verdict are the contract's (klein_bench.contract.fit),
# shared with `klein-bench doctor`; measurements calibrate the formula here.
# The least a measured memory range is widened by, each side.
MEMORY_MARGIN_SHARE = 0.03
MEMORY_MARGIN_MIB = 256

# Share of the card's least possible time that is reached, with no measurement at all:
# (typical, low, high) by offload mode. Offload adds transfers over PCIe.
PRIOR_EFFICIENCY = {
    "none": (0.5, 0.3, 0.7),
    "model": (0.3, 0.15, 0.5),
    "sequential": (0.1, 0.03, 0.3),
}
# How far a measured efficiency range is widened: a little for cards of the same
# architecture (one card alone: a little more), a lot for other architectures.
SAME_ARCHITECTURE_MARGIN = 0.08
SINGLE_CARD_MARGIN = 0.15
OTHER_ARCHITECTURES_MARGIN = 0.20

# What an estimate rests on.
MEASURED = "measured"  # the same configuration, measured on other cards
SAME_ARCHITECTURE = "same_architecture"
OTHER_ARCHITECTURES = "other_architectures"
ARCHITECTURE_ONLY = "architecture_only"

# The estimated verdict of one configuration (configuration_verdict), and of the pair (the
# best of its configurations' in this order). A configuration's fit (FITS, TIGHT,
# DOES_NOT_FIT) is klein_bench.contract.fit's, the rule doctor uses too.
EXPECTED_TO_FIT = "expected_to_fit"  # fully resident, safely within the card's memory
NEEDS_OFFLOAD = "needs_offload"  # safely within it only with offload
MAY_NOT_FIT = "may_not_fit"  # within the card's memory at best: close to it, or to a display's
EXPECTED_NOT_TO_FIT = "expected_not_to_fit"
VERDICT_ORDER = (EXPECTED_TO_FIT, NEEDS_OFFLOAD, MAY_NOT_FIT, EXPECTED_NOT_TO_FIT)
VERDICT_LABELS = {
    EXPECTED_TO_FIT: "expected to fit",
    NEEDS_OFFLOAD: "expected to need offload",
    MAY_NOT_FIT: "may not fit",
    EXPECTED_NOT_TO_FIT: "expected not to fit",
}


@dataclass(frozen=True)
class Card:
    slug: str
    name: str
    architecture: str
    vram_mb: float | None
    bf16_tflops: float | None
    fp8_tflops: float | None
    bandwidth_gbs: float | None


@dataclass(frozen=True, order=True)
class Setup:
    """The configuration fields that change the numbers."""

    runtime: str
    precision: str
    offload: str
    width: int
    height: int
    steps: int

    @property
    def family(self) -> tuple[str, str, str]:
        return (self.runtime, self.precision, self.offload)

    @property
    def resident(self) -> bool:
        return self.offload == "none"


@dataclass(frozen=True)
class Observation:
    """One measured group: a configuration's median seconds and peak on one card."""

    card: Card
    setup: Setup
    seconds: float | None
    peak_mib: float | None
    synthetic: bool = False


@dataclass(frozen=True)
class MemoryEstimate:
    mib: Range
    basis: str  # MEASURED or ARCHITECTURE_ONLY
    cards: tuple[str, ...]  # slugs of the cards whose measurements calibrated it
    fit: str  # FITS, TIGHT, DOES_NOT_FIT, or "" when the card's memory is unknown


@dataclass(frozen=True)
class SpeedEstimate:
    seconds: Range
    basis: str  # SAME_ARCHITECTURE, OTHER_ARCHITECTURES or ARCHITECTURE_ONLY
    cards: tuple[str, ...]
    efficiency: Range  # share of the card's least possible time reached
    bound_seconds: float


@dataclass(frozen=True)
class Estimate:
    setup: Setup
    memory: MemoryEstimate
    # None when the card has no tensor peak (a CPU) or the configuration is not expected
    # to fit: no speed for a run that would not finish.
    speed: SpeedEstimate | None


@dataclass(frozen=True)
class PairEstimate:
    verdict: str  # EXPECTED_TO_FIT, NEEDS_OFFLOAD, EXPECTED_NOT_TO_FIT, or "" (unknown)
    lead: Estimate | None  # the configuration the verdict is about
    estimates: list[Estimate] = field(default_factory=list)

    @property
    def label(self) -> str:
        return VERDICT_LABELS.get(self.verdict, "unknown")


# -- the formulas ----------------------------------------------------------------------------


def formula_mib(model: ModelSpec, setup: Setup) -> float:
    """Peak GPU memory from the architecture alone: the contract's fit rule."""
    return fit.peak_mib(
        model.architecture,
        precision=setup.precision,
        offload=setup.offload,
        width=setup.width,
        height=setup.height,
        text_tokens=model.protocol.max_sequence_length,
    )


def bound_seconds(model: ModelSpec, card: Card, setup: Setup) -> float | None:
    """The least time one image can take on the card: its floating-point work at the dense
    tensor peak, plus reading the weights once per use at the memory bandwidth. The work
    is the registry's (guidance passes counted)."""
    fp8 = setup.precision == "fp8-compute" and card.fp8_tflops
    peak = card.fp8_tflops if fp8 else card.bf16_tflops
    if not peak:
        return None
    work = model.work(width=setup.width, height=setup.height, steps=setup.steps)
    seconds = work.total_flop / (peak * 1e12)
    if card.bandwidth_gbs:
        sizes = storage_bytes(setup.precision)
        passes = model.protocol.guidance_passes
        uses = {"transformer": setup.steps * passes, "text_encoder": passes, "vae": 1}
        read = sum(
            n * sizes[name] * uses[name] for name, n in model.architecture.parameters.items()
        )
        seconds += read / (card.bandwidth_gbs * 1e9)
    return seconds


# -- calibration -----------------------------------------------------------------------------


def _per_card(observations: list[Observation], value) -> dict[str, tuple[Card, float]]:
    """One value per card: from real results where the card has them, else synthetic."""
    chosen: dict[str, tuple[bool, Card, float]] = {}
    for obs in observations:
        found = value(obs)
        if found is None:
            continue
        previous = chosen.get(obs.card.slug)
        if previous is None or (previous[0] and not obs.synthetic):
            chosen[obs.card.slug] = (obs.synthetic, obs.card, found)
    return {slug: (card, found) for slug, (_, card, found) in chosen.items()}


def estimate_memory(
    model: ModelSpec,
    setup: Setup,
    observations: list[Observation],
    capacity_mib: float | None = None,
    usable_mib: float | None = None,
) -> MemoryEstimate:
    formula = formula_mib(model, setup)
    family = [o for o in observations if o.setup.family == setup.family and o.peak_mib]
    exact = [o for o in family if o.setup == setup]
    residuals = _per_card(exact or family, lambda o: o.peak_mib - formula_mib(model, o.setup))
    if residuals:
        values = [r for _, r in residuals.values()]
        centre = median(values)
        value = formula + centre
        margin = max(MEMORY_MARGIN_SHARE * value, MEMORY_MARGIN_MIB)
        memory = Range(
            value, value + min(values) - centre - margin, value + max(values) - centre + margin
        )
        basis, cards = MEASURED, tuple(sorted(residuals))
    else:
        memory = fit.architecture_range(formula)
        basis, cards = ARCHITECTURE_ONLY, ()
    return MemoryEstimate(memory, basis, cards, fit.verdict(memory, capacity_mib, usable_mib))


def estimate_speed(
    model: ModelSpec, card: Card, setup: Setup, observations: list[Observation]
) -> SpeedEstimate | None:
    bound = bound_seconds(model, card, setup)
    if bound is None:
        return None

    def efficiency(o: Observation) -> float | None:
        if not o.seconds or o.card.slug == card.slug:
            return None
        theirs = bound_seconds(model, o.card, o.setup)
        return theirs / o.seconds if theirs else None

    measured = _per_card([o for o in observations if o.setup == setup], efficiency)
    same = {
        slug: e
        for slug, (other, e) in measured.items()
        if card.architecture and other.architecture == card.architecture
    }
    if same:
        basis, chosen = SAME_ARCHITECTURE, same
        margin = SAME_ARCHITECTURE_MARGIN if len(same) > 1 else SINGLE_CARD_MARGIN
    elif measured:
        basis, chosen = OTHER_ARCHITECTURES, {slug: e for slug, (_, e) in measured.items()}
        margin = OTHER_ARCHITECTURES_MARGIN
    else:
        typical, low, high = PRIOR_EFFICIENCY.get(setup.offload, PRIOR_EFFICIENCY["none"])
        eff = Range(typical, low, high)
        return SpeedEstimate(_seconds(bound, eff), ARCHITECTURE_ONLY, (), eff, bound)
    values = list(chosen.values())
    eff = Range(median(values), min(values) * (1 - margin), max(values) * (1 + margin))
    return SpeedEstimate(_seconds(bound, eff), basis, tuple(sorted(chosen)), eff, bound)


def _seconds(bound: float, efficiency: Range) -> Range:
    return Range(bound / efficiency.value, bound / efficiency.high, bound / efficiency.low)


def estimate(
    model: ModelSpec,
    card: Card,
    setup: Setup,
    observations: list[Observation],
    *,
    usable_mib: float | None = None,
) -> Estimate:
    """Peak memory and seconds per image for the setup on the card, from measurements of
    the same setup on other cards (the card's own are left out)."""
    others = [o for o in observations if o.card.slug != card.slug]
    memory = estimate_memory(model, setup, others, card.vram_mb, usable_mib)
    speed = None
    if memory.fit != DOES_NOT_FIT:
        speed = estimate_speed(model, card, setup, others)
    return Estimate(setup, memory, speed)


def _precision_rank(setup: Setup) -> int:
    order = list(PRECISIONS)
    return order.index(setup.precision) if setup.precision in order else len(order)


def configuration_verdict(item: Estimate) -> str:
    """The estimated verdict of one configuration on the card, from its fit: the one rule
    every page, table and API answer shows ("" when the card's memory is unknown)."""
    fit = item.memory.fit
    if fit == FITS:
        return EXPECTED_TO_FIT if item.setup.resident else NEEDS_OFFLOAD
    return {TIGHT: MAY_NOT_FIT, DOES_NOT_FIT: EXPECTED_NOT_TO_FIT}.get(fit, "")


def _preference(item: Estimate) -> tuple:
    """The better verdict first, then fully resident, the fuller precision, the faster."""
    seconds = item.speed.seconds.value if item.speed else float("inf")
    verdict = VERDICT_ORDER.index(configuration_verdict(item))
    return (verdict, not item.setup.resident, _precision_rank(item.setup), seconds)


def estimate_pair(
    model: ModelSpec,
    card: Card,
    setups: list[Setup],
    observations: list[Observation],
    *,
    usable_mib: float | None = None,
) -> PairEstimate:
    """Every setup's estimate, and the pair's: the best of their configuration_verdict, led
    by the configuration that has it (none when nothing is expected to fit)."""
    estimates = [estimate(model, card, s, observations, usable_mib=usable_mib) for s in setups]
    if not card.vram_mb or not estimates:
        return PairEstimate("", None, estimates)
    lead = min(estimates, key=_preference)
    verdict = configuration_verdict(lead)
    return PairEstimate(verdict, None if verdict == EXPECTED_NOT_TO_FIT else lead, estimates)


# -- reading the rows --------------------------------------------------------------------------


def entry_of(model) -> ModelSpec | None:
    """The model's registry entry, for the models estimates describe: real ones only (a
    test model's figures describe no real model)."""
    if model.is_test_model:
        return None
    entry = MODELS.get(model.slug)
    return None if entry is None or entry.built_in else entry


def card(gpu) -> Card:
    return Card(
        slug=gpu.slug,
        name=gpu.name,
        architecture=gpu.architecture,
        vram_mb=float(gpu.vram_mb) if gpu.vram_mb else None,
        bf16_tflops=gpu.bf16_tflops,
        fp8_tflops=gpu.fp8_tflops,
        bandwidth_gbs=gpu.memory_bandwidth_gbs,
    )


def setup_of(configuration) -> Setup:
    c = configuration
    return Setup(c.runtime, c.precision, c.offload, c.width, c.height, c.steps)


def headline_peak(summary) -> float | None:
    """The summary's headline peak VRAM median (the first figure pages lead with)."""
    for name in PEAK_VRAM_FIGURES:
        value = getattr(summary, f"{name}_median", None)
        if value is not None:
            return value
    return None


def observation(summary) -> Observation:
    """A summary (with its gpu and configuration loaded) as an observation."""
    return Observation(
        card=card(summary.gpu),
        setup=setup_of(summary.configuration),
        seconds=summary.seconds_median,
        peak_mib=headline_peak(summary),
        synthetic=summary.synthetic,
    )


def observations(model) -> list[Observation]:
    """Every measured group of the model, on every card, real and synthetic."""
    from benchmarks.models import Summary

    summaries = Summary.objects.filter(model=model).select_related("gpu", "configuration")
    return [observation(s) for s in summaries if s.seconds_median or headline_peak(s)]


def setups_for(entry: ModelSpec, observations: list[Observation]) -> list[Setup]:
    """What to estimate, at the model's standard size and steps: every preset the model
    has in the default runtime, and every other configuration measured on some card."""
    size = (entry.width, entry.height, entry.protocol.steps)
    runtime = next(iter(RUNTIMES))
    setups = [
        Setup(runtime, PRESETS[name].precision, PRESETS[name].offload, *size)
        for name in entry.presets
    ]
    measured = {
        obs.setup
        for obs in observations
        if (obs.setup.width, obs.setup.height, obs.setup.steps) == size
    }
    setups += sorted(s for s in measured if s not in setups)
    return setups


def for_pair(
    model,
    gpu,
    observations_: list[Observation] | None = None,
    *,
    usable_mib: float | None = None,
    exclude: set[tuple[str, str, str]] | frozenset = frozenset(),
) -> PairEstimate | None:
    """The estimates for the model on the card; None when estimates cannot describe it
    (a test model, a model the registry does not know, a CPU). `exclude` leaves out configuration
    families (runtime, precision, offload) the card has measurements of."""
    entry = entry_of(model)
    if entry is None or not (gpu.vram_mb or gpu.bf16_tflops):
        # A test model, a model the registry does not know, or a CPU: nothing to estimate
        # from.
        return None
    found = observations(model) if observations_ is None else observations_
    setups = [
        s
        for s in setups_for(entry, found)
        if s.family not in exclude
        # FP8 matmuls cannot run on a card without FP8 tensor cores: nothing to estimate.
        and not (needs_fp8_tensor_cores(s.precision) and not gpu.fp8_tflops)
    ]
    return estimate_pair(entry, card(gpu), setups, found, usable_mib=usable_mib)
