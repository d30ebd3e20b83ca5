"""The klein-bench wire format: Ed25519-signed envelopes over RFC 8785 canonical JSON.

This is the only implementation of the format. The server imports it too, so it must
stay free of Django and torch. `docs/protocol.md` specifies it for other clients.

A signed document, as sent over HTTP:

    {
      "envelope": {
        "format": "klein-bench/envelope/v1",
        "purpose": "klein-bench/contribute/v1",
        "key_id": "kb1_<32 hex>",
        "created_at": "2026-11-22T10:00:00Z",
        "nonce": "<32 hex>",
        "submission_id": "<uuid4>",
        "payload": {...}
      },
      "signature": "<128 hex: Ed25519 over canonical_json(envelope)>",
      "public_key": "<64 hex: raw Ed25519 public key>"
    }
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ENVELOPE_FORMAT = "klein-bench/envelope/v1"
PURPOSE_CONTRIBUTE = "klein-bench/contribute/v1"
PURPOSE_WITHDRAW = "klein-bench/withdraw/v1"
PURPOSES = (PURPOSE_CONTRIBUTE, PURPOSE_WITHDRAW)

KEY_ID_PREFIX = "kb1_"
# Matched with fullmatch: "$" would also accept a trailing newline.
_KEY_ID_RE = re.compile(r"kb1_[0-9a-f]{32}")
_HEX_RE = re.compile(r"[0-9a-f]*")
_CREATED_AT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
ENVELOPE_FIELDS = ("format", "purpose", "key_id", "created_at", "nonce", "submission_id", "payload")
DOCUMENT_FIELDS = ("envelope", "signature", "public_key")


class WireError(ValueError):
    """A document that does not follow the wire format."""


class MalformedDocument(WireError):
    """The document's structure is wrong; `errors` maps each bad field to why."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {why}" for field, why in errors.items()))


class BadSignature(WireError):
    """The signature does not match the envelope and public key."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) canonical bytes of a JSON value."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise WireError(f"value cannot be canonicalized: {exc}") from exc
    except RecursionError as exc:
        raise WireError("value is nested too deeply") from exc


# RFC 8785 numbers are IEEE doubles, and it writes a large integral double such as 1e17 as
# "100000000000000000"; read such a literal back as a double, as ECMAScript does, or the
# envelope would no longer canonicalize to the bytes that were signed.
MAX_SAFE_INTEGER = 2**53 - 1


def _parse_int(text: str) -> int | float:
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(text)


class DuplicateMember(ValueError):
    """An object names one member twice: parsers disagree on which one counts."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise DuplicateMember(f"has the member {_quoted(twice)} twice in one object")
    return members


def loads(raw: bytes | str) -> Any:
    """Parse JSON the way the wire format reads numbers (see MAX_SAFE_INTEGER).

    An object that names a member twice raises DuplicateMember (a ValueError): one parser
    keeps the first, another the last, so a verifier could see other figures than the
    server stored."""
    return json.loads(raw, parse_int=_parse_int, object_pairs_hook=_unique_members)


# The deepest a document may nest arrays and objects. A result payload is six levels deep
# (envelope.payload.timings.runs.0.seconds); the margin is for later payload versions.
MAX_DEPTH = 32


