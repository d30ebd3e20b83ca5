"""The agent against the real platform: `klein-bench submit` runs the tiny model on this
CPU, signs the result and sends it over HTTP to a live Django server, which stores it and
answers with the permalink and the check page. When the server is down the signed
result waits in the agent's queue, and `submit --pending` delivers it later."""

from __future__ import annotations

import socket

import httpx
import pytest
from click.testing import CliRunner
from klein_bench import upload
from klein_bench.cli import main
from klein_bench.state import ENV_HOME, Home

from benchmarks.models import Result, SubmissionStatus

pytest.importorskip("diffusers", reason="the tiny pipeline needs klein-bench[diffusers]")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def agent_home(tmp_path, monkeypatch) -> Home:
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "agent"))
    monkeypatch.delenv(upload.SERVER_ENV, raising=False)
    monkeypatch.setattr(upload, "BACKOFF_S", 0.0)
    return Home(tmp_path / "agent")


@pytest.fixture
def site(live_server, settings):
    """The live server on its random port, SITE_URL unset as in development: the links it
    answers with name the address the agent reached it at."""
    settings.SITE_URL = ""
    return live_server


def _agent(*args: str):
    return CliRunner().invoke(main, list(args))


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_submit_runs_the_tiny_model_and_the_result_lands_on_its_check_page(
    catalog, site, agent_home
):
    result = _agent("submit", "--model", "klein-tiny-random", "--server", site.url)

    assert result.exit_code == 0, result.output
    stored = Result.objects.select_related("model", "gpu", "configuration", "submission").get()
    assert stored.model.slug == "klein-tiny-random"
    assert stored.gpu.slug == "cpu"
    assert stored.synthetic is False
    assert stored.outcome == "success"
    assert stored.n_runs == 5
    assert (stored.configuration.width, stored.configuration.height) == (64, 64)
    assert stored.configuration.preset == "bf16-resident"
    assert stored.submission.status == SubmissionStatus.ACCEPTED
    assert stored.contributor.key_id == agent_home.signing_key().key_id
    permalink = f"{site.url}/r/{stored.pk}"
    check_page = f"{site.url}/check/klein-tiny-random/cpu/"
    assert f"Permalink:  {permalink}" in result.stdout
    assert f"Check page: {check_page}" in result.stdout
    [entry] = agent_home.history()
    assert (entry["status"], entry["result_id"], entry["check_page"]) == (
        "sent",
        stored.pk,
        check_page,
    )
    assert httpx.get(permalink).status_code == 200
    assert httpx.get(check_page).status_code == 200


def test_a_result_waits_in_the_queue_while_the_server_is_down_then_pending_sends_it(
    catalog, site, agent_home, tmp_path
):
    output = tmp_path / "result.json"
    assert _agent("run", "--model", "klein-tiny-random", "-o", str(output)).exit_code == 0

    down = _agent("submit", str(output), "--server", _closed_port_url())

    assert down.exit_code == 1
    assert "the signed result waits in the queue" in down.stderr
    assert len(agent_home.pending()) == 1
    assert not Result.objects.exists()

    later = _agent("submit", "--pending", "--server", site.url)

    assert later.exit_code == 0, later.output
    stored = Result.objects.get()
    assert f"{site.url}/r/{stored.pk}" in later.stdout
    assert agent_home.pending() == []
    assert agent_home.history()[0]["status"] == "sent"

    again = _agent("submit", str(output), "--server", site.url)

    assert again.exit_code == 1
    assert f"already sent as result {stored.pk}" in again.stderr
    assert Result.objects.count() == 1


def test_an_identical_retry_gets_the_original_answer_and_stores_nothing_new(
    catalog, site, agent_home, tmp_path
):
    output = tmp_path / "result.json"
    assert _agent("run", "--model", "klein-tiny-random", "-o", str(output)).exit_code == 0
    printed = _agent("submit", str(output), "--dry-run", "--print-payload")
    body = printed.stdout.strip().encode()

    client = upload.Client(site.url)
    first = client.contribute(body)
    second = client.contribute(body)

    assert second.body == first.body
    assert Result.objects.count() == 1


def test_withdraw_removes_the_result_from_the_counts(catalog, site, agent_home):
    assert _agent("submit", "--model", "klein-tiny-random", "--server", site.url).exit_code == 0
    stored = Result.objects.get()

    result = _agent("withdraw", str(stored.pk), "--server", site.url, "--yes")

    assert result.exit_code == 0, result.output
    stored.submission.refresh_from_db()
    assert stored.submission.status == SubmissionStatus.WITHDRAWN
    assert agent_home.history()[0]["status"] == "withdrawn"
