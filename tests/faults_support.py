"""The platform as real processes for the fault tests: gunicorn, a Celery worker and a
private redis-server that a test may kill and start again.

The servers use the test database (the tests are transactional, so what they write is
committed and the processes see it) and a redis-server of their own on a free port, never
the Redis that other test runs share. Every process is stopped with its process group
when its `with` block ends.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.processes import (
    BIN,
    PRODUCTION_SECRET,
    Process,
    environment,
    free_port,
    run,
    started,
)

NEEDS_POSTGRESQL = "needs DATABASE_URL for PostgreSQL (make test sets it)"


def require_postgresql() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip(NEEDS_POSTGRESQL)
    return url


def current_database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test_<name>)."""
    parts = urlsplit(require_postgresql())
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


class RedisServer:
    """A memory-only redis-server on a port of its own; kill() loses everything in it."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log_dir = tmp_path
        self.process: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.starts += 1
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no"]
        self.process = Process(args, os.environ, self.log_dir / f"redis-{self.starts}.log")
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.process.popen.poll() is not None:
                    output = self.process.output()
                    raise AssertionError(f"redis-server did not start:\n{output}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; the queued tasks are gone with it."""
        assert self.process is not None
        os.killpg(self.process.popen.pid, signal.SIGKILL)
        self.process.popen.wait(10)
        self.process.stop()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on the PATH, to stop and start a Redis of its own")
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def server_environment(
    tmp_path: Path, database_url: str, redis_url: str, port: int, **extra: str
) -> dict[str, str]:
    """Production settings on the loopback over plain HTTP, with generous rate limits."""
    return environment(
        tmp_path,
        DJANGO_DEBUG="0",
        SECRET_KEY=PRODUCTION_SECRET,
        ALLOWED_HOSTS="127.0.0.1",
        SITE_URL=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONTRIBUTE_RATE_PER_KEY="100000/hour",
        CONTRIBUTE_RATE_PER_IP="100000/hour",
        LOG_LEVEL="INFO",
        **extra,
    )


@pytest.fixture(name="collected_static", scope="session")
def collected_static_fixture(tmp_path_factory) -> Path:
    """STATIC_ROOT after collectstatic, which production's manifest storage needs."""
    root = tmp_path_factory.mktemp("static")
    env = environment(
        tmp_path_factory.mktemp("collect"),
        DJANGO_DEBUG="0",
        SECRET_KEY=PRODUCTION_SECRET,
        ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=str(root),
        # Production settings want both; collecting static files connects to neither.
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    done = run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"], env, 120)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


@contextmanager
def web_server(
    env: dict[str, str], port: int, log: Path, extra_args: list[str] | None = None
) -> Iterator[Process]:
    """gunicorn (two workers) serving the site, once it answers."""
    args = [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", "2", "--timeout", "60", "--graceful-timeout", "5", *(extra_args or [])]
    with started(args, env, log) as process:
        wait_until(lambda: _answers(port), 60, process, "gunicorn to answer")
        yield process


def _answers(port: int) -> bool:
    try:
        request("GET", port, "/healthz")
        return True
    except OSError:
        return False


@contextmanager
def celery_worker(env: dict[str, str], log: Path) -> Iterator[Process]:
    """`celery -A config worker` with one pool process, once it is ready."""
    args = [str(BIN / "celery"), "-A", "config", "worker", "--concurrency", "1"]
    args += ["--pool", "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    with started(args, env, log) as process:
        process.wait_for(r"celery@\S+ ready\.", timeout=60)
        yield process


def celery_call(env: dict[str, str], task: str) -> None:
    """Queue a task by name through the broker, as beat would."""
    done = run([str(BIN / "celery"), "-A", "config", "call", task], env, 60)
    assert done.returncode == 0, done.stdout + done.stderr


def request(
    method: str, port: int, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        connection_.request(method, path, body=body, headers={**sent, **(headers or {})})
        response = connection_.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection_.close()


def post_contribution(port: int, body: bytes) -> tuple[int, dict[str, Any]]:
    status, _, content = request("POST", port, "/contribute", body)
    return status, json.loads(content)


def wait_until(
    condition: Callable[[], Any], timeout: float, process: Process | None = None, what: str = ""
) -> Any:
    """condition()'s first truthy value, polled; fails after timeout with the log."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.popen.poll() is not None:
            raise AssertionError(f"exited with {process.popen.returncode}:\n{process.output()}")
        if time.monotonic() > deadline:
            log = process.output() if process is not None else ""
            raise AssertionError(
                f"gave up waiting for {what or condition} after {timeout} s\n{log}"
            )
        time.sleep(0.2)


def pool_processes(worker: Process) -> list[int]:
    """The worker's pool (child) processes."""
    done = subprocess.run(
        ["pgrep", "-P", str(worker.popen.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in done.stdout.split()]
