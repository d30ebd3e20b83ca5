"""Summaries in the words and numbers a person needs: a verdict, the configuration to run,
how sure we are, why things failed. Plain objects built from rows that checkpages.queries
has read; nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.figures import NOT_FITTING, PEAK_VRAM_FIGURES, RUNTIMES

from benchmarks.models import (
    Configuration,
    ImageModel,
    Offload,
    Outcome,
    Precision,
    Stage,
    Summary,
    Verdict,
)
from benchmarks.services import answers
from checkpages import formatting
from checkpages.formatting import count

VERDICT_ORDER = {
    Verdict.RUNS: 0,
    Verdict.NEEDS_OFFLOAD: 1,
    Verdict.DOES_NOT_FIT: 2,
    Verdict.UNKNOWN: 3,
}
WORKING = answers.WORKING

# One colour per configuration, on every page and plot (Okabe-Ito and Tol, for colour-blind
# readers): configurations take them in the order of the contract's runtimes and presets.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#7f3c8d", "#8c6d00", "#332288", "#56b4e9")


# -- configurations in words ------------------------------------------------------------


def configuration_words(configuration: Configuration, on_cpu: bool = False) -> str:
    """'FP8 weights, BF16 compute, fully on the GPU (ComfyUI)', 'BF16 with model CPU
    offload (diffusers)'."""
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


def colour(runtime: str, precision: str, offload: str) -> str:
    """The configuration's colour, the same wherever it appears."""
    families = [(r, p.precision, p.offload) for r in RUNTIMES for p in PRESETS.values()]
    key = (runtime, precision, offload)
    if key in families:
        return PALETTE[families.index(key) % len(PALETTE)]
    index = sum(ord(ch) for ch in "".join(key))
    return PALETTE[index % len(PALETTE)]


def configuration_colour(configuration: Configuration) -> str:
    c = configuration
    return colour(c.runtime, c.precision, c.offload)


# -- one configuration's summary -------------------------------------------------------------


@dataclass(frozen=True)
class Confidence:
    level: str  # "low", "moderate" or "high"
    sentence: str


_OUTCOME_NOUNS = {
    Outcome.OUT_OF_MEMORY.value: ("out of memory", "out of memory"),
    "spilled": ("spilled into system memory", "spilled into system memory"),
    Outcome.ERROR.value: ("error", "errors"),
}


def _stage_order(stage: str) -> int:
    return Stage.values.index(stage) if stage in Stage.values else len(Stage.values)


def _stage_words(stage: str) -> str:
    if stage not in Stage.values or stage == Stage.OTHER:
        return "elsewhere"
    return f"in {Stage(stage).label}"


def failure_parts(failures: dict) -> list[str]:
    """'333 out of memory (202 in VAE decode, 131 in denoising)', '7 errors', ... from
    Summary.failures_by_stage ({outcome: {stage: n}}): what did not fit first."""
    parts = []
    kinds = [*NOT_FITTING, Outcome.ERROR.value]
    kinds += sorted(k for k in failures if k not in kinds)
    for outcome in kinds:
        stages = failures.get(outcome) or {}
        if not isinstance(stages, dict):
            continue
        named = sorted(
            ((int(n), stage) for stage, n in stages.items() if n),
            # Most first; ties in the order the pipeline runs them.
            key=lambda item: (item[1] == Stage.OTHER, -item[0], _stage_order(item[1])),
        )
        total = sum(n for n, _ in named)
        if not total:
            continue
        singular, plural = _OUTCOME_NOUNS.get(outcome, (outcome, outcome))
        text = f"{formatting.number(total)} {singular if total == 1 else plural}"
        known = [(n, stage) for n, stage in named if stage != Stage.OTHER]
        if len(named) == 1 and known:
            text += f" {_stage_words(known[0][1])}"
        elif known:
            text += (
                " ("
                + ", ".join(f"{formatting.number(n)} {_stage_words(st)}" for n, st in named)
                + ")"
            )
        parts.append(text)
    return parts


def failure_line(n_results: int, failures: dict) -> str:
    """'340 tried: 333 out of memory (202 in VAE decode, 131 in denoising), 7 errors';
    empty when nothing failed."""
    parts = failure_parts(failures)
    if not parts:
        return ""
    return f"{formatting.number(n_results)} tried: " + ", ".join(parts)


