"""Hostile submissions: parallel duplicates store one row; tampered, replayed, stale,
revoked and oversized documents are refused and leave every table as it was."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from klein_bench.contract import wire
from redis import Redis

from benchmarks.models import Contributor, Result, Submission, Summary
from tests.contribute_support import _fresh_rate_limits, key_fixture, post  # noqa: F401
from tests.factories import result_payload, signed_body, signed_document
from tests.faults_support import (
    current_database_url,
    free_port,
    post_contribution,
    redis_server,
    server_environment,
    web_server,
)

PARALLEL = 50


def _rows() -> dict[str, int]:
    return {
        "contributors": Contributor.objects.count(),
        "submissions": Submission.objects.count(),
        "results": Result.objects.count(),
        "summaries": Summary.objects.count(),
    }


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_identical_submissions_store_one_row_and_all_get_its_answer(
    tmp_path, catalog
):
    body = signed_body(result_payload(), wire.SigningKey.generate())
    port = free_port()
    with redis_server(tmp_path) as redis:
        env = server_environment(tmp_path, current_database_url(), redis.url, port)
        # Threads in each worker, so requests really overlap in the database.
        args = ["--worker-class", "gthread", "--threads", "8"]
        with web_server(env, port, tmp_path / "web.log", extra_args=args) as web:
            barrier = threading.Barrier(PARALLEL)
            answers: list = [None] * PARALLEL

            def send(index: int) -> None:
                barrier.wait()
                answers[index] = post_contribution(port, body)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(PARALLEL)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            queued = Redis.from_url(redis.url).llen("celery")
    assert [status for status, _ in answers] == [201] * PARALLEL
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers}) == 1
    # No worker runs here: the one summary update and the one consensus-image update (the
    # result has an image hash) wait in the queue.
    assert _rows() == {"contributors": 1, "submissions": 1, "results": 1, "summaries": 0}
    assert queued == 2
    assert "Traceback" not in web.output(), web.output()


def _tampered(key: wire.SigningKey) -> bytes:
    document = signed_document(result_payload(), key)
    document["envelope"]["payload"]["timings"]["runs"][0]["seconds"] = 0.5
    return wire.encode(document)


def _stale(key: wire.SigningKey) -> bytes:
    return signed_body(result_payload(), key, created_at=datetime.now(UTC) - timedelta(minutes=10))


REFUSALS = {
    "tampered": (_tampered, 401, "bad_signature"),
    "stale": (_stale, 400, "stale"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_document_leaves_every_table_as_it_was(client, catalog, key, case):
    assert post(client, signed_body(result_payload(), key)).status_code == 201
    before = _rows()
    make, status, error = REFUSALS[case]

    response = post(client, make(key))

    assert (response.status_code, response.json()["error"]) == (status, error)
    assert _rows() == before


@pytest.mark.django_db
def test_a_replayed_nonce_in_a_new_document_is_refused_and_stores_nothing(client, catalog, key):
    first = signed_document(result_payload(), key)
    assert post(client, wire.encode(first)).status_code == 201
    before = _rows()

    replay = signed_body(result_payload(), key, nonce=first["envelope"]["nonce"])
    response = post(client, replay)

    assert (response.status_code, response.json()["error"]) == (409, "nonce_reused")
    assert _rows() == before


@pytest.mark.django_db
def test_the_same_bytes_sent_again_store_nothing_and_get_the_first_answer(client, catalog, key):
    body = signed_body(result_payload(), key)
    first = post(client, body)
    before = _rows()

    again = post(client, body)

    assert (again.status_code, again.json()) == (201, first.json())
    assert _rows() == before


@pytest.mark.django_db
def test_a_revoked_key_is_refused_and_stores_nothing(client, catalog, key):
    assert post(client, signed_body(result_payload(), key)).status_code == 201
    Contributor.objects.filter(key_id=key.key_id).update(
        revoked_at=timezone.now(), revoked_reason="Fabricated results."
    )
    before = _rows()

    response = post(client, signed_body(result_payload(), key))

    assert response.status_code == 403
    assert response.json() == {
        "error": "key_revoked",
        "detail": "This key was revoked by a moderator: Fabricated results.",
    }
    assert _rows() == before


@pytest.mark.django_db
def test_an_oversized_document_is_refused_and_stores_nothing(client, catalog, key, settings):
    settings.CONTRIBUTE_MAX_BYTES = 64 * 1024
    padded = result_payload(outcome={"status": "success", "stage": None, "message": "x" * 70_000})
    before = _rows()

    response = post(client, signed_body(padded, key))

    assert (response.status_code, response.json()["error"]) == (413, "too_large")
    assert _rows() == before
