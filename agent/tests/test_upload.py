"""The upload client: which answers are retried, how long it waits, what it reports."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from klein_bench.errors import KleinBenchError
from klein_bench.upload import Client, ServerRejected, ServerUnreachable

ACCEPTED = {
    "result_id": 7,
    "permalink": "https://klein-bench.example/r/7",
    "check_page": "https://klein-bench.example/check/klein-tiny-random/cpu/",
    "status": "accepted",
}


def _client(answers, waits=None, retries=4):
    """A client whose server gives `answers` in turn (a response or an exception)."""
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = Client(
        "https://klein-bench.example/",
        transport=httpx.MockTransport(handler),
        retries=retries,
        backoff_s=1.0,
        sleep=(waits.append if waits is not None else lambda s: None),
    )
    return client, requests


def test_a_stored_result_returns_the_servers_answer():
    client, requests = _client([httpx.Response(201, json=ACCEPTED)])

    accepted = client.contribute(b'{"signed": true}')

    assert (accepted.result_id, accepted.permalink, accepted.check_page) == (
        7,
        ACCEPTED["permalink"],
        ACCEPTED["check_page"],
    )
    [request] = requests
    assert str(request.url) == "https://klein-bench.example/contribute"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("klein-bench/")
    assert request.content == b'{"signed": true}'


def test_network_errors_are_retried_with_exponential_backoff():
    waits: list[float] = []
    client, requests = _client(
        [
            httpx.ConnectError("connection refused"),
            httpx.ReadTimeout("timed out"),
            httpx.Response(502),
            httpx.Response(201, json=ACCEPTED),
        ],
        waits,
    )

    assert client.contribute(b"{}").result_id == 7
    assert len(requests) == 4
    assert len(waits) == 3
    for wait, base in zip(waits, (1, 2, 4), strict=True):
        assert base <= wait <= base * 1.25


def test_retry_after_in_seconds_is_honoured():
    waits: list[float] = []
    client, _ = _client(
        [
            httpx.Response(429, json={"detail": "Slow down."}, headers={"Retry-After": "17"}),
            httpx.Response(201, json=ACCEPTED),
        ],
        waits,
    )

    client.contribute(b"{}")

    assert waits == [17.0]


def test_retry_after_as_a_date_is_honoured_and_capped():
    waits: list[float] = []
    later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=2), usegmt=True)
    client, _ = _client(
        [
            httpx.Response(503, headers={"Retry-After": later}),
            httpx.Response(201, json=ACCEPTED),
        ],
        waits,
    )

    client.contribute(b"{}")

    assert waits == [60.0]


def test_giving_up_says_what_went_wrong_last():
    client, requests = _client([httpx.ConnectError("connection refused")] * 3, retries=2)

    with pytest.raises(ServerUnreachable) as error:
        client.contribute(b"{}")

    assert len(requests) == 3
    assert error.value.message == (
        "Could not reach https://klein-bench.example after 3 tries "
        "(cannot connect: connection refused)."
    )


def test_a_client_error_is_final_and_carries_the_servers_sentence_and_fields():
    refusal = {
        "error": "invalid_payload",
        "detail": "The result does not follow the schema.",
        "fields": {"envelope.payload.configuration.width": "must be a multiple of 16"},
    }
    client, requests = _client([httpx.Response(400, json=refusal)])

    with pytest.raises(ServerRejected) as error:
        client.contribute(b"{}")

    assert len(requests) == 1
    assert error.value.message == (
        "The server refused the result (HTTP 400): The result does not follow the schema."
    )
    assert error.value.error == "invalid_payload"
    assert error.value.fields == refusal["fields"]


def test_a_refusal_without_json_still_reads_as_a_sentence():
    client, _ = _client([httpx.Response(404, text="<html>nope</html>")])

    with pytest.raises(ServerRejected, match=r"\(HTTP 404\): Not Found"):
        client.contribute(b"{}")


def test_an_answer_without_a_result_id_means_the_wrong_server():
    client, _ = _client([httpx.Response(200, text="<html>a web page</html>")])

    with pytest.raises(
        KleinBenchError, match="check that --server points at a klein-bench platform"
    ):
        client.contribute(b"{}")


def test_withdraw_sends_delete_to_the_results_address():
    client, requests = _client([httpx.Response(200, json={"result_id": 7, "status": "withdrawn"})])

    assert client.withdraw(7, b"{}") == {"result_id": 7, "status": "withdrawn"}
    assert (requests[0].method, str(requests[0].url)) == (
        "DELETE",
        "https://klein-bench.example/contribute/7",
    )


def test_a_server_address_must_be_http():
    with pytest.raises(KleinBenchError, match="is not a web address"):
        Client("ftp://klein-bench.example")
