"""schemathesis against /api/schema/: every operation, generated requests, no 5xx, and
every answer (status, content type, headers, body) matches what the schema says.

Runs in-process on the WSGI application over the real database (the test PostgreSQL under
`make test`), with the catalog loaded and real signed submissions stored, so the checks and
results endpoints answer with data, not only 404s. Examples are bounded per operation and
derandomized, so a run is repeatable and takes seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from klein_bench.contract import wire
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.contribute_support import _fresh_rate_limits, post  # noqa: F401 - fixture
from tests.factories import oom_payload, result_payload, runs, signed_body

PEAKS = ("allocated", "reserved", "process", "device")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def api_data(db, catalog, client):
    """Real signed submissions stored, so the checks and results answer with data."""
    key = wire.SigningKey.generate()
    small_card = {"name": "NVIDIA GeForce RTX 5070", "memory_total_mb": 12227}
    for payload in (
        result_payload(),
        result_payload(timings={"runs": runs(2.4, 2.5, 2.6)}),
        result_payload(
            gpu=small_card,
            configuration={"offload": "model", "preset": "bf16-model-offload"},
            memory={f"peak_{m}_mb": 9500.0 for m in PEAKS},
            timings={"runs": runs(6.1, 6.3, 6.2)},
        ),
        oom_payload(gpu=small_card, memory={f"peak_{m}_mb": 11900.0 for m in PEAKS}),
    ):
        response = post(client, signed_body(payload, key))
        assert response.status_code == 201, response.content
    # schemathesis calls the WSGI handler itself, which would close the test's connection
    # (inside the test transaction) at the end of each request; Django's test client
    # disconnects the same handlers.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Loaded as the site serves it. (schemathesis.pytest.from_fixture would defer this to a
# fixture, but it reads a pytest attribute that pytest 9 no longer has.)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_api_operation_answers_as_its_schema_says_without_server_errors(case, api_data):
    # The in-process WSGI client does not undo gzip; compression has its own test.
    case.call_and_validate(checks=CHECKS, headers={"Accept-Encoding": "identity"})
