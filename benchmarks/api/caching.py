"""ETag and Cache-Control on the API's reads, and 304 for a matching If-None-Match; the
check of a pair kept in the cache under the pair's token, so a repeat costs no query."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from django.core.cache import cache
from django.utils.cache import get_conditional_response, patch_cache_control
from rest_framework.renderers import JSONRenderer

from benchmarks.api.renderers import CSVRenderer
from benchmarks.services import aggregation

logger = logging.getLogger(__name__)

# Aggregates change when results arrive; a minute of staleness is fine for readers and
# keeps a burst of page views off the database.
MAX_AGE_SECONDS = 60


class ApiViewMixin:
    """Errors as JSON whatever format was asked for; validators on successful reads."""

    def get_exception_handler(self):
        from benchmarks.api.errors import api_exception_handler

        return api_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(
            getattr(response, "accepted_renderer", None), CSVRenderer
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        response.render()
        response["ETag"] = f'"{hashlib.sha256(response.content).hexdigest()[:32]}"'
        patch_cache_control(response, public=True, max_age=MAX_AGE_SECONDS)
        return get_conditional_response(request._request, etag=response["ETag"], response=response)


# Claims change only with the catalog's claims, which move no token; this bounds how long
# a changed claim can go unseen, as for the check page.
CHECK_TIMEOUT = 300

# Only canonical slugs are stored; anything else is looked up (and 404s) the long way.
_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def _check_key(model_slug: str, gpu_slug: str) -> str:
    return f"api:v1:check:{model_slug}:{gpu_slug}"


def stored_check(model_slug: str, gpu_slug: str) -> Any | None:
    """The stored check data, if no summary of the pair changed since it was built."""
    if not (_SLUG.fullmatch(model_slug) and _SLUG.fullmatch(gpu_slug)):
        return None
    try:
        entry = cache.get(_check_key(model_slug, gpu_slug))
    except Exception:  # the cache only saves work; any failure means "not cached"
        logger.warning("Cache read failed for check %s/%s.", model_slug, gpu_slug, exc_info=True)
        return None
    if not isinstance(entry, tuple) or len(entry) != 4:
        return None
    model_id, gpu_id, token, data = entry
    if token != aggregation.pair_version(model_id, gpu_id):
        return None
    return data


def store_check(
    model_slug: str, gpu_slug: str, ids: tuple[int, int], token: str, data: Any
) -> None:
    """Keep check data built after `token` was read: a later summary change moves the token."""
    if not (_SLUG.fullmatch(model_slug) and _SLUG.fullmatch(gpu_slug)):
        return
    try:
        cache.set(_check_key(model_slug, gpu_slug), (*ids, token, data), CHECK_TIMEOUT)
    except Exception:
        logger.warning("Cache write failed for check %s/%s.", model_slug, gpu_slug, exc_info=True)
