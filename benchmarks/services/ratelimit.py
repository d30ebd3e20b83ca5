"""Fixed-window request counters in the Django cache, for /contribute.

Rates read like "60/hour" (second, minute, hour or day). Counting never blocks a request
when the cache is down: the limiter fails open and logs, because losing a measurement
is worse than letting a burst through.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django_redis.cache import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """'60/hour' -> Rate(60, 3600). Raises ValueError for anything else."""
        count, _, unit = text.partition("/")
        unit = unit.strip().lower().removesuffix("s")
        if unit not in _PERIODS or not count.strip().isdigit():
            raise ValueError(f"rate must look like '60/hour', not {text!r}")
        return cls(int(count), _PERIODS[unit])


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after: int):
        self.scope = scope
        self.retry_after = retry_after
        super().__init__(f"too many requests for this {scope}; retry in {retry_after} s")


def _window(rate: Rate, now: float) -> tuple[int, int]:
    """The current window's number and the whole seconds until it ends (at least 1)."""
    window = int(now // rate.period)
    return window, max(1, math.ceil((window + 1) * rate.period - now))


def _key(scope: str, ident: str, rate: Rate, window: int) -> str:
    return f"ratelimit:{scope}:{rate.period}:{window}:{ident}"


def hit(scope: str, ident: str, rate: Rate) -> None:
    """Count one request; raise RateLimited when it is over the limit."""
    limit(hits=[(scope, ident, rate)])


def check(scope: str, ident: str, rate: Rate) -> None:
    """Raise RateLimited if the window is already full, without counting this request."""
    limit(checks=[(scope, ident, rate)])


Counter = tuple[str, str, Rate]


def limit(hits: Sequence[Counter] = (), checks: Sequence[Counter] = ()) -> None:
    """Count one request against each of `hits` and look at each of `checks` (whose
    window must not be full already), in one round trip to Redis where the cache is
    Redis. The first counter over its limit, hits before checks, is the one raised."""
    now = time.time()
    counters = [*hits, *checks]
    windows = [_window(rate, now) for _, _, rate in counters]
    keys = [
        _key(scope, ident, rate, window)
        for (scope, ident, rate), (window, _) in zip(counters, windows, strict=True)
    ]
    timeouts = [remaining + 1 for _, remaining in windows[: len(hits)]]
    try:
        counts = _counts(list(zip(keys, timeouts, strict=False)), keys[len(hits) :])
    except Exception:
        log.warning("rate limiter unavailable; letting the request through", exc_info=True)
        return
    for index, ((scope, _, rate), count) in enumerate(zip(counters, counts, strict=True)):
        over = count > rate.limit if index < len(hits) else count >= rate.limit
        if over:
            raise RateLimited(scope, windows[index][1])


def _counts(hits: list[tuple[str, int]], checks: list[str]) -> list[int]:
    """Each hit key's count after adding one (made with its timeout when new), then each
    check key's count."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        return _redis_counts(backend, hits, checks)
    counts = []
    for key, timeout in hits:
        cache.add(key, 0, timeout=timeout)
        try:
            counts.append(cache.incr(key))
        except ValueError:
            # The counter expired between add and incr: the window is new, nothing to hold
            # against this request.
            counts.append(0)
    return counts + [cache.get(key, 0) for key in checks]


def _redis_counts(backend: RedisCache, hits: list[tuple[str, int]], checks: list[str]) -> list[int]:
    def send() -> list[int]:
        pipe = _client(backend).pipeline(transaction=False)
        for key, timeout in hits:
            name = backend.make_and_validate_key(key)
            # SET NX then INCR: the counter always exists when INCR runs, so it never
            # loses its timeout.
            pipe.set(name, 0, ex=timeout, nx=True)
            pipe.incr(name)
        for key in checks:
            pipe.get(backend.make_and_validate_key(key))
        replies = pipe.execute()
        counted = replies[1 : 2 * len(hits) : 2]
        return [int(n) for n in counted] + [int(n or 0) for n in replies[2 * len(hits) :]]

    try:
        return send()
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # Redis is down (for the cache too; /healthz says so): count nothing.
        log.warning("rate limiter unavailable (%s); letting the request through", exc)
        return [0] * (len(hits) + len(checks))


# One client per cache backend object (Django keeps one per thread): making a client builds
# its table of reply parsers, which costs more than the round trip it is made for.
_clients: weakref.WeakKeyDictionary[RedisCache, Any] = weakref.WeakKeyDictionary()


def _client(backend: RedisCache) -> Any:
    client = _clients.get(backend)
    if client is None:
        client = _clients[backend] = backend.client.get_client(write=True)
    return client
