"""Caching for pages and plots that can never cost a page.

Keys carry the version of the summaries a page reads (SummaryQuerySet.version), so a
recomputed summary means a new key: nothing has to be deleted when data changes. If the
cache itself fails (Redis down, a value that will not unpickle), the page is rendered as
if the cache were empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

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
