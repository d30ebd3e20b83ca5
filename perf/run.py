"""Run the platform's benchmarks and print every figure (`make perf`).

    python perf/run.py                  # all four, about 15 minutes
    python perf/run.py pages ingest     # only these
    python perf/run.py pages --quick    # shorter runs and smaller data, to try it out

PERF_DATABASE_URL names the PostgreSQL server and the scratch database (default
postgres://postgres@127.0.0.1:5432/kb_perf); the database is dropped and created again by
each benchmark that needs it and dropped at the end (--keep leaves it). Each run starts its
own memory-only redis-server on a free loopback port. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BENCHMARKS = ("pages", "ingest", "aggregation", "agent", "estimates")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="klein-bench's own speed: pages, ingest, aggregation, agent overhead; "
        "and the estimates' error on held-out cards.",
        epilog="Example: python perf/run.py aggregation --keep",
    )
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs and smaller data, to try it out"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.benchmarks) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"no benchmark called {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return args


def _setup_django(database: str, redis: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DATABASE_URL"] = database
    os.environ["REDIS_URL"] = redis
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _missing_tools(chosen: list[str]) -> list[str]:
    """One sentence per tool the chosen benchmarks need and cannot find."""
    import shutil

    problems = []
    if shutil.which("redis-server") is None:
        problems.append("redis-server is not on the PATH (Debian: apt-get install redis-server).")
    if {"pages", "ingest"} & set(chosen) and shutil.which("wrk") is None:
        problems.append("wrk is not on the PATH (Debian: apt-get install wrk).")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    chosen = args.benchmarks or list(BENCHMARKS)
    from perf import common

    problems = _missing_tools(chosen)
    if problems:
        print("perf: " + " ".join(problems), file=sys.stderr)
        return 2
    database = common.database_url()
    if {"pages", "ingest", "aggregation"} & set(chosen):
        try:
            common.drop_database(database)
        except Exception as exc:  # any connection problem: say where and stop
            print(
                f"perf: cannot reach PostgreSQL for {database.rsplit('@', 1)[-1]} "
                f"({str(exc).strip().splitlines()[0]}); "
                "start it or set PERF_DATABASE_URL.",
                file=sys.stderr,
            )
            return 2
    print(f"klein-bench perf, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {common.machine()}")
    print(f"scratch database: {database.rsplit('@', 1)[-1]}")
    results: dict[str, dict] = {}
    started = time.perf_counter()
    with common.redis_server() as redis:
        if {"pages", "ingest", "aggregation"} & set(chosen):
            _setup_django(database, redis)
        try:
            for name in chosen:
                print(f"\n== {name} ==", flush=True)
                began = time.perf_counter()
                results[name] = _run(name, database, redis, args.quick)
                results[name]["seconds_taken"] = round(time.perf_counter() - began, 1)
                print(f"  ({name} took {results[name]['seconds_taken']:.0f} s)", flush=True)
        finally:
            if not args.keep and "DATABASE_URL" in os.environ:
                from django.db import connections

                connections.close_all()
                common.drop_database(database)
    print(f"\nall done in {time.perf_counter() - started:.0f} s")
    _summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def _run(name: str, database: str, redis: str, quick: bool) -> dict:
    if name == "pages":
        from perf import pages

        if quick:
            return pages.run(database, redis, seconds=3, sizes=(20_000,))
        return pages.run(database, redis)
    if name == "ingest":
        from perf import ingest

        return ingest.run(database, redis, seconds=4 if quick else 15)
    if name == "aggregation":
        from perf import aggregation

        if quick:
            return aggregation.run(database, sizes=(1_000, 10_000, 100_000), rounds=7)
        return aggregation.run(database)
    if name == "estimates":
        from perf import estimates

        return estimates.run(datasets=10 if quick else estimates.DATASETS)
    from perf import agent_overhead

    return agent_overhead.run(rounds=6 if quick else agent_overhead.ROUNDS)


def _summary(results: dict[str, dict]) -> None:
    print("\nsummary against the targets:")
    for name, result in results.items():
        status = "met" if result.get("met") else "NOT met"
        print(f"  {name:<12} {status:<8} {result.get('headline', '')}")


if __name__ == "__main__":
    sys.exit(main())
