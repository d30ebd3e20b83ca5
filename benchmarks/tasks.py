"""Celery tasks of the benchmarks app: thin wrappers that take primary keys."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.core.cache import cache
from django.db import transaction
from kombu.exceptions import OperationalError

from benchmarks.services import aggregation, consensus, snapshots

log = logging.getLogger(__name__)

# How long a queued update holds its group's place if its task is lost; reconcile catches
# the group up meanwhile.
QUEUED_SECONDS = 600


def _queued_key(group: tuple) -> str:
    return "summary-update-queued:" + ":".join(str(part) for part in group)


class SummaryUpdateTask(DjangoTask):
    """Queued after the commit, at most one per group at a time, and never a 500.

    An update takes every change its group has when it runs, so a change made while one is
    queued needs no update of its own. When the broker is unreachable the change is left to
    the periodic reconcile: by the time the callback runs the data is committed, and an
    unreachable broker must not turn the request into a 500.
    """

    def delay_on_commit(self, *group) -> None:
        def send() -> None:
            key = _queued_key(group)
            # False: one is queued already; None (the cache is down): queue it anyway.
            if cache.add(key, 1, QUEUED_SECONDS) is False:
                return
            try:
                self.delay(*group)
            except OperationalError:
                cache.delete(key)
                log.warning("broker unreachable: %s%r left for reconcile", self.name, group)
            except Exception:
                # Eagerly run (the embedded defaults), the task itself fails here, e.g. on a
                # busy SQLite: the change is committed, and the answer must say so.
                cache.delete(key)
                log.exception("%s%r failed after the commit; left for reconcile", self.name, group)

        transaction.on_commit(send)


@shared_task(base=SummaryUpdateTask)
def update_summary(model_id: int, gpu_id: int, configuration_id: int, synthetic: bool) -> None:
    """Bring one group's summary up to date (queued on commit by every change to its
    results)."""
    # From here on a new change queues another update: this one may have read too early.
    cache.delete(_queued_key((model_id, gpu_id, configuration_id, synthetic)))
    aggregation.update_summary(model_id, gpu_id, configuration_id, synthetic)


@shared_task
def reconcile_summaries() -> int:
    """Recompute every group that needs it, exactly; beat runs it, so a lost task is
    caught up and sketched summaries are made exact again."""
    return aggregation.reconcile()


@shared_task(base=SummaryUpdateTask)
def update_consensus(model_id: int, protocol_version: str, runtime: str, precision: str) -> None:
    """Recompute one consensus image and the flags of the results it judges (queued on
    commit after a result with an image hash is stored)."""
    cache.delete(_queued_key((model_id, protocol_version, runtime, precision)))
    consensus.update(model_id, protocol_version, runtime, precision)


@shared_task
def reconcile_consensus() -> int:
    """Recompute every consensus image; beat runs it, so a lost task is caught up."""
    return consensus.reconcile()


@shared_task
def write_snapshot() -> str:
    """The nightly open-data snapshot (beat): what `python manage.py snapshot` writes."""
    return str(snapshots.write_snapshot())
