"""The site's public address, for the permalinks in answers and the commands on pages.

SITE_URL when it is set (production sets it); otherwise the address the request came to,
so a development server on any host and port names itself, and without a request (a
management command) http://127.0.0.1:PORT, the address `make run` serves.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site_url(request: HttpRequest | None = None) -> str:
    """'https://klein-bench.example.org', 'http://127.0.0.1:8123': no trailing slash."""
    if settings.SITE_URL:
        return settings.SITE_URL
    if request is not None:
        return f"{request.scheme}://{request.get_host()}"
    return f"http://127.0.0.1:{settings.PORT}"


def absolute(path: str, request: HttpRequest | None = None) -> str:
    """A path of this site as a full URL at its public address."""
    return site_url(request) + path
