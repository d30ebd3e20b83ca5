"""Summaries of (model, GPU, configuration, synthetic) groups: the database reads and
writes. The figures themselves are computed by benchmarks.services.group_stats.

Only counted results (accepted submissions) are in a summary; a group with none has no
Summary row, so "no summary" always means "no data". Result.summarized records what the
summary holds: null for a result it has not taken yet, true for one it counts, false for
one it saw and leaves out.

`update_summary` runs after every change to a group's results, and never alongside another
update of the same group (it holds the summary row's lock):
- a group of fewer than SKETCH_FROM counted results is recomputed exactly: one query of
  narrow tuples and O(n log n) work in Python, about 20 ms at a thousand results;
- a larger group takes its new results into its counters and sketches: a few indexed
  queries that read only those results, so the cost does not grow with the group;
- a result the summary already holds that left the aggregates (withdrawn, moderated), or
  came back, means an exact recomputation.

`recompute_summary` is the exact computation. `reconcile` (Celery beat, every few minutes)
runs it for every group whose summary is missing, out of date or folded since its last
exact computation, so sketched figures and the outlier flags of older results become exact
again and a lost task is caught up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from benchmarks.caching import data_changed
from benchmarks.models import (
    COUNTED,
    COUNTED_COLUMNS,
    Configuration,
    Result,
    Summary,
    SummarySketches,
    Verdict,
    is_counted,
)
from benchmarks.services import group_stats

GROUP_FIELDS = ("model_id", "gpu_id", "configuration_id", "synthetic")
Group = tuple[int, int, int, bool]
# From this many counted results a group keeps sketches and takes new results one by one.
SKETCH_FROM = 1000
# computed_at is set this far before the results are read. A change whose transaction
# began before the read but committed after it then still looks newer than the summary,
# so the next update (and reconcile) looks at it, even if its own task was lost.
COMPUTED_AT_MARGIN = timedelta(seconds=60)
# The summary's own columns, as group_stats computes them.
FIGURES = tuple(
    f.attname
    for f in Summary._meta.concrete_fields
    if f.attname not in ("id", *GROUP_FIELDS, "computed_at", "exact")
)
_COUNTED = COUNTED
_VERDICT_ORDER = (Verdict.RUNS, Verdict.NEEDS_OFFLOAD, Verdict.DOES_NOT_FIT)


# -- pair verdicts ---------------------------------------------------------------------


def combine_verdicts(verdicts) -> str:
    """The best of several verdicts: runs > needs_offload > does_not_fit > unknown."""
    present = set(verdicts)
    return next((v.value for v in _VERDICT_ORDER if v in present), Verdict.UNKNOWN.value)


# -- one group -----------------------------------------------------------------------------


def _rows(results: QuerySet[Result], *extra: str) -> list[dict[str, Any]]:
    columns = (*group_stats.COLUMNS, *extra)
    rows = results.order_by().values_list(*columns)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _offload(configuration_id: int) -> str:
    return Configuration.objects.values_list("offload", flat=True).get(pk=configuration_id)


def _write_outliers(rows: list[dict[str, Any]], outliers: dict[int, bool]) -> None:
    """Store the outlier flags that changed; update() leaves changed_at alone, so flagging
    is not itself a change for reconcile."""
    changed: dict[bool, list[int]] = {True: [], False: []}
    for row in rows:
        flag = outliers.get(row["id"], False)
        if row["is_outlier"] != flag:
            changed[flag].append(row["id"])
    for flag, ids in changed.items():
        if ids:
            Result.objects.filter(pk__in=ids).update(is_outlier=flag)


def _save(
    summary: Summary, computed: group_stats.Computed, started: datetime, exact: bool
) -> Summary:
    for name, value in computed.values.items():
        setattr(summary, name, value)
    summary.computed_at = started - COMPUTED_AT_MARGIN
    summary.exact = exact
    summary.save()
    if computed.sketches is None:
        SummarySketches.objects.filter(summary=summary).delete()
    else:
        SummarySketches.objects.update_or_create(summary=summary, defaults=computed.state)
    data_changed()
    return summary


def _locked_summary(group: dict[str, Any], started: datetime) -> Summary:
    """The group's summary row, locked until the transaction ends. A new group's row is
    made first (and filled or deleted before the commit), so that two first updates of a
    group wait for each other too."""
    summary = Summary.objects.select_for_update().filter(**group).first()
    if summary is None:
        made, _ = Summary.objects.get_or_create(**group, defaults={"computed_at": started})
        summary = Summary.objects.select_for_update().get(pk=made.pk)
    return summary


def _recompute(summary: Summary, group: dict[str, Any], started: datetime) -> Summary | None:
    results = Result.objects.filter(**group)
    # Mark what the summary will hold before reading it: a result that arrives in between
    # stays unmarked and is taken by the next update.
    results.filter(_COUNTED).exclude(summarized=True).update(summarized=True)
    # Results that left the aggregates keep no outlier mark from an earlier computation.
    results.exclude(_COUNTED).exclude(summarized=False, is_outlier=False).update(
        summarized=False, is_outlier=False
    )
    rows = _rows(results.filter(_COUNTED, summarized=True), "is_outlier")
    if not rows:
        summary.delete()
        data_changed()
        return None
    computed = group_stats.exact(
        rows, _offload(group["configuration_id"]), keep_sketches=len(rows) >= SKETCH_FROM
    )
    _write_outliers(rows, computed.outliers)
    return _save(summary, computed, started, exact=True)


def _held_results_changed(summary: Summary, group: dict[str, Any]) -> bool:
    """Whether a result the summary holds left the aggregates since it was computed, or one
    it left out came back (both move the result's changed_at)."""
    return (
        Result.objects.filter(**group, changed_at__gt=summary.computed_at)
        .filter(Q(summarized=True) & ~_COUNTED | Q(summarized=False) & _COUNTED)
        .exists()
    )


def _new_contributors(group: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    ids = {row["contributor_id"] for row in rows}
    known = (
        Result.objects.filter(**group, summarized=True, contributor_id__in=ids)
        .order_by()
        .values_list("contributor_id", flat=True)
        .distinct()
    )
    return len(ids - set(known))


def _fold(summary: Summary, state: SummarySketches, group: dict[str, Any], started) -> Summary:
    new = _rows(Result.objects.filter(**group, summarized__isnull=True), *COUNTED_COLUMNS)
    if not new:
        return summary
    counted = [row for row in new if is_counted(*(row[c] for c in COUNTED_COLUMNS))]
    computed = group_stats.fold(
        {name: getattr(summary, name) for name in FIGURES},
        {"sketches": state.sketches, "spread": state.spread},
        counted,
        _new_contributors(group, counted),
        _offload(group["configuration_id"]),
    )
    taken = {row["id"] for row in counted}
    flagged = [pk for pk in taken if computed.outliers.get(pk)]
    Result.objects.filter(pk__in=flagged).update(is_outlier=True)
    Result.objects.filter(pk__in=taken).update(summarized=True)
    left_out = [row["id"] for row in new if row["id"] not in taken]
    Result.objects.filter(pk__in=left_out).update(summarized=False)
    return _save(summary, computed, started, exact=False)


def update_summary(
    model_id: int, gpu_id: int, configuration_id: int, synthetic: bool
) -> Summary | None:
    """Bring one group's summary up to date with its results; idempotent. Returns the
    summary, or None when the group has no counted results (and so no summary)."""
    started = timezone.now()
    group = dict(zip(GROUP_FIELDS, (model_id, gpu_id, configuration_id, synthetic), strict=True))
    with transaction.atomic():
        summary = _locked_summary(group, started)
        state = (
            SummarySketches.objects.filter(summary=summary).first()
            if summary.n_results >= SKETCH_FROM
            else None
        )
        if state is None or _held_results_changed(summary, group):
            return _recompute(summary, group, started)
        return _fold(summary, state, group, started)


def recompute_summary(
    model_id: int, gpu_id: int, configuration_id: int, synthetic: bool
) -> Summary | None:
    """Recompute one group's summary exactly, and its results' outlier flags."""
    started = timezone.now()
    group = dict(zip(GROUP_FIELDS, (model_id, gpu_id, configuration_id, synthetic), strict=True))
    with transaction.atomic():
        return _recompute(_locked_summary(group, started), group, started)


# -- reconcile -------------------------------------------------------------------------------


def _same_group() -> dict[str, OuterRef]:
    return {
        field.removesuffix("_id"): OuterRef(field.removesuffix("_id")) for field in GROUP_FIELDS
    }


def groups_to_reconcile() -> set[Group]:
    """Groups whose summary is not exact and up to date: results changed after it was
    computed, results it has not taken, new results folded in since its last exact
    computation, no counted results left, or counted results and no summary yet."""
    group = _same_group()
    summaries = Summary.objects.values_list(*GROUP_FIELDS)
    orphaned = summaries.filter(~Exists(Result.objects.counted().filter(**group)))
    # order_by(): the default ordering's columns would make every row distinct.
    missing = (
        Result.objects.counted()
        .filter(~Exists(Summary.objects.filter(**group)))
        .order_by()
        .values_list(*GROUP_FIELDS)
        .distinct()
    )
    untaken = (
        Result.objects.filter(summarized__isnull=True)
        .order_by()
        .values_list(*GROUP_FIELDS)
        .distinct()
    )
    return {
        *Summary.objects.stale().values_list(*GROUP_FIELDS),
        *summaries.filter(exact=False),
        *orphaned,
        *missing,
        *untaken,
    }


def reconcile() -> int:
    """Recompute every group that needs it, exactly; returns how many were recomputed."""
    groups = groups_to_reconcile()
    for group in sorted(groups):
        recompute_summary(*group)
    return len(groups)