@dataclass
class ConfigSummary:
    """One summary as the pages show it, on a card with `capacity_mib` of memory."""

    summary: Summary
    model: ImageModel
    on_cpu: bool = False
    capacity_mib: float | None = None

    @property
    def configuration(self) -> Configuration:
        return self.summary.configuration

    @property
    def default_size(self) -> bool:
        c = self.configuration
        m = self.model
        return (c.width, c.height, c.steps) == (m.default_width, m.default_height, m.default_steps)

    @property
    def name(self) -> str:
        return configuration_name(self.configuration)

    @property
    def label(self) -> str:
        """Unique among a card's configurations: 'fp8-storage (ComfyUI)'."""
        c = self.configuration
        size = "" if self.default_size else f", {c.width}x{c.height}, {c.steps} steps"
        return f"{self.name} ({c.get_runtime_display()}{size})"

    @property
    def words(self) -> str:
        return configuration_words(self.configuration, self.on_cpu)

    @property
    def size(self) -> str:
        return size_words(self.configuration)

    @property
    def colour(self) -> str:
        return configuration_colour(self.configuration)

    @property
    def resident(self) -> bool:
        return self.configuration.offload == Offload.NONE

    @property
    def failures(self) -> dict:
        data = self.summary.failures_by_stage
        return data if isinstance(data, dict) else {}

    @property
    def peak_field(self) -> str | None:
        for name in PEAK_VRAM_FIGURES:
            if getattr(self.summary, f"{name}_median", None) is not None:
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
    def over_capacity(self) -> bool:
        """The median peak is above the card's memory: it only finished by spilling."""
        return bool(self.capacity_mib and self.peak_mb and self.peak_mb > self.capacity_mib)

    @property
    def some_over_capacity(self) -> bool:
        return bool(self.capacity_mib and self.peak_max_mb and self.peak_max_mb > self.capacity_mib)

    @property
    def verdict(self) -> str:
        """The stored verdict, except that spilling into system memory is not fitting."""
        return answers.verdict_of(self.summary, self.capacity_mib)

    @property
    def verdict_label(self) -> str:
        return Verdict(self.verdict).label

    @property
    def works(self) -> bool:
        return self.verdict in WORKING and self.summary.n_success > 0

    @property
    def n_timed(self) -> int:
        """Results behind the speed figures: successful ones, outliers left out."""
        return self.summary.n_timed

    @property
    def capped_values(self) -> bool:
        """Whether seconds_values holds evenly spaced quantiles instead of every result."""
        return len(self.summary.seconds_values or []) < self.n_timed

    @property
    def spread(self) -> float | None:
        s = self.summary
        if s.seconds_median and s.seconds_p10 is not None and s.seconds_p90 is not None:
            return (s.seconds_p90 - s.seconds_p10) / s.seconds_median
        return None

    @property
    def failure_line(self) -> str:
        return failure_line(self.summary.n_results, self.failures)

    @property
    def capacity_flag(self) -> str:
        """Why a peak above the card's memory matters, in one sentence (or nothing)."""
        card = formatting.card_gb(self.capacity_mib)
        if self.over_capacity:
            return (
                f"The median peak, {formatting.gb(self.peak_mb)}, is above the card's {card}: "
                "these runs only finished by spilling into system memory, so this does not fit."
            )
        if self.some_over_capacity:
            return (
                f"The largest peak, {formatting.gb(self.peak_max_mb)}, is above the card's "
                f"{card}: that run spilled into system memory."
            )
        return ""

    @property
    def confidence(self) -> Confidence | None:
        s = self.summary
        if s.seconds_median is None or not self.works:
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
    def sentence(self) -> str:
        """One line about this configuration on this card."""
        s = self.summary
        head = f"{self.words} at {self.size}"
        failed = self.failure_line
        if self.works and s.seconds_median is not None:
            peak = f", {formatting.gb(self.peak_mb)} peak" if self.peak_mb else ""
            parts = failure_parts(self.failures)
            tail = f": {', '.join(parts)}" if parts else ""
            return (
                f"{head}: median {formatting.seconds(s.seconds_median)} per image{peak} "
                f"({count(s.n_results, 'result')}{tail})."
            )
        if self.over_capacity:
            return f"{head}: {self.capacity_flag}"
        return f"{head}: {failed or 'no finished runs yet'}."


def sorted_rows(rows: list[ConfigSummary]) -> list[ConfigSummary]:
    return sorted(
        rows,
        key=lambda row: (VERDICT_ORDER[row.verdict], *answers.preference(row.summary, row.model)),
    )


def _row_of(rows: list[ConfigSummary], summary) -> ConfigSummary | None:
    return next((row for row in rows if row.summary is summary), None)


def _summaries(rows: list[ConfigSummary]) -> list[Summary]:
    return [row.summary for row in rows]


def _capacity(rows: list[ConfigSummary]) -> float | None:
    return rows[0].capacity_mib if rows else None


def pair_verdict(rows: list[ConfigSummary]) -> str:
    """The card's measured verdict (benchmarks.services.answers.measured_verdict)."""
    if not rows:
        return Verdict.UNKNOWN.value
    return answers.measured_verdict(_summaries(rows), rows[0].model, _capacity(rows))


def recommended(rows: list[ConfigSummary]) -> ConfigSummary | None:
    if not rows:
        return None
    best = answers.recommended(_summaries(rows), rows[0].model, _capacity(rows))
    return _row_of(rows, best)


