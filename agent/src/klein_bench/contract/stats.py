"""Summary statistics shared by the agent (its table) and the server (its aggregates).

Pure Python so that both sides compute the same figures from the same numbers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Iglewicz and Hoaglin: 0.6745 makes the MAD consistent with the standard deviation
# for normal data; 3.5 is their recommended cut-off for the modified z-score.
MAD_CONSISTENCY = 0.6745
OUTLIER_THRESHOLD = 3.5
# For the mean absolute deviation: scales it to the standard deviation (sqrt(pi/2)).
MEAN_AD_CONSISTENCY = 1.253314


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics (numpy's default)."""
    return quantiles(values, [q])[0]


def quantiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    """Several quantiles from one sort: quantile(values, q) for each q."""
    if not values:
        raise ValueError("quantile of no values")
    if not all(0.0 <= q <= 1.0 for q in qs):
        raise ValueError("q must be between 0 and 1")
    ordered = sorted(values)
    return [_interpolate(ordered, q) for q in qs]


def _interpolate(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    lower = math.floor(position)
    upper = math.ceil(position)
    if lower == upper:
        return float(ordered[lower])
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def median(values: Sequence[float]) -> float:
    return quantile(values, 0.5)


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    """n, median, p10, p90, mean, stdev (sample), cv, min and max of some values."""
    if not values:
        raise ValueError("summary of no values")
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "n": len(values),
        "median": median(values),
        "p10": quantile(values, 0.1),
        "p90": quantile(values, 0.9),
        "mean": mean,
        "stdev": stdev,
        "cv": stdev / mean if mean else 0.0,
        "min": float(min(values)),
        "max": float(max(values)),
    }


@dataclass(frozen=True)
class Spread:
    """The centre and deviations a modified z-score is measured against, so a value can be
    judged later against figures computed once (the server's incremental summaries)."""

    center: float
    # Median and mean absolute deviation from the centre.
    mad: float
    mean_ad: float

    def z_score(self, value: float) -> float:
        if self.mad > 0:
            return MAD_CONSISTENCY * (value - self.center) / self.mad
        if self.mean_ad > 0:
            return (value - self.center) / (MEAN_AD_CONSISTENCY * self.mean_ad)
        return 0.0

    def is_outlier(self, value: float, threshold: float = OUTLIER_THRESHOLD) -> bool:
        return abs(self.z_score(value)) > threshold


def spread(values: Sequence[float]) -> Spread:
    """The median of the values and their median and mean absolute deviations from it."""
    center = median(values)
    deviations = [abs(v - center) for v in values]
    return Spread(center, median(deviations), statistics.fmean(deviations))


def modified_z_scores(values: Sequence[float]) -> list[float]:
    """Modified z-score of each value around the median (Iglewicz and Hoaglin, 1993).

    When more than half the values are equal the MAD is 0; the mean absolute deviation,
    scaled to the standard deviation, stands in for it."""
    if not values:
        return []
    around = spread(values)
    return [around.z_score(v) for v in values]


def outlier_flags(values: Sequence[float], threshold: float = OUTLIER_THRESHOLD) -> list[bool]:
    """True for each value whose modified z-score is above the threshold in size."""
    if not values:
        return []
    around = spread(values)
    return [around.is_outlier(v, threshold) for v in values]
