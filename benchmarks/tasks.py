"""Celery tasks of the benchmarks app: thin wrappers that take primary keys."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.db import transaction
from kombu.exceptions import OperationalError

from benchmarks.services import aggregation

log = logging.getLogger(__name__)


class RobustOnCommitTask(DjangoTask):
    """delay_on_commit that logs a broker failure instead of raising it.

    By the time the callback runs the data is committed: an unreachable broker must not
    turn the request into a 500. The periodic reconcile finds the group and catches up.
    """

    def delay_on_commit(self, *args, **kwargs) -> None:
        def send() -> None:
            try:
                self.delay(*args, **kwargs)
            except OperationalError:
                log.warning("broker unreachable: %s%r left for reconcile", self.name, args)
            except Exception:
                # Eagerly run (the embedded defaults), the task itself fails here, e.g. on a
                # busy SQLite: the change is committed, and the answer must say so.
                log.exception("%s%r failed after the commit; left for reconcile", self.name, args)

        transaction.on_commit(send)


@shared_task(base=RobustOnCommitTask)
def update_summary(model_id: int, gpu_id: int, configuration_id: int, synthetic: bool) -> None:
    """Recompute one group's summary (queued on commit by every change to its results)."""
    aggregation.update_summary(model_id, gpu_id, configuration_id, synthetic)


@shared_task
def reconcile_summaries() -> int:
    """Recompute every out-of-date group; beat runs it, so a lost task is caught up."""
    return aggregation.reconcile()
