"""Settings from the environment, through every entry point an operator starts.

Each test runs the real command (manage.py, gunicorn, celery) in a subprocess, because
what is under test is start-up itself: a bad setting must end it with one sentence
naming the variable, never a traceback, and a good environment must pass Django's checks.
"""

from __future__ import annotations

import json
import sys

import pytest

from config.env import EXIT_STATUS
from tests.processes import BIN, PRODUCTION_SECRET, closed_port, environment, manage, run

DATABASE_EXAMPLE = "postgres://USER:PASSWORD@HOST:5432/DBNAME"
PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "SECRET_KEY": PRODUCTION_SECRET,
    "ALLOWED_HOSTS": "kb.example",
    "DATABASE_URL": "postgres://klein@db.internal:5432/klein_bench",
    "REDIS_URL": "redis://cache.internal:6379/0",
}

BAD_ENVIRONMENTS = {
    "a database that is not PostgreSQL, password hidden": (
        {"DATABASE_URL": "mysql://klein:hunter2@db/klein"},
        f"DATABASE_URL must be a PostgreSQL URL like {DATABASE_EXAMPLE}, "
        "not 'mysql://klein:***@db/klein'.",
    ),
    "a database URL that is not a URL": (
        {"DATABASE_URL": "klein_bench"},
        f"DATABASE_URL must be a PostgreSQL URL like {DATABASE_EXAMPLE}, not 'klein_bench'.",
    ),
    "a database port that is not a number": (
        {"DATABASE_URL": "postgres://klein@db:five/klein"},
        f"DATABASE_URL has a bad port; the port is a number up to 65535, as in {DATABASE_EXAMPLE}.",
    ),
    "a database URL without a database": (
        {"DATABASE_URL": "postgres://klein@db:5432"},
        f"DATABASE_URL must name a database, like {DATABASE_EXAMPLE}.",
    ),
    "a password with an unescaped bracket": (
        {"DATABASE_URL": "postgres://klein:pa[ss@db/klein"},
        f"DATABASE_URL is not a valid URL; write it like {DATABASE_EXAMPLE}, with special "
        "characters in the password percent-encoded.",
    ),
    "a Redis URL without a scheme": (
        {"REDIS_URL": "localhost:6379"},
        "REDIS_URL must be a Redis URL like redis://HOST:6379/0, not 'localhost:6379'.",
    ),
    "a Redis database that is not a number": (
        {"REDIS_URL": "redis://cache:6379/cache"},
        "REDIS_URL must end with a database number, like redis://HOST:6379/0, not /cache.",
    ),
    "a Redis port out of range": (
        {"REDIS_URL": "redis://cache:70000/0"},
        "REDIS_URL has a bad port; the port is a number up to 65535, as in redis://HOST:6379/0.",
    ),
    "production without a secret key": (
        {"DJANGO_DEBUG": "0", "ALLOWED_HOSTS": "kb.example"},
        "SECRET_KEY must be set to a random string of at least 50 characters when "
        "DJANGO_DEBUG is off (for example: python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))').",
    ),
    "production with a short secret key": (
        {"DJANGO_DEBUG": "off", "SECRET_KEY": "changeme", "ALLOWED_HOSTS": "kb.example"},
        "SECRET_KEY must be set to a random string of at least 50 characters when "
        "DJANGO_DEBUG is off (for example: python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))').",
    ),
    "production without allowed hosts": (
        {"DJANGO_DEBUG": "0", "SECRET_KEY": PRODUCTION_SECRET},
        "ALLOWED_HOSTS must list the site's host names, comma-separated (for example: "
        "klein-bench.org,www.klein-bench.org), when DJANGO_DEBUG is off.",
    ),
    "production without a database URL": (
        {**PRODUCTION, "DATABASE_URL": ""},
        "DATABASE_URL must be set when DJANGO_DEBUG is off, like "
        f"{DATABASE_EXAMPLE} (the SQLite default is for development).",
    ),
    "production without a Redis URL": (
        {**PRODUCTION, "REDIS_URL": " "},
        "REDIS_URL must be set when DJANGO_DEBUG is off, like redis://HOST:6379/0 (without "
        "it every web process would keep its own cache and run tasks itself).",
    ),
    "a debug flag that is not a yes or no": (
        {"DJANGO_DEBUG": "maybe"},
        "DJANGO_DEBUG must be true or false (1/0, yes/no), not 'maybe'.",
    ),
    "an interval that is not a number": (
        {"RECONCILE_INTERVAL_SECONDS": "often"},
        "RECONCILE_INTERVAL_SECONDS must be a whole number, not 'often'.",
    ),
    "a rate that is not a number": (
        {"CONTRIBUTE_RATE_PER_KEY": "sixty"},
        "CONTRIBUTE_RATE_PER_KEY must be a number of requests above 0 per second, minute, "
        "hour or day, like 60/hour, not 'sixty'.",
    ),
    "a rate over an unknown period": (
        {"CONTRIBUTE_RATE_PER_IP": "60/fortnight"},
        "CONTRIBUTE_RATE_PER_IP must be a number of requests above 0 per second, minute, "
        "hour or day, like 60/hour, not '60/fortnight'.",
    ),
    "a rate of nothing": (
        {"CONTRIBUTE_RATE_PER_IP": "0/hour"},
        "CONTRIBUTE_RATE_PER_IP must be a number of requests above 0 per second, minute, "
        "hour or day, like 60/hour, not '0/hour'.",
    ),
    "a negative number of trusted proxies": (
        {"TRUSTED_PROXY_HOPS": "-1"},
        "TRUSTED_PROXY_HOPS must be a whole number of at least 0, not '-1'.",
    ),
}


