"""Large groups: each new result is folded into the summary's counters and sketches without
reading the others; a withdrawal, a moderation or reconcile makes the summary exact again;
and one update per group is queued at a time."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benchmarks import tasks
from benchmarks.models import Contributor, Result, Summary
from benchmarks.services import aggregation, group_stats
from benchmarks.services.aggregation import groups_to_reconcile, reconcile, update_summary
from tests.factories import make_result
from tests.test_group_stats import assert_within_sketch_error

pytestmark = pytest.mark.django_db

SKETCH_FROM = 30


@pytest.fixture(autouse=True)
def small_sketch_threshold(monkeypatch):
    monkeypatch.setattr(aggregation, "SKETCH_FROM", SKETCH_FROM)


@pytest.fixture
def contributors(catalog) -> list[Contributor]:
    return [
        Contributor.objects.create(key_id=f"kb1_{i:032x}", public_key=f"{i:064x}")
        for i in range(12)
    ]


def add(contributors: list[Contributor], i: int, **fields) -> Result:
    seconds = 2.0 + (i * 37 % 20) / 100  # 2.00 to 2.19, none near the outlier threshold
    return make_result(
        seconds=seconds,
        contributor=contributors[i % len(contributors)],
        peak_allocated_mb=18000.0 + (i * 53 % 300),
        energy_joules_per_image=700.0 + (i * 11 % 40),
        driver_version=["575.64.03", "580.95.05"][i % 2],
        diffusers_version="0.42.1",
        **fields,
    )


def group_of(result: Result) -> tuple:
    return (result.model_id, result.gpu_id, result.configuration_id, result.synthetic)


@pytest.fixture
def large_group(contributors) -> list[Result]:
    made = [add(contributors, i) for i in range(SKETCH_FROM)]
    update_summary(*group_of(made[0]))
    return made


def test_a_large_group_takes_a_new_result_without_reading_the_others(
    large_group, contributors, monkeypatch
):
    taken = []
    fold = group_stats.fold
    monkeypatch.setattr(
        group_stats, "fold", lambda previous, state, rows, *rest: taken.append(len(rows)) or
        fold(previous, state, rows, *rest)
    )  # fmt: skip
    monkeypatch.setattr(group_stats, "exact", None)  # the exact path would fail

    new = add(contributors, 100)
    with CaptureQueriesContext(connection) as queries:
        summary = update_summary(*group_of(new))

    assert taken == [1]
    assert (summary.n_results, summary.n_contributors, summary.exact) == (31, 12, False)
    new.refresh_from_db()
    assert (new.summarized, new.is_outlier) == (True, False)
    # Reading the new result, its contributors, the configuration; writing it, the summary
    # and its sketches: none of it a read of the whole group.
    assert len(queries) <= 14


def test_folded_figures_are_within_the_sketchs_error_of_the_exact_ones(large_group, contributors):
    made = list(large_group)
    for i in range(SKETCH_FROM, 90):
        made.append(add(contributors, i))
        update_summary(*group_of(made[0]))
    made.append(make_result(outcome="out_of_memory", contributor=contributors[0]))
    folded = update_summary(*group_of(made[0]))
    assert folded.exact is False

    exact = aggregation.recompute_summary(*group_of(made[0]))

    seconds = [r.seconds_median for r in made if r.seconds_median is not None]
    assert exact.exact is True
    for name in ("n_results", "n_contributors", "n_success", "n_out_of_memory", "n_timed",
                 "n_outliers", "failures_by_stage", "newest_versions", "verdict",
                 "peak_allocated_mb_max"):  # fmt: skip
        assert getattr(folded, name) == getattr(exact, name), name
    assert folded.n_results == 91
    assert folded.failures_by_stage == {"out_of_memory": {"vae_decode": 1}}
    for name, q in (("seconds_median", 0.5), ("seconds_p10", 0.1), ("seconds_p90", 0.9)):
        assert_within_sketch_error(getattr(folded, name), seconds, q)
    assert_within_sketch_error(
        folded.peak_allocated_mb_median,
        [r.peak_allocated_mb for r in made if r.peak_allocated_mb is not None],
        0.5,
    )
    assert_within_sketch_error(
        folded.energy_joules_per_image_median,
        [r.energy_joules_per_image for r in made if r.energy_joules_per_image is not None],
        0.5,
    )
    assert sorted(folded.trend["driver"]) == ["575.64.03", "580.95.05"]


def test_counts_are_true_counts_past_the_distributions_cap(large_group, contributors, monkeypatch):
    monkeypatch.setattr(group_stats, "SECONDS_VALUES_CAP", 10)
    for i in range(SKETCH_FROM, 45):
        add(contributors, i)
    summary = update_summary(*group_of(large_group[0]))

    assert (summary.n_timed, len(summary.seconds_values)) == (45, 10)


def test_a_withdrawn_result_makes_the_large_groups_summary_exact_again(large_group, contributors):
    made = add(contributors, 200)
    assert update_summary(*group_of(made)).exact is False
    gone = large_group[3]
    gone.submission.status = "withdrawn"
    gone.submission.save()
    Result.objects.filter(pk=gone.pk).update(changed_at=timezone.now())

    summary = update_summary(*group_of(made))

    assert (summary.n_results, summary.exact) == (30, True)
    gone.refresh_from_db()
    assert gone.summarized is False


def test_a_restored_result_is_taken_back(large_group, contributors):
    gone = large_group[3]
    gone.submission.status = "rejected"
    gone.submission.save()
    Result.objects.filter(pk=gone.pk).update(changed_at=timezone.now())
    assert update_summary(*group_of(gone)).n_results == 29
    gone.submission.status = "accepted"
    gone.submission.save()
    Result.objects.filter(pk=gone.pk).update(changed_at=timezone.now())

    assert update_summary(*group_of(gone)).n_results == 30


def test_reconcile_makes_every_folded_summary_exact(large_group, contributors):
    add(contributors, 300)
    update_summary(*group_of(large_group[0]))
    Summary.objects.update(computed_at=timezone.now())
    assert groups_to_reconcile() == {group_of(large_group[0])}

    assert reconcile() == 1

    summary = Summary.objects.get()
    assert (summary.exact, summary.n_results) == (True, 31)


def test_reconcile_takes_results_whose_update_was_lost(large_group, contributors):
    add(contributors, 400)
    Summary.objects.update(computed_at=timezone.now())

    assert groups_to_reconcile() == {group_of(large_group[0])}
    reconcile()
    assert Summary.objects.get().n_results == 31


def test_a_change_while_an_update_is_queued_queues_no_second_one(
    contributors, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(tasks.update_summary, "delay", lambda *group: queued.append(group))
    first, second = add(contributors, 1), add(contributors, 2)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.update_summary.delay_on_commit(*group_of(first))
        tasks.update_summary.delay_on_commit(*group_of(second))
    assert queued == [group_of(first)]

    tasks.update_summary.run(*group_of(first))  # the worker takes it
    with django_capture_on_commit_callbacks(execute=True):
        tasks.update_summary.delay_on_commit(*group_of(second))
    assert queued == [group_of(first), group_of(second)]
    assert Summary.objects.get().n_results == 2
    assert cache.get(tasks._queued_key(group_of(second))) == 1
