"""Request limits for /contribute, counted by django-ratelimit in the default cache.

Rates read like "60/hour" (config.env.parse_rate; settings refuse anything else at
start-up). Windows are fixed, one per counter. Counting never blocks a request when the
cache is down: the limiter fails open and logs, because losing a measurement is worse than
letting a burst through.
"""

from __future__ import annotations

import ipaddress
import logging

from django_ratelimit.core import get_usage

from config.env import parse_rate

log = logging.getLogger(__name__)

# One IPv6 subscriber gets a whole /64, so a per-address limit counts the /64.
IPV6_PREFIX = 64


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after: int):
        self.scope = scope
        self.retry_after = retry_after
        super().__init__(f"too many requests for this {scope}; retry in {retry_after} s")


def _usage(scope: str, ident: str, rate: str, *, increment: bool) -> dict | None:
    try:
        # No request: the counter's identity is given, and the limits apply to every method.
        usage = get_usage(
            None,
            group=f"contribute-{scope}",
            key=lambda _group, _request: ident,
            rate=parse_rate(rate),
            increment=increment,
        )
    except Exception:
        # django-ratelimit itself fails open only for the errors it knows of one backend;
        # any other cache failure must not cost a submission either.
        log.warning("rate limiter unavailable; letting the request through", exc_info=True)
        return None
    if usage is None:
        # RATELIMIT_FAIL_OPEN: the cache (django-redis ignoring its errors) kept no count.
        log.warning("rate limiter unavailable (the cache kept no count); letting it through")
    return usage


def count(scope: str, ident: str, rate: str) -> None:
    """Count one request; raise RateLimited when it is over the limit."""
    usage = _usage(scope, ident, rate, increment=True)
    if usage is not None and usage["should_limit"]:
        raise RateLimited(scope, max(1, usage["time_left"]))


def check(scope: str, ident: str, rate: str) -> None:
    """Raise RateLimited if the window is already full, without counting this request."""
    usage = _usage(scope, ident, rate, increment=False)
    if usage is not None and usage["count"] >= usage["limit"]:
        raise RateLimited(scope, max(1, usage["time_left"]))


def address_key(address: str) -> str:
    """The per-address counter's identity: the address, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX}", strict=False).network_address)
    return str(ip)
