"""What the check pages read: summaries, the catalog, published claims, a LIMITed list of
recent results (never every result), and the estimates built on the summaries.
checkpages.presentation turns the rows into words.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median

from django.db.models import QuerySet

from benchmarks.models import Gpu, ImageModel, PublishedClaim, Result, Summary
from benchmarks.services import estimates as est
from benchmarks.services.catalog import without_vendor
from checkpages import estimated, formatting, install
from checkpages.formatting import count
from checkpages.presentation import (
    ConfigSummary,
    PairVerdict,
    describe_pair,
    describe_row,
    for_preset,
    recommended,
    sorted_rows,
)
from checkpages.trends import Trend, trends

RECENT_RESULTS = 10
CPU_SLUG = "cpu"
NEAREST_CARDS = 3


def is_cpu(gpu: Gpu) -> bool:
    """The catalog's entry for results from machines without a GPU."""
    return gpu.slug == CPU_SLUG


def capacity(gpu: Gpu) -> float | None:
    return float(gpu.vram_mb) if gpu.vram_mb else None


def rows_for(summaries, model: ImageModel, gpu: Gpu) -> list[ConfigSummary]:
    return sorted_rows([ConfigSummary(s, model, is_cpu(gpu), capacity(gpu)) for s in summaries])


# -- the catalog ---------------------------------------------------------------------------


def ordered_gpus(gpus: QuerySet[Gpu]) -> list[tuple[str, list[Gpu]]]:
    """Cards grouped by family (families in catalog order), each group by memory size."""
    groups: dict[str, list[Gpu]] = defaultdict(list)
    for gpu in gpus:
        groups[gpu.family or "Other"].append(gpu)
    families = sorted(groups, key=lambda family: min(g.sort_order for g in groups[family]))
    return [
        (family, sorted(groups[family], key=lambda g: (g.vram_mb or 0, g.sort_order, g.slug)))
        for family in families
    ]


def _normalise_slug(text: str) -> str:
    return without_vendor(re.sub(r"[^a-z0-9]+", "-", text.lower()))


def close_slugs(wanted: str, candidates: dict[str, str], n: int = 3) -> list[str]:
    """Slugs that look like `wanted`: near spellings, or containing what was typed.

    `candidates` maps each slug to its display name, which is matched too.
    """
    key = _normalise_slug(wanted)
    if not key:
        return []
    forms: dict[str, str] = {}
    for slug, name in candidates.items():
        forms.setdefault(_normalise_slug(slug), slug)
        forms.setdefault(_normalise_slug(name), slug)
    found: list[str] = []
    for form in difflib.get_close_matches(key, list(forms), n=n * 2, cutoff=0.6):
        if forms[form] not in found:
            found.append(forms[form])
    if len(key) >= 3:
        for form, slug in forms.items():
            if (key in form or form in key) and slug not in found and len(form) >= 3:
                found.append(slug)
    return found[:n]


# -- estimates ---------------------------------------------------------------------------------


@dataclass
class Estimator:
    """Estimates for one model on any card, from one read of its summaries."""

    model: ImageModel
    observations: list[est.Observation]
    names: dict[str, str]
    architectures: dict[str, str]

    @classmethod
    def for_model(cls, model: ImageModel) -> Estimator:
        cards = Gpu.objects.values_list("slug", "name", "architecture")
        return cls(
            model,
            est.observations(model) if est.entry_of(model) else [],
            {slug: formatting.short_gpu_name(name) for slug, name, _ in cards},
            {slug: architecture for slug, _, architecture in cards},
        )

    def pair(
        self, gpu: Gpu, usable_mib: float | None = None, exclude=frozenset()
    ) -> estimated.PairEstimateView | None:
        if is_cpu(gpu):
            return None
        pair = est.for_pair(
            self.model, gpu, self.observations, usable_mib=usable_mib, exclude=exclude
        )
        return estimated.view(pair, self.names, self.architectures, capacity(gpu), usable_mib)


# -- the overview --------------------------------------------------------------------------------


@dataclass
class Cell:
    model: ImageModel
    gpu: Gpu
    verdict: PairVerdict
    estimate: estimated.PairEstimateView | None = None
    # Whether the agent can measure this pair (no "measure it" for a model on a CPU).
    measurable: bool = True


