"""POST /contribute and DELETE /contribute/<id>: thin views over the contributions service.

They authenticate by signature, not by cookie, so CSRF does not apply. docs/protocol.md
specifies both. Every answer under /contribute that is not the GET page is JSON in the
documented shape: refusals, unknown addresses, other methods and the server's own failures.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from benchmarks.services import contributions, signed, withdrawals
from benchmarks.services.signed import Refused, Reply
from benchmarks.site import site_url

log = logging.getLogger(__name__)


def _require_json(request: HttpRequest) -> None:
    """Only a JSON body in UTF-8: a form or text body is not a signed document."""
    charset = request.content_params.get("charset", "utf-8").lower()
    if request.content_type.lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise signed.unsupported_media_type()


def _read_body(request: HttpRequest) -> bytes:
    """The body, refused before reading past the size limit."""
    limit = settings.CONTRIBUTE_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise signed.too_large(limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise signed.too_large(limit)
    return body


def client_address(request: HttpRequest) -> str:
    """The client's address: the connection's, or behind TRUSTED_PROXY_HOPS reverse proxies
    the entry they put that many places from the right of X-Forwarded-For (each proxy
    appends the address it was connected from; entries further left are the client's own
    claims and may be forged)."""
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [address for address in forwarded if address]
    if hops == 0 or not forwarded:
        return remote
    # Fewer entries than proxies: the leftmost was still written by a trusted proxy.
    address = forwarded[-min(hops, len(forwarded))]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return remote


def _respond(reply: Reply) -> JsonResponse:
    # Sorted keys: a replayed answer comes back from jsonb in another key order, and an
    # identical retry should get identical bytes.
    response = JsonResponse(reply.body, status=reply.status, json_dumps_params={"sort_keys": True})
    for name, value in reply.headers.items():
        response[name] = value
    return response


def _answer(request: HttpRequest, handle: Callable[[], Reply]) -> JsonResponse:
    try:
        return _respond(handle())
    except Refused as refusal:
        return _respond(refusal.reply())
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: DatabaseUnavailableMiddleware answers 503
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _respond(signed.server_error().reply())


def _method_not_allowed(allowed: tuple[str, ...]) -> JsonResponse:
    response = JsonResponse(
        {
            "error": "method_not_allowed",
            "detail": f"This address takes {', '.join(allowed)} only.",
        },
        status=405,
    )
    response["Allow"] = ", ".join(allowed)
    return response


@csrf_exempt
@never_cache
def contribute(request: HttpRequest) -> JsonResponse:
    """Store one signed result (201), or answer why not with a 4xx. config/urls.py routes
    GET /contribute to the page and every other method here."""
    if request.method != "POST":
        return _method_not_allowed(("GET", "HEAD", "POST"))

    def handle() -> Reply:
        _require_json(request)
        return contributions.submit(_read_body(request), client_address(request), site_url(request))

    return _answer(request, handle)


@csrf_exempt
@never_cache
def withdraw(request: HttpRequest, result_id: int) -> JsonResponse:
    """Withdraw one result with a document signed by the key that submitted it."""
    if request.method != "DELETE":
        return _method_not_allowed(("DELETE",))

    def handle() -> Reply:
        _require_json(request)
        return withdrawals.withdraw(
            result_id, _read_body(request), client_address(request), site_url(request)
        )

    return _answer(request, handle)


@csrf_exempt
@never_cache
def not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Any other address under /contribute/: a JSON 404 like the endpoints' own."""
    return JsonResponse(
        {
            "error": "not_found",
            "detail": "There is nothing at this address; results are withdrawn with "
            "DELETE /contribute/<result id>, a whole number.",
        },
        status=404,
    )
