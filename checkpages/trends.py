"""Per-version medians (Summary.trend) as series for the trend plots: versions in release
order, one series per configuration, in its colour."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

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


def version_key(version: str) -> tuple:
    """Versions in release order: 580.82.09 before 580.95.05, 0.9.2 before 0.10.0."""
    try:
        return (0, Version(version), version)
    except InvalidVersion:
        numbers = tuple(int(part) for part in re.findall(r"\d+", version))
        return (1, numbers, version)


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
