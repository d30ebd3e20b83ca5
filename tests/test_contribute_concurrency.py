"""Parallel identical submissions store exactly one row (needs real transactions)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from klein_bench.contract import wire

from benchmarks.models import Contributor, Result, Submission
from tests.contribute_support import (
    _fresh_rate_limits,  # noqa: F401 - fixtures
    post,
)
from tests.factories import result_payload, signed_body

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def post_at_once(bodies: list[bytes]) -> list:
    """POST each body from its own thread (its own connection), all released together."""
    barrier = threading.Barrier(len(bodies))
    responses: list = [None] * len(bodies)

    def send(index: int) -> None:
        try:
            barrier.wait()
            responses[index] = post(Client(), bodies[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_parallel_identical_submissions_store_one_row_and_all_get_its_answer(catalog):
    body = signed_body(result_payload(), wire.SigningKey.generate())

    responses = post_at_once([body] * THREADS)

    assert [r.status_code for r in responses] == [201] * THREADS
    assert len({r.content for r in responses}) == 1
    assert (Contributor.objects.count(), Submission.objects.count(), Result.objects.count()) == (
        1,
        1,
        1,
    )


def test_parallel_documents_with_one_submission_id_store_one_and_refuse_the_rest(catalog):
    key = wire.SigningKey.generate()
    submission_id = "0b4e28ba-2fa1-41d2-883f-0016d3cca427"
    bodies = [signed_body(result_payload(), key, submission_id=submission_id) for _ in range(4)]

    responses = post_at_once(bodies)

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert Result.objects.count() == 1
