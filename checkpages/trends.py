"""Per-version medians (Summary.trend) as series for the trend plots: versions in release
order, one series per configuration, in its colour."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from benchmarks.services.group_stats import version_key
from checkpages.presentation import ConfigSummary


@dataclass
class TrendSeries:
    label: str
    colour: str
    points: list[tuple[str, float]]


@dataclass
class Trend:
    dimension: str  # "driver" or "diffusers" (whatever the aggregation records)
    versions: list[str]  # oldest to newest
    series: list[TrendSeries]


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
                dimensions[dimension].append(TrendSeries(row.label, row.colour, points))
    found = []
    for dimension, series in sorted(dimensions.items()):
        versions = sorted({v for s in series for v, _ in s.points}, key=version_key)
        found.append(Trend(dimension, versions, series))
    return found
