"""The wire format (klein_bench.contract.wire): canonical JSON, keys, signing and parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from klein_bench.contract import wire

MAX_SAFE = 2**53 - 1
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE, MAX_SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
keys = st.binary(min_size=32, max_size=32).map(wire.SigningKey.from_private_bytes)


@given(json_values)
def test_canonical_json_decodes_to_the_same_value(value):
    assert wire.loads(wire.canonical_json(value)) == value


@given(json_values)
def test_canonicalizing_canonical_json_changes_nothing(value):
    once = wire.canonical_json(value)

    assert wire.canonical_json(wire.loads(once)) == once


def test_a_large_whole_double_reads_back_as_a_double():
    # RFC 8785 writes 1e17 without an exponent; reading it as an integer beyond 2**53
    # would make the envelope impossible to canonicalize again.
    envelope = {"x": 1e17}

    assert wire.canonical_json(envelope) == b'{"x":100000000000000000}'
    assert (
        wire.canonical_json(wire.loads(wire.canonical_json(envelope)))
        == b'{"x":100000000000000000}'
    )


@given(st.dictionaries(st.text(max_size=8), json_scalars, min_size=2, max_size=8), st.randoms())
def test_canonical_json_ignores_member_order(mapping, rnd):
    items = list(mapping.items())
    rnd.shuffle(items)

    assert wire.canonical_json(dict(items)) == wire.canonical_json(mapping)


def test_canonical_json_follows_rfc_8785_for_numbers_and_strings():
    value = {"b": 2.0, "a": [1e21, 1e-7, -0.0, 0.1], "é": "™\n"}

    assert wire.canonical_json(value) == '{"a":[1e+21,1e-7,0,0.1],"b":2,"é":"™\\n"}'.encode()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, {1: "non-string key"}])
def test_values_outside_json_cannot_be_canonicalized(value):
    with pytest.raises(wire.WireError):
        wire.canonical_json(value)


def test_the_key_id_is_a_fingerprint_of_the_public_key():
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")

    assert wire.key_id_for(public) == "kb1_21fe31dfa154a261626bf854046fd227"


@settings(max_examples=50)
@given(keys, json_values)
def test_a_sealed_document_verifies_after_encoding_and_parsing(key, payload):
    document = wire.parse_document(wire.encode(wire.seal(payload, key)))

    document.verify(key.public_bytes)
    assert document.payload == wire.loads(json.dumps(payload))
    assert document.key_id == key.key_id
    assert document.public_key == key.public_bytes


@settings(max_examples=50)
@given(keys, keys, json_values)
def test_a_document_does_not_verify_with_another_key(key, other, payload):
    assume(key.private_bytes != other.private_bytes)
    document = wire.parse_document(wire.seal(payload, key))

    with pytest.raises(wire.BadSignature):
        document.verify(other.public_bytes)


@settings(max_examples=50)
@given(keys, st.dictionaries(st.text(max_size=8), json_scalars, min_size=1), st.data())
def test_changing_any_payload_value_breaks_the_signature(key, payload, data):
    sealed = wire.seal(payload, key)
    name = data.draw(st.sampled_from(sorted(payload)))
    sealed["envelope"]["payload"][name] = [payload[name]]

    with pytest.raises(wire.BadSignature):
        wire.parse_document(sealed).verify(key.public_bytes)


def test_a_public_key_that_does_not_match_the_key_id_is_refused():
    key, other = wire.SigningKey.generate(), wire.SigningKey.generate()
    document = wire.parse_document(
        wire.sign_envelope(wire.make_envelope({}, key_id=key.key_id), other)
    )

    with pytest.raises(wire.BadSignature, match="does not match the envelope's key_id"):
        document.verify(other.public_bytes)


def test_signing_is_deterministic():
    key = wire.SigningKey.from_private_bytes(bytes(32))
    envelope = wire.make_envelope(
        {"n": 1}, key_id=key.key_id, created_at=datetime(2026, 1, 1, tzinfo=UTC),
        nonce="0" * 32, submission_id="00000000-0000-4000-8000-000000000000",
    )  # fmt: skip

    assert wire.sign_envelope(envelope, key) == wire.sign_envelope(envelope, key)


def _valid() -> dict:
    return wire.seal({"n": 1}, wire.SigningKey.generate())


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (lambda d: d["envelope"].update(key_id=d["envelope"]["key_id"] + "\n"),
         {"envelope.key_id": 'must be "kb1_" followed by 32 lowercase hexadecimal characters'}),
        (lambda d: d.update(signature=d["signature"][:127] + "\n"),
         {"signature": "must be 128 lowercase hexadecimal characters"}),
        (lambda d: d["envelope"].update(nonce=d["envelope"]["nonce"] + "\n"),
         {"envelope.nonce": "must be 16 to 64 lowercase hexadecimal characters"}),
        (lambda d: d["envelope"].update(created_at="2026-11-22T10:00:00Z\n"),
         {"envelope.created_at": "must be a UTC time like 2026-11-22T10:00:00Z"}),
        (lambda d: d["envelope"].update(created_at="2026-02-30T10:00:00Z"),
         {"envelope.created_at": "is not a real date and time"}),
        (lambda d: d["envelope"].update(submission_id=d["envelope"]["submission_id"].upper()),
         {"envelope.submission_id": "must be a lowercase UUID like "
                                    "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}),
        (lambda d: d["envelope"].update(format="klein-bench/envelope/v2"),
         {"envelope.format": 'must be "klein-bench/envelope/v1"'}),
        (lambda d: d["envelope"].update(extra=1),
         {"envelope.extra": "is not a field of the envelope"}),
        (lambda d: d.update(comment="hi"), {"comment": "is not a field of a signed document"}),
        (lambda d: d.update(public_key="AB" * 32),
         {"public_key": "must be 64 lowercase hexadecimal characters"}),
        (lambda d: d["envelope"].update(payload=float("nan")),
         {"envelope": "value cannot be canonicalized: nan is not representable in JCS"}),
    ],
)  # fmt: skip
def test_a_malformed_document_names_the_bad_field(change, errors):
    document = _valid()
    change(document)

    with pytest.raises(wire.MalformedDocument) as raised:
        wire.parse_document(document)

    assert raised.value.errors == errors


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"null", b"\xff\xfe", b"[" * 100_000, b'{"envelope": 1}']
)
def test_something_that_is_not_a_document_is_malformed_not_a_crash(raw):
    with pytest.raises(wire.MalformedDocument):
        wire.parse_document(raw)


def test_created_at_round_trips_to_the_second():
    moment = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

    assert wire.parse_created_at(wire.format_created_at(moment)) == moment
    assert wire.format_created_at(moment) == "2026-11-22T10:00:00Z"


def test_nonces_and_submission_ids_are_fresh_for_each_seal():
    key = wire.SigningKey.generate()
    envelopes = [wire.seal({}, key)["envelope"] for _ in range(20)]

    assert (
        len({e["nonce"] for e in envelopes}) == len({e["submission_id"] for e in envelopes}) == 20
    )
