"""Cache (and broker) down: every page and API read still answers 200, and a submission is
still stored.

gunicorn runs with production settings and REDIS_URL at a loopback port where nothing
listens: the cache degrades to misses (django-redis with IGNORE_EXCEPTIONS), the rate
limiter fails open, the summary task is left for reconcile, and /healthz says so.
"""

from __future__ import annotations

import json

import pytest
from klein_bench.contract import wire

from benchmarks.models import Result
from benchmarks.services.aggregation import reconcile
from tests.factories import make_result, result_payload, signed_body
from tests.faults_support import (
    collected_static_fixture,  # noqa: F401 - fixture
    current_database_url,
    free_port,
    post_contribution,
    request,
    server_environment,
    web_server,
)
from tests.processes import closed_port

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_with_redis_unreachable_pages_and_the_api_answer_200_and_results_are_still_stored(
    tmp_path, catalog, collected_static
):
    result = make_result(seconds=2.1)
    make_result(seconds=2.3)
    reconcile()
    port = free_port()
    redis_down = f"redis://127.0.0.1:{closed_port()}/0"
    env = server_environment(tmp_path, current_database_url(), redis_down, port)
    env["STATIC_ROOT"] = str(collected_static)
    pages = [
        "/",
        "/check/",
        "/check/flux-2-klein-4b/",
        "/check/flux-2-klein-4b/rtx-4090/",
        "/check/flux-2-klein-4b/rtx-5070/",
        f"/r/{result.pk}",
        "/contribute",
        "/api/v1/models",
        "/api/v1/gpus",
        "/api/v1/checks/flux-2-klein-4b/rtx-4090",
        "/api/v1/results",
        f"/api/v1/results/{result.pk}",
    ]
    with web_server(env, port, tmp_path / "web.log") as web:
        # Twice: the second time each page would come from the cache if there were one.
        statuses = {path: [request("GET", port, path)[0] for _ in range(2)] for path in pages}
        status, answer = post_contribution(
            port, signed_body(result_payload(), wire.SigningKey.generate())
        )
        health_status, _, health = request("GET", port, "/healthz")
    assert statuses == {path: [200, 200] for path in pages}
    assert (status, answer["status"]) == (201, "accepted")
    assert Result.objects.filter(pk=answer["result_id"]).exists()
    output = web.output()
    assert "Traceback" not in output
    assert "rate limiter unavailable" in output
    assert (health_status, json.loads(health)["checks"]["cache"]) == (
        503,
        {"ok": False, "backend": "RedisCache", "error": "ConnectionError"},
    )
