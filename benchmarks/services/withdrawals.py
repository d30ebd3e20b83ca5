"""Withdrawing a result with a document signed by the key that submitted it
(DELETE /contribute/<result_id>).

After the checks both signed endpoints share (benchmarks.services.signed): the payload
names the result, the time window, the result exists and is the key's, the nonce. The
withdrawal is kept verbatim as the proof that its contributor asked.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from klein_bench.contract import wire

from benchmarks.models import Contributor, Result, Submission, SubmissionStatus, UsedNonce
from benchmarks.services.signed import (
    Refused,
    Reply,
    authenticate,
    check_page,
    count_key,
    nonce_reused,
    parse,
    permalink,
    require_fresh,
    require_purpose,
)
from benchmarks.tasks import update_summary

log = logging.getLogger(__name__)

WITHDRAW_REASON_MAX = 2000
# The largest id a result can have (a 64-bit signed primary key).
MAX_RESULT_ID = 2**63 - 1


def _withdraw_request(document: wire.SignedDocument, result_id: int) -> str:
    """The withdrawal's reason, after checking its payload names this result."""
    payload = document.payload
    path = "envelope.payload"
    if not isinstance(payload, dict):
        raise _bad_withdrawal({path: "must be a JSON object"})
    errors = {}
    extra = sorted(set(payload) - {"result_id", "reason"})
    for name in extra:
        errors[f"{path}.{name}"] = "is not a field of a withdrawal"
    given = payload.get("result_id")
    if "result_id" not in payload:
        errors[f"{path}.result_id"] = "is required"
    elif isinstance(given, bool) or not isinstance(given, int):
        errors[f"{path}.result_id"] = "must be an integer"
    elif given != result_id:
        errors[f"{path}.result_id"] = f"must be {result_id}, the id in the URL"
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > WITHDRAW_REASON_MAX or "\x00" in reason:
        errors[f"{path}.reason"] = f"must be a string of at most {WITHDRAW_REASON_MAX} characters"
    if errors:
        raise _bad_withdrawal(errors)
    return reason


def _bad_withdrawal(errors: dict[str, str]) -> Refused:
    return Refused(
        400,
        "invalid_payload",
        'The withdrawal\'s payload must be {"result_id": <the id in the URL>} with an '
        'optional "reason".',
        errors,
    )


def _withdrawn_response(result: Result, withdrawn_at: datetime, site: str) -> dict[str, Any]:
    return {
        "result_id": result.pk,
        "permalink": permalink(result.pk, site),
        "check_page": check_page(result.model.slug, result.gpu.slug, site),
        "status": SubmissionStatus.WITHDRAWN.value,
        "withdrawn_at": wire.format_created_at(withdrawn_at),
    }


def _use_nonce(contributor: Contributor | None, document: wire.SignedDocument) -> None:
    """Record the document's nonce as used by its key, or refuse it as a replay."""
    assert contributor is not None
    try:
        with transaction.atomic():
            UsedNonce.objects.create(
                contributor=contributor, nonce=document.nonce, purpose=document.purpose
            )
    except IntegrityError as exc:
        raise nonce_reused() from exc


def withdraw(result_id: int, body: bytes, client_ip: str, site: str = "") -> Reply:
    """Answer one DELETE /contribute/<result_id>: withdraw the key's own result
    (permalinks naming `site`, benchmarks.site.site_url of the request)."""
    document = parse(body, client_ip)
    require_purpose(document, wire.PURPOSE_WITHDRAW, "DELETE /contribute/<id>")
    reason = _withdraw_request(document, result_id)
    contributor = authenticate(document)
    count_key(document)
    require_fresh(document)
    result = (
        Result.objects.select_related("submission", "contributor", "model", "gpu")
        .filter(pk=result_id)
        .first()
        if result_id <= MAX_RESULT_ID
        else None
    )
    if result is None:
        raise Refused(404, "not_found", f"There is no result {result_id}.")
    if result.contributor.key_id != document.key_id:
        raise Refused(
            403,
            "not_owner",
            "Only the key that submitted a result can withdraw it.",
            {"envelope.key_id": "is not the key that submitted this result"},
        )
    text = body.decode("utf-8")
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=result.submission_id)
        if submission.withdrawal_body == text:
            if submission.status == SubmissionStatus.WITHDRAWN:
                # An identical retry: the original answer.
                return Reply(200, _withdrawn_response(result, submission.withdrawn_at, site))
            # The same signed withdrawal again after a moderator restored the result.
            raise nonce_reused()
        _use_nonce(contributor, document)
        if submission.status == SubmissionStatus.WITHDRAWN:
            return Reply(200, _withdrawn_response(result, submission.withdrawn_at, site))
        now = timezone.now()
        submission.status = SubmissionStatus.WITHDRAWN
        submission.withdrawn_at = now
        submission.withdrawal_reason = reason
        submission.withdrawal_body = text
        submission.save(
            update_fields=["status", "withdrawn_at", "withdrawal_reason", "withdrawal_body"]
        )
        Result.objects.filter(pk=result.pk).update(changed_at=now)
        update_summary.delay_on_commit(
            result.model_id, result.gpu_id, result.configuration_id, result.synthetic
        )
    log.info("result %s withdrawn by %s", result.pk, document.key_id)
    return Reply(200, _withdrawn_response(result, now, site))
