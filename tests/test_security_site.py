"""The admin is behind a login and CSRF; no secret reaches a log or the agent's output.

`manage.py check --deploy` under production settings is tested in tests/test_settings.py
(test_the_deploy_check_is_clean_with_production_settings).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from unittest import mock

import pytest
from click.testing import CliRunner
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client
from klein_bench import cli as agent_cli
from klein_bench import upload
from klein_bench.commands import common as agent_commands
from klein_bench.contract import wire
from klein_bench.state import ENV_HOME, Home

from tests.contribute_support import (  # noqa: F401 - fixtures
    _fresh_rate_limits,
    delete,
    key_fixture,
    post,
    withdrawal_body,
)
from tests.factories import result_payload, signed_body, signed_document
from tests.processes import closed_port

ADMIN_PASSWORD = "a-long-test-password-4821"


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser("moderator", "moderator@example.org", ADMIN_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/benchmarks/submission/", "/admin/benchmarks/contributor/"]
)
def test_the_admin_sends_anyone_not_logged_in_to_the_login_page(client, path):
    response = client.get(path)

    assert (response.status_code, response["Location"]) == (302, f"/admin/login/?next={path}")


def test_an_admin_login_without_its_csrf_token_is_refused_even_with_the_right_password(staff):
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "moderator", "password": ADMIN_PASSWORD}
    )

    assert response.status_code == 403
    assert b"CSRF verification failed" in response.content
    assert client.get("/admin/").status_code == 302


def test_an_admin_login_with_its_csrf_token_gets_in(staff):
    client = Client(enforce_csrf_checks=True)
    form = client.get("/admin/login/?next=/admin/")
    token = form.context["csrf_token"]

    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "moderator", "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": token},
    )

    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert client.get("/admin/").status_code == 200


def _secret_forms(raw: bytes) -> list[str]:
    """How a private key could appear in text: hex, base64, URL-safe base64."""
    return [
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


@pytest.mark.django_db
def test_no_secret_key_or_private_key_reaches_the_servers_logs(
    client, catalog, key, settings, caplog
):
    connection.force_debug_cursor = True  # SQL at DEBUG too, with the stored bodies
    try:
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="django"):
            first = signed_document(result_payload(), key)
            answers = [
                post(client, wire.encode(first)),
                post(client, wire.encode(first)),  # identical retry
                post(client, signed_body(result_payload(), key, nonce=first["envelope"]["nonce"])),
                post(client, b'{"not": "a document"'),
                post(client, signed_body(result_payload(model="no-such-model"), key)),
            ]
            tampered = signed_document(result_payload(), key)
            tampered["envelope"]["payload"]["synthetic"] = True
            answers.append(post(client, wire.encode(tampered)))
            result_id = answers[0].json()["result_id"]
            answers.append(delete(client, result_id, withdrawal_body(key, result_id, "typo")))
            answers.append(client.get("/api/v1/results/999999"))
            answers.append(client.post("/admin/login/", {"username": "x", "password": "y"}))
            with mock.patch(
                "benchmarks.services.contributions.submit",
                side_effect=OperationalError('connection to server at "db" failed'),
            ):
                answers.append(post(client, signed_body(result_payload(), key)))
    finally:
        connection.force_debug_cursor = False

    assert [a.status_code for a in answers] == [201, 201, 409, 400, 400, 401, 200, 404, 200, 503]
    text = caplog.text + "".join(a.content.decode(errors="replace") for a in answers)
    assert "INSERT INTO" in caplog.text  # the SQL log was on
    assert settings.SECRET_KEY not in text
    for secret in _secret_forms(key.private_bytes):
        assert secret not in text


@pytest.mark.django_db
def test_the_agent_never_prints_logs_or_stores_its_private_key_outside_its_key_file(
    tmp_path, monkeypatch, caplog
):
    home = Home(tmp_path / "home")
    monkeypatch.setenv(ENV_HOME, str(home.root))
    monkeypatch.setenv("KLEIN_BENCH_DEBUG", "1")
    monkeypatch.delenv(upload.SERVER_ENV, raising=False)
    monkeypatch.setattr(
        agent_commands, "Client", functools.partial(upload.Client, sleep=lambda seconds: None)
    )
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(result_payload()))
    down = f"http://127.0.0.1:{closed_port()}"
    runner = CliRunner()
    commands = [
        ["keys"],
        ["keys", "show"],
        ["submit", str(result_file), "--dry-run", "--print-payload"],
        ["submit", str(result_file), "--server", down],
        ["submit", "--pending", "--server", down],
        ["results"],
        ["results", "--json"],
        ["withdraw", "1", "--server", down, "--yes"],
        ["keys", "rotate", "--yes"],
        ["keys"],
    ]
    with caplog.at_level(logging.DEBUG):
        outputs = [runner.invoke(agent_cli.main, args) for args in commands]

    assert [o.exit_code for o in outputs] == [0, 0, 0, 1, 1, 0, 0, 1, 0, 0], [
        o.output for o in outputs
    ]
    keys = [home.signing_key(), *home.retired_keys()]
    assert len({k.key_id for k in keys}) == 2
    key_files = {home.key_path, *home.retired_dir.glob("*.json")}
    stored = {
        path: path.read_bytes().decode(errors="replace")
        for path in home.root.rglob("*")
        if path.is_file() and path not in key_files
    }
    assert any(path.parent == home.queue_dir for path in stored)  # the queue was written
    printed = "".join(o.stdout + o.stderr for o in outputs) + caplog.text
    for signing_key in keys:
        for secret in _secret_forms(signing_key.private_bytes):
            assert secret not in printed
            assert [path for path, text in stored.items() if secret in text] == []
