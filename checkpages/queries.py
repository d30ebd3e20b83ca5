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

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.http import urlencode

from benchmarks.models import Gpu, ImageModel, Preset, PublishedClaim, Result, Summary
from benchmarks.services import answers
from benchmarks.services import estimates as est
from benchmarks.services.catalog import without_vendor
from checkpages import estimated, formatting, install, verdicts
from checkpages.presentation import (
    ConfigSummary,
    PairVerdict,
    describe_pair,
    sorted_rows,
)
from checkpages.trends import Trend, trends
from checkpages.verdicts import AnswerView

# Recent results on a pair page: the ones whose memory before loading also tells what a
# display leaves (answers.usable_vram).
RECENT_RESULTS = answers.RECENT_BASELINES
NEAREST_CARDS = 3
is_cpu = answers.is_cpu
capacity = answers.capacity


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


# -- answers --------------------------------------------------------------------------------


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

    def answer(
        self,
        gpu: Gpu,
        summaries: list[Summary],
        usable: answers.UsableVram | None,
        preset: str = "",
    ) -> PairAnswer:
        """The pair's answer from its summaries (real and synthetic, configuration
        loaded): benchmarks.services.answers decides, this puts it in words."""
        real = [s for s in summaries if not s.synthetic]
        rows = rows_for(real, self.model, gpu)
        pair = answers.estimate_for(self.model, gpu, summaries, self.observations, usable)
        usable_mib = usable.mib if usable else None
        view = estimated.view(pair, self.names, self.architectures, capacity(gpu), usable_mib)
        decided = answers.answer(self.model, gpu, real, pair, preset)
        return PairAnswer(verdicts.view(decided, rows, view, capacity(gpu)), view, rows)


@dataclass
class PairAnswer:
    answer: AnswerView
    estimate: estimated.PairEstimateView | None
    rows: list[ConfigSummary]  # the real summaries, best first


# -- the overview --------------------------------------------------------------------------------


@dataclass
class Cell:
    model: ImageModel
    gpu: Gpu
    answer: AnswerView
    # Whether the agent can measure this pair (no "measure it" for a model on a CPU).
    measurable: bool = True


@dataclass
class MatrixRow:
    gpu: Gpu
    cells: list[Cell]


def matrix(preset: str = "") -> tuple[list[ImageModel], list[tuple[str, list[MatrixRow]]]]:
    """Public models by listed GPUs: each cell the pair's answer (or the preset's), in the
    configuration a user of the card should run; estimates where nothing is measured."""
    models = list(ImageModel.objects.public())
    groups = ordered_gpus(Gpu.objects.listed())
    gpus = [gpu for _, cards in groups for gpu in cards]
    summaries = Summary.objects.filter(model__in=models, gpu__in=gpus)
    by_pair: dict[tuple[int, int], list[Summary]] = defaultdict(list)
    for summary in summaries.select_related("configuration"):
        by_pair[(summary.model_id, summary.gpu_id)].append(summary)
    usable = answers.usable_by_pair(models, gpus)
    estimators = {model.pk: Estimator.for_model(model) for model in models}
    table = []
    for family, cards in groups:
        rows = []
        for gpu in cards:
            cells = [
                Cell(
                    model,
                    gpu,
                    estimators[model.pk]
                    .answer(
                        gpu, by_pair.get((model.pk, gpu.pk), []), usable[(model.pk, gpu.pk)], preset
                    )
                    .answer,
                    measurable=install.agent_measures(model, is_cpu(gpu)),
                )
                for model in models
            ]
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
    answer: AnswerView


@dataclass
class ModelPage:
    model: ImageModel
    preset: str
    ranked: list[CardRow]
    failed: list[CardRow]
    synthetic: list[CardRow]
    unmeasured: list[UnmeasuredCard]

    @property
    def estimated(self) -> bool:
        """Whether any card not measured has an estimate (a test model's never do)."""
        return any(card.answer.estimated for card in self.unmeasured)


def _synthetic_rows(model: ImageModel, summaries: list[Summary], preset: str) -> list[CardRow]:
    by_gpu: dict[int, list[Summary]] = defaultdict(list)
    for summary in summaries:
        by_gpu[summary.gpu_id].append(summary)
    found = []
    for group in by_gpu.values():
        gpu = group[0].gpu
        rows = rows_for(group, model, gpu)
        best = answers.recommended(group, model, capacity(gpu))
        if preset:
            best = answers.in_preset(group, model, capacity(gpu), preset)
        chosen = next((r for r in rows if r.summary is best), None if preset else rows[0])
        if chosen is not None:
            found.append(CardRow(gpu, chosen, len(rows) - 1))
    found.sort(key=lambda e: (e.row.summary.seconds_median or math.inf, e.gpu.sort_order))
    return found


