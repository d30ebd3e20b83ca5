"""Aggregation: the time to recompute one group's summary as the group grows.

One (model, GPU, configuration) group is grown to 1k, 10k, 100k and 1M counted results
(bulk SQL, the same rows the service writes) and
`benchmarks.services.aggregation.update_summary` is timed at each size: the first call
(which also writes the outlier flags) and then the median of repeated calls, which is what
each new result costs. Target: 1M no more than 10 times 1k.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time

from perf import common, dataset

SIZES = (1_000, 10_000, 100_000, 1_000_000)
TARGET_RATIO = 10.0
CONFIGURATION = ("diffusers", "bf16", "none")


def _repeats(size: int) -> int:
    return 7 if size <= 10_000 else 5 if size <= 100_000 else 3


def run(database: str, sizes=SIZES) -> dict:
    from django.db import connection

    from benchmarks.models import Summary
    from benchmarks.services.aggregation import update_summary

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
        first_started = time.perf_counter()
        update_summary(*group)
        first = time.perf_counter() - first_started
        runs = []
        for _ in range(_repeats(size)):
            began = time.perf_counter()
            update_summary(*group)
            runs.append(time.perf_counter() - began)
        summary = Summary.objects.get(
            model_id=group[0], gpu_id=group[1], configuration_id=group[2], synthetic=False
        )
        timings[size] = {
            "first_s": first,
            "median_s": statistics.median(runs),
            "min_s": min(runs),
            "n_results": summary.n_results,
            "n_outliers": summary.n_outliers,
        }
        print(
            f"    {size:>9,} results: {statistics.median(runs) * 1000:9.1f} ms per update "
            f"(min {min(runs) * 1000:.1f}, first {first * 1000:.1f} with outlier flags written; "
            f"summary counts {summary.n_results:,} results, {summary.n_outliers:,} outliers)",
            flush=True,
        )
    connection.close()
    return _verdict(timings)


def _verdict(timings: dict[int, dict[str, float]]) -> dict:
    smallest, largest = min(timings), max(timings)
    ratio = timings[largest]["median_s"] / timings[smallest]["median_s"]
    # The exponent k in time ~ n^k between the smallest and largest group.
    exponent = math.log(ratio) / math.log(largest / smallest)
    steps = sorted(timings)
    growth = ", ".join(
        f"x{timings[b]['median_s'] / timings[a]['median_s']:.1f} for x{b // a}"
        for a, b in itertools.pairwise(steps)
    )
    met = ratio <= TARGET_RATIO
    per_result_us = timings[largest]["median_s"] / largest * 1e6
    print(
        f"\n  growth: {growth}; overall time ~ n^{exponent:.2f} "
        f"({per_result_us:.1f} us per result at {largest:,})"
    )
    print(
        f"  {largest:,} vs {smallest:,}: x{ratio:.0f} (target <= x{TARGET_RATIO:g}: "
        f"{'met' if met else 'NOT met'})"
    )
    return {
        "timings": timings,
        "ratio": ratio,
        "exponent": exponent,
        "met": met,
        "headline": (
            f"update_summary {timings[smallest]['median_s'] * 1000:.0f} ms at {smallest:,}, "
            f"{timings[largest]['median_s'] * 1000:.0f} ms at {largest:,} (x{ratio:.0f}, "
            f"~n^{exponent:.2f})"
        ),
    }
