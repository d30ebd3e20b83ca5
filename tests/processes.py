"""Running the platform's own entry points (manage.py, gunicorn, celery, redis-server) as
subprocesses, for the tests and for the benchmarks in perf/.

Every process started here runs in a session of its own and is killed with its whole group
when its `with` block ends, whatever happened, so nothing is left behind.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Settings a started process must not inherit from the run that starts it.
SETTINGS_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "PORT",
    "DJANGO_TECHNICAL_404",
    "SECURE_SSL_REDIRECT",
    "CSRF_TRUSTED_ORIGINS",
    "KLEIN_BENCH_DATA_DIR",
    "STATIC_ROOT",
    "AGENT_WHEEL_DIR",
    "DJANGO_SETTINGS_MODULE",
    # Set by the browser tests for their own process; never meant for a started server.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "RECONCILE_INTERVAL_SECONDS",
    "LOG_LEVEL",
)

PRODUCTION_SECRET = "test-only-secret-key-with-more-than-fifty-characters-0123456789"


def clean_environment(**variables: str) -> dict[str, str]:
    """An environment for a subprocess: no inherited settings, this virtualenv first."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment for a test's subprocess, its data in the test's folder."""
    return clean_environment(KLEIN_BENCH_DATA_DIR=str(tmp_path / "data"), **variables)


def run(
    args: list[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, env=dict(env), capture_output=True, text=True, timeout=timeout
    )


def manage(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", *args], env, timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return free_port()


class Process:
    """A started command whose output goes to a log file the test can wait on."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.popen = subprocess.Popen(
            args,
            cwd=REPO,
            env=dict(env),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first match of pattern in the output; fails when the process ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"exited with {self.popen.returncode} before {pattern!r}:\n{self.output()}"
                )
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log_file.close()


@contextmanager
def started(args: list[str], env: Mapping[str, str], log: Path) -> Iterator[Process]:
    process = Process(args, env, log)
    try:
        yield process
    finally:
        process.stop()


def http_get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one GET to the loopback port; redirects are not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def wait_for_http(
    port: int, path: str, process: Process, timeout: float, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    """The first answer from the server the process is starting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"exited with {process.popen.returncode}:\n{process.output()}")
        try:
            return http_get(port, path, headers)
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"port {port} did not answer within {timeout} s:\n{process.output()}")
