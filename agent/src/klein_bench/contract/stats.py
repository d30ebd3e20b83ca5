"""Summary statistics shared by the agent (its table) and the server (its aggregates).

Pure Python so that both sides compute the same figures from the same numbers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# Iglewicz and Hoaglin: 0.6745 makes the MAD consistent with the standard deviation
# for normal data; 3.5 is their recommended cut-off for the modified z-score.
MAD_CONSISTENCY = 0.6745
OUTLIER_THRESHOLD = 3.5
# When more than half the values are equal the MAD is 0; fall back to the mean
# absolute deviation, scaled to the standard deviation (sqrt(pi/2)).
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


def modified_z_scores(values: Sequence[float]) -> list[float]:
    """Modified z-score of each value around the median (Iglewicz and Hoaglin, 1993)."""
    if not values:
        return []
    center = median(values)
    deviations = [abs(v - center) for v in values]
    mad = median(deviations)
    if mad > 0:
        return [MAD_CONSISTENCY * (v - center) / mad for v in values]
    mean_ad = statistics.fmean(deviations)
    if mean_ad > 0:
        return [(v - center) / (MEAN_AD_CONSISTENCY * mean_ad) for v in values]
    return [0.0 for _ in values]


def outlier_flags(values: Sequence[float], threshold: float = OUTLIER_THRESHOLD) -> list[bool]:
    """True for each value whose modified z-score is above the threshold in size."""
    return [abs(z) > threshold for z in modified_z_scores(values)]
