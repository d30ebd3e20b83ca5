"""Attack (or a busy evening): fifty submissions at once. Every answer is true: each 201
is stored once, and nothing is stored for an answer that says it was not; on SQLite (the
embedded defaults, where parallel writes once failed with "database is locked" and a 503
that said nothing was stored when it was) and on PostgreSQL."""

from __future__ import annotations

import threading

from klein_bench.contract import wire

from tests.attack_support import (  # noqa: F401 - fixtures
    ATTACK_MARKS,
    platform_fixture,
    postgres_server_fixture,
    sqlite_server_fixture,
)
from tests.factories import result_payload, runs, signed_body

pytestmark = ATTACK_MARKS
PARALLEL = 50


def test_fifty_parallel_submissions_are_all_stored_and_every_answer_says_so(platform):
    bodies = [
        signed_body(
            result_payload(timings={"runs": runs(2.0 + i / 100, 2.1, 2.2)}),
            wire.SigningKey.generate(),
        )
        for i in range(PARALLEL)
    ]
    barrier = threading.Barrier(PARALLEL)
    answers: list = [None] * PARALLEL

    def send(index: int) -> None:
        barrier.wait()
        answers[index] = platform.post(bodies[index])

    before = platform.rows()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    after = platform.rows()

    assert [answer.status for answer in answers] == [201] * PARALLEL
    assert len({answer.json()["result_id"] for answer in answers}) == PARALLEL
    assert after["results"] - before["results"] == PARALLEL
    assert after["submissions"] - before["submissions"] == PARALLEL
    platform.no_tracebacks()