def nesting_depth(value: Any, stop_after: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in value (a scalar is 0), counted without
    recursion, so any depth the JSON parser accepted is measured; stops past stop_after."""
    deepest = 0
    pending = [(value, 1)]
    while pending and deepest <= stop_after:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest


def _quoted(name: str, limit: int = 64) -> str:
    """A member name as a message quotes it, in JSON; long ones shortened."""
    text = json.dumps(name, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 2] + '…"'


def path_name(name: str, limit: int = 64) -> str:
    """A member name as a field path shows it (`envelope.extra`); long ones shortened, so
    an error answer never echoes a huge name back."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


# Ed25519 (RFC 8032): the field prime, the curve constant d and the order L of the group
# that honest keys and signatures live in.
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_L = 2**252 + 27742317777372353535851937790883648493


def _decode_point(raw: bytes) -> tuple[int, int]:
    """The curve point (x, y) a 32-byte encoding names; ValueError when the encoding is not
    canonical or names no point (RFC 8032 section 5.1.3, plus the canonical checks)."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    sign = raw[31] >> 7
    if y >= _P:
        raise ValueError("is not a canonical encoding (its y coordinate is not below 2^255 - 19)")
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        if sign:
            raise ValueError("is not a canonical encoding (x is 0 but its sign bit is set)")
        return 0, y
    x = pow(x2, (_P + 3) // 8, _P)
    if x * x % _P != x2:
        x = x * _SQRT_M1 % _P
    if x * x % _P != x2:
        raise ValueError("is not a point on the Ed25519 curve")
    if x & 1 != sign:
        x = _P - x
    return x, y


def _has_small_order(point: tuple[int, int]) -> bool:
    """Whether 8 * point is the identity: one of the eight points of order 1, 2, 4 or 8,
    against which a signature of matching small order verifies for any message. Doubled
    three times in projective coordinates (no inversions): 8P = (X:Y:Z) is the identity
    when X = 0 and Y = Z."""
    x, y, z = point[0], point[1], 1
    for _ in range(3):
        a, b, c = x * x, y * y, 2 * z * z
        e = (x + y) * (x + y) - a - b
        g = b - a
        f = g - c
        h = -a - b
        x, y, z = e * f % _P, g * h % _P, f * g % _P
    return x == 0 and y == z


def public_key_problem(public_key: bytes) -> str | None:
    """Why these 32 bytes cannot be an honest Ed25519 public key, or None.

    OpenSSL (under `cryptography`) verifies against any encoding it can decode, including
    the identity point (01 00..00): with it and the signature 01 00..00 00..00, anyone
    "signs" any message. So keys must be canonical points of more than small order.
    """
    try:
        point = _decode_point(public_key)
    except ValueError as exc:
        return str(exc)
    if _has_small_order(point):
        return "is a point of small order, which anyone can sign for; use a real Ed25519 key"
    return None


def signature_problem(signature: bytes) -> str | None:
    """Why these 64 bytes cannot be a canonical Ed25519 signature (R, S), or None: R must
    be a canonical point of more than small order and S below the group order L."""
    try:
        point = _decode_point(signature[:32])
    except ValueError as exc:
        return f"R {exc}"
    if _has_small_order(point):
        return "R is a point of small order"
    if int.from_bytes(signature[32:], "little") >= _L:
        return "S is not below the group order (a malleated signature)"
    return None


def key_id_for(public_key: bytes) -> str:
    """The key id: a fingerprint of the raw 32-byte public key."""
    return KEY_ID_PREFIX + hashlib.sha256(public_key).hexdigest()[:32]


def format_created_at(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_created_at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def private_bytes(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_bytes)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def make_envelope(
    payload: Any,
    *,
    key_id: str,
    purpose: str = PURPOSE_CONTRIBUTE,
    submission_id: str | None = None,
    created_at: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    return {
        "format": ENVELOPE_FORMAT,
        "purpose": purpose,
        "key_id": key_id,
        "created_at": format_created_at(created_at or datetime.now(timezone.utc)),
        "nonce": nonce or secrets.token_hex(16),
        "submission_id": submission_id or str(uuid.uuid4()),
        "payload": payload,
    }


def sign_envelope(
    envelope: dict[str, Any], key: SigningKey, *, include_public_key: bool = True
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "envelope": envelope,
        "signature": key.sign(canonical_json(envelope)).hex(),
    }
    if include_public_key:
        document["public_key"] = key.public_bytes.hex()
    return document


def seal(
    payload: Any,
    key: SigningKey,
    *,
    purpose: str = PURPOSE_CONTRIBUTE,
    submission_id: str | None = None,
    created_at: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Wrap a payload in an envelope and sign it: the document to send."""
    envelope = make_envelope(
        payload,
        key_id=key.key_id,
        purpose=purpose,
        submission_id=submission_id,
        created_at=created_at,
        nonce=nonce,
    )
    return sign_envelope(envelope, key)


def encode(document: dict[str, Any]) -> bytes:
    """The bytes to send. Any JSON encoding works; canonical keeps them reproducible."""
    return canonical_json(document)


@dataclass(frozen=True)
class SignedDocument:
    envelope: dict[str, Any]
    signature: bytes
    public_key: bytes | None

    @property
    def key_id(self) -> str:
        return self.envelope["key_id"]

    @property
    def purpose(self) -> str:
        return self.envelope["purpose"]

    @property
    def nonce(self) -> str:
        return self.envelope["nonce"]

    @property
    def submission_id(self) -> str:
        return self.envelope["submission_id"]

    @property
    def created_at(self) -> datetime:
        return parse_created_at(self.envelope["created_at"])

    @property
    def payload(self) -> Any:
        return self.envelope["payload"]

    def verify(self, public_key: bytes) -> None:
        """Raise BadSignature unless the signature is the key's over the canonical envelope."""
        if key_id_for(public_key) != self.key_id:
            raise BadSignature("the public key does not match the envelope's key_id")
        problem = public_key_problem(public_key) or signature_problem(self.signature)
        if problem is not None:
            raise BadSignature(f"the key or signature is not valid Ed25519: {problem}")
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                self.signature, canonical_json(self.envelope)
            )
        except InvalidSignature as exc:
            raise BadSignature("the signature does not match the envelope") from exc


