"""DELETE /contribute/<id>: a contributor withdraws their own result with a signed document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from klein_bench.contract import wire

from benchmarks.models import Result, Submission, Summary
from benchmarks.services.aggregation import update_summary
from tests.contribute_support import (  # noqa: F401 - fixtures
    _fresh_rate_limits,
    contribute,
    delete,
    key_fixture,
    withdrawal_body,
)
from tests.factories import signed_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def result(client, catalog, key) -> Result:
    contribute(client, key)
    return Result.objects.get()


def test_withdrawing_a_result_marks_it_withdrawn_and_answers_200(client, key, result):
    response = delete(client, result.pk, withdrawal_body(key, result.pk, reason="Wrong driver"))

    submission = Submission.objects.get()
    assert response.status_code == 200
    assert response.json() == {
        "result_id": result.pk,
        "permalink": f"http://testserver/r/{result.pk}",
        "check_page": "http://testserver/check/flux-2-klein-4b/rtx-4090/",
        "status": "withdrawn",
        "withdrawn_at": wire.format_created_at(submission.withdrawn_at),
    }
    assert (submission.status, submission.withdrawal_reason) == ("withdrawn", "Wrong driver")
    assert submission.withdrawal_body.startswith('{"envelope":')


def test_withdrawing_bumps_the_result_change_time(client, key, result):
    before = result.changed_at

    delete(client, result.pk, withdrawal_body(key, result.pk))

    result.refresh_from_db()
    assert result.changed_at > before


def test_a_withdrawn_result_leaves_its_summary(
    client, key, result, django_capture_on_commit_callbacks
):
    update_summary(result.model_id, result.gpu_id, result.configuration_id, False)
    assert Summary.objects.count() == 1

    with django_capture_on_commit_callbacks() as callbacks:
        delete(client, result.pk, withdrawal_body(key, result.pk))
    assert Summary.objects.count() == 1

    for callback in callbacks:
        callback()

    assert not Summary.objects.exists()


def test_withdrawing_twice_answers_the_same(client, key, result):
    first = delete(client, result.pk, withdrawal_body(key, result.pk))

    again = delete(client, result.pk, withdrawal_body(key, result.pk))

    assert (again.status_code, again.json()) == (200, first.json())


def test_only_the_key_that_submitted_a_result_may_withdraw_it(client, result):
    stranger = wire.SigningKey.generate()

    response = delete(client, result.pk, withdrawal_body(stranger, result.pk))

    assert response.status_code == 403
    assert response.json() == {
        "error": "not_owner",
        "detail": "Only the key that submitted a result can withdraw it.",
        "fields": {"envelope.key_id": "is not the key that submitted this result"},
    }
    assert Submission.objects.get().status == "accepted"


def test_withdrawing_an_unknown_result_is_404(client, key, result):
    response = delete(client, 999999, withdrawal_body(key, 999999))

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "There is no result 999999."}


def test_the_payload_must_name_the_result_in_the_url(client, key, result):
    response = delete(client, result.pk, withdrawal_body(key, result.pk + 1))

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "envelope.payload.result_id": f"must be {result.pk}, the id in the URL"
    }


def test_a_contribution_document_cannot_withdraw(client, key, result):
    response = delete(client, result.pk, signed_body({"result_id": result.pk}, key))

    assert response.status_code == 400
    assert response.json()["error"] == "wrong_purpose"


def test_a_tampered_withdrawal_is_refused(client, key, result):
    body = withdrawal_body(key, result.pk, reason="mine")

    response = delete(client, result.pk, body.replace(b'"mine"', b'"gone"'))

    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    assert Submission.objects.get().status == "accepted"


def test_a_stale_withdrawal_is_refused(client, key, result):
    old = datetime.now(UTC) - timedelta(hours=1)

    response = delete(client, result.pk, withdrawal_body(key, result.pk, created_at=old))

    assert response.status_code == 400
    assert response.json()["error"] == "stale"


def test_a_withdrawal_replayed_after_a_moderator_restored_the_result_is_refused(
    client, key, result
):
    body = withdrawal_body(key, result.pk)
    delete(client, result.pk, body)
    Submission.objects.update(status="accepted")

    response = delete(client, result.pk, body)

    assert response.status_code == 409
    assert response.json()["error"] == "nonce_reused"


def test_only_delete_is_allowed_on_a_result_address(client, result):
    assert client.get(f"/contribute/{result.pk}").status_code == 405


def test_a_revoked_key_cannot_withdraw(client, key, result):
    from django.utils import timezone

    from benchmarks.models import Contributor

    Contributor.objects.update(revoked_at=timezone.now(), revoked_reason="Stolen key")

    response = delete(client, result.pk, withdrawal_body(key, result.pk))

    assert response.status_code == 403
    assert response.json()["error"] == "key_revoked"
    assert Submission.objects.get().status == "accepted"


def test_a_key_the_server_never_saw_cannot_withdraw_without_its_public_key(client, result):
    stranger = wire.SigningKey.generate()
    document = wire.seal({"result_id": result.pk}, stranger, purpose=wire.PURPOSE_WITHDRAW)
    del document["public_key"]

    response = delete(client, result.pk, wire.encode(document))

    assert response.status_code == 401
    assert response.json()["error"] == "unknown_key"
