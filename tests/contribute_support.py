"""Helpers for tests that post to /contribute: a client key, posting, generous limits.

Import the fixtures into a test module to use them: `from tests.contribute_support import
key_fixture, _fresh_rate_limits`. pytest finds fixtures that a module imports, by the
name given in @pytest.fixture(name=...), so the imports do not shadow test arguments.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.cache import cache
from klein_bench.contract import wire

from tests.factories import result_payload, signed_body

# RFC 8032's first Ed25519 test key: fixed, so key ids in failures are recognisable.
FIXED_PRIVATE_KEY = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)


@pytest.fixture(name="fresh_rate_limits", autouse=True)
def _fresh_rate_limits(settings):
    """Counters start empty and limits are high, unless a test sets its own."""
    settings.CONTRIBUTE_RATE_PER_IP = "100000/hour"
    settings.CONTRIBUTE_RATE_PER_KEY = "100000/hour"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(name="key")
def key_fixture() -> wire.SigningKey:
    return wire.SigningKey.from_private_bytes(FIXED_PRIVATE_KEY)


def post(client, body: bytes, **extra: Any):
    return client.post("/contribute", data=body, content_type="application/json", **extra)


def delete(client, result_id: int, body: bytes, **extra: Any):
    return client.delete(
        f"/contribute/{result_id}", data=body, content_type="application/json", **extra
    )


def contribute(client, key: wire.SigningKey, payload: dict | None = None, **envelope: Any):
    """Post one signed result and return the response."""
    return post(client, signed_body(payload or result_payload(), key, **envelope))


def withdrawal_body(key: wire.SigningKey, result_id: int, reason: str | None = None, **envelope):
    payload: dict[str, Any] = {"result_id": result_id}
    if reason is not None:
        payload["reason"] = reason
    return signed_body(payload, key, purpose=wire.PURPOSE_WITHDRAW, **envelope)


def reencode(document: dict) -> bytes:
    return json.dumps(document).encode()
