"""POST /contribute and DELETE /contribute/<id>: thin views over the contributions service.

They authenticate by signature, not by cookie, so CSRF does not apply. docs/protocol.md
specifies both.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from benchmarks.services import contributions
from benchmarks.services.contributions import Refused, Reply


def _read_body(request: HttpRequest) -> bytes:
    """The body, refused before reading past the size limit."""
    limit = settings.CONTRIBUTE_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise contributions.too_large(limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise contributions.too_large(limit)
    return body


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def _respond(reply: Reply) -> JsonResponse:
    # Sorted keys: a replayed answer comes back from jsonb in another key order, and an
    # identical retry should get identical bytes.
    response = JsonResponse(reply.body, status=reply.status, json_dumps_params={"sort_keys": True})
    for name, value in reply.headers.items():
        response[name] = value
    return response


@csrf_exempt
@never_cache
@require_http_methods(["POST"])
def contribute(request: HttpRequest) -> JsonResponse:
    """Store one signed result (201), or answer why not with a 4xx."""
    try:
        return _respond(contributions.submit(_read_body(request), _client_ip(request)))
    except Refused as refusal:
        return _respond(refusal.reply())


@csrf_exempt
@never_cache
@require_http_methods(["DELETE"])
def withdraw(request: HttpRequest, result_id: int) -> JsonResponse:
    """Withdraw one result with a document signed by the key that submitted it."""
    try:
        body = _read_body(request)
        return _respond(contributions.withdraw(result_id, body, _client_ip(request)))
    except Refused as refusal:
        return _respond(refusal.reply())
