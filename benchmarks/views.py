"""Plain Django views of the benchmarks app (the API lives in benchmarks.api)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django_redis import get_redis_connection
from django_redis.cache import RedisCache


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "engine": connection.vendor}
    except Exception as exc:  # any driver error means "down"; say which
        return {"ok": False, "engine": connection.vendor, "error": type(exc).__name__}


def _check_cache() -> dict:
    backend = caches["default"]
    name = type(backend).__name__
    try:
        if isinstance(backend, RedisCache):
            # The cache hides an outage from pages (IGNORE_EXCEPTIONS); its client does not.
            get_redis_connection("default").ping()
        else:
            backend.set("healthz", "ok", 5)
            if backend.get("healthz") != "ok":
                return {"ok": False, "backend": name}
        return {"ok": True, "backend": name}
    except Exception as exc:
        return {"ok": False, "backend": name, "error": type(exc).__name__}


def _check_broker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager"}
    import redis

    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1).ping()
        return {"ok": True, "mode": "redis"}
    except Exception as exc:
        return {"ok": False, "mode": "redis", "error": type(exc).__name__}


@never_cache
def healthz(request):
    """The state of the database, cache and broker: 200 when all are up, 503 otherwise."""
    checks = {
        "database": _check_database(),
        "cache": _check_cache(),
        "broker": _check_broker(),
    }
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
