"""Summaries of (model, GPU, configuration, synthetic) groups, and the verdicts built on them.

`update_summary` recomputes one group from its counted results (accepted submissions;
withdrawn, rejected and flagged results leave the aggregates). A group with no counted
results has no Summary: the row is deleted, so "no summary" always means "no data".

Cost of one update, for a group of n counted results: one indexed query that returns n
narrow tuples (no model instances), then O(n log n) work in Python (sorting for the
quantiles and the modified z-scores), O(n) memory, and writes proportional to the number
of results whose outlier flag changed (usually none or one) plus one summary row. The
distribution kept for plots is capped (SECONDS_VALUES_CAP), so the row stays small.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from klein_bench.contract import stats
from klein_bench.contract.figures import AGGREGATED_MEMORY_FIGURES

from benchmarks.models import (
    COUNTED_STATUSES,
    Configuration,
    Gpu,
    ImageModel,
    Offload,
    Outcome,
    Result,
    Summary,
    Verdict,
)

logger = logging.getLogger(__name__)

GROUP_FIELDS = ("model_id", "gpu_id", "configuration_id", "synthetic")
MEMORY_FIGURES = AGGREGATED_MEMORY_FIGURES
VERSION_FIELDS = {
    "driver": "driver_version",
    "torch": "torch_version",
    "diffusers": "diffusers_version",
    "runtime": "runtime_version",
    "agent": "agent_version",
}
TREND_FIELDS = ("driver", "diffusers")
# Past this many values, Summary.seconds_values keeps evenly spaced quantiles instead.
SECONDS_VALUES_CAP = 1000
# computed_at is set this far before the results are read. A change whose transaction
# began before the read but committed after it then still looks newer than the summary,
# so reconcile picks it up even if that change's own task was lost with the broker.
COMPUTED_AT_MARGIN = timedelta(seconds=60)

_COLUMNS = (
    "id",
    "contributor_id",
    "outcome",
    "failed_stage",
    "seconds_median",
    "is_outlier",
    "energy_joules_per_image",
    *MEMORY_FIGURES,
    *VERSION_FIELDS.values(),
)
_VERDICT_ORDER = (Verdict.RUNS, Verdict.NEEDS_OFFLOAD, Verdict.DOES_NOT_FIT)


def group_verdict(offload: str, n_success: int, n_out_of_memory: int, n_spilled: int = 0) -> str:
    """runs: it succeeded fully resident; needs_offload: it succeeded only with offload;
    does_not_fit: nothing succeeded and it ran out of memory or spilled into system
    memory; unknown otherwise."""
    if n_success:
        return Verdict.RUNS if offload == Offload.NONE else Verdict.NEEDS_OFFLOAD
    if n_out_of_memory or n_spilled:
        return Verdict.DOES_NOT_FIT
    return Verdict.UNKNOWN


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """The best of several verdicts: runs > needs_offload > does_not_fit > unknown."""
    present = set(verdicts)
    return next((v.value for v in _VERDICT_ORDER if v in present), Verdict.UNKNOWN.value)


def _pair_summaries(model: ImageModel | None = None, gpu: Gpu | None = None):
    """Real summaries at their model's default resolution and steps: what the pair
    verdict answers is "will the model, as meant to be run, work on this card?"."""
    summaries = Summary.objects.real().filter(
        configuration__width=F("model__default_width"),
        configuration__height=F("model__default_height"),
        configuration__steps=F("model__default_steps"),
    )
    if model is not None:
        summaries = summaries.filter(model=model)
    if gpu is not None:
        summaries = summaries.filter(gpu=gpu)
    return summaries


def pair_verdict(model: ImageModel, gpu: Gpu) -> str:
    """The verdict for a model on a card, over its real (not synthetic) summaries at the
    model's default resolution and steps; pages and the API both show this one."""
    return combine_verdicts(_pair_summaries(model, gpu).values_list("verdict", flat=True))


def pair_verdicts(
    model: ImageModel | None = None, gpu: Gpu | None = None
) -> dict[tuple[int, int], str]:
    """pair_verdict for every (model id, GPU id) with summaries, in one query."""
    found: dict[tuple[int, int], list[str]] = defaultdict(list)
    for model_id, gpu_id, verdict in _pair_summaries(model, gpu).values_list(
        "model_id", "gpu_id", "verdict"
    ):
        found[(model_id, gpu_id)].append(verdict)
    return {pair: combine_verdicts(verdicts) for pair, verdicts in found.items()}


