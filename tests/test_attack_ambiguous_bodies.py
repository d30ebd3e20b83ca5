"""Attack: bodies that parsers read differently. Duplicate member names at any depth,
nesting past the limit, other media types and encodings are refused, and store nothing,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from klein_bench.contract import wire

from tests.attack_support import (  # noqa: F401 - fixtures
    ATTACK_MARKS,
    platform_fixture,
    postgres_server_fixture,
    sqlite_server_fixture,
)
from tests.factories import result_payload, runs, signed_document

pytestmark = ATTACK_MARKS
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _objects(value: Any, path: tuple = ()) -> list[tuple]:
    """The path of every object in a JSON value."""
    found = []
    if isinstance(value, dict):
        found.append(path)
        for key, item in value.items():
            found += _objects(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _objects(item, (*path, index))
    return found


def _dumps(value: Any, at: tuple, path: tuple = (), decoy_first: bool = True) -> str:
    """JSON text of value where the object at `at` names its first member twice: a decoy
    value first (or last) and the real one."""
    if isinstance(value, dict):
        members = [
            f"{json.dumps(key)}:{_dumps(item, at, (*path, key), decoy_first)}"
            for key, item in value.items()
        ]
        if path == at and value:
            name = next(iter(value))
            decoy = f"{json.dumps(name)}:{json.dumps('decoy')}"
            members = [decoy, *members] if decoy_first else [*members, decoy]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return (
            "["
            + ",".join(_dumps(item, at, (*path, i), decoy_first) for i, item in enumerate(value))
            + "]"
        )
    return json.dumps(value)


@pytest.fixture(scope="module")
def document() -> dict:
    return signed_document(result_payload(), wire.SigningKey.generate())


@pytest.mark.parametrize("decoy_first", [True, False])
def test_timings_named_twice_with_decoy_runs_are_refused(platform, decoy_first):
    document = signed_document(result_payload(timings={"runs": runs(2.31, 2.29, 2.3)}))
    text = wire.encode(document).decode()
    decoy = '"timings":{"runs":[{"seconds":0.01},{"seconds":0.01},{"seconds":0.01}]},'
    if decoy_first:
        body = text.replace('"timings":', decoy + '"timings":', 1)
    else:
        body = text.replace('"synthetic":', decoy + '"synthetic":', 1)
    before = platform.rows()

    answer = platform.post(body.encode())

    assert answer.error == (400, "malformed_document")
    assert answer.json()["fields"] == {"body": 'has the member "timings" twice in one object'}
    assert platform.rows() == before


@SETTINGS
@given(data=st.data())
def test_a_member_named_twice_at_any_depth_is_refused(platform, document, data):
    at = data.draw(st.sampled_from(_objects(document)), label="object")
    body = _dumps(document, at, decoy_first=data.draw(st.booleans(), label="decoy first"))
    before = platform.rows()

    answer = platform.post(body.encode())

    assert answer.error == (400, "malformed_document")
    assert answer.json()["fields"]["body"].endswith("twice in one object")
    assert platform.rows() == before


@SETTINGS
@given(depth=st.integers(wire.MAX_DEPTH - 2, 3000) | st.just(80_000))
def test_nesting_past_the_limit_is_refused_at_any_depth(platform, depth):
    # Six levels down to payload.environment, then the nested arrays.
    document = signed_document(result_payload())
    text = wire.encode(document).decode()
    body = text.replace(
        '"environment":{', '"environment":{"x":' + "[" * depth + "]" * depth + ",", 1
    )
    before = platform.rows()

    answer = platform.post(body.encode())

    # envelope, payload and environment hold the arrays: depth + 3 levels in all.
    assert answer.json() == {
        "error": "malformed_document",
        "detail": "The body is not a signed klein-bench document; see the fields for what "
        "is wrong.",
        "fields": {"body": f"is nested more than {wire.MAX_DEPTH} levels deep"},
    }
    assert platform.rows() == before


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "application/jsonx",
    ],
)
def test_a_body_that_is_not_declared_json_in_utf8_is_refused_with_415(platform, content_type):
    body = wire.encode(signed_document(result_payload()))
    before = platform.rows()

    answer = platform.post(body, content_type=content_type)

    assert answer.error == (415, "unsupported_media_type")
    assert answer.json()["detail"] == (
        "Send the signed document as JSON, with Content-Type: application/json (UTF-8)."
    )
    assert platform.rows() == before


def test_json_declared_with_its_utf8_charset_is_accepted(platform):
    body = wire.encode(signed_document(result_payload()))

    answer = platform.post(body, content_type="Application/JSON; charset=UTF-8")

    assert answer.status == 201


def test_a_body_in_utf16_is_refused(platform):
    body = json.dumps(signed_document(result_payload())).encode("utf-16")
    before = platform.rows()

    answer = platform.post(body)

    assert answer.error == (400, "malformed_document")
    assert answer.json()["fields"] == {"body": "must be JSON encoded as UTF-8"}
    assert platform.rows() == before
    platform.no_tracebacks()
