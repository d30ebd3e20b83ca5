"""Small helpers that read settings from the environment.

Every problem becomes a ConfigurationError with one sentence that names the variable and
what it should look like; manage.py, wsgi.py and celery.py end start-up with it through
`stop()` instead of a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn
from urllib.parse import ParseResult, urlparse


class ConfigurationError(Exception):
    pass


# gunicorn stops when a worker exits with status 4 ("app failed to load"); after any other
# status it starts the worker again, forever, and the message scrolls away.
EXIT_STATUS = 4


def stop(exc: ConfigurationError) -> NoReturn:
    """End start-up with the one-sentence message, for every entry point alike."""
    # The real stderr: celery beat has redirected sys.stderr into its logger by the time
    # it can check its broker.
    stream = sys.__stderr__ or sys.stderr
    print(f"klein-bench: {exc}", file=stream, flush=True)
    sys.exit(EXIT_STATUS)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false (1/0, yes/no), not {raw!r}.")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(
            f"{name} must be a whole number of at least {minimum}, not {raw!r}."
        )
    return value


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(text: str) -> tuple[int, int]:
    """A rate like '60/hour' (second, minute, hour or day; plurals too) as (60, 3600), the
    (requests, seconds) pair django-ratelimit takes. Raises ValueError for anything else."""
    count, slash, unit = text.strip().partition("/")
    period = _PERIODS.get(unit.strip().lower().removesuffix("s"))
    if not slash or period is None or not (count.isascii() and count.isdigit()) or int(count) < 1:
        raise ValueError(f"not a rate: {text!r}")
    return int(count), period


def env_rate(name: str, default: str) -> str:
    """A request rate like 60/hour, checked at start-up so that a typo cannot reach a
    request."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        parse_rate(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be a number of requests above 0 per second, minute, hour or day, "
            f"like 60/hour, not {raw!r}."
        ) from None
    return raw.strip()


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(name: str, url: str) -> dict:
    """A Django DATABASES entry for a PostgreSQL URL."""
    import dj_database_url

    example = "postgres://USER:PASSWORD@HOST:5432/DBNAME"
    parsed = _parse(name, url, example)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ConfigurationError(
            f"{name} must be a PostgreSQL URL like {example}, not {_shown(parsed)!r}."
        )
    if not parsed.hostname and not parsed.path.strip("/"):
        raise ConfigurationError(f"{name} must name a host and a database, like {example}.")
    _check_port(name, parsed, example)
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError:
        raise ConfigurationError(
            f"{name} is not a valid URL; write it like {example}, with special characters "
            "in the password percent-encoded."
        ) from None
    if not config.get("NAME"):
        raise ConfigurationError(f"{name} must name a database, like {example}.")
    return config


def redis_url(name: str, url: str) -> str:
    example = "redis://HOST:6379/0"
    parsed = _parse(name, url, example)
    if parsed.scheme not in {"redis", "rediss"} or not parsed.hostname:
        raise ConfigurationError(
            f"{name} must be a Redis URL like {example}, not {_shown(parsed)!r}."
        )
    _check_port(name, parsed, example)
    database = parsed.path.strip("/")
    if database and not database.isdigit():
        raise ConfigurationError(
            f"{name} must end with a database number, like {example}, not /{database}."
        )
    return url


def _parse(name: str, url: str, example: str) -> ParseResult:
    try:
        return urlparse(url)
    except ValueError:  # e.g. an unbalanced "[" read as an IPv6 address
        raise ConfigurationError(
            f"{name} is not a valid URL; write it like {example}, with special characters "
            "in the password percent-encoded."
        ) from None


def _shown(parsed: ParseResult) -> str:
    """The URL as it may appear in an error message: with any password masked."""
    if parsed.password is None:
        return parsed.geturl()
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()


def _check_port(name: str, parsed: ParseResult, example: str) -> None:
    try:
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
    except ValueError:
        raise ConfigurationError(
            f"{name} has a bad port; the port is a number up to 65535, as in {example}."
        ) from None
