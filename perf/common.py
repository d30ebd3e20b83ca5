"""What the benchmarks share: a scratch database, a private Redis, gunicorn, wrk.

Everything runs on the loopback interface. Processes are started with the tests' helpers
(tests/processes.py): each is stopped with its whole process group when its `with` block
ends, whatever happened.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests import processes
from tests.processes import BIN, Process, free_port

# The PostgreSQL server the scratch database goes on (the database name is replaced).
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kb_perf"


def log(message: str) -> None:
    print(f"  .. {message}", flush=True)


def database_url() -> str:
    return os.environ.get("PERF_DATABASE_URL", DEFAULT_DATABASE_URL)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


# -- processes ------------------------------------------------------------------------------


@contextlib.contextmanager
def started(args: list[str], env: Mapping[str, str], name: str) -> Iterator[Process]:
    """processes.started with its output in a temporary file, removed afterwards."""
    handle, log = tempfile.mkstemp(prefix=f"perf-{name}-", suffix=".log")
    os.close(handle)
    try:
        with processes.started(args, env, Path(log)) as process:
            yield process
    finally:
        Path(log).unlink(missing_ok=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private, memory-only Redis for one benchmark; yields its URL."""
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--save", "", "--appendonly", "no"]
    with started(args, os.environ, "redis") as process:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if not process.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start:\n{process.output()}") from None
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"


# -- the scratch database -------------------------------------------------------------------


def _admin_connection():
    import psycopg

    return psycopg.connect(_with_database(database_url(), "postgres"), autocommit=True)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.strip("/")
    with _admin_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(url: str) -> None:
    """Drop, create, migrate and load the catalog."""
    from django.db import connections

    connections.close_all()
    name = urlsplit(url).path.strip("/")
    drop_database(url)
    with _admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    env = processes.clean_environment(DATABASE_URL=url)
    manage("migrate", "--no-input", "-v", "0", env=env)
    manage("loadcatalog", env=env)


def manage(*args: str, env: Mapping[str, str]) -> str:
    """Run manage.py; its output, or RuntimeError with everything it printed."""
    done = processes.manage(*args, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# -- the server under test --------------------------------------------------------------------


def production_environment(database: str, redis: str, port: int, **extra: str) -> dict[str, str]:
    """Settings as in production (DEBUG off, a real key, static files collected), served
    over plain HTTP on the loopback, with the perf-only URLs added."""
    return processes.clean_environment(
        DJANGO_SETTINGS_MODULE="perf.settings",
        DJANGO_DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SITE_URL=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=database,
        REDIS_URL=redis,
        STATIC_ROOT=str(static_root()),
        LOG_LEVEL="WARNING",
        **extra,
    )


_STATIC_ROOT: Path | None = None


def static_root() -> Path:
    """Static files collected once per run, as production collects them."""
    global _STATIC_ROOT
    if _STATIC_ROOT is None:
        _STATIC_ROOT = Path(tempfile.mkdtemp(prefix="perf-static-"))
        atexit.register(shutil.rmtree, _STATIC_ROOT, ignore_errors=True)
        env = processes.clean_environment(
            DJANGO_DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1",
            STATIC_ROOT=str(_STATIC_ROOT),
            # Production settings need both; collecting static files connects to neither.
            DATABASE_URL=database_url(),
            REDIS_URL="redis://127.0.0.1:6379/0",
        )
        manage("collectstatic", "--no-input", "-v", "0", env=env)
    return _STATIC_ROOT


@contextlib.contextmanager
def gunicorn(env: Mapping[str, str], port: int, workers: int = 2) -> Iterator[Process]:
    """gunicorn with sync workers on the loopback, up once /perf/bare answers."""
    args = [
        str(BIN / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]
    with started(args, env, "gunicorn") as process:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/perf/bare", timeout=5):
                    break
            except (OSError, urllib.error.URLError):
                if not process.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{process.output()}") from None
                time.sleep(0.3)
        yield process


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# -- wrk ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run: throughput and latency percentiles."""

    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: str

    def line(self) -> str:
        text = (
            f"{self.requests_per_second:8.1f} req/s   p50 {self.p50_ms:6.2f} ms   "
            f"p90 {self.p90_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms   ({self.requests} requests)"
        )
        return text + (f"   {self.errors}" if self.errors else "")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> Load:
    percentiles = {
        int(m[1]): _milliseconds(m[2])
        for m in re.finditer(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE)
    }
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not (total and rate and percentiles):
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    problems = []
    for pattern in (r"Socket errors:[^\n]*", r"Non-2xx or 3xx responses: \d+"):
        found = re.search(pattern, output)
        if found:
            problems.append(found[0])
    return Load(
        requests=int(total[1]),
        seconds=_milliseconds(total[2] + total[3]) / 1000,
        requests_per_second=float(rate[1]),
        p50_ms=percentiles[50],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        errors="; ".join(problems),
    )


def wrk(
    url: str,
    seconds: float,
    connections: int = 16,
    threads: int = 1,
    script: Path | None = None,
    env: Mapping[str, str] | None = None,
    lua_args: list[object] | None = None,
) -> Load:
    # One wrk thread is far faster than two Django workers, and leaves the CPU to them.
    args = ["wrk", "--latency", "-t", str(threads), "-c", str(connections)]
    args += ["-d", f"{seconds:g}s", "--timeout", "10s"]
    if script is not None:
        args += ["-s", str(script)]
    extra = ["--", *map(str, lua_args)] if lua_args else []
    done = subprocess.run(
        [*args, url, *extra],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env=dict(env) if env is not None else None,
        check=True,
    )
    return parse_wrk(done.stdout)


def machine() -> str:
    """One line about where the figures come from."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} CPU cores ({cpu}){memory}, Python {sys.version.split()[0]}"