def _hex_field(value: Any, name: str, length: int, errors: dict[str, str]) -> bytes | None:
    if not isinstance(value, str) or len(value) != length or not _HEX_RE.fullmatch(value):
        errors[name] = f"must be {length} lowercase hexadecimal characters"
        return None
    return bytes.fromhex(value)


def parse_document(raw: bytes | str | dict[str, Any]) -> SignedDocument:
    """Check a signed document's structure (not its signature) and return it.

    Raises MalformedDocument naming every bad field.
    """
    too_deep = f"is nested more than {MAX_DEPTH} levels deep"
    if isinstance(raw, (bytes, str)):
        try:
            data = loads(raw)
        except DuplicateMember as exc:
            raise MalformedDocument({"body": str(exc)}) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedDocument({"body": f"is not valid JSON ({exc})"}) from exc
        except RecursionError as exc:
            raise MalformedDocument({"body": too_deep}) from exc
    else:
        data = raw
    if not isinstance(data, dict):
        raise MalformedDocument({"body": "must be a JSON object"})
    if nesting_depth(data) > MAX_DEPTH:
        raise MalformedDocument({"body": too_deep})

    errors: dict[str, str] = {}
    for name in sorted(set(data) - set(DOCUMENT_FIELDS)):
        errors[path_name(name)] = "is not a field of a signed document"
    signature = _hex_field(data.get("signature"), "signature", 128, errors)
    if signature is not None and (problem := signature_problem(signature)):
        errors["signature"] = f"is not a canonical Ed25519 signature: {problem}"
    public_key = None
    if data.get("public_key") is not None:
        public_key = _hex_field(data["public_key"], "public_key", 64, errors)
    if public_key is not None and (problem := public_key_problem(public_key)):
        errors["public_key"] = f"is not a valid Ed25519 public key: it {problem}"

    envelope = data.get("envelope")
    if not isinstance(envelope, dict):
        errors["envelope"] = "must be a JSON object"
        raise MalformedDocument(errors)
    for field in ENVELOPE_FIELDS:
        if field not in envelope:
            errors[f"envelope.{field}"] = "is required"
    for name in sorted(set(envelope) - set(ENVELOPE_FIELDS)):
        errors[f"envelope.{path_name(name)}"] = "is not a field of the envelope"
    if "format" in envelope and envelope["format"] != ENVELOPE_FORMAT:
        errors["envelope.format"] = f"must be {json.dumps(ENVELOPE_FORMAT)}"
    if "purpose" in envelope and envelope["purpose"] not in PURPOSES:
        errors["envelope.purpose"] = f"must be one of {', '.join(map(json.dumps, PURPOSES))}"
    key_id = envelope.get("key_id")
    if "key_id" in envelope and not (isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id)):
        errors["envelope.key_id"] = 'must be "kb1_" followed by 32 lowercase hexadecimal characters'
    created_at = envelope.get("created_at")
    if "created_at" in envelope:
        if not (isinstance(created_at, str) and _CREATED_AT_RE.fullmatch(created_at)):
            errors["envelope.created_at"] = "must be a UTC time like 2026-11-22T10:00:00Z"
        else:
            try:
                parse_created_at(created_at)
            except ValueError:
                errors["envelope.created_at"] = "is not a real date and time"
    nonce = envelope.get("nonce")
    if "nonce" in envelope and not (
        isinstance(nonce, str) and 16 <= len(nonce) <= 64 and _HEX_RE.fullmatch(nonce)
    ):
        errors["envelope.nonce"] = "must be 16 to 64 lowercase hexadecimal characters"
    submission_id = envelope.get("submission_id")
    if "submission_id" in envelope:
        try:
            if not isinstance(submission_id, str) or str(uuid.UUID(submission_id)) != submission_id:
                raise ValueError
        except ValueError:
            errors["envelope.submission_id"] = (
                "must be a lowercase UUID like 1b4e28ba-2fa1-11d2-883f-0016d3cca427"
            )
    if errors:
        raise MalformedDocument(errors)
    try:
        canonical_json(envelope)
    except WireError as exc:
        raise MalformedDocument({"envelope": str(exc)}) from exc
    assert signature is not None
    return SignedDocument(envelope=envelope, signature=signature, public_key=public_key)
