"""Ingest: signed submissions stored per second, end to end.

gunicorn (2 sync workers, production settings) takes POST /contribute from wrk at 16
connections; a Lua script sends each of several thousand documents, signed beforehand by a
few keys with fresh nonces and submission ids and created seconds before the run, once.
Every accepted request verifies a signature, validates the payload, stores the submission
and the result and queues the summary update in Redis. The rate is counted from the rows
stored and the tasks queued, not from wrk's answers. Target: at least 200 per second.

Then the service runs in this process on the same kind of documents, with timers around
its stages, to show where a request's time goes.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from klein_bench.contract import wire

from perf import common
from tests import processes
from tests.factories import result_payload, runs

TARGET_PER_SECOND = 200.0
CONNECTIONS = 16
KEYS = 8
# Enough documents that none is sent twice even at several times the target rate.
DOCUMENTS_PER_SECOND = 600
CARDS = (
    ("NVIDIA GeForce RTX 4090", 24564),
    ("NVIDIA GeForce RTX 5090", 32607),
    ("NVIDIA H100 80GB HBM3", 81559),
    ("NVIDIA GeForce RTX 3090", 24576),
)

LUA = """
local bodies = {}
local index = 0

init = function(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
end

request = function()
  index = index + 1
  if index > #bodies then
    index = 1
  end
  return wrk.format("POST", "/contribute", {["Content-Type"] = "application/json"}, bodies[index])
end
"""


def _payload(rng: random.Random) -> dict:
    name, memory = rng.choice(CARDS)
    seconds = [round(rng.uniform(1.0, 3.0), 4) for _ in range(5)]
    return result_payload(
        gpu={"name": name, "memory_total_mb": memory, "uuid_hash": f"{rng.getrandbits(64):016x}"},
        timings={"runs": runs(*seconds)},
    )


def documents(keys: list[wire.SigningKey], count: int, seed: int = 7) -> list[bytes]:
    """Signed bodies, each with its own nonce and submission id, created now."""
    rng = random.Random(seed)
    return [wire.encode(wire.seal(_payload(rng), keys[i % len(keys)])) for i in range(count)]


def _counts() -> tuple[int, int]:
    from benchmarks.models import Result, Submission

    return Submission.objects.count(), Result.objects.count()


def _queued(redis_url: str) -> int:
    import redis

    return redis.Redis.from_url(redis_url).llen("celery")


def _post(url: str, body: bytes) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def run(database: str, redis: str, seconds: float = 15.0) -> dict:
    import redis as redis_client

    common.fresh_database(database)
    redis_client.Redis.from_url(redis).flushdb()
    keys = [wire.SigningKey.generate() for _ in range(KEYS)]
    port = common.free_port()
    env = common.production_environment(
        database,
        redis,
        port,
        CONTRIBUTE_RATE_PER_KEY="100000000/hour",
        CONTRIBUTE_RATE_PER_IP="100000000/hour",
    )
    with tempfile.TemporaryDirectory(prefix="perf-ingest-") as folder:
        script = Path(folder) / "post.lua"
        script.write_text(LUA)
        bodies_file = Path(folder) / "bodies.txt"
        with common.gunicorn(env, port):
            url = f"http://127.0.0.1:{port}/contribute"
            # Each key's first submission binds it (trust on first use) and warms both
            # workers up: imports done, connections to PostgreSQL and Redis open.
            for body in documents(keys, len(keys) * 4, seed=1):
                status, answer = _post(url, body)
                if status != 201:
                    raise RuntimeError(f"a warm-up submission was answered {status}: {answer!r}")
            count = int(seconds * DOCUMENTS_PER_SECOND)
            signing = time.perf_counter()
            bodies = documents(keys, count)
            signing = time.perf_counter() - signing
            bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
            common.log(
                f"{count} documents signed in {signing:.1f} s "
                f"({sum(map(len, bodies)) / count / 1024:.1f} KiB each)"
            )
            before = _counts()
            queued_before = _queued(redis)
            wrk_env = processes.clean_environment()
            load = common.wrk(
                f"{url}", seconds, CONNECTIONS, script=script, env=wrk_env, lua_args=[bodies_file]
            )
            time.sleep(1)  # requests still in the workers when wrk stopped
            after = _counts()
            queued = _queued(redis) - queued_before
    stored = after[1] - before[1]
    if stored >= count:
        raise RuntimeError("every document was used: raise DOCUMENTS_PER_SECOND")
    rate = stored / load.seconds
    print(
        f"\n  {stored} results stored in {load.seconds:.1f} s at {CONNECTIONS} connections: "
        f"{rate:.1f} accepted/s; {queued} more summary updates queued in Redis (at most one "
        "per group waits at a time, and no worker runs here)"
    )
    print(f"  wrk: {load.line()}")
    breakdown = _breakdown(keys)
    print(breakdown)
    met = rate >= TARGET_PER_SECOND
    print(
        f"\n  ingest: {rate:.0f} accepted/s (target >= {TARGET_PER_SECOND:.0f}/s: "
        f"{'met' if met else 'NOT met'})"
    )
    return {
        "accepted_per_second": rate,
        "stored": stored,
        "queued": queued,
        "wrk": vars(load),
        "met": met,
        "headline": f"{rate:.0f} signed submissions stored per second (p99 {load.p99_ms:.0f} ms)",
    }


# (label, object, attribute): timed while the breakdown runs. They nest, so the figures
# overlap: SQL is spent inside the others.
_STAGES = (
    ("parse, structure, IP rate limit", "contributions", "_parse"),
    ("key lookup and Ed25519 verify", "contributions", "_authenticate"),
    ("  of which the signature check", "SignedDocument", "verify"),
    ("key rate limit", "contributions", "_count_key"),
    ("store (validate, insert, commit)", "contributions", "_store"),
    ("  validate_result", "contributions", "validate_result"),
    ("    JSON Schema", "validation", "_schema_errors"),
    ("    GPU lookup", "validation", "_gpu_for"),
    ("    configuration lookup", "validation", "_configuration_for"),
    ("  commit and on-commit hooks", "Atomic", "__exit__"),
    ("    queue the summary task", "Task", "delay"),
    ("SQL statements, everywhere", "CursorWrapper", "execute"),
)


def _targets() -> dict[str, object]:
    from celery.app.task import Task
    from django.db.backends.utils import CursorWrapper
    from django.db.transaction import Atomic

    from benchmarks.services import contributions, validation

    return {
        "contributions": contributions,
        "validation": validation,
        "SignedDocument": wire.SignedDocument,
        "Atomic": Atomic,
        "Task": Task,
        "CursorWrapper": CursorWrapper,
    }


def _breakdown(keys: list[wire.SigningKey], count: int = 300) -> str:
    """Where one submission's time goes, in this process (no HTTP, no profiler)."""
    from django.test import override_settings

    with override_settings(
        CONTRIBUTE_RATE_PER_KEY="100000000/hour", CONTRIBUTE_RATE_PER_IP="100000000/hour"
    ):
        return _timed_submissions(keys, count)


def _timed_submissions(keys: list[wire.SigningKey], count: int) -> str:
    from unittest import mock

    from django.db import connection

    from benchmarks.services import contributions

    spent: dict[str, float] = dict.fromkeys((label for label, _, _ in _STAGES), 0.0)

    def timing(label: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return timed

    bodies = documents(keys, count + 20, seed=99)
    for body in bodies[:20]:  # connections, imports and caches out of the way
        contributions.submit(body, "127.0.0.2")
    targets = _targets()
    patches = [
        mock.patch.object(targets[owner], name, timing(label, getattr(targets[owner], name)))
        for label, owner, name in _STAGES
    ]
    for patch in patches:
        patch.start()
    try:
        started = time.perf_counter()
        for body in bodies[20:]:
            reply = contributions.submit(body, "127.0.0.2")
            assert reply.status == 201, json.dumps(reply.body)
        each = (time.perf_counter() - started) / count * 1000
    finally:
        for patch in patches:
            patch.stop()
    connection.close()
    lines = [
        f"\n  where one submission's time goes (contributions.submit in one process, no HTTP, "
        f"mean of {count}): {each:.2f} ms"
    ]
    lines += [f"    {label:<36} {spent[label] / count * 1000:6.2f} ms" for label, _, _ in _STAGES]
    return "\n".join(lines)