@dataclass
class MatrixRow:
    gpu: Gpu
    cells: list[Cell]


def _lead(rows: list[ConfigSummary], gpu: Gpu, preset: str) -> PairVerdict:
    if preset:
        row = for_preset(rows, preset)
        if row is not None:
            return describe_row(row, capacity(gpu))
    return describe_pair(rows, capacity(gpu))


def matrix(preset: str = "") -> tuple[list[ImageModel], list[tuple[str, list[MatrixRow]]]]:
    """Public models by listed GPUs: each cell the pair's verdict and the configuration a
    user of the card should run (or the preset asked for); estimates where nothing is
    measured."""
    models = list(ImageModel.objects.public())
    groups = ordered_gpus(Gpu.objects.listed())
    summaries = Summary.objects.real().filter(model__in=models, gpu__is_flagged=False)
    by_pair: dict[tuple[int, int], list[Summary]] = defaultdict(list)
    for summary in summaries.select_related("configuration"):
        by_pair[(summary.model_id, summary.gpu_id)].append(summary)
    estimators = {model.pk: Estimator.for_model(model) for model in models}
    table = []
    for family, gpus in groups:
        rows = []
        for gpu in gpus:
            cells = []
            for model in models:
                pair_rows = rows_for(by_pair.get((model.pk, gpu.pk), []), model, gpu)
                if preset:
                    pair_rows = [r for r in pair_rows if r.configuration.preset == preset]
                cell = Cell(
                    model,
                    gpu,
                    _lead(pair_rows, gpu, preset),
                    measurable=install.agent_measures(model, is_cpu(gpu)),
                )
                if not pair_rows:
                    cell.estimate = estimators[model.pk].pair(gpu)
                cells.append(cell)
            rows.append(MatrixRow(gpu, cells))
        table.append((family, rows))
    return models, table


# -- one model on every card ---------------------------------------------------------------------


@dataclass
class CardRow:
    gpu: Gpu
    row: ConfigSummary
    others: int  # how many more configurations the card has results for
    rank: int = 0


@dataclass
class UnmeasuredCard:
    gpu: Gpu
    estimate: estimated.PairEstimateView | None


@dataclass
class ModelPage:
    model: ImageModel
    preset: str
    ranked: list[CardRow]
    failed: list[CardRow]
    synthetic: list[CardRow]
    unmeasured: list[UnmeasuredCard]


def model_page(model: ImageModel, preset: str = "") -> ModelPage:
    """One row per card: the configuration a user of it should run (or `preset`), fastest
    card first; cards where nothing ran; estimates for cards nobody measured."""
    summaries = Summary.objects.filter(model=model).select_related("gpu", "configuration")
    real: dict[int, list[Summary]] = defaultdict(list)
    synthetic: dict[int, list[Summary]] = defaultdict(list)
    gpus: dict[int, Gpu] = {}
    for summary in summaries:
        (synthetic if summary.synthetic else real)[summary.gpu_id].append(summary)
        gpus[summary.gpu_id] = summary.gpu
    ranked, failed, synthetic_rows = [], [], []
    for gpu_id, found in real.items():
        gpu = gpus[gpu_id]
        rows = rows_for(found, model, gpu)
        chosen = for_preset(rows, preset) if preset else (recommended(rows) or rows[0])
        if chosen is None:
            continue
        entry = CardRow(gpu, chosen, len(rows) - 1)
        (ranked if chosen.works and chosen.summary.seconds_median else failed).append(entry)
    for gpu_id, found in synthetic.items():
        gpu = gpus[gpu_id]
        rows = rows_for(found, model, gpu)
        chosen = for_preset(rows, preset) if preset else (recommended(rows) or rows[0])
        if chosen is not None:
            synthetic_rows.append(CardRow(gpu, chosen, len(rows) - 1))
    ranked.sort(key=lambda e: (e.row.summary.seconds_median, e.gpu.sort_order))
    for position, entry in enumerate(ranked, start=1):
        entry.rank = position
    failed.sort(key=lambda e: e.gpu.sort_order)
    synthetic_rows.sort(key=lambda e: (e.row.summary.seconds_median or math.inf, e.gpu.sort_order))
    estimator = Estimator.for_model(model)
    unmeasured = [
        UnmeasuredCard(gpu, estimator.pair(gpu))
        for _, cards in ordered_gpus(Gpu.objects.listed().exclude(pk__in=list(real)))
        for gpu in cards
    ]
    return ModelPage(model, preset, ranked, failed, synthetic_rows, unmeasured)


