"""Fixed-window request counters in the Django cache, for /contribute.

Rates read like "60/hour" (second, minute, hour or day). Counting never blocks a request
when the cache is down: the limiter fails open and logs, because losing a measurement
is worse than letting a burst through.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

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
    now = time.time()
    window, remaining = _window(rate, now)
    key = _key(scope, ident, rate, window)
    try:
        cache.add(key, 0, timeout=remaining + 1)
        count = cache.incr(key)
    except ValueError:
        # The counter expired between add and incr: this is the window's first request.
        return
    except Exception:
        log.warning("rate limiter unavailable; letting the request through", exc_info=True)
        return
    if count > rate.limit:
        raise RateLimited(scope, remaining)


def check(scope: str, ident: str, rate: Rate) -> None:
    """Raise RateLimited if the window is already full, without counting this request."""
    now = time.time()
    window, remaining = _window(rate, now)
    try:
        count = cache.get(_key(scope, ident, rate, window), 0)
    except Exception:
        log.warning("rate limiter unavailable; letting the request through", exc_info=True)
        return
    if count >= rate.limit:
        raise RateLimited(scope, remaining)
