"""Links that work wherever the site runs. With SITE_URL unset (development), every
command and permalink names the address the request came to: `make run PORT=...` on a
random port names that port on /contribute, on the check pages, in the API's permalinks
and in the answer the agent prints and keeps. Set, SITE_URL wins."""

from __future__ import annotations

import html
import http.client
import json
import sys
from pathlib import Path

import pytest
from klein_bench.contract import wire

from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import result_payload, signed_body
from tests.processes import environment, free_port, http_get, manage, started, wait_for_http

VENV = Path(sys.executable).parent.parent


def _post(port: int, body: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/contribute", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.services
def test_make_run_on_a_random_port_names_that_port_everywhere(tmp_path):
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = environment(tmp_path, AGENT_WHEEL_DIR=str(tmp_path / "agent"))
    # The README's command, with this test's virtual environment (never rebuilt here).
    args = ["make", "-o", f"{VENV}/bin/.installed", f"VENV={VENV}", f"PORT={port}", "run"]
    with started(args, env, tmp_path / "make-run.log") as process:
        status, _, _ = wait_for_http(port, "/healthz", process, timeout=300)
        assert status == 200

        contribute = html.unescape(http_get(port, "/contribute")[2].decode())
        assert f'pip install "klein-bench[diffusers] @ {site}/agent/klein_bench-' in contribute
        assert f"klein-bench submit --model klein-tiny-random --server {site}" in contribute
        pair = http_get(port, "/check/flux-2-klein-4b/rtx-4090/")[2].decode()
        assert f"--preset bf16-resident --server {site}" in pair

        status, answer = _post(port, signed_body(result_payload(), wire.SigningKey.generate()))
        assert status == 201, answer
        assert answer["permalink"] == f"{site}/r/{answer['result_id']}"
        assert answer["check_page"] == f"{site}/check/flux-2-klein-4b/rtx-4090/"
        listed = json.loads(http_get(port, "/api/v1/results")[2])
        assert listed["results"][0]["permalink"] == answer["permalink"]

        # Reached under another name, the site names that one.
        other = http_get(port, "/contribute", {"Host": f"localhost:{port}"})[2].decode()
        assert f"--server http://localhost:{port}" in other


def test_without_a_request_the_address_is_the_port_make_run_serves(tmp_path):
    done = manage(
        "shell",
        "--no-imports",
        "-c",
        "from benchmarks.site import site_url; print(site_url())",
        env=environment(tmp_path, PORT="9123"),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://127.0.0.1:9123"


@pytest.mark.django_db
def test_unset_the_api_names_the_address_asked_and_set_site_url_wins(client, catalog, settings):
    settings.SITE_URL = ""

    asked = client.get("/api/v1/models", HTTP_HOST="localhost:8123").json()
    settings.SITE_URL = "https://bench.example.org"
    configured = client.get("/api/v1/models", HTTP_HOST="localhost:8123").json()

    assert asked[0]["url"] == "http://localhost:8123/check/flux-2-klein-4b/"
    assert configured[0]["url"] == "https://bench.example.org/check/flux-2-klein-4b/"


@pytest.mark.django_db
def test_a_contribution_answers_with_links_to_the_address_it_was_sent_to(client, catalog):
    body = signed_body(result_payload(), wire.SigningKey.generate())

    response = client.post(
        "/contribute", data=body, content_type="application/json", HTTP_HOST="localhost:8123"
    )

    assert response.status_code == 201
    answer = response.json()
    assert answer["permalink"] == f"http://localhost:8123/r/{answer['result_id']}"
    assert response["Location"] == answer["permalink"]
