"""Attack: documents "signed" without a private key. Small-order and non-canonical public
keys, non-canonical (malleated) signatures, and a known key id carrying another public
key are refused, and store nothing, on SQLite and on PostgreSQL."""

from __future__ import annotations

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

# The encodings of Ed25519's eight points of small order (libsodium's blocklist, canonical
# ones), and encodings that are not canonical (y >= p, or x = 0 with the sign bit set).
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
]
NON_CANONICAL = [
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1
    "0100000000000000000000000000000000000000000000000000000000000080",  # -0
]
ORDER_L = 2**252 + 27742317777372353535851937790883648493
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def keyless(public_key: bytes, signature: bytes, purpose: str = wire.PURPOSE_CONTRIBUTE) -> bytes:
    payload = result_payload() if purpose == wire.PURPOSE_CONTRIBUTE else {"result_id": 1}
    envelope = wire.make_envelope(payload, key_id=wire.key_id_for(public_key), purpose=purpose)
    document = {"envelope": envelope, "signature": signature.hex(), "public_key": public_key.hex()}
    return wire.encode(document)


def test_the_identity_key_with_the_identity_signature_stores_and_withdraws_nothing(platform):
    identity = bytes.fromhex(SMALL_ORDER[0])
    signature = identity + bytes(32)
    before = platform.rows()

    posted = platform.post(keyless(identity, signature))
    deleted = platform.delete(1, keyless(identity, signature, wire.PURPOSE_WITHDRAW))

    for answer in (posted, deleted):
        assert answer.error == (400, "malformed_document")
        assert answer.json()["fields"] == {
            "public_key": "is not a valid Ed25519 public key: it is a point of small order, "
            "which anyone can sign for; use a real Ed25519 key",
            "signature": "is not a canonical Ed25519 signature: R is a point of small order",
        }
    assert platform.rows() == before


@SETTINGS
@given(
    public_key=st.sampled_from(SMALL_ORDER + NON_CANONICAL),
    signature=st.binary(min_size=64, max_size=64),
)
def test_no_small_order_or_non_canonical_public_key_is_accepted(platform, public_key, signature):
    before = platform.rows()

    answer = platform.post(keyless(bytes.fromhex(public_key), signature))

    assert answer.error == (400, "malformed_document")
    assert answer.json()["fields"]["public_key"].startswith(
        "is not a valid Ed25519 public key: it is"
    )
    assert platform.rows() == before


def test_a_malleated_signature_with_s_beyond_the_group_order_is_refused(platform):
    key = wire.SigningKey.generate()
    document = wire.seal(result_payload(), key)
    signature = bytes.fromhex(document["signature"])
    s = int.from_bytes(signature[32:], "little") + ORDER_L
    document["signature"] = (signature[:32] + s.to_bytes(32, "little")).hex()
    before = platform.rows()

    answer = platform.post(wire.encode(document))

    assert answer.error == (400, "malformed_document")
    assert answer.json()["fields"] == {
        "signature": "is not a canonical Ed25519 signature: S is not below the group order "
        "(a malleated signature)"
    }
    assert platform.rows() == before


def test_a_known_keys_document_carrying_another_public_key_is_refused(platform):
    key = wire.SigningKey.generate()
    assert platform.post(signed_body(result_payload(), key)).status == 201
    document = wire.seal(result_payload(), key)
    document["public_key"] = wire.SigningKey.generate().public_bytes.hex()
    before = platform.rows()

    answer = platform.post(wire.encode(document))

    assert answer.error == (401, "bad_signature")
    assert answer.json()["fields"] == {"public_key": "does not hash to the envelope's key_id"}
    assert answer.headers["WWW-Authenticate"] == 'KleinBench-Ed25519 realm="klein-bench"'
    assert platform.rows() == before


def test_a_signature_by_another_key_under_a_new_key_id_is_refused(platform):
    victim, forger = wire.SigningKey.generate(), wire.SigningKey.generate()
    envelope = wire.make_envelope(result_payload(), key_id=victim.key_id)
    document = wire.sign_envelope(envelope, forger, include_public_key=False)
    document["public_key"] = victim.public_bytes.hex()
    before = platform.rows()

    answer = platform.post(wire.encode(document))

    assert answer.error == (401, "bad_signature")
    assert platform.rows() == before
    platform.no_tracebacks()
