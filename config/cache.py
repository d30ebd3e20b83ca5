"""A Redis cache that keeps the site up when Redis is not.

The cache only saves work, so losing it must not cost a page: while Redis is unreachable
this backend behaves like Django's DummyCache (every read misses, every write is dropped)
and logs one WARNING per interval instead of raising. /healthz still sees the outage
through `ping()`, which does raise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "Redis is not there", as opposed to a bug in how the cache is used.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class _Outage:
    """Per-process memory of a Redis outage, shared by the per-thread cache objects."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.retry_at = 0.0
        self.warned_at: float | None = None

    def skipping(self, now: float) -> bool:
        return now < self.retry_at

    def record(self, now: float, retry_seconds: float, warn_seconds: float) -> bool:
        """Note a failure; True when it is time to log a warning again."""
        with self.lock:
            self.retry_at = now + retry_seconds
            if self.warned_at is None or now - self.warned_at >= warn_seconds:
                self.warned_at = now
                return True
            return False

    def recovered(self) -> bool:
        with self.lock:
            was_down = self.warned_at is not None
            self.retry_at = 0.0
            self.warned_at = None
            return was_down


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage_for(location: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(location, _Outage())


def _redacted(location: str) -> str:
    """The server address without a password, for log lines."""
    parts = urlsplit(location)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class ResilientRedisCache(RedisCache):
    """Django's RedisCache, degraded to a miss instead of an error while Redis is down.

    Extra cache settings (beside the usual BACKEND, LOCATION, TIMEOUT, OPTIONS):
    WARNING_INTERVAL, seconds between two warnings about the same outage (default 60), and
    RETRY_INTERVAL, seconds to serve without Redis before trying it again (default 5), so a
    host that swallows packets costs one connect timeout per interval, not one per call.
    """

    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self._warning_interval = float(params.get("WARNING_INTERVAL", 60))
        self._retry_interval = float(params.get("RETRY_INTERVAL", 5))
        self._address = ", ".join(_redacted(s) for s in self._servers)
        self._outage = _outage_for(self._address)

    def _call(self, operation: str, action: Callable[[], T], fallback: Callable[[], T]) -> T:
        now = time.monotonic()
        if self._outage.skipping(now):
            return fallback()
        try:
            result = action()
        except UNREACHABLE as exc:
            if self._outage.record(now, self._retry_interval, self._warning_interval):
                logger.warning(
                    "Redis cache at %s is unreachable (%s on %s: %s); serving without a cache.",
                    self._address,
                    type(exc).__name__,
                    operation,
                    exc,
                )
            return fallback()
        self._back()
        return result

    def _back(self) -> None:
        if self._outage.warned_at is not None and self._outage.recovered():
            logger.warning("Redis cache at %s is reachable again.", self._address)

    def ping(self) -> None:
        """Raise the client's error unless Redis answers; never skipped, never degraded."""
        self._cache.get_client(write=True).ping()
        self._back()

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._call("get", partial(super().get, key, default, version), lambda: default)

    def get_many(self, keys: Any, version: int | None = None) -> dict:
        return self._call("get_many", partial(super().get_many, keys, version), dict)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._call("has_key", partial(super().has_key, key, version), lambda: False)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self._call("set", partial(super().set, key, value, timeout, version), lambda: None)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        # An empty cache would accept the key, as DummyCache does.
        return self._call("add", partial(super().add, key, value, timeout, version), lambda: True)

    def set_many(
        self, data: dict, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list:
        return self._call("set_many", partial(super().set_many, data, timeout, version), list)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._call("touch", partial(super().touch, key, timeout, version), lambda: False)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._call("delete", partial(super().delete, key, version), lambda: False)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._call("delete_many", partial(super().delete_many, keys, version), lambda: None)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        # Every backend raises ValueError for a missing key, so callers already handle it.
        def missing() -> int:
            raise ValueError(f"Key '{key}' not found.")

        return self._call("incr", partial(super().incr, key, delta, version), missing)

    def clear(self) -> bool:
        return self._call("clear", super().clear, lambda: False)
