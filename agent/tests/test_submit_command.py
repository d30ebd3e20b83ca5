"""`klein-bench submit` against a stand-in platform over real HTTP: signing, the answer,
dry runs, the queue when the server is down, and `--pending`."""

from __future__ import annotations

import json
import socket

import pytest
from platform_server import Answer, PlatformServer

from klein_bench.contract import wire


@pytest.fixture
def platform():
    with PlatformServer() as server:
        yield server


@pytest.fixture
def result_file(tmp_path, tiny_payload):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(tiny_payload))
    return path


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_submit_sends_the_signed_result_and_prints_where_it_lives(
    cli, home, platform, result_file, tiny_payload
):
    result = cli("submit", str(result_file), "--server", platform.url)

    assert result.exit_code == 0, result.output
    [request] = platform.requests
    assert (request.method, request.path) == ("POST", "/contribute")
    assert request.headers["Content-Type"] == "application/json"
    document = wire.parse_document(request.body)
    document.verify(document.public_key)
    assert document.payload == tiny_payload
    assert document.key_id == home.signing_key().key_id
    assert f"Permalink:  {platform.url}/r/1" in result.stdout
    assert f"Check page: {platform.url}/check/klein-tiny-random/cpu/" in result.stdout
    [entry] = home.history()
    assert {k: entry[k] for k in ("status", "result_id", "permalink", "key_id", "server")} == {
        "status": "sent",
        "result_id": 1,
        "permalink": f"{platform.url}/r/1",
        "key_id": document.key_id,
        "server": platform.url,
    }


def test_submit_without_a_file_runs_the_tiny_benchmark_first(cli, home, platform):
    result = cli("submit", "--model", "klein-tiny-random", "--server", platform.url)

    assert result.exit_code == 0, result.output
    assert "Seconds per image" in result.stdout
    assert platform.results[1]["model"] == "klein-tiny-random"
    assert home.history()[0]["status"] == "sent"


def test_submit_accepts_a_local_result_id(cli, home, platform, tiny_payload):
    local_id = home.save_result(tiny_payload)

    result = cli("submit", local_id, "--server", platform.url)

    assert result.exit_code == 0, result.output
    assert home.history()[0]["result_id"] == 1


def test_dry_run_with_print_payload_shows_the_exact_body_and_sends_nothing(
    cli, home, platform, result_file, tiny_payload
):
    result = cli(
        "submit", str(result_file), "--server", platform.url, "--dry-run", "--print-payload"
    )

    assert result.exit_code == 0, result.output
    assert platform.requests == []
    body = result.stdout.strip().encode()
    document = wire.parse_document(body)
    document.verify(document.public_key)
    assert document.payload == tiny_payload
    assert body == wire.encode(json.loads(body))
    assert "Dry run: nothing was sent." in result.stderr
    assert home.history()[0]["status"] == "not sent"


def test_a_result_sent_before_is_not_sent_twice(cli, platform, result_file):
    assert cli("submit", str(result_file), "--server", platform.url).exit_code == 0

    again = cli("submit", str(result_file), "--server", platform.url)

    assert again.exit_code == 1
    assert "already sent as result 1" in again.stderr
    assert len(platform.requests) == 1


def test_an_unreachable_server_leaves_the_result_in_the_queue_until_pending_sends_it(
    cli, home, result_file
):
    down = _closed_port_url()

    first = cli("submit", str(result_file), "--server", down)

    assert first.exit_code == 1
    assert "Could not reach" in first.stderr
    assert "klein-bench submit --pending" in first.stderr
    [queued] = home.pending()
    assert queued.server == down
    assert home.history()[0]["status"] == "queued"

    with PlatformServer() as platform:
        second = cli("submit", "--pending", "--server", platform.url)

        assert second.exit_code == 0, second.output
        [request] = platform.requests
        assert request.body == queued.body
        assert f"Permalink:  {platform.url}/r/1" in second.stdout
    assert home.pending() == []
    assert home.history()[0]["status"] == "sent"


def test_pending_signs_again_a_queued_result_the_server_finds_stale(cli, home, result_file):
    first = cli("submit", str(result_file), "--server", _closed_port_url())
    assert first.exit_code == 1
    [queued] = home.pending()

    with PlatformServer() as platform:
        platform.script.append(
            Answer(400, {"error": "stale", "detail": "The document was created too long ago."})
        )
        result = cli("submit", "--pending", "--server", platform.url)

    assert result.exit_code == 0, result.output
    stale, fresh = (wire.parse_document(r.body) for r in platform.requests)
    assert fresh.submission_id == stale.submission_id == queued.submission_id
    assert fresh.payload == stale.payload
    assert fresh.nonce != stale.nonce
    assert home.pending() == []


