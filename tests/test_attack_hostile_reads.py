"""Attack: hostile reads and odd addresses. Bad cursors, floods of query parameters (in
debug too), addresses under /contribute that name nothing and methods they do not take
all get a JSON 4xx in the documented shape, never a 5xx; on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.attack_support import (  # noqa: F401 - fixtures
    ATTACK_MARKS,
    platform_fixture,
    postgres_server_fixture,
    sqlite_server_fixture,
)

pytestmark = ATTACK_MARKS
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BAD_CURSOR = {
    "error": "invalid_query",
    "detail": "Some query parameters are not valid; see the fields for why.",
    "fields": {
        "cursor": "is not a cursor this API gave out; follow the next and previous links as "
        "they are"
    },
}


@pytest.mark.parametrize(
    "cursor", ["cD0nIE9SIDE9MS0t", "cD0A", "cD05OTk5LTk5LTk5", "cD0tMQ==", "%%%", "cj0y"]
)
def test_the_reported_bad_cursors_are_400s_naming_the_cursor(platform, cursor):
    answer = platform.request("GET", f"/api/v1/results?cursor={quote(cursor)}")

    assert (answer.status, answer.json()) == (400, BAD_CURSOR)


@SETTINGS
@given(
    decoded=st.text(max_size=40).map(lambda t: base64.b64encode(t.encode()).decode())
    | st.text(max_size=40)
)
def test_any_cursor_is_a_page_or_a_400_naming_the_cursor(platform, decoded):
    answer = platform.request("GET", f"/api/v1/results?cursor={quote(decoded)}")

    assert answer.status in (200, 400), answer.body
    if answer.status == 400:
        assert answer.json() == BAD_CURSOR


TOO_MANY = {
    "error": "invalid_query",
    "detail": "The request has too many query parameters or too large a body.",
}


def test_more_query_parameters_than_django_reads_are_a_json_400(platform):
    # 1001 is one over Django's limit and fits gunicorn's 4094-byte request line (longer
    # lines get gunicorn's own 400); the SQLite platform runs with DJANGO_DEBUG on.
    answer = platform.request("GET", "/api/v1/results?" + "&".join(["a=1"] * 1001))

    assert (answer.status, answer.json()) == (400, TOO_MANY)


def test_two_thousand_query_parameters_in_debug_are_a_json_400(client, settings):
    settings.DEBUG = True

    response = client.get("/api/v1/results?" + "&".join(f"p{i}=1" for i in range(2000)))

    assert (response.status_code, response.json()) == (400, TOO_MANY)


NOT_FOUND = {
    "error": "not_found",
    "detail": "There is nothing at this address; results are withdrawn with "
    "DELETE /contribute/<result id>, a whole number.",
}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PUT"])
@pytest.mark.parametrize(
    "path", ["/contribute/-1", "/contribute/abc", "/contribute/", "/contribute/1/x"]
)
def test_addresses_under_contribute_that_name_nothing_are_json_404s(platform, method, path):
    answer = platform.request(method, path, b"{}")

    assert (answer.status, answer.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("result_id", ["99999999999999999999999", "9223372036854775808", "0"])
def test_a_withdrawal_of_an_id_no_result_can_have_is_a_json_answer(platform, result_id):
    before = platform.rows()

    answer = platform.delete(result_id, b'{"envelope": {}}')

    assert answer.error == (400, "malformed_document")
    assert platform.rows() == before


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/contribute", "GET, HEAD, POST"),
        ("PATCH", "/contribute", "GET, HEAD, POST"),
        ("GET", "/contribute/5", "DELETE"),
        ("POST", "/contribute/5", "DELETE"),
    ],
)
def test_other_methods_are_json_405s_naming_the_allowed_ones(platform, method, path, allow):
    answer = platform.request(method, path, b"{}")

    assert answer.status == 405
    assert answer.headers["Allow"] == allow
    assert answer.json() == {
        "error": "method_not_allowed",
        "detail": f"This address takes {allow} only.",
    }
    platform.no_tracebacks()


@pytest.mark.parametrize(
    ("method", "service"), [("POST", "contributions"), ("DELETE", "withdrawals")]
)
def test_a_database_error_of_the_servers_own_is_a_json_500_that_stores_nothing(
    client, method, service
):
    from unittest import mock

    from django.db import DataError

    from benchmarks.models import Result, Submission

    body = b'{"envelope": {}}'
    failure = DataError("integer out of range")
    with mock.patch(f"benchmarks.services.{service}.parse", side_effect=failure):
        if method == "POST":
            response = client.post("/contribute", body, content_type="application/json")
        else:
            response = client.delete("/contribute/1", body, content_type="application/json")

    assert (response.status_code, response.json()) == (
        500,
        {
            "error": "server_error",
            "detail": "The server failed to handle this request and stored nothing; the "
            "failure is logged. Try again later.",
        },
    )
    assert (Submission.objects.count(), Result.objects.count()) == (0, 0)
