"""The figures of one group of results, without the database: exact from all of them, or
new results folded into what a large group's summary keeps.

A small group is summarised exactly, from every result. A large one also keeps a DDSketch
per distribution (seconds per image, energy, each memory figure, seconds per driver and
per diffusers version) beside its counters: a new result adds to the counters and to the
sketches, so taking it costs the same at a million results as at a thousand, and every
quantile read from a sketch is within SKETCH_ACCURACY of the exact one (relative error,
against the order statistic at that rank). A folded result's outlier test uses the spread
of the group's timed results at its last exact computation; the exact computation (the
periodic reconcile) judges every result again and rebuilds the sketches.
"""

from __future__ import annotations

import base64
import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ddsketch import DDSketch
from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.pb.ddsketch_pb2 import DDSketch as DDSketchMessage
from ddsketch.pb.proto import DDSketchProto
from klein_bench.contract import stats
from klein_bench.contract.figures import AGGREGATED_MEMORY_FIGURES, NOT_FITTING
from packaging.version import InvalidVersion, Version

from benchmarks.models import Offload, Outcome, Verdict

# Relative error of every quantile read from a sketch: 0.5% of 2.0 s is 0.01 s.
SKETCH_ACCURACY = 0.005
# Past this many values, Summary.seconds_values keeps evenly spaced quantiles instead:
# as many as the speed plot draws (more would only repeat a sketch's bins).
SECONDS_VALUES_CAP = 200
MEMORY_FIGURES = AGGREGATED_MEMORY_FIGURES
VERSION_FIELDS = {
    "driver": "driver_version",
    "torch": "torch_version",
    "diffusers": "diffusers_version",
    "runtime": "runtime_version",
    "agent": "agent_version",
}
TREND_FIELDS = ("driver", "diffusers")
# The result columns the figures are computed from.
COLUMNS = (
    "id",
    "contributor_id",
    "gpu_uuid_hash",
    "outcome",
    "failed_stage",
    "seconds_median",
    "energy_joules_per_image",
    *MEMORY_FIGURES,
    *VERSION_FIELDS.values(),
)

Row = dict[str, Any]
# A configuration's figure is "reproduced" once this many independent contributors' own
# medians lie within REPRODUCED_TOLERANCE of the median over every result.
REPRODUCED_MIN_CONTRIBUTORS = 3
REPRODUCED_TOLERANCE = 0.10
# The mapping of values to bins that DDSketch(SKETCH_ACCURACY) uses.
_MAPPING = LogarithmicMapping(SKETCH_ACCURACY)


def version_key(version: str) -> tuple[int, Version, str]:
    """Sort key for reported versions: PEP 440 order ('580.95.05' < '580.105.08', '0.9' <
    '0.10'), with text that is no version first, in text order."""
    try:
        return 1, Version(version), ""
    except InvalidVersion:
        return 0, Version("0"), version


def newest(versions: Iterable[str]) -> str:
    return max((v for v in versions if v), key=version_key, default="")


def group_verdict(offload: str, n_success: int, n_not_fitting: int) -> str:
    """runs: it succeeded fully resident; needs_offload: it succeeded only with offload;
    does_not_fit: nothing succeeded and it ran out of memory; unknown otherwise."""
    if n_success:
        return Verdict.RUNS if offload == Offload.NONE else Verdict.NEEDS_OFFLOAD
    if n_not_fitting:
        return Verdict.DOES_NOT_FIT
    return Verdict.UNKNOWN


