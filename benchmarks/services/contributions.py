"""Accepting signed contributions and signed withdrawals (POST and DELETE /contribute).

The checks run in a fixed order, and the first that fails answers (docs/protocol.md
lists every answer): size (in the view), rate limits, document structure, purpose, key,
signature, identical retry, time window, submission id, nonce, payload. A contribution is
stored in one transaction: the submission with the body verbatim first, then the result,
then the summary update is queued for after the commit.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from klein_bench.contract import stats, wire
from klein_bench.contract.figures import MEMORY_FIGURES

from benchmarks.models import Contributor, Result, Submission, SubmissionStatus
from benchmarks.services import ratelimit
from benchmarks.services.validation import (
    PayloadInvalid,
    ValidResult,
    failed_stage,
    thumbnail_bytes,
    validate_result,
)
from benchmarks.tasks import update_summary

log = logging.getLogger(__name__)

WITHDRAW_REASON_MAX = 2000


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A request the server answers with an error: status, code, one sentence, fields."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.status = status
        self.code = code
        self.detail = detail
        self.fields = fields or {}
        self.headers = headers or {}
        super().__init__(detail)

    def reply(self) -> Reply:
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return Reply(self.status, body, self.headers)


def too_large(limit: int) -> Refused:
    return Refused(
        413,
        "too_large",
        f"The request body is larger than the limit of {limit} bytes.",
    )


_AUTHENTICATE = {"WWW-Authenticate": 'KleinBench-Ed25519 realm="klein-bench"'}


def _site_url(path: str) -> str:
    return settings.SITE_URL + path


def _permalink(result_id: int) -> str:
    return _site_url(reverse("checkpages:result", args=[result_id]))


def _check_page(model_slug: str, gpu_slug: str) -> str:
    return _site_url(reverse("checkpages:pair", args=[model_slug, gpu_slug]))


def _parse(body: bytes, client_ip: str) -> wire.SignedDocument:
    """Rate limits, then structure. A key's own limit is only checked here and counted
    once its signature is verified, so nobody can use up another contributor's quota."""
    document: wire.SignedDocument | None = None
    problem = None
    try:
        # Only UTF-8: json.loads would also guess UTF-16 and UTF-32 from raw bytes.
        document = wire.parse_document(body.decode("utf-8"))
    except UnicodeDecodeError:
        problem = wire.MalformedDocument({"body": "must be JSON encoded as UTF-8"})
    except wire.MalformedDocument as exc:
        problem = exc
    try:
        ratelimit.limit(
            hits=[("address", client_ip, ratelimit.Rate.parse(settings.CONTRIBUTE_RATE_PER_IP))],
            checks=[]
            if document is None
            else [("key", document.key_id, ratelimit.Rate.parse(settings.CONTRIBUTE_RATE_PER_KEY))],
        )
    except ratelimit.RateLimited as exc:
        raise Refused(
            429,
            "rate_limited",
            f"Too many requests from this {exc.scope}; try again in {exc.retry_after} seconds.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc
    if problem is not None:
        raise Refused(
            400,
            "malformed_document",
            "The body is not a signed klein-bench document; see the fields for what is wrong.",
            problem.errors,
        )
    assert document is not None
    return document


def _require_purpose(document: wire.SignedDocument, purpose: str, what: str) -> None:
    if document.purpose != purpose:
        raise Refused(
            400,
            "wrong_purpose",
            f"This document was signed for another purpose; {what} needs {purpose!r}.",
            {"envelope.purpose": f"must be {purpose!r}"},
        )


def _authenticate(document: wire.SignedDocument) -> Contributor | None:
    """The known contributor of the document's key (None for a first use), after checking
    that the key is not revoked and that it signed the envelope."""
    contributor = Contributor.objects.filter(key_id=document.key_id).first()
    if contributor is None and document.public_key is None:
        raise Refused(
            401,
            "unknown_key",
            "The server does not know this key yet; include public_key in the document.",
            {"public_key": "is required the first time a key is used"},
            _AUTHENTICATE,
        )
    if contributor is not None and contributor.is_revoked:
        reason = contributor.revoked_reason.strip().rstrip(".")
        raise Refused(
            403,
            "key_revoked",
            f"This key was revoked by a moderator{': ' + reason if reason else ''}.",
        )
    public_key = (
        bytes.fromhex(contributor.public_key) if contributor is not None else document.public_key
    )
    assert public_key is not None
    try:
        document.verify(public_key)
    except wire.BadSignature as exc:
        raise Refused(
            401,
            "bad_signature",
            f"The signature does not verify: {exc}.",
            {"signature": str(exc)},
            _AUTHENTICATE,
        ) from exc
    return contributor


def _count_key(document: wire.SignedDocument) -> None:
    try:
        ratelimit.hit(
            "key", document.key_id, ratelimit.Rate.parse(settings.CONTRIBUTE_RATE_PER_KEY)
        )
    except ratelimit.RateLimited as exc:
        raise Refused(
            429,
            "rate_limited",
            f"Too many requests from this key; try again in {exc.retry_after} seconds.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc


def _require_fresh(document: wire.SignedDocument) -> None:
    skew = settings.CONTRIBUTE_CLOCK_SKEW_SECONDS
    if abs(timezone.now() - document.created_at) > timedelta(seconds=skew):
        raise Refused(
            400,
            "stale",
            f"created_at is more than {skew} seconds away from the server's clock "
            f"({wire.format_created_at(timezone.now())}); check the clock and sign again.",
            {"envelope.created_at": f"must be within {skew} seconds of the server's time"},
        )


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _replay(submission: Submission) -> Reply:
    response = submission.response or {}
    return Reply(201, response, {"Location": response.get("permalink", "")})


def submit(body: bytes, client_ip: str) -> Reply:
    """Answer one POST /contribute: store a signed result, or say why not."""
    document = _parse(body, client_ip)
    _require_purpose(document, wire.PURPOSE_CONTRIBUTE, "POST /contribute")
    contributor = _authenticate(document)
    _count_key(document)
    digest = _sha256(body)
    try:
        _require_fresh(document)
    except Refused:
        # An identical retry is answered with the original response at any time: the same
        # signed bytes were verified and stored already, so answering them again stores
        # nothing.
        earlier = _earlier(contributor, document)
        if earlier is not None and earlier.body_sha256 == digest:
            return _replay(earlier)
        raise
    # No look for an earlier submission first: the unique constraints on (key, submission
    # id) and (key, nonce) refuse the insert of a retry, a reused id or a replayed nonce
    # (or a parallel request's twin), and _after_race answers it as if it had looked.
    try:
        return _store(document, body, digest, contributor)
    except IntegrityError:
        answer = _after_race(document, digest)
        if answer is None:
            raise
        return answer


def _earlier(contributor: Contributor | None, document: wire.SignedDocument) -> Submission | None:
    if contributor is None:
        return None
    return Submission.objects.filter(
        contributor=contributor, client_submission_id=document.submission_id
    ).first()


def _conflict() -> Refused:
    return Refused(
        409,
        "submission_conflict",
        "This submission_id was already used for a different document; "
        "use a new submission_id for a new result.",
        {"envelope.submission_id": "already used with a different body"},
    )


def _nonce_reused() -> Refused:
    return Refused(
        409,
        "nonce_reused",
        "This nonce was already used by this key: the document is a replay.",
        {"envelope.nonce": "already used by this key"},
    )


def _after_race(document: wire.SignedDocument, digest: str) -> Reply | None:
    """The answer to an insert the unique constraints refused: the original response for
    an identical retry, or a conflict; None when it was not a duplicate after all."""
    earlier = Submission.objects.filter(
        contributor__key_id=document.key_id, client_submission_id=document.submission_id
    ).first()
    if earlier is not None:
        if earlier.body_sha256 == digest:
            return _replay(earlier)
        raise _conflict()
    if Submission.objects.filter(
        contributor__key_id=document.key_id, nonce=document.nonce
    ).exists():
        raise _nonce_reused()
    return None


def _store(
    document: wire.SignedDocument, body: bytes, digest: str, contributor: Contributor | None
) -> Reply:
    with transaction.atomic():
        if contributor is None:
            # Trust on first use: from now on this key id is bound to this public key.
            assert document.public_key is not None
            contributor, _ = Contributor.objects.get_or_create(
                key_id=document.key_id, defaults={"public_key": document.public_key.hex()}
            )
        # The signed document goes in first; a payload that fails validation below rolls
        # it back with everything else (including any GPU or configuration row it made).
        submission = Submission.objects.create(
            contributor=contributor,
            client_submission_id=document.submission_id,
            nonce=document.nonce,
            body=body.decode("utf-8"),
            body_sha256=digest,
            created_at=document.created_at,
        )
        try:
            valid = validate_result(document.payload)
        except PayloadInvalid as exc:
            raise Refused(
                400,
                "invalid_payload",
                "The result does not pass validation; see the fields for what is wrong.",
                exc.errors,
            ) from exc
        result = Result.objects.create(
            submission=submission, contributor=contributor, **_result_fields(valid)
        )
        response = _created_response(result)
        submission.response = response
        submission.save(update_fields=["response"])
        update_summary.delay_on_commit(
            result.model_id, result.gpu_id, result.configuration_id, result.synthetic
        )
    log.info("stored result %s from %s", result.pk, contributor.key_id)
    return Reply(201, response, {"Location": response["permalink"]})


def _created_response(result: Result) -> dict[str, Any]:
    c = result.configuration
    return {
        "result_id": result.pk,
        "permalink": _permalink(result.pk),
        "check_page": _check_page(result.model.slug, result.gpu.slug),
        "status": SubmissionStatus.ACCEPTED.value,
        "model": result.model.slug,
        "gpu": result.gpu.slug,
        "configuration": {
            "runtime": c.runtime,
            "precision": c.precision,
            "offload": c.offload,
            "width": c.width,
            "height": c.height,
            "steps": c.steps,
            "preset": c.preset,
        },
    }


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return stats.median(values) if values else None


def _result_fields(valid: ValidResult) -> dict[str, Any]:
    """The Result columns of a validated payload."""
    p = valid.payload
    runs = p["timings"]["runs"]
    spread = stats.summarize([run["seconds"] for run in runs]) if runs else {}
    memory = p["memory"]
    environment = p["environment"]
    energy = p.get("energy") or {}
    evidence = p.get("evidence") or {}
    telemetry = dict(p.get("telemetry") or {})
    for key, value in (
        ("average_power_w", energy.get("average_power_w")),
        ("memory_sample_interval_ms", memory.get("sample_interval_ms")),
        ("warmup_seconds", p["timings"].get("warmup_seconds")),
    ):
        if value is not None:
            telemetry[key] = value
    return {
        "model": valid.model,
        "gpu": valid.gpu,
        "configuration": valid.configuration,
        "protocol_version": p["protocol"]["id"],
        "protocol_hash": p["protocol"]["hash"],
        "synthetic": p["synthetic"],
        "outcome": p["outcome"]["status"],
        "failed_stage": failed_stage(p),
        "error_message": p["outcome"].get("message", ""),
        "runs": runs,
        "n_runs": len(runs),
        "seconds_median": spread.get("median"),
        "seconds_p10": spread.get("p10"),
        "seconds_p90": spread.get("p90"),
        "seconds_mean": spread.get("mean"),
        "seconds_stdev": spread.get("stdev"),
        "seconds_cv": spread.get("cv"),
        "load_seconds": p["timings"].get("load_seconds"),
        "text_encoding_seconds": _median_of(runs, "text_encoding_seconds"),
        "denoising_seconds": _median_of(runs, "denoising_seconds"),
        "vae_decode_seconds": _median_of(runs, "vae_decode_seconds"),
        **{name: memory.get(name) for name in MEMORY_FIGURES},
        "energy_joules_per_image": energy.get("joules_per_image"),
        "driver_version": environment.get("driver") or "",
        "torch_version": environment.get("torch") or "",
        "diffusers_version": environment.get("diffusers") or "",
        "runtime_version": environment.get("runtime_version") or "",
        "agent_version": environment["agent"],
        "drives_display": p["gpu"].get("drives_display"),
        "environment": {**environment, "gpu": p["gpu"], "fp8_method": _fp8_method(p)},
        "telemetry": telemetry,
        "image_phash": evidence.get("phash") or "",
        "thumbnail_png": thumbnail_bytes(p),
    }


def _fp8_method(payload: dict[str, Any]) -> str | None:
    return payload["configuration"].get("fp8_method")


# Withdrawal ---------------------------------------------------------------------------


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


def _withdrawn_response(result: Result, withdrawn_at: datetime) -> dict[str, Any]:
    return {
        "result_id": result.pk,
        "permalink": _permalink(result.pk),
        "check_page": _check_page(result.model.slug, result.gpu.slug),
        "status": SubmissionStatus.WITHDRAWN.value,
        "withdrawn_at": wire.format_created_at(withdrawn_at),
    }


def withdraw(result_id: int, body: bytes, client_ip: str) -> Reply:
    """Answer one DELETE /contribute/<result_id>: withdraw the key's own result."""
    document = _parse(body, client_ip)
    _require_purpose(document, wire.PURPOSE_WITHDRAW, "DELETE /contribute/<id>")
    reason = _withdraw_request(document, result_id)
    _authenticate(document)
    _count_key(document)
    _require_fresh(document)
    result = (
        Result.objects.select_related("submission", "contributor", "model", "gpu")
        .filter(pk=result_id)
        .first()
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
        if submission.status == SubmissionStatus.WITHDRAWN:
            return Reply(200, _withdrawn_response(result, submission.withdrawn_at))
        if submission.withdrawal_body == text:
            # The same signed withdrawal again after a moderator restored the result.
            raise _nonce_reused()
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
    return Reply(200, _withdrawn_response(result, now))