# -- one model on one card -----------------------------------------------------------------------


@dataclass
class ClaimRow:
    claim: PublishedClaim
    community: ConfigSummary | None


@dataclass
class UsableVram:
    mib: float
    source: str


@dataclass
class NearCard:
    gpu: Gpu
    verdict: PairVerdict
    differences: str


@dataclass
class PairPage:
    model: ImageModel
    gpu: Gpu
    rows: list[ConfigSummary]
    synthetic_rows: list[ConfigSummary]
    verdict: PairVerdict
    synthetic_verdict: PairVerdict | None
    claims: list[ClaimRow]
    recent: list[Result]
    usable: UsableVram | None
    trends: list[Trend]
    nearest: list[NearCard]
    commands: list[install.ContributeCommand]
    install: install.Install
    preset: str = ""
    # Estimates for configurations nobody measured on this card; None where there are none.
    estimate: estimated.PairEstimateView | None = None
    failed_rows: list[ConfigSummary] = field(default_factory=list)

    @property
    def needs_gpu(self) -> bool:
        """The agent measures the model, but not on this card (a CPU)."""
        return install.agent_measures(self.model) and not self.commands

    @property
    def has_data(self) -> bool:
        return bool(self.rows)

    @property
    def capacity_mib(self) -> float | None:
        return capacity(self.gpu)

    @property
    def speed_rows(self) -> list[ConfigSummary]:
        return [row for row in self.rows if row.summary.seconds_median is not None]

    @property
    def memory_rows(self) -> list[ConfigSummary]:
        return [row for row in self.rows if row.peak_mb is not None]

    @property
    def preset_estimate(self) -> estimated.EstimateRow | None:
        """The estimate for the ?preset= asked for, when the card has no result in it."""
        if not self.preset or self.estimate is None or for_preset(self.rows, self.preset):
            return None
        return next((row for row in self.estimate.rows if row.preset == self.preset), None)


def claims_for(model: ImageModel, gpu: Gpu) -> QuerySet[PublishedClaim]:
    """Claims about this card, and claims about the model in general (no card named)."""
    return PublishedClaim.objects.for_pair(model, gpu).select_related("configuration", "gpu")


def _community_for(claim: PublishedClaim, rows: list[ConfigSummary]) -> ConfigSummary | None:
    if claim.configuration_id is None:
        return None
    wanted = claim.configuration
    for row in rows:
        c = row.configuration
        same = (c.runtime, c.precision, c.offload) == (
            wanted.runtime,
            wanted.precision,
            wanted.offload,
        )
        if same and (c.width, c.height) == (wanted.width, wanted.height):
            return row
    return None


def usable_vram(gpu: Gpu, claims: list[PublishedClaim], recent: list[Result]):
    """What a card that drives a display has left for the model, if we know it."""
    for claim in claims:
        if claim.gpu_id == gpu.pk and claim.usable_vram_gb:
            return UsableVram(claim.usable_vram_gb * 1024, f"{claim.source}: {claim.figure}")
    if not gpu.vram_mb:
        return None
    baselines = [
        r.baseline_device_mb
        for r in recent
        if r.drives_display and r.baseline_device_mb is not None
    ]
    if baselines:
        used = median(baselines)
        return UsableVram(
            gpu.vram_mb - used,
            f"card size less the median {formatting.gb(used)} in use before loading on "
            f"{count(len(baselines), 'recent result')} from machines driving a display",
        )
    return None


