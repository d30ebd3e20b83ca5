"""Summaries per (model, GPU, configuration, synthetic) against hand-computed figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from benchmarks import tasks
from benchmarks.models import Configuration, Contributor, Result, Summary
from benchmarks.services import aggregation, group_stats
from benchmarks.services.aggregation import (
    combine_verdicts,
    reconcile,
    update_summary,
)
from tests.factories import make_result

pytestmark = pytest.mark.django_db


def summarize(result: Result, synthetic: bool | None = None) -> Summary | None:
    return update_summary(
        result.model_id,
        result.gpu_id,
        result.configuration_id,
        result.synthetic if synthetic is None else synthetic,
    )


@pytest.fixture
def contributors(catalog) -> list[Contributor]:
    return [
        Contributor.objects.create(key_id=f"kb1_{i:032x}", public_key=f"{i:064x}") for i in range(3)
    ]


@pytest.fixture
def mixed_group(contributors) -> list[Result]:
    """Six successes (one a slow outlier), two out-of-memory results and one error."""
    a, b, c = contributors
    seconds = [2.0, 2.1, 1.9, 2.2, 2.0, 9.0]
    energy = [700.0, 710.0, 720.0, 730.0, 740.0, 2000.0]
    drivers = ["575.64", "580.95.05", "580.105.08", "580.95.05", "580.95.05", "575.64"]
    diffusers = ["0.41.0", "0.42.1", "0.42.1", "0.42.1", "0.42.1", "0.42.1"]
    results = [
        make_result(
            seconds=s,
            contributor=[a, b, c][i % 3],
            peak_allocated_mb=100.0 * (i + 1),
            peak_device_mb=1000.0 + i,
            energy_joules_per_image=energy[i],
            driver_version=drivers[i],
            diffusers_version=diffusers[i],
            torch_version="2.9.1+cu128",
            agent_version="0.1.0",
        )
        for i, s in enumerate(seconds)
    ]
    results += [
        make_result(outcome="out_of_memory", failed_stage="vae_decode", contributor=a,
                    peak_allocated_mb=99999.0, driver_version="590.1"),
        make_result(outcome="out_of_memory", failed_stage="denoising", contributor=b),
        make_result(outcome="error", failed_stage="load", contributor=a),
    ]  # fmt: skip
    return results


def test_a_group_summary_matches_hand_computed_figures(mixed_group):
    summary = summarize(mixed_group[0])

    # Medians 2.0 2.1 1.9 2.2 2.0 9.0: median 2.05, MAD 0.1, so 9.0 scores
    # 0.6745 * 6.95 / 0.1 = 46.9 (an outlier) and the others at most 1.01.
    assert summary.n_results == 9
    assert summary.n_contributors == 3
    assert (summary.n_success, summary.n_out_of_memory, summary.n_error) == (6, 2, 1)
    assert (summary.n_outliers, summary.n_timed) == (1, 5)
    assert summary.failures_by_stage == {
        "error": {"load": 1},
        "out_of_memory": {"denoising": 1, "vae_decode": 1},
    }
    # Without the outlier: 1.9 2.0 2.0 2.1 2.2.
    assert summary.seconds_median == pytest.approx(2.0)
    assert summary.seconds_p10 == pytest.approx(1.94)
    assert summary.seconds_p90 == pytest.approx(2.16)
    assert summary.seconds_values == pytest.approx([1.9, 2.0, 2.0, 2.1, 2.2])
    # Memory over every success (outliers are slow, not wrong about memory); failures'
    # peaks stay out.
    assert summary.peak_allocated_mb_median == pytest.approx(350.0)
    assert summary.peak_allocated_mb_max == 600.0
    assert summary.peak_device_mb_median == pytest.approx(1002.5)
    assert summary.peak_device_mb_max == 1005.0
    assert summary.peak_rss_mb_median is None
    assert summary.energy_joules_per_image_median == pytest.approx(720.0)
    assert summary.newest_versions == {
        "driver": "590.1",
        "torch": "2.9.1+cu128",
        "diffusers": "0.42.1",
        "agent": "0.1.0",
    }
    assert summary.trend == {
        "driver": {"575.64": 2.0, "580.95.05": pytest.approx(2.1), "580.105.08": 1.9},
        "diffusers": {"0.41.0": 2.0, "0.42.1": pytest.approx(2.05)},
    }
    assert summary.verdict == "runs"


def test_the_outlier_is_flagged_without_counting_as_a_change(mixed_group):
    slow = mixed_group[5]
    changed_at = slow.changed_at

    summarize(slow)

    slow.refresh_from_db()
    assert slow.is_outlier is True
    assert slow.changed_at == changed_at
    assert Result.objects.filter(is_outlier=True).count() == 1


def test_recomputing_changes_nothing(mixed_group):
    first = summarize(mixed_group[0])
    again = summarize(mixed_group[0])

    fields = [f.name for f in Summary._meta.fields if f.name not in ("computed_at",)]
    assert [getattr(again, f) for f in fields] == [getattr(first, f) for f in fields]
    assert Summary.objects.count() == 1


@pytest.mark.parametrize("status", ["withdrawn", "rejected", "flagged"])
def test_results_that_do_not_count_leave_the_aggregates(contributors, status):
    kept = make_result(seconds=2.0)
    make_result(seconds=3.0)
    make_result(seconds=50.0, status=status)

    summary = summarize(kept)

    assert (summary.n_results, summary.seconds_median) == (2, 2.5)


def test_a_result_that_stops_counting_loses_its_outlier_mark(mixed_group):
    slow = mixed_group[5]
    summarize(slow)
    slow.submission.status = "rejected"
    slow.submission.save()

    summarize(slow)

    slow.refresh_from_db()
    assert slow.is_outlier is False


def test_a_group_without_counted_results_has_no_summary(catalog):
    result = make_result()
    summarize(result)
    result.submission.status = "withdrawn"
    result.submission.save()

    assert summarize(result) is None
    assert not Summary.objects.exists()


def test_synthetic_results_get_a_summary_of_their_own(catalog):
    real = make_result(seconds=2.0)
    synthetic = make_result(seconds=5.0, synthetic=True)

    summarize(real)
    summarize(synthetic)

    by_kind = {s.synthetic: s.seconds_median for s in Summary.objects.all()}
    assert by_kind == {False: 2.0, True: 5.0}


@pytest.mark.parametrize(
    ("offload", "outcomes", "verdict"),
    [
        ("none", ["success", "out_of_memory"], "runs"),
        ("model", ["success"], "needs_offload"),
        ("sequential", ["success", "error"], "needs_offload"),
        ("none", ["out_of_memory", "out_of_memory"], "does_not_fit"),
        ("none", ["out_of_memory", "error"], "does_not_fit"),
        ("none", ["error"], "unknown"),
    ],
)
def test_a_groups_verdict_follows_its_outcomes(catalog, offload, outcomes, verdict):
    results = [make_result(configuration={"offload": offload}, outcome=o) for o in outcomes]

    assert summarize(results[0]).verdict == verdict


def test_verdicts_combine_in_order_of_preference():
    assert combine_verdicts([]) == "unknown"
    assert combine_verdicts(["unknown", "does_not_fit"]) == "does_not_fit"
    assert combine_verdicts(["does_not_fit", "needs_offload", "unknown"]) == "needs_offload"
    assert combine_verdicts(["needs_offload", "runs"]) == "runs"


def test_a_large_groups_distribution_is_kept_as_quantiles(catalog, monkeypatch):
    monkeypatch.setattr(group_stats, "SECONDS_VALUES_CAP", 5)
    results = [make_result(seconds=float(s)) for s in range(1, 10)]

    summary = summarize(results[0])

    assert summary.seconds_values == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert summary.n_timed == 9


def test_reconcile_recomputes_stale_groups_and_creates_missing_ones(catalog):
    stale = make_result(seconds=2.0)
    summarize(stale)
    Summary.objects.update(computed_at=timezone.now() - timedelta(hours=1), n_results=42)
    fresh = make_result(gpu="rtx-5090", seconds=1.0)
    summarize(fresh)
    Summary.objects.filter(gpu__slug="rtx-5090").update(
        computed_at=timezone.now() + timedelta(hours=1), n_results=7
    )
    missing = make_result(gpu="rtx-3090", seconds=4.0)

    assert reconcile() == 2

    counts = dict(Summary.objects.values_list("gpu__slug", "n_results"))
    assert counts == {"rtx-4090": 1, "rtx-5090": 7, "rtx-3090": 1}
    assert missing.pk


def test_reconcile_removes_summaries_whose_results_are_gone(catalog):
    result = make_result()
    summarize(result)
    result.submission.delete()

    assert reconcile() == 1
    assert not Summary.objects.exists()


def test_after_reconcile_nothing_is_left_to_reconcile(mixed_group):
    reconcile()
    Summary.objects.update(computed_at=timezone.now())

    assert aggregation.groups_to_reconcile() == set()


def test_the_update_task_runs_the_service(catalog):
    result = make_result()

    tasks.update_summary.delay(result.model_id, result.gpu_id, result.configuration_id, False)

    assert Summary.objects.get().n_results == 1


def test_the_reconcile_task_reports_how_many_groups_it_recomputed(catalog):
    make_result()
    make_result(configuration=dict(Configuration.objects.filter(offload="model", steps=4).values(
        "runtime", "precision", "offload", "width", "height", "steps").get()))  # fmt: skip

    assert tasks.reconcile_summaries.delay().get() == 2
