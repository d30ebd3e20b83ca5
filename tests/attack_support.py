"""The platforms the adversarial suite (tests/test_attack_*.py) attacks, as real servers.

Each attack runs against both deployments a contributor can meet:

- "sqlite": the embedded defaults, as `make run` serves them (the Makefile's gunicorn, one
  process and threads, SQLite in a data directory of its own, tasks in the web process,
  the local-memory cache, DJANGO_DEBUG on);
- "postgresql": production settings under gunicorn (two workers) on the test PostgreSQL
  database, with a redis-server of its own for the cache, the limiter and the broker.

Both servers start once per session. A test asks for `platform` (parametrized over both;
import its three fixtures, as tests/contribute_support.py explains)
and compares `platform.rows()` before and after: a refusal must store nothing. The
PostgreSQL tests are transactional (the server must see what the test wrote, and the
test what the server wrote), so each test starts from the freshly loaded catalog.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.faults_support import (
    RedisServer,
    current_database_url,
    redis_server,
    server_environment,
    wait_until,
)
from tests.processes import BIN, Process, environment, free_port, manage, started

# What a refusal must leave as it was.
TABLES = {
    "contributors": "benchmarks_contributor",
    "submissions": "benchmarks_submission",
    "results": "benchmarks_result",
    "nonces": "benchmarks_usednonce",
    "gpus": "benchmarks_gpu",
    "configurations": "benchmarks_configuration",
}
# Every attack module's marks: real servers, and transactions the servers can see.
ATTACK_MARKS = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
GENEROUS = {"CONTRIBUTE_RATE_PER_KEY": "100000/hour", "CONTRIBUTE_RATE_PER_IP": "100000/hour"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> tuple[int, str | None]:
        """(status, error code): what every refusal test asserts first."""
        try:
            return self.status, self.json().get("error")
        except ValueError:
            return self.status, f"not JSON: {self.body[:200]!r}"


class Platform:
    def __init__(self, name: str, port: int, process: Process) -> None:
        self.name = name
        self.port = port
        self.process = process

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            sent = {"Content-Type": content_type} if content_type and body is not None else {}
            connection.request(method, path, body=body, headers={**sent, **(headers or {})})
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def post(self, body: bytes, **kwargs: Any) -> Answer:
        return self.request("POST", "/contribute", body, **kwargs)

    def delete(self, result_id: int | str, body: bytes, **kwargs: Any) -> Answer:
        return self.request("DELETE", f"/contribute/{result_id}", body, **kwargs)

    def rows(self) -> dict[str, int]:
        raise NotImplementedError

    def no_tracebacks(self) -> None:
        assert "Traceback" not in self.process.output(), self.process.output()[-5000:]


class SqlitePlatform(Platform):
    def __init__(self, port: int, process: Process, database: Path) -> None:
        super().__init__("sqlite", port, process)
        self.database = database

    def rows(self) -> dict[str, int]:
        with sqlite3.connect(self.database, timeout=30) as connection:
            return {
                name: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for name, table in TABLES.items()
            }


class PostgresPlatform(Platform):
    def __init__(self, port: int, process: Process, redis: RedisServer) -> None:
        super().__init__("postgresql", port, process)
        self.redis = redis

    def rows(self) -> dict[str, int]:
        from django.db import connection

        with connection.cursor() as cursor:
            counts = {}
            for name, table in TABLES.items():
                cursor.execute(f"SELECT count(*) FROM {table}")
                counts[name] = cursor.fetchone()[0]
            return counts


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        connection.close()
        return True
    except OSError:
        return False


@contextmanager
def sqlite_platform(tmp_path: Path, **env: str) -> Iterator[SqlitePlatform]:
    """The embedded defaults as `make run` serves them (its gunicorn, without --reload)."""
    variables = environment(tmp_path, **{**GENEROUS, **env})
    for command in (["migrate", "--no-input", "-v", "0"], ["loadcatalog"]):
        done = manage(*command, env=variables, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    args = [str(BIN / "gunicorn"), "config.wsgi", "--workers", "1", "--threads", "8"]
    args += ["--bind", f"127.0.0.1:{port}"]
    with started(args, variables, tmp_path / "sqlite-web.log") as process:
        wait_until(lambda: _answers(port), 60, process, "gunicorn on SQLite to answer")
        yield SqlitePlatform(port, process, tmp_path / "data" / "klein-bench.sqlite3")


@contextmanager
def postgres_platform(tmp_path: Path, **env: str) -> Iterator[PostgresPlatform]:
    """Production settings under gunicorn on the test database, with a Redis of its own."""
    port = free_port()
    with redis_server(tmp_path) as redis:
        variables = server_environment(tmp_path, current_database_url(), redis.url, port)
        variables.update(env)
        args = [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
        args += ["--workers", "2", "--timeout", "60"]
        with started(args, variables, tmp_path / "postgres-web.log") as process:
            wait_until(lambda: _answers(port), 60, process, "gunicorn on PostgreSQL to answer")
            yield PostgresPlatform(port, process, redis)


@contextmanager
def started_platform(kind: str, request: pytest.FixtureRequest, **env: str) -> Iterator[Platform]:
    """A platform of its own, with these settings (e.g. low rate limits), for one test."""
    tmp_path = request.getfixturevalue("tmp_path")
    if kind == "sqlite":
        with sqlite_platform(tmp_path, **env) as platform:
            yield platform
        return
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("needs DATABASE_URL for PostgreSQL (make test sets it)")
    request.getfixturevalue("catalog")
    with postgres_platform(tmp_path, **env) as platform:
        yield platform


@pytest.fixture(name="sqlite_server", scope="session")
def sqlite_server_fixture(tmp_path_factory) -> Iterator[SqlitePlatform]:
    with sqlite_platform(tmp_path_factory.mktemp("attack-sqlite")) as platform:
        yield platform


@pytest.fixture(name="postgres_server", scope="session")
def postgres_server_fixture(tmp_path_factory, django_db_setup, django_db_blocker):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("needs DATABASE_URL for PostgreSQL (make test sets it)")
    with (
        django_db_blocker.unblock(),
        postgres_platform(tmp_path_factory.mktemp("attack-postgres")) as platform,
    ):
        yield platform


@pytest.fixture(name="platform", params=["sqlite", "postgresql"])
def platform_fixture(request) -> Platform:
    """Each attack against the embedded defaults and against PostgreSQL + gunicorn."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_server")
    server = request.getfixturevalue("postgres_server")
    # The server sees only what is committed, so attack modules are transactional
    # (ATTACK_MARKS), and each test starts from the freshly loaded catalog.
    request.getfixturevalue("catalog")
    return server