def test_a_refused_result_shows_the_servers_sentence_and_fields(cli, home, platform, result_file):
    platform.script.append(
        Answer(
            400,
            {
                "error": "invalid_payload",
                "detail": "The result is not plausible.",
                "fields": {"envelope.payload.timings.runs": "needs at least 3 runs"},
            },
        )
    )

    result = cli("submit", str(result_file), "--server", platform.url)

    assert result.exit_code == 1
    assert "The server refused the result (HTTP 400): The result is not plausible." in result.stderr
    assert "envelope.payload.timings.runs: needs at least 3 runs" in result.stderr
    assert len(platform.requests) == 1
    assert home.pending() == []
    assert home.history()[0]["status"] == "rejected"


def test_server_errors_are_retried_before_the_answer_is_taken(cli, platform, result_file):
    platform.script.extend(
        [
            Answer(503, {"error": "unavailable", "detail": "Try later."}, {"Retry-After": "0"}),
            Answer(429, {"error": "rate_limited", "detail": "Slow down."}, {"Retry-After": "0"}),
        ]
    )

    result = cli("submit", str(result_file), "--server", platform.url)

    assert result.exit_code == 0, result.output
    assert len(platform.requests) == 3
    assert len({r.body for r in platform.requests}) == 1
    assert "HTTP 503: Try later.; trying again" in result.stderr


def test_pending_with_an_empty_queue_says_so(cli):
    result = cli("submit", "--pending")

    assert result.exit_code == 0
    assert "The queue is empty" in result.stderr


def test_pending_refuses_a_result_file_too(cli, result_file):
    result = cli("submit", "--pending", str(result_file))

    assert result.exit_code == 1
    assert "--pending sends the queue as it is" in result.stderr


def test_benchmark_options_with_a_result_file_are_refused(cli, result_file):
    result = cli("submit", str(result_file), "--preset", "fp8-storage")

    assert result.exit_code == 1
    assert "--preset only apply when submit runs the benchmark" in result.stderr


def test_a_file_that_is_not_a_result_is_refused_with_the_fix(cli, tmp_path):
    path = tmp_path / "notes.json"
    path.write_text('{"hello": "world"}')

    result = cli("submit", str(path))

    assert result.exit_code == 1
    assert "is not a klein-bench result: pass a file written by" in result.stderr


def test_a_file_that_breaks_the_schema_is_refused(cli, tmp_path, tiny_payload):
    pytest.importorskip("jsonschema")
    tiny_payload["configuration"]["width"] = 65
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(tiny_payload))

    result = cli("submit", str(path))

    assert result.exit_code == 1
    assert "does not follow the result schema (configuration.width" in result.stderr


def test_a_bad_server_address_is_refused(cli, result_file):
    result = cli("submit", str(result_file), "--server", "klein-bench.org")

    assert result.exit_code == 1
    assert "is not a web address" in result.stderr


def test_the_server_can_come_from_the_environment(cli, platform, result_file, monkeypatch):
    monkeypatch.setenv("KLEIN_BENCH_SERVER", platform.url)

    result = cli("submit", str(result_file))

    assert result.exit_code == 0, result.output
    assert len(platform.requests) == 1


def test_pending_names_each_result_by_its_local_id_as_results_does(cli, home, result_file):
    first = cli("submit", str(result_file), "--server", _closed_port_url())
    assert first.exit_code == 1
    [queued] = home.pending()
    local_id = home.history()[0]["local_id"]

    still_down = cli("submit", "--pending")

    assert still_down.exit_code == 1
    assert f"Local result {local_id}: Could not reach" in " ".join(still_down.stderr.split())
    assert queued.submission_id not in still_down.stderr
    with PlatformServer() as platform:
        sent = cli("submit", "--pending", "--server", platform.url)
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.startswith(f"Local result {local_id}:\nResult 1 stored")


def test_the_preset_help_reads_as_sentences(cli):
    result = cli("run", "--help")

    text = " ".join(result.stdout.split())
    assert ".;" not in text
    assert "bf16-resident: BF16 weights and compute, the whole pipeline on the GPU;" in text
