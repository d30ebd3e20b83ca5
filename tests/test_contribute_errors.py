"""POST /contribute: every refusal has its documented status and code, and stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from klein_bench.contract import wire
from klein_bench.contract.protocol import CURRENT

from benchmarks.models import Contributor, Gpu, Result, Submission
from tests.contribute_support import _fresh_rate_limits, contribute, key_fixture, post, reencode  # noqa: F401 - fixtures
from tests.factories import result_payload, runs, signed_body, signed_document

pytestmark = pytest.mark.django_db


def assert_nothing_stored():
    assert (Submission.objects.count(), Result.objects.count()) == (0, 0)


def test_a_body_over_the_size_limit_is_refused_before_it_is_read(client, catalog, key, settings):
    settings.CONTRIBUTE_MAX_BYTES = 1000

    response = post(client, signed_body(result_payload(), key))

    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "detail": "The request body is larger than the limit of 1000 bytes.",
    }
    assert_nothing_stored()


def test_a_body_longer_than_its_declared_length_is_refused(rf, catalog, key, settings):
    from benchmarks.api.contribute import contribute as view

    settings.CONTRIBUTE_MAX_BYTES = 1000
    request = rf.post("/contribute", data=b"x" * 5000, content_type="application/json")
    request.META["CONTENT_LENGTH"] = "10"

    response = view(request)

    assert response.status_code == 413


def test_too_many_requests_from_one_address_get_429_with_retry_after(
    client, catalog, key, settings
):
    settings.CONTRIBUTE_RATE_PER_IP = "2/hour"
    assert contribute(client, key).status_code == 201
    assert contribute(client, key).status_code == 201

    response = contribute(client, key)

    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert Result.objects.count() == 2


def test_malformed_requests_count_against_the_address_limit(client, catalog, settings):
    settings.CONTRIBUTE_RATE_PER_IP = "1/minute"
    post(client, b"not json")

    response = post(client, b"not json")

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60


def test_too_many_requests_from_one_key_get_429(client, catalog, key, settings):
    settings.CONTRIBUTE_RATE_PER_KEY = "1/day"
    contribute(client, key)

    response = post(client, signed_body(result_payload(), key), REMOTE_ADDR="10.0.0.9")

    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many requests from this key")
    assert Result.objects.count() == 1


def test_requests_with_a_bad_signature_do_not_use_up_a_keys_quota(client, catalog, key, settings):
    settings.CONTRIBUTE_RATE_PER_KEY = "1/day"
    forged = signed_document(result_payload(), key)
    forged["signature"] = key.sign(b"another message").hex()
    for _ in range(3):
        assert post(client, wire.encode(forged)).status_code == 401

    assert contribute(client, key).status_code == 201


def test_the_rate_limiter_lets_requests_through_when_the_cache_is_down(
    client, catalog, key, settings
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True},
        }
    }
    settings.CONTRIBUTE_RATE_PER_IP = "1/hour"

    statuses = [contribute(client, key).status_code for _ in range(2)]

    assert statuses == [201, 201]


def test_a_body_that_is_not_json_is_malformed(client, catalog):
    response = post(client, b"{not json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "malformed_document"
    assert list(body["fields"]) == ["body"]


def test_a_body_in_another_encoding_than_utf8_is_malformed(client, catalog, key):
    body = reencode(signed_document(result_payload(), key)).decode().encode("utf-16")

    response = post(client, body)

    assert response.status_code == 400
    assert response.json()["fields"] == {"body": "must be JSON encoded as UTF-8"}


def test_a_malformed_document_names_every_bad_field(client, catalog, key):
    document = signed_document(result_payload(), key)
    document["signature"] = "xyz"
    envelope = document["envelope"]
    envelope["nonce"] = "short"
    envelope["created_at"] = "yesterday"
    del envelope["submission_id"]

    response = post(client, reencode(document))

    assert response.status_code == 400
    assert response.json() == {
        "error": "malformed_document",
        "detail": "The body is not a signed klein-bench document; "
        "see the fields for what is wrong.",
        "fields": {
            "signature": "must be 128 lowercase hexadecimal characters",
            "envelope.submission_id": "is required",
            "envelope.created_at": "must be a UTC time like 2026-11-22T10:00:00Z",
            "envelope.nonce": "must be 16 to 64 lowercase hexadecimal characters",
        },
    }
    assert_nothing_stored()


def test_deeply_nested_json_is_malformed_not_a_crash(client, catalog):
    response = post(client, b"[" * 100_000 + b"]" * 100_000)

    assert response.status_code in (400, 413)
    assert response.json()["error"] in ("malformed_document", "too_large")


def test_a_withdrawal_document_cannot_be_posted_as_a_contribution(client, catalog, key):
    body = signed_body(result_payload(), key, purpose=wire.PURPOSE_WITHDRAW)

    response = post(client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "wrong_purpose"
    assert response.json()["fields"] == {"envelope.purpose": 'must be "klein-bench/contribute/v1"'}


def test_an_unknown_key_without_its_public_key_is_told_to_send_it(client, catalog, key):
    document = signed_document(result_payload(), key)
    del document["public_key"]

    response = post(client, wire.encode(document))

    assert response.status_code == 401
    assert response.json() == {
        "error": "unknown_key",
        "detail": "The server does not know this key yet; include public_key in the document.",
        "fields": {"public_key": "is required the first time a key is used"},
    }
    assert "WWW-Authenticate" in response
    assert_nothing_stored()
    assert not Contributor.objects.exists()


def test_a_revoked_key_is_refused(client, catalog, key):
    contribute(client, key)
    Contributor.objects.update(revoked_at=datetime.now(UTC), revoked_reason="Fabricated results")

    response = contribute(client, key)

    assert response.status_code == 403
    assert response.json() == {
        "error": "key_revoked",
        "detail": "This key was revoked by a moderator: Fabricated results.",
    }
    assert Result.objects.count() == 1


def test_a_signature_by_another_key_is_refused(client, catalog, key):
    document = signed_document(result_payload(), wire.SigningKey.generate())
    document["public_key"] = key.public_bytes.hex()

    response = post(client, wire.encode(document))

    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    assert_nothing_stored()


def test_a_known_key_id_cannot_be_rebound_to_another_public_key(client, catalog, key):
    contribute(client, key)
    impostor = wire.SigningKey.generate()
    envelope = wire.make_envelope(result_payload(), key_id=key.key_id)
    document = wire.sign_envelope(envelope, impostor)

    response = post(client, wire.encode(document))

    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"
    assert Contributor.objects.get().public_key == key.public_bytes.hex()


@pytest.mark.parametrize("offset", [-400, 400])
def test_an_envelope_created_outside_the_time_window_is_stale(client, catalog, key, offset):
    created_at = datetime.now(UTC) + timedelta(seconds=offset)

    response = contribute(client, key, created_at=created_at)

    assert response.status_code == 400
    assert response.json()["error"] == "stale"
    assert response.json()["fields"] == {
        "envelope.created_at": "must be within 300 seconds of the server's time"
    }
    assert_nothing_stored()


def test_the_time_window_is_configurable(client, catalog, key, settings):
    settings.CONTRIBUTE_CLOCK_SKEW_SECONDS = 3600

    response = contribute(client, key, created_at=datetime.now(UTC) - timedelta(minutes=30))

    assert response.status_code == 201


def test_a_payload_that_breaks_the_schema_names_every_bad_field(client, catalog, key):
    payload = result_payload(
        configuration={"width": 1000, "precision": "fp4"},
        gpu={"pcie_width": 64},
        timings={"runs": [*runs(2.0, 2.0, 2.0), {"seconds": "fast"}]},
        surprise=True,
    )
    del payload["environment"]["agent"]

    response = contribute(client, key, payload)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_payload",
        "detail": "The result does not pass validation; see the fields for what is wrong.",
        "fields": {
            "envelope.payload.configuration.precision": 'must be one of "bf16", "fp8-storage", '
            '"fp8-compute"',
            "envelope.payload.configuration.width": "must be a multiple of 16",
            "envelope.payload.environment.agent": "is required",
            "envelope.payload.gpu.pcie_width": "must be at most 32",
            "envelope.payload.surprise": "is not a field of this schema",
            "envelope.payload.timings.runs.3.seconds": "must be a number",
        },
    }
    assert_nothing_stored()


def test_schema_and_plausibility_problems_are_reported_together(client, catalog, key):
    payload = result_payload(model="sdxl", gpu={"pcie_width": 64})

    response = contribute(client, key, payload)

    assert set(response.json()["fields"]) == {
        "envelope.payload.model",
        "envelope.payload.gpu.pcie_width",
    }


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        (
            {"timings": {"runs": runs(2.0, 2.0)}},
            {
                "envelope.payload.timings.runs": "a successful result needs at least 3 timed "
                "runs, got 2"
            },
        ),
        (
            {"timings": {"runs": [*runs(2.0, 0.0, 2.0), {"seconds": -1.0}]}},
            {
                "envelope.payload.timings.runs.1.seconds": "must be above 0",
                "envelope.payload.timings.runs.3.seconds": "must be above 0",
            },
        ),
        (
            {"memory": {"peak_device_mb": 30000.0}},
            {
                "envelope.payload.memory.peak_device_mb": "30000 MiB is more than the card's "
                "memory, 24576 MiB"
            },
        ),
        (
            {"protocol": {"id": CURRENT.id, "hash": "sha256:" + "0" * 64}},
            {
                "envelope.payload.protocol": '"klein4b-t2i-v1" with this hash is not a protocol '
                "the server knows; update the agent"
            },
        ),
        (
            {"model": "stable-diffusion-xl"},
            {"envelope.payload.model": '"stable-diffusion-xl" is not a model in the catalog'},
        ),
        (
            {"configuration": {"preset": "fp8-storage"}},
            {
                "envelope.payload.configuration.preset": "does not match precision and offload "
                '(expected "bf16-resident")'
            },
        ),
        (
            {"gpu": {"name": "  "}},
            {"envelope.payload.gpu.name": "is required for a CUDA device"},
        ),
        (
            {"environment": {"os": "Linux\x00"}},
            {"envelope.payload.environment.os": "must not contain NUL characters"},
        ),
        (
            {"evidence": {"thumbnail_png": "bm90IGEgcG5n"}},
            {"envelope.payload.evidence.thumbnail_png": "must be a base64-encoded PNG image"},
        ),
    ],
    ids=[
        "too-few-runs",
        "non-positive-seconds",
        "peak-above-card",
        "unknown-protocol",
        "unknown-model",
        "wrong-preset",
        "cuda-without-name",
        "nul-character",
        "thumbnail-not-png",
    ],
)
def test_an_implausible_result_is_refused_with_the_field_that_is_wrong(
    client, catalog, key, overrides, fields
):
    response = contribute(client, key, result_payload(**overrides))

    assert response.status_code == 400
    assert response.json()["fields"] == fields
    assert_nothing_stored()


def test_a_refused_payload_leaves_no_flagged_gpu_behind(client, catalog, key):
    payload = result_payload(gpu={"name": "NVIDIA Mystery 9000"}, timings={"runs": runs(1.0)})

    contribute(client, key, payload)

    assert not Gpu.objects.filter(is_flagged=True).exists()
    assert not Contributor.objects.exists()


@pytest.fixture(scope="module")
def pristine_body() -> bytes:
    return signed_body(result_payload(), wire.SigningKey.generate())


@hypothesis_settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_changing_any_single_byte_of_the_body_is_refused(client, catalog, pristine_body, data):
    position = data.draw(st.integers(0, len(pristine_body) - 1), label="position")
    original = pristine_body[position]
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != original), label="byte")
    tampered = pristine_body[:position] + bytes([replacement]) + pristine_body[position + 1 :]

    response = post(client, tampered)

    assert 400 <= response.status_code < 500, response.content
    assert response.json()["error"] in {
        "malformed_document",
        "bad_signature",
        "unknown_key",
        "wrong_purpose",
        "stale",
        "invalid_payload",
    }
    assert_nothing_stored()
