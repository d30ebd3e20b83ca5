"""What the check pages show, read from Summary rows (never from every result).

The pages only read: summaries, the catalog, published claims and a LIMITed list of
recent results. Everything here turns those rows into the words and numbers a person
needs: a verdict, the best configuration, how sure we are, why things failed.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median

from django.db.models import QuerySet
from klein_bench.contract.catalog import KLEIN_4B
from klein_bench.contract.catalog import MODELS as AGENT_MODELS
from klein_bench.contract.catalog import PRESETS as AGENT_PRESETS
from klein_bench.contract.figures import PEAK_VRAM_FIGURES

from benchmarks.models import (
    Configuration,
    Gpu,
    ImageModel,
    Offload,
    Outcome,
    Precision,
    Preset,
    PublishedClaim,
    Result,
    Runtime,
    Stage,
    Summary,
    Verdict,
)
from benchmarks.services.aggregation import combine_verdicts
from benchmarks.services.catalog import without_vendor
from benchmarks.services.group_stats import version_key
from checkpages import formatting
from checkpages.formatting import count

RECENT_RESULTS = 10
# The one model the agent's ComfyUI runner measures.
COMFYUI_MODEL = KLEIN_4B.slug
CPU_SLUG = "cpu"
NEAREST_CARDS = 3

# Which memory figure is "peak VRAM" in sentences and the matrix: what the process held on
# the card (NVML), else what PyTorch reserved, else what it allocated.
PEAK_FIELDS = PEAK_VRAM_FIGURES

VERDICT_ORDER = {
    Verdict.RUNS: 0,
    Verdict.NEEDS_OFFLOAD: 1,
    Verdict.DOES_NOT_FIT: 2,
    Verdict.UNKNOWN: 3,
}
# Verdicts of a configuration that produced images.
WORKING = (Verdict.RUNS, Verdict.NEEDS_OFFLOAD)


# -- configurations in words ------------------------------------------------------------


def is_cpu(gpu: Gpu) -> bool:
    """The catalog's entry for results from machines without a GPU."""
    return gpu.slug == CPU_SLUG


def configuration_words(configuration: Configuration, on_cpu: bool = False) -> str:
    """'FP8, fully on the GPU (ComfyUI)', 'BF16 with model CPU offload (diffusers)'."""
    precision = Precision(configuration.precision).label
    runtime = configuration.get_runtime_display()
    if on_cpu:
        return f"{precision} on the CPU ({runtime})"
    if configuration.offload == Offload.NONE:
        return f"{precision}, fully on the GPU ({runtime})"
    offload = Offload(configuration.offload).label
    return f"{precision} with {offload} ({runtime})"


def configuration_name(configuration: Configuration) -> str:
    """The short name people type: the preset ('bf16-resident'), else the slug."""
    return configuration.preset or configuration.slug


def size_words(configuration: Configuration) -> str:
    return f"{configuration.width}x{configuration.height}, {configuration.steps} steps"


# -- one configuration's summary -------------------------------------------------------------


@dataclass(frozen=True)
class Confidence:
    level: str  # "low", "moderate" or "high"
    sentence: str


@dataclass
class Failure:
    outcome: str  # an Outcome value, or "failed" when a stage mixes both kinds
    stage: str
    n: int
    sentence: str


def _stage_words(stage: str) -> str:
    if stage == Stage.OTHER or stage not in Stage.values:
        return "at another stage"
    return f"during {Stage(stage).label}"


def _outcome_words(outcome: str) -> str:
    if outcome == Outcome.OUT_OF_MEMORY:
        return "ran out of memory"
    if outcome == Outcome.ERROR:
        return "failed with an error"
    return "failed (out of memory or an error)"


def _failure_counts(summary: Summary) -> list[tuple[str, str, int]]:
    """(outcome, stage, n) from failures_by_stage.

    The aggregation stores either {"vae_decode": 3} (both kinds together) or
    {"out_of_memory": {"vae_decode": 3}, "error": {...}}; the counts of each kind tell
    which one a combined count is.
    """
    data = summary.failures_by_stage or {}
    rows: list[tuple[str, str, int]] = []
    if any(isinstance(value, dict) for value in data.values()):
        for outcome, stages in data.items():
            if isinstance(stages, dict):
                rows.extend((outcome, stage, int(n)) for stage, n in stages.items() if n)
        return rows
    if summary.n_error == 0:
        combined = Outcome.OUT_OF_MEMORY.value
    elif summary.n_out_of_memory == 0:
        combined = Outcome.ERROR.value
    else:
        combined = "failed"
    return [(combined, stage, int(n)) for stage, n in data.items() if n]


