"""Aggregation: what one submission's summary update costs as its group grows.

One (model, GPU, configuration) group is grown to 1k, 10k, 100k and 1M counted results
(bulk SQL, the same rows the service writes, arrived over a year). At each size the exact
recomputation that reconcile runs is timed once (it also marks the results and rebuilds the
sketches); then, ROUNDS times, one fresh result is added and
`benchmarks.services.aggregation.update_summary` (what the Celery task runs after a
submission) is timed. Targets: one update at 1M within 2x its cost at 1k, and under 50 ms.
"""

from __future__ import annotations

import itertools
import statistics
import time

from perf import common, dataset

SIZES = (1_000, 10_000, 100_000, 1_000_000)
ROUNDS = 15
RATIO_TARGET = 2.0
MS_TARGET = 50.0
CONFIGURATION = ("diffusers", "bf16", "none")


def _one_update(group: tuple) -> float:
    from benchmarks.services.aggregation import update_summary

    dataset.load(1, hot_share=1.0, hot_configuration=CONFIGURATION, contributors=1, fresh=True)
    started = time.perf_counter()
    update_summary(*group)
    return time.perf_counter() - started


def run(database: str, sizes=SIZES, rounds: int = ROUNDS) -> dict:
    from django.db import connection

    from benchmarks.models import Summary
    from benchmarks.services.aggregation import recompute_summary

    common.fresh_database(database)
    ids = dataset.catalog_ids()
    group = (
        ids.models[dataset.HOT_MODEL],
        ids.gpus[dataset.HOT_GPU][0],
        ids.configurations[CONFIGURATION],
        False,
    )
    timings: dict[int, dict[str, float]] = {}
    for size in sizes:
        started = time.perf_counter()
        dataset.load(size - dataset.count_results(), hot_share=1.0, hot_configuration=CONFIGURATION)
        dataset.analyze()
        common.log(f"group grown to {size:,} results in {time.perf_counter() - started:.1f} s")
        began = time.perf_counter()
        recompute_summary(*group)
        exact = time.perf_counter() - began
        # What autovacuum does after the first recomputation has marked every result.
        dataset.analyze()
        updates = [_one_update(group) for _ in range(rounds)]
        summary = Summary.objects.get(
            model_id=group[0], gpu_id=group[1], configuration_id=group[2], synthetic=False
        )
        timings[size] = {
            "exact_s": exact,
            "median_s": statistics.median(updates),
            "max_s": max(updates),
            "n_results": summary.n_results,
            "exact_after": summary.exact,
        }
        print(
            f"    {size:>9,} results: one update {statistics.median(updates) * 1000:6.1f} ms "
            f"(median of {rounds}, slowest {max(updates) * 1000:.1f}; "
            f"{'exact' if summary.exact else 'sketched'}, {summary.n_results:,} counted); "
            f"exact recomputation {exact:.2f} s",
            flush=True,
        )
    connection.close()
    return _verdict(timings)


def _verdict(timings: dict[int, dict[str, float]]) -> dict:
    smallest, largest = min(timings), max(timings)
    at_largest = timings[largest]["median_s"] * 1000
    ratio = timings[largest]["median_s"] / timings[smallest]["median_s"]
    growth = ", ".join(
        f"x{timings[b]['median_s'] / timings[a]['median_s']:.2f} for x{b // a}"
        for a, b in itertools.pairwise(sorted(timings))
    )
    met = ratio <= RATIO_TARGET and at_largest < MS_TARGET
    print(f"\n  one update as the group grows: {growth}")
    print(
        f"  {largest:,} vs {smallest:,}: x{ratio:.2f} (target <= x{RATIO_TARGET:g}), "
        f"{at_largest:.1f} ms (target < {MS_TARGET:g} ms): {'met' if met else 'NOT met'}"
    )
    return {
        "timings": timings,
        "ratio": ratio,
        "met": met,
        "headline": (
            f"one summary update {timings[smallest]['median_s'] * 1000:.1f} ms at "
            f"{smallest:,}, {at_largest:.1f} ms at {largest:,} (x{ratio:.2f}); exact "
            f"recomputation {timings[largest]['exact_s']:.1f} s at {largest:,}"
        ),
    }
