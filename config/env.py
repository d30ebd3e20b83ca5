"""Small helpers that read settings from the environment.

Every problem becomes a ConfigurationError with one sentence that names the variable and
what it should look like; manage.py, wsgi.py and celery.py print it instead of a traceback.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse


class ConfigurationError(Exception):
    pass


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


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(name: str, url: str) -> dict:
    """A Django DATABASES entry for a PostgreSQL URL."""
    import dj_database_url

    example = "postgres://USER:PASSWORD@HOST:5432/DBNAME"
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ConfigurationError(f"{name} must be a PostgreSQL URL like {example}, not {url!r}.")
    if not parsed.hostname and not parsed.path.strip("/"):
        raise ConfigurationError(f"{name} must name a host and a database, like {example}.")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ConfigurationError(f"{name} is not a valid URL like {example}: {exc}.") from None
    if not config.get("NAME"):
        raise ConfigurationError(f"{name} must name a database, like {example}.")
    return config


def redis_url(name: str, url: str) -> str:
    example = "redis://HOST:6379/0"
    parsed = urlparse(url)
    if parsed.scheme not in {"redis", "rediss"} or not parsed.hostname:
        raise ConfigurationError(f"{name} must be a Redis URL like {example}, not {url!r}.")
    try:
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigurationError(f"{name} has a bad port; use a URL like {example}.") from None
    return url
