"""Attack: replaying signed documents. A nonce is used once per key whatever the purpose,
the time window is inclusive to the second, a submission_id is scoped per key, and an
identical retry stores nothing; on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from klein_bench.contract import wire

from tests.attack_support import (  # noqa: F401 - fixtures
    ATTACK_MARKS,
    platform_fixture,
    postgres_server_fixture,
    sqlite_server_fixture,
)
from tests.factories import result_payload, signed_body, signed_document

pytestmark = ATTACK_MARKS
REPLAY = {
    "error": "nonce_reused",
    "detail": "This nonce was already used by this key: the document is a replay.",
    "fields": {"envelope.nonce": "already used by this key"},
}


def withdrawal(key: wire.SigningKey, result_id: int, **envelope) -> bytes:
    return signed_body({"result_id": result_id}, key, purpose=wire.PURPOSE_WITHDRAW, **envelope)


def status_of(platform, result_id: int) -> str:
    return platform.request("GET", f"/api/v1/results/{result_id}").json()["status"]


def test_a_contributions_nonce_cannot_sign_a_withdrawal(platform):
    key = wire.SigningKey.generate()
    document = signed_document(result_payload(), key)
    result_id = platform.post(wire.encode(document)).json()["result_id"]
    before = platform.rows()

    answer = platform.delete(
        result_id, withdrawal(key, result_id, nonce=document["envelope"]["nonce"])
    )

    assert (answer.status, answer.json()) == (409, REPLAY)
    assert platform.rows() == before
    assert status_of(platform, result_id) == "accepted"


def test_a_withdrawals_nonce_cannot_sign_a_contribution(platform):
    key = wire.SigningKey.generate()
    result_id = platform.post(signed_body(result_payload(), key)).json()["result_id"]
    nonce = "ab" * 16
    assert platform.delete(result_id, withdrawal(key, result_id, nonce=nonce)).status == 200
    before = platform.rows()

    answer = platform.post(signed_body(result_payload(), key, nonce=nonce))

    assert (answer.status, answer.json()) == (409, REPLAY)
    assert platform.rows() == before


def test_a_withdrawal_sent_again_answers_the_same_and_stores_nothing(platform):
    key = wire.SigningKey.generate()
    result_id = platform.post(signed_body(result_payload(), key)).json()["result_id"]
    body = withdrawal(key, result_id)
    first = platform.delete(result_id, body)
    before = platform.rows()

    again = platform.delete(result_id, body)

    assert (again.status, again.json()) == (200, first.json())
    assert platform.rows() == before


def test_the_same_bytes_sent_again_get_the_first_answer_and_store_nothing(platform):
    body = signed_body(result_payload(), wire.SigningKey.generate())
    first = platform.post(body)
    before = platform.rows()

    again = platform.post(body)

    assert (again.status, again.body) == (201, first.body)
    assert platform.rows() == before


def test_a_submission_id_is_scoped_per_key(platform):
    submission_id = "0b4e28ba-2fa1-41d2-883f-0016d3cca427"
    key = wire.SigningKey.generate()
    mine = platform.post(signed_body(result_payload(), key, submission_id=submission_id))
    theirs = platform.post(
        signed_body(result_payload(), wire.SigningKey.generate(), submission_id=submission_id)
    )
    before = platform.rows()

    reused = platform.post(signed_body(result_payload(), key, submission_id=submission_id))

    assert (mine.status, theirs.status) == (201, 201)
    assert reused.error == (409, "submission_conflict")
    assert platform.rows() == before


@pytest.mark.parametrize(
    ("offset", "status"),
    # +305, not +301: the request takes its time to arrive, and on a loaded machine more
    # than a second may pass between signing and the server's clock reading.
    [(300, 201), (299, 201), (-295, 201), (305, 400), (-300, 400), (-301, 400)],
)
def test_the_time_window_is_inclusive_to_the_second(platform, offset, status):
    # created_at is written to the second, rounded down, and the server compares it with
    # its clock to the microsecond: +300 s is within 300 s, "now - 300 s" is already past.
    created_at = datetime.now(UTC) + timedelta(seconds=offset)
    before = platform.rows()

    answer = platform.post(
        signed_body(result_payload(), wire.SigningKey.generate(), created_at=created_at)
    )

    assert answer.status == status, answer.body
    if status == 400:
        assert answer.json()["error"] == "stale"
        assert platform.rows() == before
    platform.no_tracebacks()