@dataclass
class Sketches:
    """Named DDSketches, kept as the library's protobuf encoding (base64 text in JSON).

    Only the sketches a batch touches are decoded and encoded again."""

    encoded: dict[str, str] = field(default_factory=dict)
    _open: dict[str, BaseDDSketch] = field(default_factory=dict)

    def sketch(self, name: str) -> BaseDDSketch:
        if name not in self._open:
            text = self.encoded.get(name)
            self._open[name] = (
                DDSketchProto.from_proto(DDSketchMessage.FromString(base64.b64decode(text)))
                if text
                else DDSketch(SKETCH_ACCURACY)
            )
        return self._open[name]

    def add(self, name: str, value: float | None) -> None:
        if value is not None:
            self.sketch(name).add(value)

    def add_many(self, name: str, values: Iterable[float]) -> None:
        """add() each value. Sorted, the values that fall in one bin are added at once, so
        a million values cost a few thousand bin lookups, not a million."""
        sketch = self.sketch(name)
        ordered = sorted(values)
        start = 0
        while start < len(ordered):
            value = ordered[start]
            end = start + 1
            if value > _MAPPING.min_possible:
                end = bisect.bisect_right(ordered, _MAPPING.key(value), start, key=_MAPPING.key)
            sketch.add(value, end - start)
            start = end

    def quantiles(self, name: str, qs: list[float]) -> list[float] | None:
        if not self.encoded.get(name) and name not in self._open:
            return None
        found = self.sketch(name)
        return [found.get_quantile_value(q) for q in qs] if found.count else None

    def median(self, name: str) -> float | None:
        found = self.quantiles(name, [0.5])
        return found[0] if found else None

    def to_json(self) -> dict[str, str]:
        encoded = dict(self.encoded)
        for name, sketch in self._open.items():
            message = DDSketchProto.to_proto(sketch).SerializeToString()
            encoded[name] = base64.b64encode(message).decode("ascii")
        return encoded


def _trend_sketch(dimension: str, version: str) -> str:
    return f"trend:{dimension}:{version}"


@dataclass
class Computed:
    """A summary's columns, the outlier flag of each result judged, and (for a large group)
    what it keeps to take the next results: the sketches and the outlier test's spread."""

    values: dict[str, Any]
    outliers: dict[int, bool]
    sketches: Sketches | None = None
    spread: stats.Spread | None = None

    @property
    def state(self) -> dict[str, Any]:
        assert self.sketches is not None
        return {
            "sketches": self.sketches.to_json(),
            "spread": asdict(self.spread) if self.spread else None,
        }


# -- counters: exact either way ---------------------------------------------------------


def _counts(rows: list[Row]) -> dict[str, Any]:
    outcomes = Counter(r["outcome"] for r in rows)
    failures: dict[str, Counter] = {}
    for r in rows:
        if r["outcome"] != Outcome.SUCCESS:
            failures.setdefault(r["outcome"], Counter())[r["failed_stage"] or "other"] += 1
    return {
        "n_results": len(rows),
        "n_success": outcomes[Outcome.SUCCESS],
        "n_out_of_memory": outcomes[Outcome.OUT_OF_MEMORY],
        "n_error": outcomes[Outcome.ERROR],
        "failures_by_stage": {o: dict(sorted(s.items())) for o, s in sorted(failures.items())},
    }


def _add_counts(values: dict[str, Any], rows: list[Row]) -> None:
    added = _counts(rows)
    for name in ("n_results", "n_success", "n_out_of_memory", "n_error"):
        values[name] += added[name]
    failures = {o: Counter(stages) for o, stages in (values["failures_by_stage"] or {}).items()}
    for outcome, stages in added["failures_by_stage"].items():
        failures.setdefault(outcome, Counter()).update(stages)
    values["failures_by_stage"] = {o: dict(sorted(s.items())) for o, s in sorted(failures.items())}


def _with_verdict(values: dict[str, Any], offload: str) -> dict[str, Any]:
    failures = values["failures_by_stage"]
    not_fitting = sum(sum(failures.get(outcome, {}).values()) for outcome in NOT_FITTING)
    values["verdict"] = group_verdict(offload, values["n_success"], not_fitting)
    return values


def _timed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["outcome"] == Outcome.SUCCESS and r["seconds_median"] is not None]


def _present(rows: list[Row], name: str) -> list[float]:
    return [r[name] for r in rows if r[name] is not None]


# -- independent contributors ------------------------------------------------------------


def independent(rows: list[Row]) -> dict[int, int]:
    """Each row's independent contributor: keys are contributors, and keys whose results
    name the same card (the salted GPU hash, which stays when a key is rotated) are one.
    Returns row id -> the smallest contributor id of its contributor."""
    parent: dict[tuple[str, object], tuple[str, object]] = {}

    def root(node: tuple[str, object]) -> tuple[str, object]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for r in rows:
        key = root(("key", r["contributor_id"]))
        if r.get("gpu_uuid_hash"):
            card = root(("card", r["gpu_uuid_hash"]))
            if card != key:
                parent[card] = key
    members: dict[tuple[str, object], int] = {}
    for r in rows:
        top = root(("key", r["contributor_id"]))
        members[top] = min(members.get(top, r["contributor_id"]), r["contributor_id"])
    return {r["id"]: members[root(("key", r["contributor_id"]))] for r in rows}


