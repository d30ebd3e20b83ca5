"""A database outage answers 503 with Retry-After, never a 500.

When PostgreSQL cannot be reached (stopped, restarting, out of connections), a request
that needs it fails with django.db.OperationalError or InterfaceError. That is the
server's state, not the request's fault, and it passes: the agent retries a 503 after
Retry-After and keeps the result queued meanwhile, people get a page saying to come back.
/contribute and the API answer JSON in their usual error shape; pages answer plain HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Back in a moment · klein-bench</title></head>
<body>
<h1>Back in a moment</h1>
<p>klein-bench cannot reach its database just now. Please try again in a minute.</p>
</body>
</html>
"""


def unavailable(request: HttpRequest) -> HttpResponse:
    """The 503 answer for this request: JSON for the API and the agent's requests to
    /contribute, HTML for pages (the GET /contribute page among them)."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    for_agent = request.path.startswith("/contribute") and request.method not in ("GET", "HEAD")
    if request.path.startswith("/api/") or for_agent:
        return JsonResponse(
            {
                "error": "unavailable",
                "detail": (
                    "The server cannot reach its database just now; nothing was stored, "
                    f"try again in {RETRY_AFTER_SECONDS} seconds."
                ),
            },
            status=503,
            headers=headers,
        )
    return HttpResponse(_PAGE, status=503, headers=headers)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        # The driver's message names the host and port, never a password.
        log.warning(
            "database unavailable for %s %s: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            str(exception).strip().splitlines()[0] if str(exception).strip() else "",
        )
        return unavailable(request)


# Media types that are compressed already: gzip again would only cost time, and would
# drop the Content-Length a download shows its progress by.
COMPRESSED_TYPES = ("application/gzip", "application/vnd.apache.parquet")


class GZipMiddleware(DjangoGZipMiddleware):
    """Django's GZipMiddleware, except for answers that are compressed files already (the
    open-data snapshot's .gz and .parquet files)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.get("Content-Type", "").split(";")[0] in COMPRESSED_TYPES:
            return response
        return super().process_response(request, response)
