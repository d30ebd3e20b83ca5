"""Attack: GPU names made to mislead or collide. Names with control, formatting or
bidirectional characters, or with no letter or digit, are refused and store nothing;
different names land on different, readable flagged cards; on SQLite and on PostgreSQL."""

from __future__ import annotations

import re

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
from tests.factories import result_payload, signed_body

pytestmark = ATTACK_MARKS
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# A GPU name the catalog does not know, with no memory size to compare.
UNKNOWN = {"memory_total_mb": None}
HIDDEN = st.characters(categories=["Cc", "Cf"], exclude_characters="\x00")


def send(platform, name: str):
    payload = result_payload(gpu={"name": name, **UNKNOWN})
    return platform.post(signed_body(payload, wire.SigningKey.generate()))


@pytest.mark.parametrize(
    "name", ["\u202eNVIDIA X", "NVIDIA\u200b X", "NVIDIA X\u2066", "NVIDIA\tX", "NVIDIA X\x1b[2J"]
)
def test_a_name_with_control_or_bidirectional_characters_is_refused(platform, name):
    before = platform.rows()

    answer = send(platform, name)

    assert answer.error == (400, "invalid_payload")
    assert answer.json()["fields"] == {
        "envelope.payload.gpu.name": "must not contain control, formatting or bidirectional "
        "characters"
    }
    assert platform.rows() == before


@SETTINGS
@given(prefix=st.text(max_size=5), hidden=HIDDEN, suffix=st.text(max_size=5))
def test_no_name_hiding_a_control_or_format_character_is_accepted(platform, prefix, hidden, suffix):
    before = platform.rows()

    answer = send(platform, f"NVIDIA {prefix}{hidden}{suffix} X")

    assert answer.status == 400, answer.body
    assert platform.rows() == before


@pytest.mark.parametrize("name", [".", "..", "-", "🚀", "™", "!!!"])
def test_a_name_without_a_letter_or_digit_is_refused(platform, name):
    before = platform.rows()

    answer = send(platform, name)

    assert answer.error == (400, "invalid_payload")
    assert answer.json()["fields"] == {
        "envelope.payload.gpu.name": "must name the GPU: it has no letter or digit"
    }
    assert platform.rows() == before


def test_names_that_differ_only_in_symbols_land_on_different_readable_cards(platform):
    names = ["™™™ X", "!!! X", "X", "X !!!", "Ünïcode X"]

    slugs = [send(platform, name).json()["gpu"] for name in names]

    assert len(set(slugs)) == len(names), slugs
    assert slugs[0] == "tmtmtm-x"
    assert slugs[2] == "x"
    for slug in slugs:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug


@SETTINGS
@given(name=st.text(min_size=1, max_size=40).filter(lambda n: any(c.isalnum() for c in n)))
def test_any_name_is_a_readable_card_or_a_clean_refusal(platform, name):
    before = platform.rows()

    answer = send(platform, name)

    assert answer.status in (201, 400), answer.body
    if answer.status == 201:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", answer.json()["gpu"])
        assert len(answer.json()["gpu"]) <= 64
    else:
        assert answer.json()["error"] == "invalid_payload"
        assert platform.rows() == before
    platform.no_tracebacks()