def model_page(model: ImageModel, preset: str = "") -> ModelPage:
    """One row per card measured: the configuration a user of it should run (or `preset`),
    fastest card first; cards where nothing ran; every other listed card with its answer
    (an estimate where there is one)."""
    summaries = list(Summary.objects.filter(model=model).select_related("gpu", "configuration"))
    by_gpu: dict[int, list[Summary]] = defaultdict(list)
    gpus: dict[int, Gpu] = {}
    for summary in summaries:
        by_gpu[summary.gpu_id].append(summary)
        gpus[summary.gpu_id] = summary.gpu
    real_gpus = {s.gpu_id for s in summaries if not s.synthetic}
    listed = [gpu for _, cards in ordered_gpus(Gpu.objects.listed()) for gpu in cards]
    cards = listed + [gpus[pk] for pk in sorted(real_gpus) if pk not in {g.pk for g in listed}]
    usable = answers.usable_by_pair([model], cards)
    estimator = Estimator.for_model(model)
    ranked, failed, unmeasured = [], [], []
    for gpu in cards:
        found = estimator.answer(gpu, by_gpu.get(gpu.pk, []), usable[(model.pk, gpu.pk)], preset)
        if not found.answer.measured:
            unmeasured.append(UnmeasuredCard(gpu, found.answer))
            continue
        # The configuration the answer rests on; the best tried when nothing works.
        row = found.answer.row or next(r for r in found.rows if r.default_size)
        entry = CardRow(gpu, row, len(found.rows) - 1)
        (ranked if row.works and row.summary.seconds_median else failed).append(entry)
    ranked.sort(key=lambda e: (e.row.summary.seconds_median, e.gpu.sort_order))
    for position, entry in enumerate(ranked, start=1):
        entry.rank = position
    failed.sort(key=lambda e: e.gpu.sort_order)
    synthetic = _synthetic_rows(model, [s for s in summaries if s.synthetic], preset)
    return ModelPage(model, preset, ranked, failed, synthetic, unmeasured)


# -- one model on one card -----------------------------------------------------------------------


@dataclass
class ClaimRow:
    claim: PublishedClaim
    community: ConfigSummary | None


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
    answer: AnswerView
    synthetic_verdict: PairVerdict | None
    claims: list[ClaimRow]
    recent: list[Result]
    usable: answers.UsableVram | None
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
    def at_other_sizes_only(self) -> str:
        """The sentence saying the card was measured only at other sizes, when it was."""
        if self.rows and not any(row.default_size for row in self.rows):
            return describe_pair(self.rows).headline
        return ""

    @property
    def capacity_mib(self) -> float | None:
        return capacity(self.gpu)

    @property
    def measured(self) -> PairVerdict:
        """The card's measured answer, whatever configuration the page leads with."""
        return describe_pair(self.rows, self.capacity_mib)

    @property
    def presets(self) -> list[str]:
        """The presets worth leading with here: measured on this card, or estimated."""
        have = {row.configuration.preset for row in self.rows + self.synthetic_rows}
        if self.estimate is not None:
            have |= {row.preset for row in self.estimate.rows}
        return [value for value in Preset.values if value in have]

    @property
    def glossary(self) -> list:
        return [install.PRESETS[name] for name in self.presets if name in install.PRESETS]

    @property
    def compare_url(self) -> str:
        """This card beside the most similar measured ones; none for a test model or a
        CPU, which nothing compares with."""
        if self.model.is_test_model or is_cpu(self.gpu):
            return ""
        cards = [("gpu", self.gpu.slug), *(("gpu", near.gpu.slug) for near in self.nearest)]
        return f"{reverse('checkpages:compare', args=[self.model.slug])}?{urlencode(cards)}"

    @property
    def speed_rows(self) -> list[ConfigSummary]:
        return [row for row in self.rows if row.summary.seconds_median is not None]

    @property
    def memory_rows(self) -> list[ConfigSummary]:
        return [row for row in self.rows if row.peak_mb is not None]


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
    return answers.recent_results(model, gpu, RECENT_RESULTS)


@dataclass
class PairReading:
    """What the pair's page and its badge read: summaries, claims, recent results, what a
    display leaves, and the answer decided on them."""

    summaries: list[Summary]
    claims: list[PublishedClaim]
    recent: list[Result]
    usable: answers.UsableVram | None
    found: PairAnswer


def read_pair(model: ImageModel, gpu: Gpu, preset: str = "") -> PairReading:
    """The pair as its check page reads it (the badge reads the same, so they agree)."""
    summaries = list(Summary.objects.for_pair(model, gpu).select_related("configuration"))
    claims = answers.claims_for(model, gpu)
    recent = recent_results(model, gpu)
    usable = answers.usable_vram(gpu, claims, recent)
    found = Estimator.for_model(model).answer(gpu, summaries, usable, preset)
    return PairReading(summaries, claims, recent, usable, found)


def pair_page(model: ImageModel, gpu: Gpu, preset: str = "", site: str = "") -> PairPage:
    reading = read_pair(model, gpu, preset)
    found = reading.found
    on_cpu = is_cpu(gpu)
    synthetic_rows = rows_for([s for s in reading.summaries if s.synthetic], model, gpu)
    rows = found.rows
    measured = {(r.configuration.runtime, r.configuration.preset) for r in rows}
    return PairPage(
        model=model,
        gpu=gpu,
        rows=rows,
        synthetic_rows=synthetic_rows,
        answer=found.answer,
        synthetic_verdict=describe_pair(synthetic_rows, capacity(gpu)) if synthetic_rows else None,
        claims=[ClaimRow(claim, _community_for(claim, rows)) for claim in reading.claims],
        recent=reading.recent,
        usable=reading.usable,
        trends=trends(rows),
        nearest=[] if rows else nearest_cards(model, gpu),
        commands=install.contribute_commands(model, measured, site, on_cpu),
        install=install.install(site, on_cpu),
        preset=preset,
        estimate=found.estimate,
        failed_rows=[row for row in rows if row.failure_line or row.capacity_flag],
    )
