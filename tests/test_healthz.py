"""/healthz: the database, cache and broker; 200 when all are up, 503 naming what is down."""

from __future__ import annotations

import json
import sys

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from tests.processes import closed_port, environment, run

pytestmark = pytest.mark.django_db

LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True},
        }
    }


def healthz(client) -> tuple[int, dict, str]:
    response = client.get("/healthz")
    return response.status_code, response.json(), response["Cache-Control"]


@pytest.mark.services
@pytest.mark.skipif(
    not (settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and settings.REDIS_URL),
    reason="needs DATABASE_URL and REDIS_URL for PostgreSQL and Redis (make test sets them)",
)
def test_healthz_is_ok_with_postgresql_redis_and_the_broker_up(client):
    assert healthz(client) == (
        200,
        {
            "status": "ok",
            "checks": {
                "database": {"ok": True, "engine": "postgresql"},
                "cache": {"ok": True, "backend": "RedisCache"},
                "broker": {"ok": True, "mode": "redis"},
            },
        },
        "max-age=0, no-cache, no-store, must-revalidate, private",
    )


@override_settings(CACHES=LOCAL_CACHE, CELERY_TASK_ALWAYS_EAGER=True)
def test_healthz_is_ok_on_the_embedded_defaults(client):
    assert healthz(client)[:2] == (
        200,
        {
            "status": "ok",
            "checks": {
                "database": {"ok": True, "engine": connection.vendor},
                "cache": {"ok": True, "backend": "LocMemCache"},
                "broker": {"ok": True, "mode": "eager"},
            },
        },
    )


def test_healthz_reports_the_cache_down_when_redis_does_not_answer(client):
    with override_settings(
        CACHES=redis_cache(f"redis://127.0.0.1:{closed_port()}/0"), CELERY_TASK_ALWAYS_EAGER=True
    ):
        assert healthz(client)[:2] == (
            503,
            {
                "status": "unavailable",
                "checks": {
                    "database": {"ok": True, "engine": connection.vendor},
                    "cache": {
                        "ok": False, "backend": "RedisCache", "error": "ConnectionError",
                    },
                    "broker": {"ok": True, "mode": "eager"},
                },
            },
        )  # fmt: skip


@override_settings(
    CACHES=LOCAL_CACHE,
    CELERY_TASK_ALWAYS_EAGER=False,
    CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0",
)
def test_healthz_reports_the_broker_down_when_redis_does_not_answer(client):
    assert healthz(client)[:2] == (
        503,
        {
            "status": "unavailable",
            "checks": {
                "database": {"ok": True, "engine": connection.vendor},
                "cache": {"ok": True, "backend": "LocMemCache"},
                "broker": {"ok": False, "mode": "redis", "error": "ConnectionError"},
            },
        },
    )


# The test run holds its own database open, so the down database is another process's.
HEALTHZ_IN_A_PROCESS = """
import json, django
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps([response.status_code, response.json()]))
"""


def test_healthz_reports_the_database_down_when_postgresql_does_not_answer(tmp_path):
    env = environment(
        tmp_path,
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"postgres://klein@127.0.0.1:{closed_port()}/klein",
    )
    result = run([sys.executable, "-c", HEALTHZ_IN_A_PROCESS], env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout) == [
        503,
        {
            "status": "unavailable",
            "checks": {
                "database": {"ok": False, "engine": "postgresql", "error": "OperationalError"},
                "cache": {"ok": True, "backend": "LocMemCache"},
                "broker": {"ok": True, "mode": "eager"},
            },
        },
    ]
