"""The one answer the site gives about a model on a card: measured beats estimated.

Every place that says whether a model runs on a card (the check page's headline and its
tables, the overview's cell, the model page, the compare page, the page title and the
API) asks `answer()`, so none of them can say something else:

- a configuration measured on the card is answered by its measurements (`verdict_of`:
  the stored verdict, except that spilling into system memory is not fitting);
- the pair by the best measured verdict at the model's standard size, else by the
  estimate (benchmarks.services.estimates.configuration_verdict, over the configurations
  the card has no results in), else by nothing;
- with a configuration asked for (?preset=), by that configuration only: measured, else
  estimated, else not measured.

The estimates are made with the same inputs everywhere, what a card driving a display
leaves for the model included (`usable_vram`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from klein_bench.contract.catalog import preset_for
from klein_bench.contract.figures import PRECISIONS, RUNTIMES

from benchmarks.models import Gpu, ImageModel, Offload, PublishedClaim, Result, Summary, Verdict
from benchmarks.services import estimates as est
from benchmarks.services.aggregation import combine_verdicts

MEASURED = "measured"
ESTIMATED = "estimated"
NOT_MEASURED = "none"
# One configuration's estimated verdict (estimates.configuration_verdict) in words; the
# pair's is estimates.VERDICT_LABELS. The same verdict: the lead configuration of a pair
# "expected to need offload" is "expected to fit with offload".
CONFIGURATION_LABELS = {
    est.EXPECTED_TO_FIT: "expected to fit",
    est.NEEDS_OFFLOAD: "expected to fit with offload",
    est.MAY_NOT_FIT: "may not fit",
    est.EXPECTED_NOT_TO_FIT: "expected not to fit",
}
# Verdicts of a configuration that produced images.
WORKING = (Verdict.RUNS, Verdict.NEEDS_OFFLOAD)
# Recent results whose memory before loading tells what a display leaves.
RECENT_BASELINES = 10


# -- measured ---------------------------------------------------------------------------------


def capacity(gpu: Gpu) -> float | None:
    return float(gpu.vram_mb) if gpu.vram_mb else None


def spilled(summary: Summary) -> int:
    failures = summary.failures_by_stage if isinstance(summary.failures_by_stage, dict) else {}
    found = failures.get("spilled") or {}
    return sum(int(n) for n in found.values()) if isinstance(found, dict) else 0


def verdict_of(summary: Summary, capacity_mib: float | None) -> str:
    """A measured configuration's verdict: the stored one, except that a median peak
    above the card's memory (the runs only finished by spilling into system memory), or
    nothing but spilled runs, is not fitting."""
    peak = est.headline_peak(summary)
    if summary.verdict in WORKING and capacity_mib and peak and peak > capacity_mib:
        return Verdict.DOES_NOT_FIT.value
    if summary.verdict == Verdict.UNKNOWN and not summary.n_success and spilled(summary):
        return Verdict.DOES_NOT_FIT.value
    return summary.verdict


def standard_size(summary: Summary, model: ImageModel) -> bool:
    c = summary.configuration
    return (c.width, c.height, c.steps) == (
        model.default_width,
        model.default_height,
        model.default_steps,
    )


def works(summary: Summary, capacity_mib: float | None) -> bool:
    return verdict_of(summary, capacity_mib) in WORKING and summary.n_success > 0


def _precision_rank(precision: str) -> int:
    order = list(PRECISIONS)
    return order.index(precision) if precision in order else len(order)


def preference(summary: Summary, model: ImageModel) -> tuple:
    """The configuration a user of the card should run: at the model's standard size,
    fully resident if anything fits there, the fullest precision that fits, the faster."""
    c = summary.configuration
    seconds = summary.seconds_median
    return (
        not standard_size(summary, model),
        c.offload != Offload.NONE,
        _precision_rank(c.precision),
        seconds if seconds is not None else math.inf,
        c.pk,
    )


def recommended(summaries: list[Summary], model: ImageModel, capacity_mib: float | None):
    """The working configuration at the standard size a user should run, if any."""
    working = [s for s in summaries if works(s, capacity_mib) and standard_size(s, model)]
    return min(working, key=lambda s: preference(s, model)) if working else None


def in_preset(
    summaries: list[Summary], model: ImageModel, capacity_mib: float | None, preset: str
) -> Summary | None:
    """The card's configuration in this preset at the standard size: working first."""
    chosen = [s for s in summaries if standard_size(s, model) and s.configuration.preset == preset]
    if not chosen:
        return None
    return min(chosen, key=lambda s: (not works(s, capacity_mib), *preference(s, model)))


