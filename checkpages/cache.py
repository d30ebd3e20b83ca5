"""Caching for pages and plots that can never cost a page.

Keys carry the version of the summaries a page reads (SummaryQuerySet.version), so a
recomputed summary means a new key: nothing has to be deleted when data changes. The pair page
is also kept under its URL's slugs with a per-pair token that the aggregation service moves
on every summary write (benchmarks.services.aggregation.pair_version), so a cached pair page
costs no database query at all. If the
cache itself fails (Redis down, a value that will not unpickle), the page is rendered as
if the cache were empty.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

from benchmarks.services import aggregation

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Pages also list recent results, which change before the summaries are recomputed;
# the timeout bounds how stale that list can be.
PAGE_TIMEOUT = 300
PLOT_TIMEOUT = 24 * 3600
KEY_PREFIX = "checkpages:v1"


def key(*parts: object) -> str:
    return ":".join([KEY_PREFIX, *(str(part) for part in parts)])


def cached(cache_key: str, build: Callable[[], T], timeout: int) -> T:
    """The cached value, else build() (stored for next time when the cache works)."""
    try:
        value = cache.get(cache_key)
    except Exception:  # the cache only saves work; any failure means "not cached"
        logger.warning("Cache read failed for %s; rendering instead.", cache_key, exc_info=True)
        value = None
    if value is not None:
        return value
    value = build()
    try:
        cache.set(cache_key, value, timeout)
    except Exception:
        logger.warning("Cache write failed for %s.", cache_key, exc_info=True)
    return value


# -- the pair page by the slugs in its URL: served without a database query ------------------

# Only canonical slugs are ever stored; anything else goes the long way (redirect or 404).
_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def _pair_page_key(model_slug: str, gpu_slug: str) -> str:
    return key("pair-page", model_slug, gpu_slug)


# Each worker also keeps the pages it served last, so a hit reads only the small pair
# token from the cache, not the whole page (a large page costs a millisecond to fetch).
LOCAL_PAGES = 128
_local: OrderedDict[tuple[str, str], tuple] = OrderedDict()
_local_lock = threading.Lock()


def _remember(slugs: tuple[str, str], entry: tuple) -> None:
    with _local_lock:
        _local[slugs] = entry
        _local.move_to_end(slugs)
        while len(_local) > LOCAL_PAGES:
            _local.popitem(last=False)


def _recalled(slugs: tuple[str, str]) -> tuple | None:
    with _local_lock:
        return _local.get(slugs)


def pair_page(model_slug: str, gpu_slug: str) -> str | None:
    """The stored pair page, if no summary of the pair changed since it was rendered."""
    if not (_SLUG.fullmatch(model_slug) and _SLUG.fullmatch(gpu_slug)):
        return None
    slugs = (model_slug, gpu_slug)
    entry = _recalled(slugs)
    if entry is None:
        try:
            entry = cache.get(_pair_page_key(*slugs))
        except Exception:
            logger.warning("Cache read failed for %s/%s.", *slugs, exc_info=True)
            return None
        if not isinstance(entry, tuple) or len(entry) != 5:
            return None
        _remember(slugs, entry)
    model_id, gpu_id, token, html, expires_at = entry
    # Past PAGE_TIMEOUT the page's list of recent results is too old, whatever the token says.
    if expires_at < time.time() or token != aggregation.pair_version(model_id, gpu_id):
        return None
    return html


def store_pair_page(model_slug: str, gpu_slug: str, ids: tuple[int, int], token: str, html: str):
    """Keep a page rendered after `token` was read: a later summary change moves the token."""
    entry = (*ids, token, html, time.time() + PAGE_TIMEOUT)
    try:
        cache.set(_pair_page_key(model_slug, gpu_slug), entry, PAGE_TIMEOUT)
    except Exception:
        logger.warning("Cache write failed for %s/%s.", model_slug, gpu_slug, exc_info=True)
        return
    _remember((model_slug, gpu_slug), entry)
