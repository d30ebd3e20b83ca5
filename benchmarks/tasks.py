"""Celery tasks of the benchmarks app: thin wrappers that take primary keys."""

from __future__ import annotations

from celery import shared_task

from benchmarks.services import aggregation


@shared_task
def update_summary(model_id: int, gpu_id: int, configuration_id: int, synthetic: bool) -> None:
    """Recompute one group's summary (queued on commit by every change to its results)."""
    aggregation.update_summary(model_id, gpu_id, configuration_id, synthetic)


@shared_task
def reconcile_summaries() -> int:
    """Recompute every out-of-date group; beat runs it, so a lost task is caught up."""
    return aggregation.reconcile()