def for_preset(rows: list[ConfigSummary], preset: str) -> ConfigSummary | None:
    """The card's configuration in this preset at the standard size: working, faster first."""
    if not rows:
        return None
    chosen = answers.in_preset(_summaries(rows), rows[0].model, _capacity(rows), preset)
    return _row_of(rows, chosen)


@dataclass
class PairVerdict:
    verdict: str
    best: ConfigSummary | None
    headline: str

    @property
    def label(self) -> str:
        return Verdict(self.verdict).label


def _runs_headline(best: ConfigSummary, capacity_mib: float | None) -> str:
    s = best.summary
    c = best.configuration
    precision = Precision(c.precision).label
    if best.on_cpu:
        how = f"Runs on the CPU in {precision}"
    elif best.resident:
        how = f"Runs fully on the GPU in {precision}"
    else:
        how = f"Runs only with {Offload(c.offload).label} in {precision}"
    results = count(s.n_results, "result")
    if s.n_success != s.n_results:
        results = f"{formatting.number(s.n_success)} successful of {results}"
    peak = ""
    if best.peak_mb is not None:
        of = f" of the card's {formatting.card_gb(capacity_mib)}" if capacity_mib else ""
        peak = f", {formatting.gb(best.peak_mb)} peak{of}"
    return (
        f"{how} ({c.get_runtime_display()}) at {c.width}x{c.height}: median "
        f"{formatting.seconds(s.seconds_median)} per image{peak}, from {results} by "
        f"{count(s.n_contributors, 'contributor')}."
    )


def describe_row(row: ConfigSummary, capacity_mib: float | None) -> PairVerdict:
    """The answer for one configuration (a ?preset= link)."""
    if row.works:
        return PairVerdict(row.verdict, row, _runs_headline(row, capacity_mib))
    why = row.capacity_flag or (row.failure_line + "." if row.failure_line else "")
    return PairVerdict(
        row.verdict, None, f"Does not run in {row.name} ({row.words}): {why or 'nothing finished.'}"
    )


def other_sizes_sentence(rows: list[ConfigSummary]) -> str:
    """'Not measured at the standard 1024x1024, 50 steps: only at 4 steps so far (below).'
    Says what differs: the step count, the resolution, or both."""
    model = rows[0].model
    standard_size = (model.default_width, model.default_height)
    configurations = [row.configuration for row in rows]
    if all((c.width, c.height) == standard_size for c in configurations):
        kinds = [f"{steps} steps" for steps in sorted({c.steps for c in configurations})]
        what = "other step counts"
    elif all(c.steps == model.default_steps for c in configurations):
        kinds = [f"{w}x{h}" for w, h in sorted({(c.width, c.height) for c in configurations})]
        what = "other resolutions"
    else:
        kinds = sorted({size_words(c) for c in configurations})
        what = "other sizes and step counts"
    return (
        f"Not measured at the model's standard {model.default_width}x{model.default_height}, "
        f"{model.default_steps} steps: only {what} so far ({', '.join(kinds)}; see below)."
    )


def describe_pair(rows: list[ConfigSummary], capacity_mib: float | None = None) -> PairVerdict:
    """The verdict in plain words, e.g. 'Runs fully on the GPU in BF16 (diffusers) at
    1024x1024: median 2.3 s per image, 19.8 GiB peak, from 41 results by 17 contributors.'"""
    verdict = pair_verdict(rows)
    best = recommended(rows)
    if best is not None:
        return PairVerdict(verdict, best, _runs_headline(best, capacity_mib))
    measured = [row for row in rows if row.default_size]
    if verdict == Verdict.DOES_NOT_FIT:
        n = sum(row.summary.n_results for row in measured)
        contributors = max((row.summary.n_contributors for row in measured), default=0)
        return PairVerdict(
            verdict,
            None,
            f"Does not run: every configuration measured on this card ran out of memory or "
            f"spilled into system memory ({count(n, 'result')} from at least "
            f"{count(contributors, 'contributor')}).",
        )
    if rows and not measured:
        return PairVerdict(verdict, None, other_sizes_sentence(rows))
    if rows:
        n = sum(row.summary.n_results for row in measured)
        return PairVerdict(
            verdict,
            None,
            f"Unknown: the {count(n, 'result')} so far did not finish, so there is no "
            "measurement yet.",
        )
    return PairVerdict(Verdict.UNKNOWN.value, None, "Unknown: no measurements yet.")


def peak_flag(result) -> str:
    """For one result: a sentence when its peak is above its card's memory."""
    peak = next(
        (getattr(result, name) for name in PEAK_VRAM_FIGURES if getattr(result, name, None)),
        None,
    )
    capacity = result.gpu.vram_mb
    if not (peak and capacity and peak > capacity):
        return ""
    return (
        f"Its peak, {formatting.gb(peak)}, is above the card's {formatting.card_gb(capacity)}: "
        "the run only finished by spilling into system memory, so it counts as not fitting."
    )
