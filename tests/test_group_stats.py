"""A large group's figures, folded in one result at a time, against the exact figures of
the same results: counts equal, quantiles within the sketch's stated error."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.services import group_stats
from benchmarks.services.group_stats import SKETCH_ACCURACY, exact, fold

DRIVERS = ("570.86.16", "575.64.03", "580.95.05", "580.105.08")
DIFFUSERS = ("0.9.0", "0.10.1", "0.42.1")


def results(n: int, seed: int = 7) -> list[dict]:
    """Rows as the aggregation reads them: mostly successes around 2 s (uniform noise, so
    none is near the outlier threshold), every 50th one four times slower, some failures."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        outcome = "success"
        if i % 17 == 3:
            outcome = "out_of_memory"
        elif i % 41 == 5:
            outcome = "error"
        seconds = 2.0 * rng.uniform(0.9, 1.1) * (4 if i % 50 == 7 else 1)
        success = outcome == "success"
        rows.append(
            {
                "id": i + 1,
                "contributor_id": rng.randrange(60),
                "outcome": outcome,
                "failed_stage": "" if success else rng.choice(["vae_decode", "denoising", ""]),
                "seconds_median": seconds if success else None,
                "energy_joules_per_image": 700 * rng.uniform(0.95, 1.05) if success else None,
                **{
                    figure: 18000 * rng.uniform(0.97, 1.03) + 100 * k
                    for k, figure in enumerate(group_stats.MEMORY_FIGURES)
                },
                "driver_version": rng.choice(DRIVERS),
                "torch_version": "2.9.1+cu128",
                "diffusers_version": rng.choice(DIFFUSERS),
                "runtime_version": "",
                "agent_version": rng.choice(["0.1.0", "0.2.0"]),
            }
        )
    return rows


def assert_within_sketch_error(sketched: float, values: list[float], q: float) -> None:
    """The sketch's guarantee: within SKETCH_ACCURACY of the order statistic at the
    quantile's rank (the exact, interpolated quantile lies between the two around it)."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    assert low * (1 - SKETCH_ACCURACY) <= sketched <= high * (1 + SKETCH_ACCURACY), (q, sketched)


@pytest.fixture(scope="module")
def folded_and_exact():
    rows = results(1500)
    first = exact(rows[:300], "none", keep_sketches=True)
    values, state = first.values, first.state
    seen = {r["contributor_id"] for r in rows[:300]}
    for row in rows[300:]:
        computed = fold(values, state, [row], int(row["contributor_id"] not in seen), "none")
        seen.add(row["contributor_id"])
        values, state = computed.values, computed.state
    return rows, values, exact(rows, "none").values


def test_counts_and_largest_values_are_exact_when_folded_one_result_at_a_time(folded_and_exact):
    rows, folded, truth = folded_and_exact

    exact_names = [
        "n_results",
        "n_contributors",
        "n_success",
        "n_out_of_memory",
        "n_error",
        "n_outliers",
        "n_timed",
        "failures_by_stage",
        "newest_versions",
        "verdict",
        *(f"{figure}_max" for figure in group_stats.MEMORY_FIGURES),
    ]
    assert {name: folded[name] for name in exact_names} == {
        name: truth[name] for name in exact_names
    }
    slow = [r for r in rows if r["outcome"] == "success" and r["seconds_median"] > 5]
    assert truth["n_outliers"] == len(slow) == 27
    assert truth["newest_versions"]["diffusers"] == "0.42.1"
    assert truth["newest_versions"]["driver"] == "580.105.08"


def test_quantiles_folded_one_result_at_a_time_are_within_the_sketchs_error(folded_and_exact):
    rows, folded, truth = folded_and_exact
    clean = [
        r
        for r in rows
        if r["outcome"] == "success" and r["seconds_median"] < 5  # the slow ones are outliers
    ]
    seconds = [r["seconds_median"] for r in clean]
    successes = [r for r in rows if r["outcome"] == "success"]

    for name, q in (("seconds_median", 0.5), ("seconds_p10", 0.1), ("seconds_p90", 0.9)):
        assert_within_sketch_error(folded[name], seconds, q)
        assert_within_sketch_error(truth[name], seconds, q)
    assert len(folded["seconds_values"]) == len(truth["seconds_values"]) == 200
    steps = len(folded["seconds_values"]) - 1
    for i in range(0, steps + 1, 7):
        assert_within_sketch_error(folded["seconds_values"][i], seconds, i / steps)
    assert_within_sketch_error(
        folded["energy_joules_per_image_median"],
        [r["energy_joules_per_image"] for r in clean],
        0.5,
    )
    for figure in group_stats.MEMORY_FIGURES:
        assert_within_sketch_error(folded[f"{figure}_median"], [r[figure] for r in successes], 0.5)
    for dimension, field in (("driver", "driver_version"), ("diffusers", "diffusers_version")):
        assert list(folded["trend"][dimension]) == list(truth["trend"][dimension])
        for version, median in folded["trend"][dimension].items():
            by_version = [r["seconds_median"] for r in clean if r[field] == version]
            assert_within_sketch_error(median, by_version, 0.5)


def test_versions_sort_as_versions_not_as_text():
    ordered = sorted(["0.10.1", "580.105.08", "0.9.0", "not a version", "580.95.05"],
                     key=group_stats.version_key)  # fmt: skip

    assert ordered == ["not a version", "0.9.0", "0.10.1", "580.95.05", "580.105.08"]
    assert group_stats.newest(["2.9.1+cu128", "2.10.0", ""]) == "2.10.0"


def test_failures_are_counted_by_outcome_then_stage_for_every_outcome():
    rows = results(6)
    for row, (outcome, stage) in zip(
        rows,
        [("out_of_memory", "vae_decode"), ("out_of_memory", "vae_decode"), ("error", ""),
         ("spilled", "denoising"), ("success", ""), ("success", "")],
        strict=True,
    ):  # fmt: skip
        row["outcome"], row["failed_stage"] = outcome, stage

    figures = exact(rows, "none").values

    assert figures["failures_by_stage"] == {
        "error": {"other": 1},
        "out_of_memory": {"vae_decode": 2},
        "spilled": {"denoising": 1},
    }
    assert (figures["n_results"], figures["n_success"], figures["verdict"]) == (6, 2, "runs")


def test_a_configuration_that_only_spilled_or_ran_out_of_memory_does_not_fit():
    rows = results(2)
    rows[0]["outcome"], rows[1]["outcome"] = "spilled", "error"

    assert exact(rows, "none").values["verdict"] == "does_not_fit"


def test_values_added_at_once_fill_the_same_bins_as_added_one_by_one():
    rng = random.Random(3)
    values = [rng.lognormvariate(0.7, 0.3) for _ in range(5000)] + [0.0, 0.0, 2.0, 2.0]
    one_by_one, at_once = group_stats.Sketches(), group_stats.Sketches()
    for value in values:
        one_by_one.add("seconds", value)
    at_once.add_many("seconds", values)

    qs = [i / 100 for i in range(101)]
    assert at_once.quantiles("seconds", qs) == one_by_one.quantiles("seconds", qs)
