"""What both signed endpoints (POST and DELETE /contribute) check, and how they answer.

The checks run in a fixed order, and the first that fails answers (docs/protocol.md
lists every answer): content type and size (in the view), rate limits, document
structure, purpose, key, signature, then the endpoint's own (contributions, withdrawals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from klein_bench.contract import wire

from benchmarks.models import Contributor
from benchmarks.services import ratelimit
from benchmarks.site import site_url

# An error answer names at most this many fields, so that it stays small whatever was sent.
MAX_FIELDS = 50


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
            body["fields"] = dict(list(self.fields.items())[:MAX_FIELDS])
            if len(self.fields) > MAX_FIELDS:
                body["detail"] += f" The first {MAX_FIELDS} of {len(self.fields)} are listed."
        return Reply(self.status, body, self.headers)


def too_large(limit: int) -> Refused:
    return Refused(
        413,
        "too_large",
        f"The request body is larger than the limit of {limit} bytes.",
    )


def unsupported_media_type() -> Refused:
    return Refused(
        415,
        "unsupported_media_type",
        "Send the signed document as JSON, with Content-Type: application/json (UTF-8).",
        headers={"Accept": "application/json"},
    )


def server_error() -> Refused:
    """The answer to a failure of the server's own (a bug): nothing was stored, since every
    write happens in one transaction that the failure rolled back."""
    return Refused(
        500,
        "server_error",
        "The server failed to handle this request and stored nothing; the failure is "
        "logged. Try again later.",
    )


_AUTHENTICATE = {"WWW-Authenticate": 'KleinBench-Ed25519 realm="klein-bench"'}


def permalink(result_id: int, site: str = "") -> str:
    """The result's page at `site` (benchmarks.site.site_url; without one, its fallback)."""
    return (site or site_url()) + reverse("checkpages:result", args=[result_id])


def check_page(model_slug: str, gpu_slug: str, site: str = "") -> str:
    return (site or site_url()) + reverse("checkpages:pair", args=[model_slug, gpu_slug])


def _rate_limited(exc: ratelimit.RateLimited) -> Refused:
    return Refused(
        429,
        "rate_limited",
        f"Too many requests from this {exc.scope}; try again in {exc.retry_after} seconds.",
        headers={"Retry-After": str(exc.retry_after)},
    )


def parse(body: bytes, client_ip: str) -> wire.SignedDocument:
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
        ratelimit.count(
            "address", ratelimit.address_key(client_ip), settings.CONTRIBUTE_RATE_PER_IP
        )
        if document is not None:
            ratelimit.check("key", document.key_id, settings.CONTRIBUTE_RATE_PER_KEY)
    except ratelimit.RateLimited as exc:
        raise _rate_limited(exc) from exc
    if problem is not None:
        raise Refused(
            400,
            "malformed_document",
            "The body is not a signed klein-bench document; see the fields for what is wrong.",
            problem.errors,
        )
    assert document is not None
    return document


def require_purpose(document: wire.SignedDocument, purpose: str, what: str) -> None:
    if document.purpose != purpose:
        raise Refused(
            400,
            "wrong_purpose",
            f"This document was signed for another purpose; {what} needs {json.dumps(purpose)}.",
            {"envelope.purpose": f"must be {json.dumps(purpose)}"},
        )


def authenticate(document: wire.SignedDocument) -> Contributor | None:
    """The known contributor of the document's key (None for a first use), after checking
    that the key is not revoked and that it signed the envelope."""
    if document.public_key is not None and wire.key_id_for(document.public_key) != document.key_id:
        why = "does not hash to the envelope's key_id"
        raise Refused(
            401,
            "bad_signature",
            f"The public key {why}; send the key that made the key_id, or none.",
            {"public_key": why},
            _AUTHENTICATE,
        )
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


def count_key(document: wire.SignedDocument) -> None:
    try:
        ratelimit.count("key", document.key_id, settings.CONTRIBUTE_RATE_PER_KEY)
    except ratelimit.RateLimited as exc:
        raise _rate_limited(exc) from exc


def require_fresh(document: wire.SignedDocument) -> None:
    skew = settings.CONTRIBUTE_CLOCK_SKEW_SECONDS
    if abs(timezone.now() - document.created_at) > timedelta(seconds=skew):
        raise Refused(
            400,
            "stale",
            f"created_at is more than {skew} seconds away from the server's clock "
            f"({wire.format_created_at(timezone.now())}); check the clock and sign again.",
            {"envelope.created_at": f"must be within {skew} seconds of the server's time"},
        )


def nonce_reused() -> Refused:
    return Refused(
        409,
        "nonce_reused",
        "This nonce was already used by this key: the document is a replay.",
        {"envelope.nonce": "already used by this key"},
    )
