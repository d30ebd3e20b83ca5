"""Parallel submissions on the embedded defaults (`make run`: SQLite, tasks in process).

Starts the server on a fresh SQLite data directory as `make run` does (no DATABASE_URL,
no REDIS_URL: tasks run in the web process), then sends rounds of parallel
POST /contribute, each from its own key and connection, released together. For every
answer it checks the database afterwards: an answer that says nothing was stored while
the submission is in the database (or the reverse) is untrue, and counted.

    python perf/sqlite_parallel.py                      # make run's gunicorn, 3 rounds of 50
    python perf/sqlite_parallel.py --server runserver   # Django's runserver instead
    python perf/sqlite_parallel.py --rounds 5 --parallel 100

docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from klein_bench.contract import wire  # noqa: E402

from perf import common  # noqa: E402
from tests.factories import result_payload, runs  # noqa: E402


def _post(port: int, body: bytes) -> tuple[int | str, dict, float]:
    """(status, answer, seconds); the status is the error's name when no answer came."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(
            "POST", "/contribute", body=body, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        content = response.read()
    except OSError as exc:
        return type(exc).__name__, {}, time.monotonic() - started
    finally:
        connection.close()
    try:
        answer = json.loads(content)
    except ValueError:
        answer = {"error": f"not JSON: {content[:80]!r}"}
    return response.status, answer, time.monotonic() - started


def _round(port: int, database: Path, parallel: int) -> dict:
    documents = [
        wire.seal(
            result_payload(timings={"runs": runs(2.0 + i / 100, 2.1, 2.2)}),
            wire.SigningKey.generate(),
        )
        for i in range(parallel)
    ]
    bodies = [wire.encode(document) for document in documents]
    barrier = threading.Barrier(parallel)
    answers: list = [None] * parallel

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = _post(port, bodies[index])

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started

    with sqlite3.connect(database) as connection:
        stored = {
            uuid.UUID(row[0])
            for row in connection.execute("SELECT client_submission_id FROM benchmarks_submission")
        }
    lies = 0
    for document, (status, _, _) in zip(documents, answers, strict=True):
        was_stored = uuid.UUID(document["envelope"]["submission_id"]) in stored
        if (status == 201) != was_stored:
            lies += 1
    latencies = sorted(seconds for _, _, seconds in answers)
    return {
        "statuses": dict(Counter(status for status, _, _ in answers)),
        "stored": sum(uuid.UUID(d["envelope"]["submission_id"]) in stored for d in documents),
        "untrue_answers": lies,
        "wall_s": round(wall, 2),
        "median_s": round(statistics.median(latencies), 2),
        "max_s": round(latencies[-1], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument(
        "--server",
        choices=("make-run", "runserver"),
        default="make-run",
        help="make run's gunicorn (default) or manage.py runserver",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kb-sqlite-") as data:
        env = common.clean_environment(
            KLEIN_BENCH_DATA_DIR=data,
            CONTRIBUTE_RATE_PER_KEY="100000/hour",
            CONTRIBUTE_RATE_PER_IP="100000/hour",
            LOG_LEVEL="WARNING",
        )
        common.manage("migrate", "--no-input", "-v", "0", env=env)
        common.manage("loadcatalog", env=env)
        port = common.free_port()
        if args.server == "runserver":
            command = [sys.executable, "manage.py", "runserver", "--noreload"]
            command.append(f"127.0.0.1:{port}")
        else:
            # The Makefile's RUN_SERVER, without --reload.
            command = [str(common.BIN / "gunicorn"), "config.wsgi", "--workers", "1"]
            command += ["--threads", "8", "--bind", f"127.0.0.1:{port}"]
        with common.started(command, env, args.server) as server:
            deadline = time.monotonic() + 60
            while True:
                try:
                    common.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except OSError:
                    if not server.alive() or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"the server did not start:\n{server.output()}"
                        ) from None
                    time.sleep(0.3)
            database = Path(data) / "klein-bench.sqlite3"
            print(
                f"{args.rounds} rounds of {args.parallel} parallel submissions on SQLite "
                f"({args.server})"
            )
            totals: Counter = Counter()
            for number in range(1, args.rounds + 1):
                figures = _round(port, database, args.parallel)
                print(f"round {number}: {json.dumps(figures)}", flush=True)
                totals["untrue_answers"] += figures["untrue_answers"]
                totals["refused"] += args.parallel - figures["statuses"].get(201, 0)
            print(f"total: {dict(totals)}")
            if "Traceback" in server.output():
                print(server.output()[-4000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
