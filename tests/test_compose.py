"""docker-compose.yml, read as Docker Compose reads it and run without Docker.

There is no Docker engine in CI, so these tests take each app service's own command and
environment from the compose file, point the service names at the loopback PostgreSQL and
Redis, start the command here and check that the service comes up and that its own
healthcheck passes. The image's build steps that matter at run time (collectstatic) are
taken from the Dockerfile the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from config.celery import app as celery_app
from tests.processes import (
    PRODUCTION_SECRET,
    REPO,
    environment,
    free_port,
    http_get,
    manage,
    run,
    started,
    wait_for_http,
)

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("web", "worker", "beat")

# What an operator exports before `docker compose up`.
OPERATOR = {
    "SECRET_KEY": PRODUCTION_SECRET,
    "ALLOWED_HOSTS": "klein-bench.example.org",
    "SITE_URL": "https://klein-bench.example.org",
    "POSTGRES_PASSWORD": "used-only-inside-compose",
}
# How the healthcheck and a TLS-terminating proxy ask for a page.
AS_THE_PROXY = {"Host": "klein-bench.example.org", "X-Forwarded-Proto": "https"}

NEEDS_SERVICES = "needs DATABASE_URL and REDIS_URL for PostgreSQL and Redis (make test sets them)"
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


class MissingVariable(Exception):
    pass


def interpolate(value: object, variables: Mapping[str, str]) -> object:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}."""
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3)
        current = variables.get(name)
        unset = current is None or (current == "" and operator and operator.startswith(":"))
        if operator and operator.endswith("-") and unset:
            return argument
        if operator and operator.endswith("?") and unset:
            raise MissingVariable(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def service(name: str, **operator: str) -> dict:
    return interpolate(SERVICES[name], {**OPERATOR, **operator})


# ---------------------------------------------------------------------------------------
# What the file declares


def test_compose_declares_the_five_services_each_with_a_healthcheck():
    assert set(SERVICES) == {"postgres", "redis", "web", "worker", "beat"}
    for name, definition in SERVICES.items():
        test = definition["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        assert definition["restart"] == "unless-stopped", name


def test_postgres_and_redis_keep_their_data_in_named_volumes():
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]
    assert "redis-data:/data" in SERVICES["redis"]["volumes"]
    assert SERVICES["redis"]["command"] == ["redis-server", "--appendonly", "yes"]
    assert set(COMPOSE["volumes"]) == {"postgres-data", "redis-data", "beat-schedule", "open-data"}


def test_the_worker_writes_the_open_data_where_web_serves_it():
    mount = "open-data:/var/lib/klein-bench/snapshots"
    assert mount in SERVICES["web"]["volumes"] and mount in SERVICES["worker"]["volumes"]
    for name in APP_SERVICES:
        assert service(name)["environment"]["SNAPSHOT_DIR"] == "/var/lib/klein-bench/snapshots"


def test_every_app_service_gets_the_production_environment():
    for name in APP_SERVICES:
        env = service(name)["environment"]
        assert env["DJANGO_DEBUG"] == "0", name
        assert (env["SECRET_KEY"], env["ALLOWED_HOSTS"], env["SITE_URL"]) == (
            OPERATOR["SECRET_KEY"], OPERATOR["ALLOWED_HOSTS"], OPERATOR["SITE_URL"],
        ), name  # fmt: skip
        assert env["DATABASE_URL"] == (
            "postgres://klein:used-only-inside-compose@postgres:5432/klein_bench"
        ), name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        # Behind the one reverse proxy the deployment expects.
        assert env["TRUSTED_PROXY_HOPS"] == "1", name


@pytest.mark.parametrize("variable", sorted(OPERATOR))
def test_compose_refuses_to_start_without_each_production_secret(variable):
    variables = {k: v for k, v in OPERATOR.items() if k != variable}
    with pytest.raises(MissingVariable, match=rf"^{variable}: set {variable} "):
        interpolate(COMPOSE, variables)


def test_services_start_only_after_what_they_need_is_healthy():
    needs = {
        name: {dep: spec["condition"] for dep, spec in definition.get("depends_on", {}).items()}
        for name, definition in SERVICES.items()
    }
    healthy = "service_healthy"
    assert needs == {
        "postgres": {},
        "redis": {},
        "web": {"postgres": healthy, "redis": healthy},
        "worker": {"postgres": healthy, "redis": healthy, "web": healthy},
        "beat": {"redis": healthy, "web": healthy},
    }


def test_the_image_installs_the_agent_core_and_the_server_and_collects_static_files():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert dockerfile.splitlines()[2] == "FROM python:3.11-slim"
    assert "RUN pip install ./agent -e .\n" in dockerfile
    assert "torch" not in dockerfile.replace("(and torch)", "")
    assert "collectstatic --no-input" in dockerfile
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert {".venv", "data", "tests", "*.safetensors"} <= set(ignored)


# ---------------------------------------------------------------------------------------
# Running each service's command here


def _require_services() -> tuple[str, str]:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        pytest.skip(
            "needs DATABASE_URL and REDIS_URL for PostgreSQL and Redis (make test sets them)"
        )
    return database_url, redis_url


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards."""
    import psycopg

    database_url, _ = _require_services()
    parts = urlsplit(database_url)
    name = f"{parts.path.strip('/')}_compose_{os.getpid()}"[:63]
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory) -> Path:
    """STATIC_ROOT as the Dockerfile's collectstatic step leaves it in the image."""
    dockerfile = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    step = next(line for line in runs if "collectstatic" in line)
    root = tmp_path_factory.mktemp("static")
    tmp = tmp_path_factory.mktemp("build")
    wheels = tmp / "agent"
    result = run(
        ["sh", "-c", step.removeprefix("RUN ")],
        environment(tmp, STATIC_ROOT=str(root), AGENT_WHEEL_DIR=str(wheels)),
        180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "staticfiles.json").is_file()
    # The same step builds the agent's wheel that the site serves at /agent/.
    assert [p.name for p in wheels.glob("klein_bench-*.whl")] != []
    return root


class Local:
    """One compose service turned into a command, healthcheck and environment for here."""

    def __init__(self, definition: dict, tmp_path: Path, redis_url: str) -> None:
        self.definition = definition
        self.web_port = free_port()
        self.redis = urlsplit(redis_url)
        self.volume = tmp_path / "volume"
        self.volume.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {}

    @classmethod
    def app(cls, name: str, tmp_path: Path, database_url: str, **operator: str) -> Local:
        """An app service on the scratch database and the test Redis."""
        _, redis_url = _require_services()
        local = cls(service(name, **operator), tmp_path, redis_url)
        env = dict(local.definition["environment"])
        assert urlsplit(env["DATABASE_URL"]).hostname == "postgres"
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"
        env["DATABASE_URL"], env["REDIS_URL"] = database_url, redis_url
        # Docker sets HOSTNAME to the container's name, which celery's node names use.
        env["HOSTNAME"] = socket.gethostname()
        # Paths in the service's volumes (SNAPSHOT_DIR) are the test's folder here.
        local.env = environment(tmp_path, **{k: local.localize(str(v)) for k, v in env.items()})
        return local

    def localize(self, text: str) -> str:
        text = text.replace("0.0.0.0:8000", f"127.0.0.1:{self.web_port}")
        text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.web_port}")
        text = text.replace("/var/lib/klein-bench", str(self.volume))
        redis_address = f"-h {self.redis.hostname} -p {self.redis.port or 6379}"
        return text.replace("redis-cli ping", f"redis-cli {redis_address} ping")

    @property
    def command(self) -> list[str]:
        return [self.localize(part) for part in self.definition["command"]]

    def healthcheck(self) -> list[str]:
        kind, *test = self.definition["healthcheck"]["test"]
        if kind == "CMD-SHELL":
            return ["sh", "-c", self.localize(test[0])]
        return [self.localize(part) for part in test]


