"""Pages and API under load: the check page and the checks API at 100k and 1M results.

gunicorn (2 sync workers, production settings, PostgreSQL, Redis cache) on the loopback;
wrk at 16 connections for a fixed time per URL; a bare Django view in the same run is the
baseline. Then the cost of a change: a fresh result is added and its summary updated (as
the Celery task does), which moves the data version, and the next request for the check
page is timed (its first render after the change); and wrk on the check page again while
a summary changes every CHANGE_SECONDS (the launch traffic model in docs/benchmarks.md,
several times over). Targets at 1M results: the check page's warm p99 under 25 ms at 16
connections, its throughput at least 30% of the bare view's, and its first render after a
summary change under 150 ms.
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from perf import common, dataset

SIZES = (100_000, 1_000_000)
CONNECTIONS = 16
PAIR = f"{dataset.HOT_MODEL}/{dataset.HOT_GPU}"
HOT_CONFIGURATION = ("diffusers", "bf16", "none")
URLS = {
    "bare view": "/perf/bare",
    "check page": f"/check/{PAIR}/",
    "checks API": f"/api/v1/checks/{PAIR}",
}
THROUGHPUT_TARGET = 0.3
P99_TARGET_MS = 25.0
FIRST_RENDER_TARGET_MS = 150.0
FIRST_RENDERS = 10
WARM_REQUESTS = 8
# A summary change this often while wrk runs: 3,600 per hour.
CHANGE_SECONDS = 1.0


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


def _change_summary() -> None:
    """One fresh result in the hot group, and the summary update its task would run."""
    from benchmarks.services.aggregation import update_summary

    ids = dataset.catalog_ids()
    dataset.load(1, hot_share=1.0, hot_configuration=HOT_CONFIGURATION, contributors=1, fresh=True)
    update_summary(
        ids.models[dataset.HOT_MODEL],
        ids.gpus[dataset.HOT_GPU][0],
        ids.configurations[HOT_CONFIGURATION],
        False,
    )


def _first_renders(port: int) -> list[float]:
    """Milliseconds of the check page's first request after each of a few summary changes.

    Untimed first: after a change, several requests at once, so that every worker draws a
    plot (a worker that never drew one imports matplotlib for it, about half a second once
    in the worker's life)."""
    url = f"http://127.0.0.1:{port}{URLS['check page']}"
    with ThreadPoolExecutor(WARM_REQUESTS) as pool:
        for _ in range(2):
            _change_summary()
            list(pool.map(common.get, [url] * WARM_REQUESTS))
    timings = []
    for _ in range(FIRST_RENDERS):
        _change_summary()
        started = time.perf_counter()
        status, _ = common.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"the check page answered {status} after a summary change")
    return timings


def _under_changes(port: int, seconds: float) -> tuple[common.Load, int]:
    """wrk on the check page while a summary changes every CHANGE_SECONDS."""
    from django.db import connection

    done = threading.Event()
    changes = [0]

    def change() -> None:
        try:
            while not done.wait(CHANGE_SECONDS):
                _change_summary()
                changes[0] += 1
        finally:
            connection.close()

    changer = threading.Thread(target=change)
    changer.start()
    try:
        load = common.wrk(f"http://127.0.0.1:{port}{URLS['check page']}", seconds, CONNECTIONS)
    finally:
        done.set()
        changer.join()
    return load, changes[0]


def run(database: str, redis: str, seconds: float = 10.0, sizes=SIZES) -> dict:
    common.fresh_database(database)
    figures: dict[int, dict[str, common.Load]] = {}
    renders: dict[int, list[float]] = {}
    changing: dict[int, tuple[common.Load, int]] = {}
    port = common.free_port()
    env = common.production_environment(database, redis, port)
    for size in sizes:
        _fill(size)
        with common.gunicorn(env, port):
            figures[size] = _measure(port, seconds)
            renders[size] = _first_renders(port)
            changing[size] = _under_changes(port, seconds)
        print(f"\n  {size:,} results, {CONNECTIONS} connections, {seconds:g} s per URL:")
        for name, load in figures[size].items():
            print(f"    {name:<11} {load.line()}")
        load, changes = changing[size]
        print(f"    check page while {changes} summary changes: {load.line()}")
        print(
            f"    first render after a summary change: median "
            f"{statistics.median(renders[size]):.0f} ms, slowest {max(renders[size]):.0f} ms "
            f"(of {len(renders[size])})"
        )
    return _verdict(figures, renders, changing)


def _verdict(
    figures: dict[int, dict[str, common.Load]],
    renders: dict[int, list[float]],
    changing: dict[int, tuple[common.Load, int]],
) -> dict:
    largest = max(figures)
    at_largest = figures[largest]
    page = at_largest["check page"]
    ratio = page.requests_per_second / at_largest["bare view"].requests_per_second
    first = statistics.median(renders[largest])
    checks = {
        f"p99 {page.p99_ms:.1f} ms (target < {P99_TARGET_MS:g} ms)": page.p99_ms < P99_TARGET_MS,
        f"{ratio:.0%} of the bare view's throughput (target >= {THROUGHPUT_TARGET:.0%})": (
            ratio >= THROUGHPUT_TARGET
        ),
        f"first render after a summary change {first:.0f} ms, median of "
        f"{len(renders[largest])} (slowest {max(renders[largest]):.0f} ms; "
        f"target < {FIRST_RENDER_TARGET_MS:g} ms)": first < FIRST_RENDER_TARGET_MS,
    }
    print(f"\n  check page at {largest:,} results:")
    for text, met in checks.items():
        print(f"    {text}: {'met' if met else 'NOT met'}")
    return {
        "figures": {
            size: {name: vars(load) for name, load in loads.items()}
            for size, loads in figures.items()
        },
        "first_renders_ms": renders,
        "under_changes": {
            size: {"load": vars(load), "changes": changes}
            for size, (load, changes) in changing.items()
        },
        "throughput_ratio": ratio,
        "p99_ms": page.p99_ms,
        "first_render_median_ms": first,
        "met": all(checks.values()),
        "headline": (
            f"check page at {largest:,} results: {ratio:.0%} of bare "
            f"({page.requests_per_second:.0f} vs "
            f"{at_largest['bare view'].requests_per_second:.0f} req/s), p99 {page.p99_ms:.1f} ms, "
            f"first render after a change {first:.0f} ms (median)"
        ),
    }
