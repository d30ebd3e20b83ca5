"""GET /api/v1/checks/<model>/<gpu>: summaries by configuration, verdict, claims."""

from __future__ import annotations

import pytest
from klein_bench.contract import wire

from benchmarks.services.aggregation import reconcile
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import make_result, result_payload, runs
from tests.pages_data import around, fill_rtx_4090, post

pytestmark = pytest.mark.django_db


def test_a_check_with_no_results_says_unknown_and_shows_the_claims(client, catalog):
    response = client.get("/api/v1/checks/flux-2-klein-4b/rtx-4090")

    assert response.status_code == 200
    body = response.json()
    assert (body["model"]["slug"], body["gpu"]["slug"]) == ("flux-2-klein-4b", "rtx-4090")
    assert (body["verdict"], body["summaries"]) == ("unknown", [])
    claim_gpus = {(c["gpu"], c["source"]) for c in body["claims"]}
    assert ("rtx-4090", "Community benchmark (RTX 4090 recipe)") in claim_gpus
    assert (None, "BFL model card") in claim_gpus
    assert all(c["gpu"] in ("rtx-4090", None) for c in body["claims"])


def test_a_check_shows_each_configurations_summary_and_the_verdict(client, catalog):
    make_result(seconds=2.0, peak_device_mb=20000.0)
    make_result(seconds=2.4, peak_device_mb=20100.0)
    make_result(configuration={"precision": "fp8-storage"}, outcome="out_of_memory")
    make_result(seconds=5.0, synthetic=True)
    reconcile()

    body = client.get("/api/v1/checks/flux-2-klein-4b/rtx-4090").json()

    assert body["verdict"] == "runs"
    rows = [
        (s["configuration"]["slug"], s["synthetic"], s["verdict"], s["n_results"],
         s["seconds_median"], s["peak_device_mb_max"])
        for s in body["summaries"]
    ]  # fmt: skip
    assert rows == [
        ("diffusers-bf16-none-1024x1024-4", False, "runs", 2, pytest.approx(2.2), 20100.0),
        ("diffusers-fp8-storage-none-1024x1024-4", False, "does_not_fit", 1, None, None),
        ("diffusers-bf16-none-1024x1024-4", True, "runs", 1, 5.0, None),
    ]
    first = body["summaries"][0]
    assert first["configuration"] == {
        "slug": "diffusers-bf16-none-1024x1024-4",
        "label": "bf16-resident (diffusers, 1024x1024, 4 steps)",
        "runtime": "diffusers",
        "precision": "bf16",
        "offload": "none",
        "width": 1024,
        "height": 1024,
        "steps": 4,
        "preset": "bf16-resident",
    }
    assert first["seconds_values"] == [2.0, 2.4]


CHECK = "/api/v1/checks/flux-2-klein-4b/rtx-4090"


def test_a_repeated_check_is_served_without_touching_the_database(
    client, catalog, django_assert_num_queries
):
    fill_rtx_4090(client)
    first = client.get(CHECK)

    with django_assert_num_queries(0):
        again = client.get(CHECK)

    assert again.status_code == 200
    assert (again.content, again["ETag"]) == (first.content, first["ETag"])
    assert client.get(CHECK, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_a_new_result_changes_the_next_check(client, catalog):
    fill_rtx_4090(client)
    before = client.get(CHECK)
    assert before.json()["summaries"][0]["n_results"] == 3

    post(client, result_payload(timings={"runs": runs(*around(2.2))}), wire.SigningKey.generate())
    reconcile()
    after = client.get(CHECK)

    assert after.json()["summaries"][0]["n_results"] == 4
    assert after["ETag"] != before["ETag"]


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/api/v1/checks/sdxl/rtx-4090", "There is no model 'sdxl' in the catalog."),
        ("/api/v1/checks/flux-2-klein-4b/gtx-1080", "There is no GPU 'gtx-1080' in the catalog."),
    ],
)
def test_a_check_of_an_unknown_model_or_gpu_is_404(client, catalog, path, detail):
    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": detail}


def test_failures_are_counted_by_outcome_and_stage(client, catalog):
    make_result(outcome="out_of_memory", failed_stage="vae_decode")
    make_result(outcome="out_of_memory", failed_stage="denoising")
    make_result(outcome="error", failed_stage="load")
    reconcile()

    summary = client.get(CHECK).json()["summaries"][0]

    assert summary["failures_by_stage"] == {
        "error": {"load": 1},
        "out_of_memory": {"denoising": 1, "vae_decode": 1},
    }


def test_an_unmeasured_card_has_an_estimate_block_apart_from_the_summaries(client, catalog):
    fill_rtx_4090(client)

    body = client.get("/api/v1/checks/flux-2-klein-4b/rtx-3090").json()

    assert (body["verdict"], body["summaries"]) == ("unknown", [])
    estimate = body["estimate"]
    assert estimate["verdict"] == "expected_to_fit"
    lead = estimate["configurations"][estimate["lead"]]
    assert {k: lead[k] for k in ("runtime", "precision", "offload", "width", "steps")} == {
        "runtime": "diffusers",
        "precision": "bf16",
        "offload": "none",
        "width": 1024,
        "steps": 4,
    }
    # Memory from the 4090's measurements of the same configuration, speed scaled from the
    # 4090 (another architecture than the 3090's Ampere), so the range is wide.
    assert (lead["memory_basis"], lead["memory_cards"], lead["fit"]) == (
        "measured",
        ["rtx-4090"],
        "fits",
    )
    assert (lead["speed_basis"], lead["speed_cards"]) == ("other_architectures", ["rtx-4090"])
    assert 19000 < lead["peak_vram_mb"]["value"] < 20300
    seconds = lead["seconds_per_image"]
    assert seconds["low"] < seconds["value"] < seconds["high"]
    presets = [
        (c["precision"], c["offload"], c["memory_basis"]) for c in estimate["configurations"]
    ]
    assert presets == [
        ("bf16", "none", "measured"),
        ("bf16", "model", "architecture_only"),
        ("fp8-storage", "none", "architecture_only"),
    ], "no fp8-compute estimate: the RTX 3090 has no FP8 tensor cores"


def test_a_measured_configuration_is_not_estimated_and_a_cpu_has_no_estimate(client, catalog):
    fill_rtx_4090(client)

    measured = client.get(CHECK).json()["estimate"]
    cpu = client.get("/api/v1/checks/flux-2-klein-4b/cpu").json()["estimate"]
    tiny = client.get("/api/v1/checks/klein-tiny-random/rtx-4090").json()["estimate"]

    assert [(c["precision"], c["offload"]) for c in measured["configurations"]] == [
        ("bf16", "model"),
        ("fp8-storage", "none"),
        ("fp8-compute", "none"),
    ]
    assert (cpu, tiny) == (None, None)
