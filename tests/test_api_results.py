"""GET /api/v1/results (filters, cursor pages, CSV) and /api/v1/results/<id>."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from klein_bench.contract import wire

from benchmarks.models import Result
from tests.contribute_support import _fresh_rate_limits, contribute, key_fixture  # noqa: F401 - fixtures
from tests.factories import make_result, result_payload

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    return [r["id"] for r in response.json()["results"]]


def test_results_are_listed_newest_first_with_their_status(client, catalog):
    older = make_result()
    withdrawn = make_result(status="withdrawn")

    response = client.get("/api/v1/results")

    assert response.status_code == 200
    assert ids(response) == [withdrawn.pk, older.pk]
    assert [r["status"] for r in response.json()["results"]] == ["withdrawn", "accepted"]
    assert response.json()["next"] is None


def test_a_listed_result_has_its_flat_figures(client, catalog, key):
    contribute(client, key)
    result = Result.objects.get()

    row = client.get("/api/v1/results").json()["results"][0]

    assert row == {
        "id": result.pk,
        "permalink": f"http://testserver/r/{result.pk}",
        "status": "accepted",
        "created_at": row["created_at"],
        "model": "flux-2-klein-4b",
        "gpu": "rtx-4090",
        "runtime": "diffusers",
        "precision": "bf16",
        "offload": "none",
        "preset": "bf16-resident",
        "width": 1024,
        "height": 1024,
        "steps": 4,
        "synthetic": False,
        "protocol_version": "klein4b-t2i-v1",
        "outcome": "success",
        "failed_stage": None,
        "n_runs": 5,
        "seconds_median": 2.0,
        "seconds_p10": 2.0,
        "seconds_p90": 2.0,
        "seconds_mean": 2.0,
        "seconds_stdev": 0.0,
        "seconds_cv": 0.0,
        "load_seconds": 14.2,
        "text_encoding_seconds": 0.1,
        "denoising_seconds": 1.6,
        "vae_decode_seconds": 0.3,
        "baseline_device_mb": 412.0,
        "peak_allocated_mb": 17950.0,
        "peak_reserved_mb": 19010.0,
        "peak_process_mb": 19620.0,
        "peak_device_mb": 20030.0,
        "peak_rss_mb": 3120.0,
        "system_ram_mb": 65536.0,
        "peak_vram_mb": None,
        "vram_source": "",
        "peak_phase": "",
        "peak_stage": "",
        "failed_phase": "",
        "attention_kernel": "",
        "fp8_kernels_ran": None,
        "pcie_generation": 4,
        "pcie_width": 16,
        "power_limit_share": None,
        "capped": None,
        "throttled": None,
        "work_tflop": pytest.approx(154.1, abs=1),
        "transformer_tflop": pytest.approx(139.3, abs=0.1),
        "peak_share": pytest.approx(0.42, abs=0.4),
        "energy_joules_per_image": 780.0,
        "driver_version": "580.95.05",
        "torch_version": "2.9.1+cu128",
        "diffusers_version": "0.42.1",
        "runtime_version": "0.42.1",
        "agent_version": "0.1.0",
        "drives_display": False,
        "is_outlier": False,
        "comparability": "protocol-exact",
        "deviations": [],
        "image_differs": False,
        "reproduction_of": None,
        "contributor": key.key_id,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gpu=rtx-5090", ["5090"]),
        ("model=klein-tiny-random", ["tiny"]),
        ("offload=model", ["offload"]),
        ("preset=bf16-model-offload", ["offload"]),
        ("precision=fp8-storage", ["fp8"]),
        ("runtime=comfyui", ["fp8"]),
        ("width=512", ["small"]),
        ("steps=8", ["small"]),
        ("driver=575.64", ["old-driver"]),
        ("torch=2.8.0", ["old-driver"]),
        ("diffusers=0.40.0", ["5090"]),
        ("outcome=out_of_memory", ["oom"]),
        ("synthetic=true", ["synthetic"]),
        ("status=rejected", ["rejected"]),
        ("gpu=rtx-4090&outcome=success&synthetic=false&status=accepted&precision=bf16&offload=none&width=1024",
         ["base", "old-driver"]),
    ],
)  # fmt: skip
def test_results_can_be_filtered(client, catalog, query, expected):
    made = {
        "base": make_result(),
        "5090": make_result(gpu="rtx-5090", diffusers_version="0.40.0"),
        "tiny": make_result(model="klein-tiny-random", gpu="cpu"),
        "offload": make_result(configuration={"offload": "model"}),
        "fp8": make_result(configuration={"runtime": "comfyui", "precision": "fp8-storage"}),
        "small": make_result(configuration={"width": 512, "height": 512, "steps": 8}),
        "old-driver": make_result(driver_version="575.64", torch_version="2.8.0"),
        "oom": make_result(outcome="out_of_memory"),
        "synthetic": make_result(synthetic=True),
        "rejected": make_result(status="rejected"),
    }
    names = {result.pk: name for name, result in made.items()}

    response = client.get(f"/api/v1/results?{query}")

    assert response.status_code == 200
    assert sorted(names[i] for i in ids(response)) == sorted(expected)


def test_results_can_be_filtered_by_creation_time(client, catalog):
    old = make_result()
    Result.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    new = make_result()
    since = (timezone.now() - timedelta(days=1)).date().isoformat()

    assert ids(client.get(f"/api/v1/results?created_after={since}")) == [new.pk]
    assert ids(client.get(f"/api/v1/results?created_before={since}")) == [old.pk]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("outcome=melted", {"outcome": "Select a valid choice. melted is not one of the "
                                       "available choices."}),
        ("width=wide", {"width": "Enter a whole number."}),
        ("width=-1", {"width": "Ensure this value is greater than or equal to 0."}),
        ("created_after=yesterday", {"created_after": "Enter a valid date/time."}),
    ],
)  # fmt: skip
def test_an_invalid_filter_is_a_400_naming_the_parameter(client, catalog, query, fields):
    response = client.get(f"/api/v1/results?{query}")

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_query",
        "detail": "Some query parameters are not valid; see the fields for why.",
        "fields": fields,
    }


def test_pages_follow_a_cursor_to_the_end(client, catalog):
    made = [make_result().pk for _ in range(5)]

    first = client.get("/api/v1/results?page_size=2")
    second = client.get(first.json()["next"])
    third = client.get(second.json()["next"])

    assert ids(first) + ids(second) + ids(third) == made[::-1]
    assert third.json()["next"] is None
    assert first["Link"] == f'<{first.json()["next"]}>; rel="next"'


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "cD0nIE9SIDE9MS0t",  # p=' OR 1=1--
        "cD0A",  # p=NUL
        "cD05OTk5LTk5LTk5",  # p=9999-99-99
        "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # p beyond a 64-bit id
        "eD0x",  # x=1, a part no cursor has
    ],
)
def test_every_bad_cursor_is_a_400_naming_the_cursor(client, catalog, cursor):
    make_result()

    response = client.get("/api/v1/results", {"cursor": cursor})

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_query",
        "detail": "Some query parameters are not valid; see the fields for why.",
        "fields": {
            "cursor": "is not a cursor this API gave out; follow the next and previous "
            "links as they are"
        },
    }


def test_results_export_as_csv(client, catalog):
    made = [make_result(seconds=s).pk for s in (1.5, 2.5, 3.5)]

    response = client.get("/api/v1/results?format=csv&page_size=2")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["id"]) for r in rows] == made[:0:-1]
    assert [float(r["seconds_median"]) for r in rows] == [3.5, 2.5]
    assert rows[0]["gpu"] == "rtx-4090" and rows[0]["peak_rss_mb"] == ""
    assert 'rel="next"' in response["Link"] and "format=csv" in response["Link"]


def test_an_empty_csv_export_still_has_its_header(client, catalog):
    response = client.get("/api/v1/results?format=csv&gpu=rtx-3090")

    header = response.content.decode().splitlines()
    assert header[0].startswith("id,permalink,status,created_at,model,gpu,")
    assert len(header) == 1


def test_an_invalid_filter_in_a_csv_export_answers_json(client, catalog):
    response = client.get("/api/v1/results?format=csv&width=wide")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"


def test_a_result_shows_its_signed_document_so_anyone_can_reverify_it(client, catalog, key):
    contribute(client, key, result_payload(evidence={"thumbnail_png": None}))
    result = Result.objects.get()

    body = client.get(f"/api/v1/results/{result.pk}").json()

    submission = body["submission"]
    assert submission["key_id"] == key.key_id
    assert submission["public_key"] == key.public_bytes.hex()
    document = wire.parse_document(submission["body"])
    document.verify(bytes.fromhex(submission["public_key"]))
    assert document.payload["model"] == body["model"] == "flux-2-klein-4b"
    assert submission["submission_id"] == document.submission_id
    assert body["runs"][0] == {
        "seconds": 2.0,
        "text_encoding_seconds": 0.1,
        "denoising_seconds": 1.6,
        "vae_decode_seconds": 0.3,
        "wall_seconds": None,
        "prompt_index": 0,
        "seed": 0,
        "energy_joules": None,
    }
    assert body["environment"]["driver"] == "580.95.05"
    assert (body["status"], body["status_reason"], body["thumbnail_png"]) == ("accepted", "", None)
    assert body["protocol_hash"].startswith("sha256:")


def test_a_withdrawn_result_still_shows_with_its_reason(client, catalog):
    result = make_result(status="withdrawn")
    result.submission.withdrawal_reason = "Measured with the wrong driver"
    result.submission.save()

    body = client.get(f"/api/v1/results/{result.pk}").json()

    assert (body["status"], body["status_reason"]) == (
        "withdrawn",
        "Measured with the wrong driver",
    )


@pytest.mark.parametrize("result_id", ["999999", "abc", "99999999999999999999999"])
def test_an_unknown_result_is_404(client, catalog, result_id):
    response = client.get(f"/api/v1/results/{result_id}")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": f"There is no result {result_id}."}


def test_the_list_answers_with_a_trailing_slash_too(client, catalog):
    made = make_result()

    for path in ("/api/v1/results/", f"/api/v1/results/{made.pk}/"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert ids(client.get("/api/v1/results/")) == [made.pk]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("gpu=nope", "There is no GPU 'nope' in the catalog."),
        ("model=sdxl", "There is no model 'sdxl' in the catalog."),
        ("gpu=gtx-1080&format=csv", "There is no GPU 'gtx-1080' in the catalog."),
    ],
)  # fmt: skip
def test_a_model_or_gpu_not_in_the_catalog_is_a_404_like_the_checks(client, catalog, query, detail):
    make_result()

    response = client.get(f"/api/v1/results?{query}")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": detail}


def test_test_model_results_are_listed_only_when_asked_for_by_name(client, catalog):
    real = make_result()
    tiny = make_result(model="klein-tiny-random", gpu="cpu")

    listed = ids(client.get("/api/v1/results"))
    exported = client.get("/api/v1/results?format=csv").content.decode().splitlines()
    asked = ids(client.get("/api/v1/results?model=klein-tiny-random"))

    assert listed == [real.pk]
    assert [line.split(",")[0] for line in exported[1:]] == [str(real.pk)]
    assert asked == [tiny.pk]


def test_a_csv_export_is_a_file_to_save_with_true_and_false(client, catalog):
    make_result(synthetic=True)

    response = client.get("/api/v1/results?format=csv")

    assert response["Content-Disposition"] == 'attachment; filename="klein-bench-results.csv"'
    row = next(csv.DictReader(io.StringIO(response.content.decode())))
    assert (row["synthetic"], row["is_outlier"], row["drives_display"]) == ("true", "false", "")


def test_answers_are_compressed_for_clients_that_accept_gzip(client, catalog):
    for _ in range(20):
        make_result()

    plain = client.get("/api/v1/results")
    packed = client.get("/api/v1/results", HTTP_ACCEPT_ENCODING="gzip")

    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 4


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            {"format": "xml"},
            {"format": "'xml' is not a format of this endpoint; use json or csv"},
        ),
        ({"format": ""}, {"format": "'' is not a format of this endpoint; use json or csv"}),
        (
            {"limit": "-1"},
            {
                "limit": "is not a parameter of this endpoint (page_size sets how many results "
                "a page holds); it reads created_after, created_before, cursor, diffusers, "
                "driver, format, gpu, height, model, offload, outcome, page_size, precision, "
                "preset, runtime, status, steps, synthetic, torch, width"
            },
        ),
    ],
)
def test_a_format_or_parameter_the_list_does_not_have_is_a_400_naming_it(client, query, fields):
    response = client.get("/api/v1/results", query)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_query",
        "detail": "Some query parameters are not valid; see the fields for why.",
        "fields": fields,
    }


def test_the_check_refuses_csv_and_a_preset_that_is_none(client, catalog):
    as_csv = client.get("/api/v1/checks/flux-2-klein-4b/rtx-4090", {"format": "csv"})
    preset = client.get("/api/v1/checks/flux-2-klein-4b/rtx-4090", {"preset": "int4"})

    assert (as_csv.status_code, as_csv.json()["fields"]) == (
        400,
        {"format": "'csv' is not a format of this endpoint; use json"},
    )
    assert (preset.status_code, preset.json()["fields"]) == (
        400,
        {
            "preset": "is not a configuration; use one of bf16-resident, bf16-model-offload, "
            "fp8-storage, fp8-compute"
        },
    )