@dataclass
class ConfigSummary:
    """One summary as the pages show it."""

    summary: Summary
    model: ImageModel
    on_cpu: bool = False

    @property
    def default_size(self) -> bool:
        c = self.configuration
        m = self.model
        return (c.width, c.height, c.steps) == (m.default_width, m.default_height, m.default_steps)

    @property
    def label(self) -> str:
        """Unique among a card's configurations: 'fp8 (ComfyUI)', 'fp8 (diffusers)'."""
        c = self.configuration
        size = "" if self.default_size else f", {c.width}x{c.height}, {c.steps} steps"
        return f"{self.name} ({c.get_runtime_display()}{size})"

    @property
    def configuration(self) -> Configuration:
        return self.summary.configuration

    @property
    def verdict(self) -> str:
        return self.summary.verdict

    @property
    def verdict_label(self) -> str:
        return Verdict(self.summary.verdict).label

    @property
    def works(self) -> bool:
        return self.summary.verdict in WORKING and self.summary.n_success > 0

    @property
    def resident(self) -> bool:
        return self.configuration.offload == Offload.NONE

    @property
    def name(self) -> str:
        return configuration_name(self.configuration)

    @property
    def words(self) -> str:
        return configuration_words(self.configuration, self.on_cpu)

    @property
    def size(self) -> str:
        return size_words(self.configuration)

    @property
    def peak_field(self) -> str | None:
        for name in PEAK_FIELDS:
            if getattr(self.summary, f"{name}_median") is not None:
                return name
        return None

    @property
    def peak_mb(self) -> float | None:
        name = self.peak_field
        return getattr(self.summary, f"{name}_median") if name else None

    @property
    def peak_max_mb(self) -> float | None:
        name = self.peak_field
        return getattr(self.summary, f"{name}_max") if name else None

    @property
    def spread(self) -> float | None:
        s = self.summary
        if s.seconds_median and s.seconds_p10 is not None and s.seconds_p90 is not None:
            return (s.seconds_p90 - s.seconds_p10) / s.seconds_median
        return None

    @property
    def n_timed(self) -> int:
        """Results behind the speed figures (successful, outliers left out)."""
        return self.summary.n_timed

    @property
    def confidence(self) -> Confidence | None:
        s = self.summary
        if s.seconds_median is None:
            return None
        n = self.n_timed
        outliers = f" {count(s.n_outliers, 'outlier')} left out." if s.n_outliers else ""
        if n <= 1:
            return Confidence(
                "low",
                "Based on a single result from one contributor: a first indication, not yet "
                "a figure to rely on; one unusual machine could be far from typical." + outliers,
            )
        between = (
            f"the middle 80% of results lie between {formatting.seconds(s.seconds_p10)} and "
            f"{formatting.seconds(s.seconds_p90)} per image"
        )
        spread = self.spread or 0.0
        basis = f"{count(n, 'result')} by {count(s.n_contributors, 'contributor')}"
        if s.n_contributors <= 1:
            return Confidence(
                "low",
                f"{basis}: all from one machine, so other setups may differ; {between}." + outliers,
            )
        if spread > 0.3:
            return Confidence(
                "low",
                f"{basis}, but they vary widely: {between}; setups differ (drivers, power "
                "limits, CPUs), so check the recent results below." + outliers,
            )
        if s.n_contributors >= 5 and spread <= 0.15:
            return Confidence("high", f"{basis}, and they agree: {between}." + outliers)
        return Confidence("moderate", f"{basis}; {between}." + outliers)

    @property
    def failures(self) -> list[Failure]:
        """'3 of 5 bf16-resident results ran out of memory during VAE decode', per stage."""
        total = self.summary.n_results
        rows = sorted(_failure_counts(self.summary), key=lambda row: (-row[2], row[1]))
        failures = []
        for outcome, stage, n in rows:
            sentence = (
                f"{n} of {count(total, f'{self.name} result')} {_outcome_words(outcome)} "
                f"{_stage_words(stage)}."
            )
            failures.append(Failure(outcome, stage, n, sentence))
        if not failures and self.summary.n_out_of_memory + self.summary.n_error:
            failed = self.summary.n_out_of_memory + self.summary.n_error
            failures.append(
                Failure(
                    "failed",
                    "",
                    failed,
                    f"{failed} of {count(total, f'{self.name} result')} did not finish.",
                )
            )
        return failures

    @property
    def sentence(self) -> str:
        """One line about this configuration on this card."""
        s = self.summary
        if self.works and s.seconds_median is not None:
            peak = f", {formatting.gb(self.peak_mb)} peak" if self.peak_mb else ""
            return (
                f"{self.words} at {self.size}: median "
                f"{formatting.seconds(s.seconds_median)} per image{peak} "
                f"({count(s.n_results, 'result')})."
            )
        failures = self.failures
        why = " ".join(failure.sentence for failure in failures) or "no finished runs yet."
        return f"{self.words} at {self.size}: {why}"


