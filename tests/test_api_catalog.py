"""GET /api/v1/models and /api/v1/gpus, and what every API read shares (ETag, errors)."""

from __future__ import annotations

import pytest

from benchmarks.models import Gpu

pytestmark = pytest.mark.django_db


def test_the_models_list_shows_every_catalog_model(client, catalog):
    response = client.get("/api/v1/models")

    assert response.status_code == 200
    models = response.json()
    assert [m["slug"] for m in models] == [
        "flux-2-klein-4b",
        "flux-2-klein-base-4b",
        "flux-2-klein-9b",
        "flux-2-klein-base-9b",
        "klein-tiny-random",
        "klein-base-tiny-random",
        "klein-9b-tiny-random",
        "klein-base-9b-tiny-random",
    ]
    assert models[0] == {
        "slug": "flux-2-klein-4b",
        "name": "FLUX.2 [klein] 4B",
        "hf_repo": "black-forest-labs/FLUX.2-klein-4B",
        "licence": "Apache-2.0",
        "parameters_billion": 4.0,
        "default_steps": 4,
        "default_guidance": 1.0,
        "default_width": 1024,
        "default_height": 1024,
        "description": models[0]["description"],
        "is_test_model": False,
        "url": "http://testserver/check/flux-2-klein-4b/",
    }
    assert models[2]["licence"] == "FLUX Non-Commercial License"
    assert [m["is_test_model"] for m in models] == [False] * 4 + [True] * 4


def test_the_gpus_list_shows_catalog_and_flagged_cards(client, catalog):
    Gpu.objects.create(slug="mystery-9000", name="NVIDIA Mystery 9000", is_flagged=True)

    gpus = {g["slug"]: g for g in client.get("/api/v1/gpus").json()}

    assert gpus["rtx-5070"] == {
        "slug": "rtx-5070",
        "name": "NVIDIA GeForce RTX 5070",
        "vendor": "NVIDIA",
        "family": "GeForce RTX 50",
        "vram_mb": 12288,
        "architecture": "Blackwell",
        "compute_capability": "12.0",
        "sm": "sm_120",
        "memory_bandwidth_gbs": gpus["rtx-5070"]["memory_bandwidth_gbs"],
        "bf16_tflops": gpus["rtx-5070"]["bf16_tflops"],
        "board_power_w": gpus["rtx-5070"]["board_power_w"],
        "is_laptop": False,
        "is_flagged": False,
    }
    assert gpus["mystery-9000"]["is_flagged"] is True


def test_reads_carry_an_etag_and_may_be_cached_for_a_minute(client, catalog):
    response = client.get("/api/v1/models")

    assert response["ETag"].startswith('"') and len(response["ETag"]) == 34
    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=60"}


def test_a_matching_if_none_match_gets_304_without_a_body(client, catalog):
    etag = client.get("/api/v1/gpus")["ETag"]

    response = client.get("/api/v1/gpus", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag


def test_the_etag_changes_when_the_data_does(client, catalog):
    etag = client.get("/api/v1/gpus")["ETag"]
    Gpu.objects.filter(slug="rtx-4090").update(name="RTX 4090 (renamed)")

    response = client.get("/api/v1/gpus", HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] != etag


def test_an_unknown_api_address_answers_a_json_404(client):
    response = client.get("/api/v1/nothing/here")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "There is no API endpoint at this address.",
    }


def test_writing_to_a_read_only_endpoint_is_405_in_json(client, catalog):
    response = client.post("/api/v1/models", data={}, content_type="application/json")

    assert response.status_code == 405
    assert response.json() == {
        "error": "method_not_allowed",
        "detail": 'Method "POST" not allowed.',
    }