def agreeing(clean: list[Row], who: dict[int, int], median: float | None) -> int:
    """Independent contributors whose own median (over their results' medians) lies within
    REPRODUCED_TOLERANCE of `median`; each contributor counts once."""
    if not median:
        return 0
    by_contributor: dict[int, list[float]] = {}
    for r in clean:
        by_contributor.setdefault(who[r["id"]], []).append(r["seconds_median"])
    return sum(
        1
        for values in by_contributor.values()
        if abs(stats.median(values) - median) <= REPRODUCED_TOLERANCE * median
    )


# -- exact, from every result -----------------------------------------------------------


def _median_or_none(values: list[float]) -> float | None:
    return stats.median(values) if values else None


def _distribution(ordered: list[float]) -> list[float]:
    if len(ordered) <= SECONDS_VALUES_CAP:
        return ordered
    steps = SECONDS_VALUES_CAP - 1
    return stats.quantiles(ordered, [i / steps for i in range(SECONDS_VALUES_CAP)])


def _exact_seconds(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"seconds_median": None, "seconds_p10": None, "seconds_p90": None}
    ordered = sorted(values)
    median, p10, p90 = stats.quantiles(ordered, [0.5, 0.1, 0.9])
    return {"seconds_median": median, "seconds_p10": p10, "seconds_p90": p90}


def _exact_trend(clean: list[Row]) -> dict[str, dict[str, float]]:
    trend = {}
    for name in TREND_FIELDS:
        by_version: dict[str, list[float]] = {}
        for r in clean:
            if r[VERSION_FIELDS[name]]:
                by_version.setdefault(r[VERSION_FIELDS[name]], []).append(r["seconds_median"])
        trend[name] = {
            version: stats.median(by_version[version])
            for version in sorted(by_version, key=version_key)
        }
    return trend


def _sketched(successes: list[Row], clean: list[Row]) -> Sketches:
    sketches = Sketches()
    sketches.add_many("seconds", (r["seconds_median"] for r in clean))
    sketches.add_many("energy", _present(clean, "energy_joules_per_image"))
    for name in TREND_FIELDS:
        by_version: dict[str, list[float]] = {}
        for r in clean:
            if r[VERSION_FIELDS[name]]:
                by_version.setdefault(r[VERSION_FIELDS[name]], []).append(r["seconds_median"])
        for version, seconds in by_version.items():
            sketches.add_many(_trend_sketch(name, version), seconds)
    for figure in MEMORY_FIGURES:
        sketches.add_many(f"memory:{figure}", _present(successes, figure))
    return sketches


def exact(rows: list[Row], offload: str, keep_sketches: bool = False) -> Computed:
    """Every figure from every counted result of the group (there is at least one)."""
    successes = [r for r in rows if r["outcome"] == Outcome.SUCCESS]
    timed = _timed(rows)
    around = stats.spread([r["seconds_median"] for r in timed]) if timed else None
    outliers = {r["id"]: around.is_outlier(r["seconds_median"]) for r in timed if around}
    clean = [r for r in timed if not outliers[r["id"]]]
    seconds = sorted(r["seconds_median"] for r in clean)
    who = independent(rows)
    speed = _exact_seconds(seconds)
    n_agreeing = agreeing(clean, who, speed["seconds_median"])
    values = {
        **_counts(rows),
        "n_contributors": len(set(who.values())),
        "n_agreeing": n_agreeing,
        "reproduced": n_agreeing >= REPRODUCED_MIN_CONTRIBUTORS,
        "n_timed": len(clean),
        "n_outliers": len(timed) - len(clean),
        **speed,
        "seconds_values": _distribution(seconds),
        "energy_joules_per_image_median": _median_or_none(
            _present(clean, "energy_joules_per_image")
        ),
        "newest_versions": {
            name: version
            for name, field_name in VERSION_FIELDS.items()
            # Distinct versions first: a group has a handful, and parsing each row's costs O(n).
            if (version := newest({r[field_name] for r in rows}))
        },
        "trend": _exact_trend(clean),
    }
    for figure in MEMORY_FIGURES:
        figures = _present(successes, figure)
        values[f"{figure}_median"] = _median_or_none(figures)
        values[f"{figure}_max"] = max(figures, default=None)
    return Computed(
        _with_verdict(values, offload),
        outliers,
        _sketched(successes, clean) if keep_sketches else None,
        around,
    )


