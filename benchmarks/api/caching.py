"""ETag and Cache-Control on the API's reads, and 304 for a matching If-None-Match."""

from __future__ import annotations

import hashlib

from django.utils.cache import get_conditional_response, patch_cache_control
from rest_framework.renderers import JSONRenderer

from benchmarks.api.renderers import CSVRenderer

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
