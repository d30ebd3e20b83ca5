"""PostgreSQL unavailable: /contribute, the API and the pages answer 503 with Retry-After
(never a 500), and the agent keeps its result queued and sends it once the server is back.

gunicorn runs with production settings and DATABASE_URL at a loopback port where nothing
listens, which is how a stopped or restarting PostgreSQL looks to the server.
"""

from __future__ import annotations

import functools
import json

import pytest
from click.testing import CliRunner
from klein_bench import cli as agent_cli
from klein_bench import upload
from klein_bench.commands import common as agent_commands
from klein_bench.state import ENV_HOME, Home

from benchmarks.models import Result
from tests.factories import result_payload, signed_body
from tests.faults_support import (
    collected_static_fixture,  # noqa: F401 - fixture
    current_database_url,
    free_port,
    redis_server,
    request,
    server_environment,
    web_server,
)
from tests.processes import closed_port

pytestmark = pytest.mark.services

UNAVAILABLE = {
    "error": "unavailable",
    "detail": (
        "The server cannot reach its database just now; nothing was stored, "
        "try again in 30 seconds."
    ),
}


def _database_down() -> str:
    return f"postgres://postgres@127.0.0.1:{closed_port()}/klein_bench"


def test_with_the_database_down_every_kind_of_request_gets_503_with_retry_after(
    tmp_path, collected_static
):
    port = free_port()
    with redis_server(tmp_path) as redis:
        env = server_environment(tmp_path, _database_down(), redis.url, port)
        env["STATIC_ROOT"] = str(collected_static)
        with web_server(env, port, tmp_path / "web.log") as web:
            status, headers, body = request(
                "POST", port, "/contribute", signed_body(result_payload())
            )
            assert (status, headers["Retry-After"], json.loads(body)) == (503, "30", UNAVAILABLE)
            assert headers["Content-Type"] == "application/json"

            for path in ("/api/v1/models", "/api/v1/checks/flux-2-klein-4b/rtx-4090"):
                status, headers, body = request("GET", port, path)
                assert (status, headers["Retry-After"], json.loads(body)) == (
                    503,
                    "30",
                    UNAVAILABLE,
                ), path

            for path in ("/check/", "/check/flux-2-klein-4b/rtx-4090/", "/contribute"):
                status, headers, body = request("GET", port, path)
                assert (status, headers["Retry-After"]) == (503, "30"), path
                assert headers["Content-Type"].startswith("text/html")
                assert b"cannot reach its database just now" in body
    output = web.output()
    assert "Traceback" not in output
    assert "database unavailable for POST /contribute: OperationalError" in output


@pytest.mark.django_db(transaction=True)
def test_the_agent_keeps_the_result_queued_while_the_database_is_down_and_sends_it_later(
    tmp_path, catalog, monkeypatch
):
    home = Home(tmp_path / "home")
    monkeypatch.setenv(ENV_HOME, str(home.root))
    monkeypatch.delenv(upload.SERVER_ENV, raising=False)
    waits: list[float] = []
    monkeypatch.setattr(
        agent_commands, "Client", functools.partial(upload.Client, sleep=waits.append)
    )
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(result_payload()))
    runner = CliRunner()
    port = free_port()
    server = f"http://127.0.0.1:{port}"

    with redis_server(tmp_path) as redis:
        env = server_environment(tmp_path, _database_down(), redis.url, port)
        with web_server(env, port, tmp_path / "down.log"):
            first = runner.invoke(agent_cli.main, ["submit", str(result_file), "--server", server])

        assert first.exit_code == 1, first.output
        assert "HTTP 503: The server cannot reach its database just now" in first.stderr
        assert "klein-bench submit --pending" in first.stderr
        # Every retry waited as long as the server's Retry-After asked.
        assert waits == [30.0] * upload.RETRIES
        [queued] = home.pending()
        assert Result.objects.count() == 0

        env = server_environment(tmp_path, current_database_url(), redis.url, port)
        with web_server(env, port, tmp_path / "up.log"):
            second = runner.invoke(agent_cli.main, ["submit", "--pending", "--server", server])

    assert second.exit_code == 0, second.output
    assert home.pending() == []
    [result] = Result.objects.all()
    assert result.submission.body.encode() == queued.body
    assert f"{server}/r/{result.pk}" in second.output