@pytest.mark.services
def test_the_web_service_migrates_loads_the_catalog_and_serves_healthz(
    tmp_path, scratch_database, collected_static
):
    web = Local.app("web", tmp_path, scratch_database)
    web.env["STATIC_ROOT"] = str(collected_static)
    assert web.command[:2] == ["sh", "-c"]
    with started(web.command, web.env, tmp_path / "web.log") as process:
        status, headers, body = wait_for_http(web.web_port, "/healthz", process, 120, AS_THE_PROXY)
        assert (
            headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        )
        assert (status, json.loads(body)) == (
            200,
            {
                "status": "ok",
                "checks": {
                    "database": {"ok": True, "engine": "postgresql"},
                    "cache": {"ok": True, "backend": "RedisCache"},
                    "broker": {"ok": True, "mode": "redis"},
                },
            },
        )
        output = process.output()
        assert re.search(r"^Catalog loaded: \d+ created, 0 updated, 0 unchanged\.$", output, re.M)
        assert len(re.findall(r"Booting worker with pid", output)) >= 2

        # Pages render with the production static files storage (hashed names from the
        # manifest), which fails where development does not.
        for path in ("/", "/check/", "/api/v1/models"):
            assert http_get(web.web_port, path, AS_THE_PROXY)[0] == 200, path

        # WhiteNoise serves the collected files itself.
        status, headers, body = http_get(web.web_port, "/static/admin/css/base.css", AS_THE_PROXY)
        assert (status, headers["Content-Type"].split(";")[0]) == (200, "text/css")
        assert body == (collected_static / "admin/css/base.css").read_bytes()

        # Plain HTTP, not through the TLS proxy, is sent to HTTPS.
        status, headers, _ = http_get(web.web_port, "/healthz", {"Host": "klein-bench.example.org"})
        assert (status, headers["Location"]) == (301, "https://klein-bench.example.org/healthz")

        healthcheck = run(web.healthcheck(), web.env, timeout=30)
        assert healthcheck.returncode == 0, healthcheck.stdout + healthcheck.stderr
    assert "Traceback" not in process.output()