def _difference(name: str, mine: float | None, theirs: float | None, unit: str) -> str:
    """'12 GiB, 25% less memory' (the other card's figure, compared with this card's)."""
    if not mine or not theirs:
        return ""
    ratio = theirs / mine - 1
    if abs(ratio) < 0.03:
        return f"{theirs:g} {unit}, the same {name}"
    direction = "more" if ratio > 0 else "less"
    return f"{theirs:g} {unit}, {abs(ratio) * 100:.0f}% {direction} {name}"


def nearest_cards(model: ImageModel, gpu: Gpu) -> list[NearCard]:
    """Measured cards most like this one by memory size first, then memory bandwidth."""
    if not gpu.vram_mb:
        return []
    summaries = (
        Summary.objects.real()
        .filter(model=model, gpu__is_flagged=False, gpu__vram_mb__isnull=False)
        .exclude(gpu=gpu)
        .select_related("gpu", "configuration")
    )
    by_gpu: dict[int, list[Summary]] = defaultdict(list)
    cards: dict[int, Gpu] = {}
    for summary in summaries:
        by_gpu[summary.gpu_id].append(summary)
        cards[summary.gpu_id] = summary.gpu

    def distance(other: Gpu) -> float:
        d = 2 * abs(math.log(other.vram_mb / gpu.vram_mb))
        if other.memory_bandwidth_gbs and gpu.memory_bandwidth_gbs:
            d += abs(math.log(other.memory_bandwidth_gbs / gpu.memory_bandwidth_gbs))
        return d

    nearest = sorted(cards.values(), key=lambda g: (distance(g), g.sort_order))[:NEAREST_CARDS]
    result = []
    for other in nearest:
        rows = rows_for(by_gpu[other.pk], model, other)
        parts = [
            _difference("memory", gpu.vram_gb, other.vram_gb, "GiB"),
            _difference(
                "memory bandwidth", gpu.memory_bandwidth_gbs, other.memory_bandwidth_gbs, "GB/s"
            ),
        ]
        differences = "; ".join(part for part in parts if part)
        result.append(NearCard(other, describe_pair(rows, capacity(other)), differences))
    return result


def recent_results(model: ImageModel, gpu: Gpu) -> list[Result]:
    return list(
        Result.objects.for_pair(model, gpu)
        .select_related("configuration", "submission", "contributor", "gpu")
        .defer("thumbnail_png", "submission__body", "submission__response", "telemetry")
        .order_by("-created_at", "-id")[:RECENT_RESULTS]
    )


def pair_page(model: ImageModel, gpu: Gpu, preset: str = "") -> PairPage:
    summaries = list(Summary.objects.for_pair(model, gpu).select_related("configuration"))
    on_cpu = is_cpu(gpu)
    rows = rows_for([s for s in summaries if not s.synthetic], model, gpu)
    synthetic_rows = rows_for([s for s in summaries if s.synthetic], model, gpu)
    claims = list(claims_for(model, gpu))
    recent = recent_results(model, gpu)
    usable = usable_vram(gpu, claims, recent)
    measured = {(r.configuration.runtime, r.configuration.preset) for r in rows}
    # A configuration with results on this card, real or with random weights, needs no estimate.
    families = {
        (r.configuration.runtime, r.configuration.precision, r.configuration.offload)
        for r in rows + synthetic_rows
        if r.default_size
    }
    estimate = Estimator.for_model(model).pair(
        gpu, usable.mib if usable else None, exclude=families
    )
    lead = for_preset(rows, preset) if preset else None
    verdict = describe_row(lead, capacity(gpu)) if lead else describe_pair(rows, capacity(gpu))
    return PairPage(
        model=model,
        gpu=gpu,
        rows=rows,
        synthetic_rows=synthetic_rows,
        verdict=verdict,
        synthetic_verdict=describe_pair(synthetic_rows, capacity(gpu)) if synthetic_rows else None,
        claims=[ClaimRow(claim, _community_for(claim, rows)) for claim in claims],
        recent=recent,
        usable=usable,
        trends=trends(rows),
        nearest=[] if rows else nearest_cards(model, gpu),
        commands=install.contribute_commands(model, measured, on_cpu),
        install=install.install(on_cpu),
        preset=preset,
        estimate=estimate,
        failed_rows=[row for row in rows if row.failure_line or row.capacity_flag],
    )