def measured_verdict(
    summaries: list[Summary], model: ImageModel, capacity_mib: float | None
) -> str:
    """The card's measured verdict: the best of its configurations at the standard size."""
    return combine_verdicts(
        verdict_of(s, capacity_mib) for s in summaries if standard_size(s, model)
    )


def measured_families(summaries: list[Summary], model: ImageModel) -> set[tuple[str, str, str]]:
    """(runtime, precision, offload) of the configurations with results at the standard
    size, real or with random weights: these need no estimate."""
    return {
        (s.configuration.runtime, s.configuration.precision, s.configuration.offload)
        for s in summaries
        if standard_size(s, model)
    }


# -- estimated --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsableVram:
    mib: float
    source: str


def usable_vram(gpu: Gpu, claims: list[PublishedClaim], recent: list[Result]) -> UsableVram | None:
    """What a card that drives a display has left for the model, if we know it: a
    published figure for the card, else the card less what recent results found in use
    before loading (on machines driving a display)."""
    for claim in claims:
        if claim.gpu_id == gpu.pk and claim.usable_vram_gb:
            # Quoted in the source's own units ("GB"); read as GiB, as nvidia-smi counts.
            return UsableVram(
                claim.usable_vram_gb * 1024, f"{claim.source}, as published: {claim.figure}"
            )
    if not gpu.vram_mb:
        return None
    baselines = [
        r.baseline_device_mb
        for r in recent
        if r.drives_display and r.baseline_device_mb is not None
    ]
    if not baselines:
        return None
    used = median(baselines)
    plural = "" if len(baselines) == 1 else "s"
    return UsableVram(
        gpu.vram_mb - used,
        f"card size less the median {used / 1024:.1f} GiB in use before loading on "
        f"{len(baselines)} recent result{plural} from machines driving a display",
    )


def claims_for(model: ImageModel, gpu: Gpu) -> list[PublishedClaim]:
    """Claims about this card, and claims about the model in general (no card named)."""
    return list(PublishedClaim.objects.for_pair(model, gpu).select_related("configuration", "gpu"))


def recent_results(model: ImageModel, gpu: Gpu, n: int = RECENT_BASELINES) -> list[Result]:
    return list(
        Result.objects.for_pair(model, gpu)
        .select_related("configuration", "submission", "contributor", "gpu")
        .defer("thumbnail_png", "submission__body", "submission__response", "telemetry")
        .order_by("-created_at", "-id")[:n]
    )


def is_cpu(gpu: Gpu) -> bool:
    """The catalog's entry for results from machines without a GPU."""
    return gpu.slug == "cpu"


def estimate_for(
    model: ImageModel,
    gpu: Gpu,
    summaries: list[Summary],
    observations: list[est.Observation] | None = None,
    usable: UsableVram | None = None,
) -> est.PairEstimate | None:
    """The estimates for the configurations the card has no results in (`summaries`: all
    of the pair's, real and synthetic), with what a display leaves where known."""
    if is_cpu(gpu):
        return None
    return est.for_pair(
        model,
        gpu,
        observations,
        usable_mib=usable.mib if usable else None,
        exclude=measured_families(summaries, model),
    )


def preset_estimate(pair: est.PairEstimate | None, preset: str) -> est.Estimate | None:
    """The estimate of a preset: in the default runtime where there is one."""
    if pair is None or not preset:
        return None
    found = [e for e in pair.estimates if _preset_name(e.setup) == preset]
    runtimes = list(RUNTIMES)
    found.sort(key=lambda e: runtimes.index(e.setup.runtime) if e.setup.runtime in runtimes else 99)
    return found[0] if found else None


def _preset_name(setup: est.Setup) -> str:
    preset = preset_for(setup.precision, setup.offload)
    return preset.name if preset else ""


