"""The OpenAPI schema (/api/schema/) and its documentation page (/api/docs/)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from klein_bench.contract.schema import result_schema

pytestmark = pytest.mark.django_db


def test_the_schema_is_openapi_3_and_lists_every_endpoint(client):
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert sorted(schema["paths"]) == [
        "/api/v1/checks/{model}/{gpu}",
        "/api/v1/consensus/{model}",
        "/api/v1/gpus",
        "/api/v1/models",
        "/api/v1/results",
        "/api/v1/results/{id}",
        "/contribute",
        "/contribute/{result_id}",
    ]


def test_every_operation_documents_its_error_answers(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]

    assert set(paths["/api/v1/results"]["get"]["responses"]) == {"200", "304", "400", "404"}
    assert set(paths["/api/v1/results/{id}"]["get"]["responses"]) == {"200", "304", "404"}
    assert set(paths["/api/v1/checks/{model}/{gpu}"]["get"]["responses"]) == {
        "200",
        "304",
        "400",
        "404",
    }
    assert set(paths["/api/v1/consensus/{model}"]["get"]["responses"]) == {"200", "304", "404"}
    refusals = {"400", "401", "403", "409", "413", "415", "429", "500", "503"}
    assert set(paths["/contribute"]["post"]["responses"]) == {"201", *refusals}
    assert set(paths["/contribute/{result_id}"]["delete"]["responses"]) == {"200", "404", *refusals}


def test_the_result_schema_is_served_at_its_stable_address_as_the_server_uses_it(client):
    response = client.get("/schemas/result-v1.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/schema+json"
    assert response.json() == result_schema()
    assert response.json()["$id"].endswith("/schemas/result-v1.json")


def test_the_schema_generates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_the_docs_page_loads_its_assets_from_this_site_not_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn.jsdelivr.net" not in page


def test_fields_without_a_value_are_null_so_the_schema_has_no_blank_enum(client):
    components = client.get("/api/schema/?format=json").json()["components"]["schemas"]

    assert "BlankEnum" not in components
    assert components["Result"]["properties"]["failed_stage"]["nullable"] is True


def test_the_docs_page_without_javascript_links_to_the_schema(client):
    page = client.get("/api/docs/").content.decode()

    noscript = page[page.index("<noscript>") : page.index("</noscript>")]
    assert '<a href="/api/schema/">/api/schema/</a>' in noscript
    assert '<a href="/api/schema/?format=json">as JSON</a>' in noscript


def test_the_docs_page_leads_back_to_the_site_with_or_without_javascript(client):
    page = client.get("/api/docs/").content.decode()

    header = page[page.index("<header") : page.index("</header>")]
    assert page.index("<header") < page.index("<noscript>")
    for link in (
        '<a href="/" ',
        '<a href="/check/" ',
        '<a href="/results/" ',
        '<a href="/contribute" ',
    ):
        assert link in header
