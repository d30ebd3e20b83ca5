"""The Redis cache backend that degrades to an empty cache instead of failing pages."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError

from config import cache as cache_module
from config.cache import ResilientRedisCache
from tests.processes import closed_port

OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}


@pytest.fixture(autouse=True)
def no_remembered_outages():
    cache_module._outages.clear()
    yield
    cache_module._outages.clear()


def backend(url: str, **params) -> ResilientRedisCache:
    return ResilientRedisCache(url, {"OPTIONS": OPTIONS, **params})


@pytest.fixture
def down():
    return backend(f"redis://:hunter2@127.0.0.1:{closed_port()}/3", RETRY_INTERVAL=0)


def test_while_redis_is_down_reads_miss_and_writes_are_dropped(down):
    assert down.get("key", "default") == "default"
    assert down.get_many(["a", "b"]) == {}
    assert down.has_key("key") is False
    assert down.set("key", 1) is None
    assert down.add("key", 1) is True
    assert down.set_many({"a": 1}) == []
    assert down.touch("key") is False
    assert down.delete("key") is False
    assert down.delete_many(["a"]) is None
    assert down.clear() is False
    assert down.get_or_set("key", lambda: "built") == "built"
    with pytest.raises(ValueError, match=r"^Key 'key' not found\.$"):
        down.incr("key")


def test_ping_raises_while_redis_is_down_so_healthz_can_tell(down):
    with pytest.raises(RedisConnectionError):
        down.ping()


def test_an_outage_is_logged_once_per_interval_without_the_password(down, caplog, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="config.cache"):
        for _ in range(5):
            down.get("key")
        clock[0] += 59
        down.set("key", 1)
        clock[0] += 2
        down.delete("key")
    port = down._servers[0].rsplit(":", 1)[1].split("/")[0]
    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records] == [
        ("WARNING", f"Redis cache at redis://127.0.0.1:{port}/3 is unreachable"),
        ("WARNING", f"Redis cache at redis://127.0.0.1:{port}/3 is unreachable"),
    ]
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(
            f"Redis cache at redis://127.0.0.1:{port}/3 is unreachable (ConnectionError on get: "
        )
    )
    assert caplog.records[1].getMessage().endswith("; serving without a cache.")
    assert "hunter2" not in caplog.text


def test_after_a_failure_redis_is_left_alone_until_the_retry_interval_passes(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: clock[0])
    cache = backend(f"redis://127.0.0.1:{closed_port()}/0", RETRY_INTERVAL=5)
    attempts = []
    real_get_client = cache._cache.get_client

    def counting_get_client(*args, **kwargs):
        attempts.append(clock[0])
        return real_get_client(*args, **kwargs)

    monkeypatch.setattr(cache._cache, "get_client", counting_get_client)
    for _ in range(3):
        assert cache.get("key", "miss") == "miss"
    clock[0] += 5
    assert cache.get("key", "miss") == "miss"
    assert attempts == [1000.0, 1005.0]


@pytest.mark.services
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (make test sets it)")
def test_the_cache_stores_again_once_redis_answers(caplog, monkeypatch):
    cache = backend(settings.REDIS_URL, RETRY_INTERVAL=0, KEY_PREFIX="test-cache-backend")
    real_get_client = cache._cache.get_client
    failures = [RedisConnectionError("Connection refused.")]

    def get_client_after_an_outage(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_get_client(*args, **kwargs)

    monkeypatch.setattr(cache._cache, "get_client", get_client_after_an_outage)
    with caplog.at_level(logging.WARNING, logger="config.cache"):
        cache.set("key", "first")
        cache.set("key", "second", 30)
        assert cache.get("key") == "second"
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"Redis cache at {settings.REDIS_URL} is unreachable",
        f"Redis cache at {settings.REDIS_URL} is reachable again.",
    ]
    cache.delete("key")


@pytest.mark.django_db
def test_pages_keep_answering_while_the_cache_is_down(client, catalog):
    caches = {
        "default": {
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": OPTIONS,
        }
    }
    with override_settings(CACHES=caches, CELERY_TASK_ALWAYS_EAGER=True):
        assert client.get("/").status_code == 200
        assert client.get("/healthz").json()["checks"]["cache"] == {
            "ok": False,
            "backend": "ResilientRedisCache",
            "error": "ConnectionError",
        }