# -- folded: new results into a large group's counters and sketches ----------------------


def _judge(
    values: dict[str, Any], spread: stats.Spread | None, timed: list[Row]
) -> tuple[dict[int, bool], list[Row]]:
    outliers = {r["id"]: bool(spread and spread.is_outlier(r["seconds_median"])) for r in timed}
    clean = [r for r in timed if not outliers[r["id"]]]
    values["n_timed"] += len(clean)
    values["n_outliers"] += len(timed) - len(clean)
    return outliers, clean


def _fold_seconds(values: dict[str, Any], sketches: Sketches, clean: list[Row]) -> None:
    for r in clean:
        sketches.add("seconds", r["seconds_median"])
        sketches.add("energy", r["energy_joules_per_image"])
    n = values["n_timed"]
    if not n or not clean:
        return
    points = min(n, SECONDS_VALUES_CAP)
    evenly = [i / (points - 1) for i in range(points)] if points > 1 else [0.5]
    found = sketches.quantiles("seconds", [0.5, 0.1, 0.9, *evenly])
    assert found is not None
    values["seconds_median"], values["seconds_p10"], values["seconds_p90"] = found[:3]
    values["seconds_values"] = found[3:]
    values["energy_joules_per_image_median"] = sketches.median("energy")


def _fold_trend(values: dict[str, Any], sketches: Sketches, clean: list[Row]) -> None:
    trend = {name: dict(values["trend"].get(name, {})) for name in TREND_FIELDS}
    for r in clean:
        for name in TREND_FIELDS:
            version = r[VERSION_FIELDS[name]]
            if version:
                sketches.add(_trend_sketch(name, version), r["seconds_median"])
                trend[name][version] = sketches.median(_trend_sketch(name, version))
    values["trend"] = {
        name: {v: trend[name][v] for v in sorted(trend[name], key=version_key)}
        for name in TREND_FIELDS
    }


def _fold_memory(values: dict[str, Any], sketches: Sketches, successes: list[Row]) -> None:
    for figure in MEMORY_FIGURES:
        figures = _present(successes, figure)
        if not figures:
            continue
        for value in figures:
            sketches.add(f"memory:{figure}", value)
        values[f"{figure}_median"] = sketches.median(f"memory:{figure}")
        largest = values[f"{figure}_max"]
        values[f"{figure}_max"] = max(figures if largest is None else [largest, *figures])


def _fold_versions(values: dict[str, Any], rows: list[Row]) -> None:
    found = dict(values["newest_versions"] or {})
    for name, field_name in VERSION_FIELDS.items():
        version = newest({found.get(name, ""), *(r[field_name] for r in rows)})
        if version:
            found[name] = version
    values["newest_versions"] = found


def fold(
    previous: dict[str, Any],
    state: dict[str, Any],
    rows: list[Row],
    new_contributors: int,
    offload: str,
) -> Computed:
    """The summary `previous` (with its kept `state`) after taking new counted results;
    new_contributors of their contributors had no counted result in the group before.
    The independent contributors who agree (and so `reproduced`) stay as the last exact
    computation found them, until the next one."""
    values = dict(previous)
    sketches = Sketches(state["sketches"])
    spread = stats.Spread(**state["spread"]) if state["spread"] else None
    _add_counts(values, rows)
    values["n_contributors"] += new_contributors
    outliers, clean = _judge(values, spread, _timed(rows))
    _fold_seconds(values, sketches, clean)
    _fold_trend(values, sketches, clean)
    _fold_memory(values, sketches, [r for r in rows if r["outcome"] == Outcome.SUCCESS])
    _fold_versions(values, rows)
    return Computed(_with_verdict(values, offload), outliers, sketches, spread)