def assert_stopped_with(result, sentence: str) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.returncode == EXIT_STATUS, output
    assert f"klein-bench: {sentence}" in result.stderr.splitlines(), output


@pytest.mark.parametrize(
    ("variables", "sentence"), BAD_ENVIRONMENTS.values(), ids=BAD_ENVIRONMENTS.keys()
)
def test_manage_py_stops_with_one_sentence_for_a_bad_setting(tmp_path, variables, sentence):
    result = manage("check", env=environment(tmp_path, **variables))
    assert result.stdout == ""
    assert result.stderr == f"klein-bench: {sentence}\n"
    assert result.returncode == EXIT_STATUS


ENTRY_POINTS = {
    # gunicorn loads the app in its worker; exit status 4 makes the master give up
    # instead of restarting the worker forever.
    "gunicorn": [str(BIN / "gunicorn"), "config.wsgi", "--bind", "127.0.0.1:0", "--workers", "1",
                 "--no-control-socket"],
    "gunicorn --check-config": [str(BIN / "gunicorn"), "--check-config", "config.wsgi"],
    "celery worker": [str(BIN / "celery"), "-A", "config", "worker", "--concurrency", "1"],
    "celery beat": [str(BIN / "celery"), "-A", "config", "beat", "--schedule", "{tmp}/schedule"],
}  # fmt: skip


@pytest.mark.parametrize("command", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
@pytest.mark.parametrize(
    "case",
    ["a database URL that is not a URL", "production without a secret key"],
)
def test_every_entry_point_stops_with_one_sentence_for_a_bad_setting(tmp_path, command, case):
    variables, sentence = BAD_ENVIRONMENTS[case]
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
    result = run(args, environment(tmp_path, **variables), timeout=60)
    assert_stopped_with(result, sentence)
    assert result.stderr.count(sentence) == 1


@pytest.mark.parametrize(
    "command", [ENTRY_POINTS["celery worker"], ENTRY_POINTS["celery beat"]], ids=["worker", "beat"]
)
def test_celery_refuses_to_start_without_a_broker(tmp_path, command):
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
    result = run(args, environment(tmp_path), timeout=60)
    assert_stopped_with(
        result,
        "REDIS_URL must be set to run a Celery worker or beat, like redis://HOST:6379/0 "
        "(without it, tasks run inside the web process).",
    )


def test_an_unreachable_database_stops_manage_py_with_one_sentence(tmp_path):
    port = closed_port()
    env = environment(tmp_path, DATABASE_URL=f"postgres://klein@127.0.0.1:{port}/klein")
    result = manage("migrate", "--no-input", env=env)
    assert_stopped_with(
        result,
        f'the database could not be used (connection failed: connection to server at "127.0.0.1", '
        f"port {port} failed: Connection refused); check that it is running and that "
        f"DATABASE_URL names it, like {DATABASE_EXAMPLE}.",
    )


SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "debug": settings.DEBUG,
    "database": [db["ENGINE"], str(db["NAME"]), db.get("HOST", ""), db.get("PORT", "")],
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "allowed_hosts": settings.ALLOWED_HOSTS,
}))
"""


def show_settings(tmp_path, **variables) -> dict:
    env = environment(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", **variables)
    result = run([sys.executable, "-c", SHOW_SETTINGS], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_no_environment_it_runs_on_sqlite_eager_celery_and_a_local_cache(tmp_path):
    assert show_settings(tmp_path) == {
        "debug": True,
        "database": [
            "django.db.backends.sqlite3", str(tmp_path / "data" / "klein-bench.sqlite3"), "", "",
        ],
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "broker": "memory://",
        "eager": True,
        "allowed_hosts": ["127.0.0.1", "localhost", "[::1]", "testserver"],
    }  # fmt: skip
    assert (tmp_path / "data").is_dir()


def test_database_and_redis_urls_switch_to_postgresql_and_redis(tmp_path):
    settings = show_settings(
        tmp_path,
        DATABASE_URL="postgres://klein:secret@db.internal:6432/klein_bench",
        REDIS_URL="redis://cache.internal:6379/2",
    )
    assert settings == {
        "debug": True,
        "database": ["django.db.backends.postgresql", "klein_bench", "db.internal", 6432],
        "cache": "django_redis.cache.RedisCache",
        "broker": "redis://cache.internal:6379/2",
        "eager": False,
        "allowed_hosts": ["127.0.0.1", "localhost", "[::1]", "testserver"],
    }
    assert not (tmp_path / "data").exists()


def test_the_deploy_check_is_clean_with_production_settings(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=environment(tmp_path, **PRODUCTION)
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0, "System check identified no issues (0 silenced).\n", "",
    )  # fmt: skip


def test_the_models_and_migrations_agree(tmp_path):
    result = manage("makemigrations", "--check", "--dry-run", env=environment(tmp_path))
    assert (result.returncode, result.stdout) == (0, "No changes detected\n"), result.stderr
