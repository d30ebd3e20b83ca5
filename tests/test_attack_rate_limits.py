"""Attack: spending someone else's quota, or dodging one's own. Forged documents do not
count against the key they name; the per-address limit counts the client behind the
trusted proxies and cannot be dodged with a made-up X-Forwarded-For; with Redis down the
limiter lets requests through; on SQLite and on PostgreSQL, each on a server of its own."""

from __future__ import annotations

import pytest
from klein_bench.contract import wire

from tests.attack_support import ATTACK_MARKS, started_platform
from tests.factories import result_payload, signed_body

pytestmark = ATTACK_MARKS
KINDS = pytest.mark.parametrize("kind", ["sqlite", "postgresql"])


def forged(victim: wire.SigningKey) -> bytes:
    """A document naming the victim's key, signed by someone else."""
    envelope = wire.make_envelope(result_payload(), key_id=victim.key_id)
    return wire.encode(
        wire.sign_envelope(envelope, wire.SigningKey.generate(), include_public_key=False)
    )


@KINDS
def test_forged_documents_do_not_spend_the_quota_of_the_key_they_name(kind, request):
    victim = wire.SigningKey.generate()
    with started_platform(kind, request, CONTRIBUTE_RATE_PER_KEY="2/hour") as platform:
        assert platform.post(signed_body(result_payload(), victim)).status == 201
        forgeries = [platform.post(forged(victim)).error for _ in range(5)]
        second = platform.post(signed_body(result_payload(), victim))
        third = platform.post(signed_body(result_payload(), victim))
        platform.no_tracebacks()

    assert forgeries == [(401, "bad_signature")] * 5
    assert second.status == 201
    assert third.error == (429, "rate_limited")
    assert 1 <= int(third.headers["Retry-After"]) <= 3600


@KINDS
def test_the_address_limit_counts_the_client_behind_one_trusted_proxy(kind, request):
    def send(platform, forwarded_for: str):
        return platform.post(b"{}", headers={"X-Forwarded-For": forwarded_for}).status

    with started_platform(
        kind, request, CONTRIBUTE_RATE_PER_IP="2/hour", TRUSTED_PROXY_HOPS="1"
    ) as platform:
        first = [send(platform, "203.0.113.5") for _ in range(2)]
        # The proxy appends the address it saw: a client's own entries come first.
        dodged = send(platform, "198.51.100.1, 203.0.113.5")
        other = send(platform, "203.0.113.6")

    assert first == [400, 400]
    assert dodged == 429
    assert other == 400


@KINDS
def test_without_trusted_proxies_x_forwarded_for_is_ignored(kind, request):
    with started_platform(kind, request, CONTRIBUTE_RATE_PER_IP="2/hour") as platform:
        statuses = [
            platform.post(b"{}", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status
            for i in range(3)
        ]

    assert statuses == [400, 400, 429]


def test_with_redis_down_the_limiter_lets_submissions_through(request):
    with started_platform("postgresql", request, CONTRIBUTE_RATE_PER_IP="1/hour") as platform:
        platform.redis.kill()
        statuses = [
            platform.post(signed_body(result_payload(), wire.SigningKey.generate())).status
            for _ in range(3)
        ]
        platform.redis.start()

    assert statuses == [201, 201, 201]
