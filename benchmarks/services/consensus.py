"""The consensus image of each (model, protocol, runtime, precision), and the results whose
image strays from it (klein_bench.contract.consensus has the rule).

Votes are the accepted, real (not synthetic) results at the model's standard size and
steps that carry a perceptual hash, one vote per independent contributor
(group_stats.independent). A result whose hash lies more than THRESHOLD_BITS from the
consensus gets `image_differs` and leaves the aggregates; when the consensus moves, the
flags that change move their results' changed_at and queue their groups' summaries.

A new result is judged against the stored consensus as it is stored, so a straying image
never counts even for a moment; `update` (queued after each new hash, and run by beat for
every key) recomputes the consensus itself. Its queries read distinct (contributor, card,
hash) triples and distinct hashes, which stay few however many results there are: honest
runs of one configuration repeat the same hash.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from klein_bench.contract import consensus

from benchmarks.caching import data_changed
from benchmarks.models import (
    COUNTED_STATUSES,
    ImageConsensus,
    ImageModel,
    Result,
)
from benchmarks.services import group_stats
from benchmarks.services.aggregation import GROUP_FIELDS

Key = tuple[int, str, str, str]


def _at_standard_size(results: QuerySet[Result]) -> QuerySet[Result]:
    return results.filter(
        configuration__width=F("model__default_width"),
        configuration__height=F("model__default_height"),
        configuration__steps=F("model__default_steps"),
    )


def _with_hash(key: Key) -> QuerySet[Result]:
    model_id, protocol_version, runtime, precision = key
    return _at_standard_size(
        Result.objects.filter(
            model_id=model_id,
            protocol_version=protocol_version,
            configuration__runtime=runtime,
            configuration__precision=precision,
            synthetic=False,
        ).exclude(image_phash="")
    )


def key_of(result: Result) -> Key:
    c = result.configuration
    return (result.model_id, result.protocol_version, c.runtime, c.precision)


def judged(result: Result) -> bool:
    """Whether this result's image can be held against a consensus: a real run at the
    model's standard size with a hash."""
    c = result.configuration
    m = result.model
    return bool(
        result.image_phash
        and not result.synthetic
        and (c.width, c.height, c.steps) == (m.default_width, m.default_height, m.default_steps)
    )


def strays(result: Result) -> bool:
    """Whether a result about to be stored has an image the stored consensus disowns."""
    if not judged(result):
        return False
    model_id, protocol_version, runtime, precision = key_of(result)
    found = ImageConsensus.objects.filter(
        model_id=model_id, protocol_version=protocol_version, runtime=runtime, precision=precision
    ).first()
    if found is None:
        return False
    stored = consensus.Consensus(found.phash, found.n_agreeing, found.n_contributors)
    return consensus.is_hash(result.image_phash) and stored.strays(result.image_phash)


def _votes(key: Key) -> dict[int, list[str]]:
    triples = (
        _with_hash(key)
        .filter(submission__status__in=COUNTED_STATUSES)
        .order_by()
        .values_list("contributor_id", "gpu_uuid_hash", "image_phash")
        .distinct()
    )
    rows = [
        {"id": n, "contributor_id": c, "gpu_uuid_hash": g, "image_phash": h}
        for n, (c, g, h) in enumerate(triples)
    ]
    who = group_stats.independent(rows)
    votes: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        votes[who[row["id"]]].append(row["image_phash"])
    return votes


def _store(key: Key, found: consensus.Consensus | None) -> None:
    model_id, protocol_version, runtime, precision = key
    where = {
        "model_id": model_id,
        "protocol_version": protocol_version,
        "runtime": runtime,
        "precision": precision,
    }
    stored = ImageConsensus.objects.filter(**where).first()
    if found is None:
        if stored is not None:
            stored.delete()
            data_changed()
        return
    figures = {
        "phash": found.phash,
        "n_agreeing": found.agreeing,
        "n_contributors": found.contributors,
    }
    if stored is None or any(getattr(stored, k) != v for k, v in figures.items()):
        ImageConsensus.objects.update_or_create(**where, defaults=figures)
        data_changed()


def _reflag(key: Key, found: consensus.Consensus | None) -> int:
    """Set image_differs on every result of the key as the consensus says; returns how
    many changed, after queueing their groups' summary updates."""
    # Here, not above: the tasks module imports this one.
    from benchmarks.tasks import update_summary

    results = _with_hash(key)
    hashes = set(results.order_by().values_list("image_phash", flat=True).distinct())
    straying = {h for h in hashes if found and consensus.is_hash(h) and found.strays(h)}
    now_differ = Q(image_differs=False, image_phash__in=straying)
    now_agree = Q(image_differs=True) & ~Q(image_phash__in=straying)
    groups = set(results.filter(now_differ | now_agree).order_by().values_list(*GROUP_FIELDS))
    changed = 0
    for change, differs in ((now_differ, True), (now_agree, False)):
        ids = list(results.filter(change).values_list("pk", flat=True))
        changed += Result.objects.filter(pk__in=ids).update(
            image_differs=differs, changed_at=timezone.now()
        )
    for group in sorted(groups):
        update_summary.delay_on_commit(*group)
    return changed


def update(model_id: int, protocol_version: str, runtime: str, precision: str) -> dict[str, Any]:
    """Recompute one key's consensus and its results' flags; idempotent."""
    key = (model_id, protocol_version, runtime, precision)
    with transaction.atomic():
        found = consensus.find(_votes(key))
        _store(key, found)
        changed = _reflag(key, found)
    return {"consensus": found.phash if found else None, "changed": changed}


def keys() -> set[Key]:
    """Every key that has results with a hash, or a stored consensus."""
    with_hash = (
        Result.objects.filter(synthetic=False)
        .exclude(image_phash="")
        .order_by()
        .values_list(
            "model_id", "protocol_version", "configuration__runtime", "configuration__precision"
        )
        .distinct()
    )
    stored = ImageConsensus.objects.values_list(
        "model_id", "protocol_version", "runtime", "precision"
    )
    return {*with_hash, *stored}


def reconcile() -> int:
    """Recompute every key (beat runs it, so a lost task is caught up); how many keys."""
    found = keys()
    for key in sorted(found):
        update(*key)
    return len(found)


def for_model(model: ImageModel) -> QuerySet[ImageConsensus]:
    return ImageConsensus.objects.filter(model=model).order_by(
        "protocol_version", "runtime", "precision"
    )
