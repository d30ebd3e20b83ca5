"""Pages and API under load: the check page and the checks API at 100k and 1M results.

gunicorn (2 sync workers, production settings, PostgreSQL, Redis cache) on the loopback;
wrk at 16 connections for a fixed time per URL; a bare Django view in the same run is the
baseline. Targets: at 1M results the check page keeps at least 50% of the bare view's
throughput, with p99 under 50 ms.
"""

from __future__ import annotations

import time

from perf import common, dataset

SIZES = (100_000, 1_000_000)
CONNECTIONS = 16
PAIR = f"{dataset.HOT_MODEL}/{dataset.HOT_GPU}"
URLS = {
    "bare view": "/perf/bare",
    "check page": f"/check/{PAIR}/",
    "checks API": f"/api/v1/checks/{PAIR}",
}
THROUGHPUT_TARGET = 0.5
P99_TARGET_MS = 50.0


def _fill(total: int) -> float:
    """Grow the results table to `total` rows, then recompute summaries; seconds taken."""
    from benchmarks.services import aggregation

    started = time.perf_counter()
    missing = total - dataset.count_results()
    if missing > 0:
        dataset.load(missing)
    loaded = time.perf_counter()
    groups = aggregation.reconcile()
    reconciled = time.perf_counter()
    dataset.analyze()
    analyzed = time.perf_counter()
    common.log(
        f"{total:,} results: bulk insert {loaded - started:.1f} s, reconcile of {groups} "
        f"groups {reconciled - loaded:.1f} s, vacuum/analyze {analyzed - reconciled:.1f} s"
    )
    return time.perf_counter() - started


def _measure(port: int, seconds: float) -> dict[str, common.Load]:
    base = f"http://127.0.0.1:{port}"
    for path in URLS.values():
        status, _ = common.get(base + path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}, not 200")
    # A short warm-up per URL: both workers connected to PostgreSQL and Redis, caches full.
    for path in URLS.values():
        common.wrk(base + path, 2, CONNECTIONS)
    return {name: common.wrk(base + path, seconds, CONNECTIONS) for name, path in URLS.items()}


def run(database: str, redis: str, seconds: float = 10.0, sizes=SIZES) -> dict:
    common.fresh_database(database)
    figures: dict[int, dict[str, common.Load]] = {}
    port = common.free_port()
    env = common.production_environment(database, redis, port)
    for size in sizes:
        _fill(size)
        with common.gunicorn(env, port):
            figures[size] = _measure(port, seconds)
        print(f"\n  {size:,} results, {CONNECTIONS} connections, {seconds:g} s per URL:")
        for name, load in figures[size].items():
            print(f"    {name:<11} {load.line()}")
    return _verdict(figures)


def _verdict(figures: dict[int, dict[str, common.Load]]) -> dict:
    largest = max(figures)
    at_largest = figures[largest]
    ratio = (
        at_largest["check page"].requests_per_second / at_largest["bare view"].requests_per_second
    )
    p99 = at_largest["check page"].p99_ms
    throughput_met = "met" if ratio >= THROUGHPUT_TARGET else "NOT met"
    p99_met = "met" if p99 < P99_TARGET_MS else "NOT met"
    print(
        f"\n  check page at {largest:,} results: {ratio:.0%} of the bare view's throughput "
        f"(target >= {THROUGHPUT_TARGET:.0%}: {throughput_met}), "
        f"p99 {p99:.1f} ms (target < {P99_TARGET_MS:g} ms: {p99_met})"
    )
    return {
        "figures": {
            size: {name: vars(load) for name, load in loads.items()}
            for size, loads in figures.items()
        },
        "throughput_ratio": ratio,
        "p99_ms": p99,
        "met": ratio >= THROUGHPUT_TARGET and p99 < P99_TARGET_MS,
        "headline": (
            f"check page at {largest:,} results: {ratio:.0%} of bare "
            f"({at_largest['check page'].requests_per_second:.0f} vs "
            f"{at_largest['bare view'].requests_per_second:.0f} req/s), p99 {p99:.1f} ms"
        ),
    }