def _best_key(row: ConfigSummary) -> tuple:
    seconds = row.summary.seconds_median
    return (
        0 if row.resident else 1,
        0 if row.default_size else 1,
        seconds if seconds is not None else math.inf,
        row.configuration.pk,
    )


def pair_verdict(rows: list[ConfigSummary]) -> str:
    """The card's verdict: the best of its configurations at the model's standard size
    and steps (the same rule as the API's, benchmarks.services.aggregation)."""
    return combine_verdicts(row.verdict for row in rows if row.default_size)


def best_configuration(rows: list[ConfigSummary]) -> ConfigSummary | None:
    """The configuration a person with this card should use: at the model's standard
    size, fully resident if anything fits, then the fastest."""
    working = [row for row in rows if row.works and row.default_size]
    return min(working, key=_best_key) if working else None


@dataclass
class PairVerdict:
    verdict: str
    best: ConfigSummary | None
    headline: str

    @property
    def label(self) -> str:
        return Verdict(self.verdict).label


def describe_pair(rows: list[ConfigSummary], capacity_mib: float | None = None) -> PairVerdict:
    """The verdict in plain words, e.g. 'Runs fully on the GPU at 1024x1024: median 2.3 s
    per image, 19.8 GB peak, from 41 results by 17 contributors.'"""
    verdict = pair_verdict(rows)
    best = best_configuration(rows)
    if best is not None:
        s = best.summary
        c = best.configuration
        if best.on_cpu:
            how = f"Runs on the CPU in {Precision(c.precision).label}"
        elif best.resident:
            how = f"Runs fully on the GPU in {Precision(c.precision).label}"
        else:
            how = f"Runs only with {Offload(c.offload).label} in {Precision(c.precision).label}"
        results = count(s.n_results, "result")
        if s.n_success != s.n_results:
            results = f"{s.n_success} successful of {results}"
        peak = ""
        if best.peak_mb is not None:
            of = f" of the card's {formatting.card_gb(capacity_mib)}" if capacity_mib else ""
            peak = f", {formatting.gb(best.peak_mb)} peak{of}"
        headline = (
            f"{how} ({c.get_runtime_display()}) at {c.width}x{c.height}: median "
            f"{formatting.seconds(s.seconds_median)} per image{peak}, from {results} by "
            f"{count(s.n_contributors, 'contributor')}."
        )
        return PairVerdict(verdict, best, headline)
    if verdict == Verdict.DOES_NOT_FIT:
        measured = [row for row in rows if row.default_size]
        n = sum(row.summary.n_results for row in measured)
        contributors = max((row.summary.n_contributors for row in measured), default=0)
        headline = (
            f"Does not run: every configuration measured on this card ran out of memory "
            f"({count(n, 'result')} from at least {count(contributors, 'contributor')})."
        )
        return PairVerdict(verdict, None, headline)
    if rows and not any(row.default_size for row in rows):
        return PairVerdict(
            verdict,
            None,
            "Unknown at the model's standard size: only other sizes have been measured "
            "(see below).",
        )
    if rows:
        n = sum(row.summary.n_results for row in rows if row.default_size)
        headline = (
            f"Unknown: the {count(n, 'result')} so far did not finish, so there is no "
            "measurement yet."
        )
        return PairVerdict(verdict, None, headline)
    return PairVerdict(Verdict.UNKNOWN.value, None, "Unknown: no measurements yet.")


def _sorted_rows(
    summaries: list[Summary], model: ImageModel, on_cpu: bool = False
) -> list[ConfigSummary]:
    rows = [ConfigSummary(summary, model, on_cpu) for summary in summaries]
    return sorted(rows, key=lambda row: (VERDICT_ORDER[row.verdict], *_best_key(row)))