# -- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the site says about a model on a card, or about one configuration on it."""

    source: str  # MEASURED, ESTIMATED or NOT_MEASURED
    # A benchmarks.models.Verdict value when measured, an estimates verdict when
    # estimated, "unknown" when there is neither.
    verdict: str
    preset: str = ""  # the configuration asked for, if one was
    summary: Summary | None = None  # the measured configuration it rests on, if one
    estimate: est.Estimate | None = None  # the estimated configuration it rests on, if one

    @property
    def measured(self) -> bool:
        return self.source == MEASURED

    @property
    def estimated(self) -> bool:
        return self.source == ESTIMATED

    @property
    def label(self) -> str:
        if self.source == MEASURED:
            return Verdict(self.verdict).label
        if self.source == ESTIMATED:
            labels = CONFIGURATION_LABELS if self.preset else est.VERDICT_LABELS
            return labels[self.verdict]
        return "not measured"


def answer(
    model: ImageModel,
    gpu: Gpu,
    real: list[Summary],
    estimate: est.PairEstimate | None,
    preset: str = "",
) -> Answer:
    """The answer for the pair (or for `preset` on it) from its real summaries and its
    estimate (estimate_for): measured beats estimated."""
    card = capacity(gpu)
    if preset:
        chosen = in_preset(real, model, card, preset)
        if chosen is not None:
            return Answer(MEASURED, verdict_of(chosen, card), preset, summary=chosen)
        lead = preset_estimate(estimate, preset)
        verdict = est.configuration_verdict(lead) if lead else ""
        if lead is not None and verdict:
            return Answer(ESTIMATED, verdict, preset, estimate=lead)
        return Answer(NOT_MEASURED, Verdict.UNKNOWN.value, preset)
    verdict = measured_verdict(real, model, card)
    if verdict != Verdict.UNKNOWN:
        return Answer(MEASURED, verdict, summary=recommended(real, model, card))
    if estimate is not None and estimate.verdict:
        return Answer(ESTIMATED, estimate.verdict, estimate=estimate.lead)
    if any(standard_size(s, model) for s in real):
        # Results that did not finish: measured, but no verdict yet.
        return Answer(MEASURED, verdict)
    return Answer(NOT_MEASURED, Verdict.UNKNOWN.value)


@dataclass
class Check:
    """One pair as read for itself (the API's check; a badge would read the same)."""

    summaries: list[Summary]  # real first, then synthetic; configuration loaded
    claims: list[PublishedClaim]
    estimate: est.PairEstimate | None
    answer: Answer
    verdict: str  # the measured verdict


def check(model: ImageModel, gpu: Gpu, preset: str = "") -> Check:
    """The pair's summaries, claims, estimate and answer, with the same inputs as the
    check page (what a display leaves included)."""
    summaries = list(
        Summary.objects.for_pair(model, gpu)
        .select_related("configuration")
        .order_by("synthetic", *(f"configuration__{f}" for f in CONFIGURATION_ORDER))
    )
    claims = claims_for(model, gpu)
    usable = usable_vram(gpu, claims, recent_results(model, gpu))
    estimate = estimate_for(model, gpu, summaries, usable=usable)
    real = [s for s in summaries if not s.synthetic]
    return Check(
        summaries,
        claims,
        estimate,
        answer(model, gpu, real, estimate, preset),
        measured_verdict(real, model, capacity(gpu)),
    )


CONFIGURATION_ORDER = ("runtime", "precision", "offload", "width", "height", "steps")


def usable_by_pair(models, gpus) -> dict[tuple[int, int], UsableVram | None]:
    """usable_vram for every pair of these models and cards, in two queries (the overview):
    the same claims and the same recent results the pair's own page reads."""
    claims: dict[tuple[int, int], list[PublishedClaim]] = {}
    published = PublishedClaim.objects.filter(
        model__in=models, gpu__in=gpus, usable_vram_gb__isnull=False
    )
    for claim in published:
        claims.setdefault((claim.model_id, claim.gpu_id), []).append(claim)
    newest = Window(
        RowNumber(),
        partition_by=[F("model_id"), F("gpu_id")],
        order_by=[F("created_at").desc(), F("id").desc()],
    )
    recent: dict[tuple[int, int], list[Result]] = {}
    rows = (
        Result.objects.filter(model__in=models, gpu__in=gpus)
        .annotate(newest=newest)
        .filter(newest__lte=RECENT_BASELINES)
        .only("model_id", "gpu_id", "drives_display", "baseline_device_mb")
    )
    for row in rows:
        recent.setdefault((row.model_id, row.gpu_id), []).append(row)
    return {
        (model.pk, gpu.pk): usable_vram(
            gpu, claims.get((model.pk, gpu.pk), []), recent.get((model.pk, gpu.pk), [])
        )
        for model in models
        for gpu in gpus
    }
