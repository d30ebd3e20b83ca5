"""Pages and API answers cached with Django's cache_page under one data version.

Every change that pages and the API can show (a summary written or deleted, a catalog row
saved or deleted) moves the data version, a random token in the cache. Cached views are
kept by cache_page under a key prefix that holds the version, so a change is a new key and
nothing has to be deleted; a kept page also expires after PAGE_SECONDS, which bounds how
old a pair page's list of recent results can be (results arrive before their summary is
updated). Their answers say `Cache-Control: public, max-age=PAGE_SECONDS`, so a reverse
proxy or a CDN may keep them as long, and ConditionalGetMiddleware gives every answer an
ETag and turns a matching If-None-Match into 304.

The cache is django-redis with IGNORE_EXCEPTIONS (config/settings.py): while Redis is down
every read misses and every write is dropped, so pages are rendered each time instead of
failing, and /healthz reports the outage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, set_response_etag
from django.views.decorators.cache import cache_page

PAGE_SECONDS = 60
VERSION_KEY = "data-version"


def data_version() -> str:
    """The current data version, made when the cache has none."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY, "none")
    return version


def _move_version() -> None:
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)


def data_changed(**_: object) -> None:
    """Move the data version: now, so the rest of this transaction sees it, and again after
    commit, so a page rendered from the old rows in between is not kept. (A signal
    receiver too: catalog rows saved or deleted.)"""
    _move_version()
    transaction.on_commit(_move_version)


def _with_etag(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view's answers carry their ETag when they are kept, so a kept answer is not
    hashed again on every request (ConditionalGetMiddleware hashes answers without one)."""

    @wraps(view)
    def tagged(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if callable(getattr(response, "add_post_render_callback", None)):
            response.add_post_render_callback(set_response_etag)
        else:
            set_response_etag(response)
        return response

    return tagged


def cached_until_data_changes(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """cache_page for a view whose answer changes only with the data (and with time)."""
    tagged = _with_etag(view)

    @wraps(view)
    def cached_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # The version is read before the view reads any data: a change while it renders
        # moves the version, so what it renders is kept under the old one, never served.
        keep = cache_page(PAGE_SECONDS, key_prefix=f"data-{data_version()}")
        response = keep(tagged)(request, *args, **kwargs)
        patch_cache_control(response, public=True)
        return response

    return cached_view