# -- the catalog ---------------------------------------------------------------------------


def ordered_gpus(gpus: QuerySet[Gpu]) -> list[tuple[str, list[Gpu]]]:
    """Cards grouped by family (families in catalog order), each group by memory size."""
    groups: dict[str, list[Gpu]] = defaultdict(list)
    for gpu in gpus:
        groups[gpu.family or "Other"].append(gpu)
    families = sorted(groups, key=lambda family: min(g.sort_order for g in groups[family]))
    return [
        (
            family,
            sorted(groups[family], key=lambda g: (g.vram_mb or 0, g.sort_order, g.slug)),
        )
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


# -- page contents ---------------------------------------------------------------------------


@dataclass
class Cell:
    model: ImageModel
    gpu: Gpu
    verdict: PairVerdict


@dataclass
class MatrixRow:
    gpu: Gpu
    cells: list[Cell]


def matrix(preset: str = "") -> tuple[list[ImageModel], list[tuple[str, list[MatrixRow]]]]:
    """Public models by listed GPUs: each cell the pair's verdict and best configuration."""
    models = list(ImageModel.objects.public())
    groups = ordered_gpus(Gpu.objects.listed())
    summaries = Summary.objects.real().filter(model__in=models, gpu__is_flagged=False)
    if preset:
        summaries = summaries.filter(configuration__preset=preset)
    by_pair: dict[tuple[int, int], list[Summary]] = defaultdict(list)
    for summary in summaries.select_related("configuration"):
        by_pair[(summary.model_id, summary.gpu_id)].append(summary)
    table = []
    for family, gpus in groups:
        rows = []
        for gpu in gpus:
            cells = []
            for model in models:
                pair_rows = _sorted_rows(by_pair.get((model.pk, gpu.pk), []), model, is_cpu(gpu))
                cells.append(Cell(model, gpu, describe_pair(pair_rows)))
            rows.append(MatrixRow(gpu, cells))
        table.append((family, rows))
    return models, table


@dataclass
class RankedRow:
    gpu: Gpu
    row: ConfigSummary
    rank: int = 0


@dataclass
class ModelPage:
    model: ImageModel
    ranked: list[RankedRow]
    failed: list[RankedRow]
    synthetic: list[RankedRow]
    unmeasured: list[Gpu]


def model_page(model: ImageModel) -> ModelPage:
    """Every GPU measured for the model, ranked by seconds per image per configuration."""
    summaries = (
        Summary.objects.filter(model=model)
        .select_related("gpu", "configuration")
        .order_by("seconds_median", "gpu__sort_order", "configuration_id")
    )
    ranked, failed, synthetic = [], [], []
    measured: set[int] = set()
    for summary in summaries:
        entry = RankedRow(summary.gpu, ConfigSummary(summary, model, is_cpu(summary.gpu)))
        if summary.synthetic:
            synthetic.append(entry)
            continue
        measured.add(summary.gpu_id)
        (ranked if summary.seconds_median is not None else failed).append(entry)
    for position, entry in enumerate(ranked, start=1):
        entry.rank = position
    unmeasured = [
        gpu
        for _, gpus in ordered_gpus(Gpu.objects.listed().exclude(pk__in=measured))
        for gpu in gpus
    ]
    return ModelPage(model, ranked, failed, synthetic, unmeasured)


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
class TrendSeries:
    label: str
    points: list[tuple[str, float]]


@dataclass
class Trend:
    dimension: str  # "driver" or "diffusers" (whatever the aggregation records)
    series: list[TrendSeries]


@dataclass
class ContributeCommand:
    preset: str
    label: str
    command: str
    measured: bool


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
    commands: list[ContributeCommand]
    version: str
    failures: list[Failure] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return bool(self.rows)

    @property
    def capacity_mib(self) -> float | None:
        return float(self.gpu.vram_mb) if self.gpu.vram_mb else None

    @property
    def speed_rows(self) -> list[ConfigSummary]:
        return [row for row in self.rows if row.summary.seconds_median is not None]

    @property
    def memory_rows(self) -> list[ConfigSummary]:
        return [row for row in self.rows if row.peak_mb is not None]


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


def _trend_value(value) -> float | None:
    if isinstance(value, dict):
        value = value.get("median", value.get("seconds_median"))
    return float(value) if isinstance(value, (int, float)) else None


def trends(rows: list[ConfigSummary]) -> list[Trend]:
    """Per-version medians from Summary.trend, where some configuration has two versions."""
    dimensions: dict[str, list[TrendSeries]] = defaultdict(list)
    for row in rows:
        for dimension, values in (row.summary.trend or {}).items():
            if not isinstance(values, dict):
                continue
            points = [
                (str(version), seconds)
                for version, value in values.items()
                if (seconds := _trend_value(value)) is not None
            ]
            if len(points) >= 2:
                points.sort(key=lambda point: version_key(point[0]))
                dimensions[dimension].append(TrendSeries(row.label, points))
    return [Trend(dimension, series) for dimension, series in sorted(dimensions.items())]


def _difference(name: str, mine: float | None, theirs: float | None, unit: str) -> str:
    """'12 GB, 25% less memory' (the other card's figure, compared with this card's)."""
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
        rows = _sorted_rows(by_gpu[other.pk], model)
        parts = [
            _difference("memory", gpu.vram_gb, other.vram_gb, "GB"),
            _difference(
                "memory bandwidth", gpu.memory_bandwidth_gbs, other.memory_bandwidth_gbs, "GB/s"
            ),
        ]
        differences = "; ".join(part for part in parts if part)
        result.append(NearCard(other, describe_pair(rows, other.vram_mb), differences))
    return result


def agent_measures(model: ImageModel) -> bool:
    """Whether this version of the klein-bench agent can benchmark the model."""
    return model.slug in AGENT_MODELS


def contribute_commands(model: ImageModel, rows: list[ConfigSummary]) -> list[ContributeCommand]:
    """The agent's commands that measure this model, the configurations this card lacks
    first. None for a model the agent cannot run; the built-in test model has one."""
    if not agent_measures(model):
        return []
    spec = AGENT_MODELS[model.slug]
    if spec.built_in:
        command = f"klein-bench submit --model {model.slug}"
        return [ContributeCommand("", "the tiny test model, on any CPU or GPU", command, False)]
    measured = {(row.configuration.runtime, row.configuration.preset) for row in rows}
    commands = [
        ContributeCommand(
            preset.value,
            preset.label,
            f"klein-bench submit --model {model.slug} --preset {preset.value}",
            (Runtime.DIFFUSERS, preset.value) in measured,
        )
        for preset in Preset
        if preset.value in AGENT_PRESETS
    ]
    if model.slug == COMFYUI_MODEL:
        commands.append(
            ContributeCommand(
                Preset.FP8_STORAGE.value,
                "FP8 in your running ComfyUI (the recipes' path)",
                "klein-bench submit --runtime comfyui",
                (Runtime.COMFYUI, Preset.FP8_STORAGE.value) in measured,
            )
        )
    return sorted(commands, key=lambda c: c.measured)


def recent_results(model: ImageModel, gpu: Gpu) -> list[Result]:
    return list(
        Result.objects.for_pair(model, gpu)
        .select_related("configuration", "submission", "contributor")
        .defer("thumbnail_png", "submission__body", "submission__response", "telemetry")
        .order_by("-created_at", "-id")[:RECENT_RESULTS]
    )


def pair_page(model: ImageModel, gpu: Gpu, version: str) -> PairPage:
    summaries = list(Summary.objects.for_pair(model, gpu).select_related("configuration"))
    on_cpu = is_cpu(gpu)
    rows = _sorted_rows([s for s in summaries if not s.synthetic], model, on_cpu)
    synthetic_rows = _sorted_rows([s for s in summaries if s.synthetic], model, on_cpu)
    claims = list(claims_for(model, gpu))
    recent = recent_results(model, gpu)
    failures = [failure for row in rows for failure in row.failures]
    return PairPage(
        model=model,
        gpu=gpu,
        rows=rows,
        synthetic_rows=synthetic_rows,
        verdict=describe_pair(rows, gpu.vram_mb),
        synthetic_verdict=describe_pair(synthetic_rows, gpu.vram_mb) if synthetic_rows else None,
        claims=[ClaimRow(claim, _community_for(claim, rows)) for claim in claims],
        recent=recent,
        usable=usable_vram(gpu, claims, recent),
        trends=trends(rows),
        nearest=[] if rows else nearest_cards(model, gpu),
        commands=contribute_commands(model, rows),
        version=version,
        failures=failures,
    )
