"""Whether a reproduction (a result whose payload names another as the one it runs again)
agrees with its original: compared only on the same card; the same outcome, and medians
within group_stats.REPRODUCED_TOLERANCE of each other. Pages and the API both ask here."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.models import Result
from benchmarks.services.group_stats import REPRODUCED_TOLERANCE

__all__ = ["REPRODUCED_TOLERANCE", "Agreement", "agreement", "of"]


@dataclass(frozen=True)
class Agreement:
    # None: not compared (another card).
    agrees: bool | None
    # How far the reproduction's median is from the original's, as a share of it.
    apart: float | None = None


def agreement(original: Result, copy: Result) -> Agreement:
    if copy.gpu_id != original.gpu_id:
        return Agreement(None)
    if copy.outcome != original.outcome:
        return Agreement(False)
    if not original.seconds_median or copy.seconds_median is None:
        return Agreement(True)
    apart = abs(copy.seconds_median - original.seconds_median) / original.seconds_median
    return Agreement(apart <= REPRODUCED_TOLERANCE, apart)


def of(original: Result) -> list[tuple[Result, Agreement]]:
    """The original's reproductions, oldest first, each with its agreement."""
    copies = original.reproductions.select_related("gpu", "submission").order_by("id")
    return [(copy, agreement(original, copy)) for copy in copies]