def _version_key(version: str) -> tuple:
    return tuple(int(part) for part in re.findall(r"\d+", version)), version


def _newest(versions: Iterable[str]) -> str:
    return max((v for v in versions if v), key=_version_key, default="")


def _median_or_none(values: list[float]) -> float | None:
    return stats.median(values) if values else None


def _spread(values: list[float]) -> list[float]:
    ordered = sorted(values)
    if len(ordered) <= SECONDS_VALUES_CAP:
        return ordered
    steps = SECONDS_VALUES_CAP - 1
    return stats.quantiles(ordered, [i / steps for i in range(SECONDS_VALUES_CAP)])


def update_summary(
    model_id: int, gpu_id: int, configuration_id: int, synthetic: bool
) -> Summary | None:
    """Recompute one group's summary and its results' outlier flags; idempotent.

    Returns the summary, or None when the group has no counted results (and so no
    summary any more).
    """
    started = timezone.now()
    group = dict(zip(GROUP_FIELDS, (model_id, gpu_id, configuration_id, synthetic), strict=True))
    results = Result.objects.filter(**group)
    rows = [
        dict(zip(_COLUMNS, row, strict=True)) for row in results.counted().values_list(*_COLUMNS)
    ]
    # Results that left the aggregates keep no outlier mark from an earlier computation.
    results.filter(is_outlier=True).exclude(submission__status__in=COUNTED_STATUSES).update(
        is_outlier=False
    )
    if not rows:
        Summary.objects.filter(**group).delete()
        bump_pair_version(model_id, gpu_id)
        return None

    successes = [r for r in rows if r["outcome"] == Outcome.SUCCESS]
    timed = [r for r in successes if r["seconds_median"] is not None]
    flags = stats.outlier_flags([r["seconds_median"] for r in timed])
    changed = {True: [], False: []}
    for row, flag in zip(timed, flags, strict=True):
        if row["is_outlier"] != flag:
            changed[flag].append(row["id"])
        row["is_outlier"] = flag
    for flag, ids in changed.items():
        if ids:
            # update() leaves changed_at alone, so flagging is not itself a change to reconcile.
            Result.objects.filter(pk__in=ids).update(is_outlier=flag)
    clean = [r for r in timed if not r["is_outlier"]]
    seconds = [r["seconds_median"] for r in clean]

    failures = {
        outcome: dict(
            sorted(
                Counter(
                    r["failed_stage"] or "other" for r in rows if r["outcome"] == outcome
                ).items()
            )
        )
        for outcome in {r["outcome"] for r in rows} - {Outcome.SUCCESS}
    }
    outcomes = Counter(r["outcome"] for r in rows)
    values = {
        "n_results": len(rows),
        "n_contributors": len({r["contributor_id"] for r in rows}),
        "n_success": outcomes[Outcome.SUCCESS],
        "n_out_of_memory": outcomes[Outcome.OUT_OF_MEMORY],
        "n_error": outcomes[Outcome.ERROR],
        "n_outliers": len(timed) - len(clean),
        "failures_by_stage": dict(sorted(failures.items())),
        "seconds_median": _median_or_none(seconds),
        "seconds_p10": stats.quantile(seconds, 0.1) if seconds else None,
        "seconds_p90": stats.quantile(seconds, 0.9) if seconds else None,
        "seconds_values": _spread(seconds),
        "energy_joules_per_image_median": _median_or_none(
            [
                r["energy_joules_per_image"]
                for r in clean
                if r["energy_joules_per_image"] is not None
            ]
        ),
    }
    for figure in MEMORY_FIGURES:
        figures = [r[figure] for r in successes if r[figure] is not None]
        values[f"{figure}_median"] = _median_or_none(figures)
        values[f"{figure}_max"] = max(figures, default=None)
    # Distinct versions first: a group has a handful, and parsing each row's would cost O(n).
    newest = {name: _newest({r[field] for r in rows}) for name, field in VERSION_FIELDS.items()}
    values["newest_versions"] = {name: version for name, version in newest.items() if version}
    values["newest_driver_version"] = newest["driver"]
    values["trend"] = _trend(clean)
    offload = Configuration.objects.values_list("offload", flat=True).get(pk=configuration_id)
    values["verdict"] = group_verdict(
        offload, values["n_success"], values["n_out_of_memory"], outcomes[Outcome.SPILLED]
    )
    values["computed_at"] = started - COMPUTED_AT_MARGIN
    summary, _ = Summary.objects.update_or_create(**group, defaults=values)
    bump_pair_version(model_id, gpu_id)
    return summary