@pytest.mark.services
def test_the_worker_service_answers_a_ping(tmp_path, scratch_database):
    worker = Local.app("worker", tmp_path, scratch_database)
    node = f"celery@{socket.gethostname()}"
    with started(worker.command, worker.env, tmp_path / "worker.log") as process:
        process.wait_for(rf"{re.escape(node)} ready\.", timeout=60)
        assert celery_app.control.ping(destination=[node], timeout=5) == [{node: {"ok": "pong"}}]
        healthcheck = run(worker.healthcheck(), worker.env, timeout=60)
        assert healthcheck.returncode == 0, healthcheck.stdout + healthcheck.stderr
        assert f"{node}: OK" in healthcheck.stdout
    assert "Traceback" not in process.output()


@pytest.mark.services
def test_beat_schedules_the_reconcile_task_the_worker_runs_and_answers_its_healthcheck(
    tmp_path, scratch_database
):
    # The schedule reads RECONCILE_INTERVAL_SECONDS, passed through from the operator.
    beat = Local.app("beat", tmp_path / "beat", scratch_database, RECONCILE_INTERVAL_SECONDS="2")
    worker = Local.app("worker", tmp_path / "worker", scratch_database)
    migrated = manage("migrate", "--no-input", env=worker.env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    node = f"celerybeat@{socket.gethostname()}"
    with (
        started(worker.command, worker.env, tmp_path / "worker.log") as worker_process,
        started(beat.command, beat.env, tmp_path / "beat.log") as beat_process,
    ):
        worker_process.wait_for(r"celery@\S+ ready\.", timeout=60)
        beat_process.wait_for(
            r"Sending due task reconcile-summaries \(benchmarks\.tasks\.reconcile_summaries\)",
            timeout=60,
        )
        worker_process.wait_for(
            r"Task benchmarks\.tasks\.reconcile_summaries\[[\w-]+\] succeeded", timeout=60
        )
        worker_process.wait_for(
            r"Task benchmarks\.tasks\.reconcile_consensus\[[\w-]+\] succeeded", timeout=60
        )
        healthcheck = run(beat.healthcheck(), beat.env, timeout=60)
        assert healthcheck.returncode == 0, healthcheck.stdout + healthcheck.stderr
        assert f"{node}: OK" in healthcheck.stdout
    assert list(beat.volume.glob("celerybeat-schedule*"))
    for process in (worker_process, beat_process):
        assert "Traceback" not in process.output()


@pytest.mark.services
def test_the_worker_writes_the_nightly_snapshot_that_web_serves(tmp_path, scratch_database):
    worker = Local.app("worker", tmp_path, scratch_database)
    migrated = manage("migrate", "--no-input", env=worker.env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    with started(worker.command, worker.env, tmp_path / "worker.log") as process:
        process.wait_for(r"celery@\S+ ready\.", timeout=60)
        # What beat sends at 03:00, sent now.
        celery_app.send_task("benchmarks.tasks.write_snapshot")
        process.wait_for(r"Task benchmarks\.tasks\.write_snapshot\[[\w-]+\] succeeded", timeout=90)
    folder = Path(worker.env["SNAPSHOT_DIR"])
    assert folder.is_relative_to(tmp_path)
    [snapshot] = [p for p in folder.iterdir() if not p.name.startswith(".")]
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["licence"] == "CC BY 4.0"
    assert {f["name"] for f in manifest["files"]} == {
        "results.csv.gz", "results.parquet", "documents.jsonl.gz", "reports.csv.gz", "LICENCE.txt",
    }  # fmt: skip
    assert "Traceback" not in process.output()


@pytest.mark.services
@pytest.mark.parametrize("name", ["postgres", "redis"])
def test_the_postgres_and_redis_healthchecks_pass_against_the_local_servers(tmp_path, name):
    database_url, redis_url = _require_services()
    local = Local(SERVICES[name], tmp_path, redis_url)
    command = local.healthcheck()
    if not shutil.which(command[-1].split()[0]):
        pytest.skip(f"{command[-1].split()[0]} is not installed here")
    database = urlsplit(database_url)
    env = environment(
        tmp_path, PGHOST=database.hostname or "127.0.0.1", PGPORT=str(database.port or 5432)
    )
    result = run(command, env, timeout=30)
    assert result.returncode == 0, (result.stdout, result.stderr)


def test_the_web_healthcheck_fails_when_nothing_answers(tmp_path):
    web = Local(service("web"), tmp_path, "redis://127.0.0.1:6379/0")
    result = run(web.healthcheck(), environment(tmp_path, **OPERATOR), timeout=30)
    assert result.returncode != 0
    assert "Connection refused" in result.stderr