def _trend(clean: list[dict]) -> dict[str, dict[str, float]]:
    trend = {}
    for name in TREND_FIELDS:
        by_version: dict[str, list[float]] = defaultdict(list)
        for row in clean:
            if row[VERSION_FIELDS[name]]:
                by_version[row[VERSION_FIELDS[name]]].append(row["seconds_median"])
        trend[name] = {
            version: stats.median(by_version[version])
            for version in sorted(by_version, key=_version_key)
        }
    return trend


def _same_group() -> dict[str, OuterRef]:
    return {
        field.removesuffix("_id"): OuterRef(field.removesuffix("_id")) for field in GROUP_FIELDS
    }


def groups_to_reconcile() -> set[tuple[int, int, int, bool]]:
    """Groups whose summary is out of date: results changed after it was computed, it has
    no counted results left, or counted results have no summary yet."""
    group = _same_group()
    stale = Summary.objects.stale().values_list(*GROUP_FIELDS)
    orphaned = Summary.objects.filter(~Exists(Result.objects.counted().filter(**group)))
    missing = (
        Result.objects.counted()
        .filter(~Exists(Summary.objects.filter(**group)))
        .values_list(*GROUP_FIELDS)
        .distinct()
    )
    return {*stale, *orphaned.values_list(*GROUP_FIELDS), *missing}


def reconcile() -> int:
    """Recompute every group that needs it; returns how many were recomputed."""
    groups = groups_to_reconcile()
    for group in sorted(groups):
        update_summary(*group)
    return len(groups)


# -- the pair version: lets pages know, from the cache alone, that a pair's summaries changed --

# Long-lived: a lost token only costs one re-render.
PAIR_VERSION_TIMEOUT = 7 * 24 * 3600
# Moved by any catalog change too, so a page kept for a slug never outlives the row it showed
# (a renamed card, or a database reloaded under the same Redis).
_CATALOG_VERSION_KEY = "benchmarks:catalog-version"


def _pair_version_key(model_id: int, gpu_id: int) -> str:
    return f"benchmarks:pair-version:{model_id}:{gpu_id}"


def _new_token(cache_key: str) -> None:
    try:
        cache.set(cache_key, uuid.uuid4().hex, PAIR_VERSION_TIMEOUT)
    except Exception:  # the cache only saves work; pages fall back to the database
        logger.warning("Could not move the page token %s.", cache_key, exc_info=True)


def bump_pair_version(model_id: int, gpu_id: int) -> None:
    """Mark the pair's summaries as changed. Now, so the same transaction sees it, and again
    after commit, so a page rendered from the old rows in between is not kept."""
    cache_key = _pair_version_key(model_id, gpu_id)
    _new_token(cache_key)
    transaction.on_commit(lambda: _new_token(cache_key))


def _catalog_changed(**_: object) -> None:
    _new_token(_CATALOG_VERSION_KEY)
    transaction.on_commit(lambda: _new_token(_CATALOG_VERSION_KEY))


for _sender in (ImageModel, Gpu):
    post_save.connect(_catalog_changed, sender=_sender, dispatch_uid=f"pair-version-{_sender}")
    post_delete.connect(_catalog_changed, sender=_sender, dispatch_uid=f"pair-version-{_sender}")


def pair_version(model_id: int, gpu_id: int, *, create: bool = False) -> str | None:
    """A token that changes whenever a summary of the pair is written or deleted, or the
    catalog changes; None when the cache has none (create=True starts one) or cannot be
    reached."""
    keys = [_CATALOG_VERSION_KEY, _pair_version_key(model_id, gpu_id)]
    try:
        tokens = cache.get_many(keys)
        if len(tokens) < len(keys) and create:
            for cache_key in keys:
                cache.add(cache_key, uuid.uuid4().hex, PAIR_VERSION_TIMEOUT)
            tokens = cache.get_many(keys)
    except Exception:
        logger.warning("Could not read the page tokens %s.", keys, exc_info=True)
        return None
    if len(tokens) < len(keys):
        return None
    return ":".join(tokens[cache_key] for cache_key in keys)
