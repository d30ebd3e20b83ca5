"""POST /contribute: what is stored and answered when a signed result is accepted."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from klein_bench.contract import wire

from benchmarks.models import Configuration, Contributor, Gpu, Result, Submission, Summary
from tests.contribute_support import _fresh_rate_limits, contribute, key_fixture, post  # noqa: F401 - fixtures
from tests.factories import oom_payload, result_payload, runs, signed_body, signed_document

pytestmark = pytest.mark.django_db


def test_an_accepted_result_answers_201_with_its_links(client, catalog, key):
    response = contribute(client, key)

    result = Result.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "result_id": result.pk,
        "permalink": f"http://testserver/r/{result.pk}",
        "check_page": "http://testserver/check/flux-2-klein-4b/rtx-4090/",
        "status": "accepted",
        "model": "flux-2-klein-4b",
        "gpu": "rtx-4090",
        "configuration": {
            "runtime": "diffusers",
            "precision": "bf16",
            "offload": "none",
            "width": 1024,
            "height": 1024,
            "steps": 4,
            "preset": "bf16-resident",
        },
    }
    assert response["Location"] == f"http://testserver/r/{result.pk}"


def test_the_signed_body_is_stored_verbatim_with_its_hash(client, catalog, key):
    body = signed_body(result_payload(), key)

    post(client, body)

    submission = Submission.objects.get()
    assert submission.body.encode() == body
    assert submission.body_sha256 == hashlib.sha256(body).hexdigest()
    assert submission.status == "accepted"
    assert submission.response["result_id"] == submission.result.pk


def test_the_result_carries_the_payload_figures(client, catalog, key):
    contribute(client, key, result_payload(timings={"runs": runs(2.0, 2.2, 1.8, 2.1, 1.9)}))

    result = Result.objects.get()
    assert (result.n_runs, result.seconds_median) == (5, 2.0)
    assert result.seconds_p10 == pytest.approx(1.84)
    assert result.seconds_p90 == pytest.approx(2.16)
    assert result.denoising_seconds == pytest.approx(1.6)
    assert (result.peak_allocated_mb, result.peak_device_mb, result.peak_rss_mb) == (
        17950.0,
        20030.0,
        3120.0,
    )
    assert result.energy_joules_per_image == 780.0
    assert (result.driver_version, result.torch_version, result.diffusers_version) == (
        "580.95.05",
        "2.9.1+cu128",
        "0.42.1",
    )
    assert (result.protocol_version, result.agent_version, result.image_phash) == (
        "klein4b-t2i-v1",
        "0.1.0",
        "c3c3e1e1f0f87c3e",
    )
    assert result.environment["gpu"]["compute_capability"] == "8.9"
    assert result.telemetry["average_power_w"] == 390.0


def test_a_first_submission_binds_the_key_id_to_its_public_key(client, catalog, key):
    contribute(client, key)

    contributor = Contributor.objects.get()
    assert contributor.key_id == key.key_id
    assert contributor.public_key == key.public_bytes.hex()


def test_a_known_key_may_leave_out_its_public_key(client, catalog, key):
    contribute(client, key)
    document = signed_document(result_payload(), key)
    del document["public_key"]

    response = post(client, wire.encode(document))

    assert response.status_code == 201
    assert Result.objects.count() == 2
    assert Contributor.objects.count() == 1


def test_an_identical_retry_gets_the_original_answer_and_stores_nothing(client, catalog, key):
    body = signed_body(result_payload(), key)
    first = post(client, body)

    again = post(client, body)

    assert (again.status_code, again.content) == (201, first.content)
    assert Submission.objects.count() == Result.objects.count() == 1


def test_an_identical_retry_after_the_time_window_still_gets_the_original_answer(
    client, catalog, key, settings
):
    body = signed_body(result_payload(), key, created_at=datetime.now(UTC) - timedelta(seconds=200))
    first = post(client, body)
    settings.CONTRIBUTE_CLOCK_SKEW_SECONDS = 60

    again = post(client, body)

    assert (again.status_code, again.json()) == (201, first.json())
    assert Result.objects.count() == 1


def test_the_same_submission_id_with_another_body_is_a_conflict(client, catalog, key):
    submission_id = str(uuid.uuid4())
    contribute(client, key, submission_id=submission_id)

    response = contribute(
        client, key, result_payload(timings={"runs": runs(3, 3, 3)}), submission_id=submission_id
    )

    assert response.status_code == 409
    assert response.json() == {
        "error": "submission_conflict",
        "detail": "This submission_id was already used for a different document; "
        "use a new submission_id for a new result.",
        "fields": {"envelope.submission_id": "already used with a different body"},
    }
    assert Result.objects.count() == 1


def test_a_reused_nonce_is_a_replay(client, catalog, key):
    nonce = "ab" * 16
    contribute(client, key, nonce=nonce)

    response = contribute(client, key, nonce=nonce)

    assert response.status_code == 409
    assert response.json()["error"] == "nonce_reused"
    assert Result.objects.count() == 1


def test_the_same_nonce_from_another_key_is_fine(client, catalog, key):
    nonce = "cd" * 16
    contribute(client, key, nonce=nonce)

    response = contribute(client, wire.SigningKey.generate(), nonce=nonce)

    assert response.status_code == 201


def test_an_out_of_memory_result_records_its_stage(client, catalog, key):
    response = contribute(client, key, oom_payload("vae_decode"))

    result = Result.objects.get()
    assert response.status_code == 201
    assert (result.outcome, result.failed_stage, result.n_runs) == (
        "out_of_memory",
        "vae_decode",
        0,
    )
    assert result.seconds_median is None
    assert result.error_message == "CUDA out of memory."


def test_a_failure_without_a_stage_is_recorded_as_other(client, catalog, key):
    payload = result_payload(
        outcome={"status": "error", "stage": None, "message": "boom"}, timings={"runs": []}
    )

    contribute(client, key, payload)

    assert Result.objects.get().failed_stage == "other"


def test_an_unknown_gpu_name_becomes_a_flagged_gpu(client, catalog, key):
    payload = result_payload(
        gpu={"name": "NVIDIA RTX PRO 6000 Blackwell", "memory_total_mb": 97887}
    )

    response = contribute(client, key, payload)

    gpu = Gpu.objects.get(slug=response.json()["gpu"])
    assert gpu.is_flagged
    assert gpu.name == "NVIDIA RTX PRO 6000 Blackwell"


def test_a_cpu_result_is_filed_under_the_cpu(client, catalog, key):
    payload = result_payload(
        model="klein-tiny-random",
        configuration={"width": 64, "height": 64, "preset": None},
        gpu={"device": "cpu", "name": "", "memory_total_mb": None},
    )

    response = contribute(client, key, payload)

    assert response.status_code == 201
    assert (response.json()["model"], response.json()["gpu"]) == ("klein-tiny-random", "cpu")


def test_a_non_standard_configuration_gets_a_row_of_its_own(client, catalog, key):
    payload = result_payload(
        configuration={"offload": "sequential", "width": 768, "steps": 8, "preset": None}
    )

    response = contribute(client, key, payload)

    assert response.json()["configuration"]["preset"] == ""
    assert Configuration.objects.filter(offload="sequential", width=768, steps=8).count() == 1


def test_a_synthetic_result_is_marked_synthetic(client, catalog, key):
    contribute(client, key, result_payload(synthetic=True))

    assert Result.objects.get().synthetic is True


def test_accepting_a_result_queues_its_summary_update_on_commit(
    client, catalog, key, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        contribute(client, key)
    assert not Summary.objects.exists()

    for callback in callbacks:
        callback()

    summary = Summary.objects.get()
    assert (summary.model.slug, summary.gpu.slug, summary.n_results, summary.verdict) == (
        "flux-2-klein-4b",
        "rtx-4090",
        1,
        "runs",
    )


def test_a_thumbnail_is_stored_as_png_bytes(client, catalog, key):
    import base64

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    payload = result_payload(evidence={"thumbnail_png": base64.b64encode(png).decode()})

    contribute(client, key, payload)

    assert bytes(Result.objects.get().thumbnail_png) == png


def test_a_result_is_accepted_while_the_broker_is_down_and_reconcile_catches_up(
    client, catalog, key, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from benchmarks import tasks
    from benchmarks.services.aggregation import reconcile

    with (
        mock.patch.object(tasks.update_summary, "delay", side_effect=OperationalError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = contribute(client, key)

    assert response.status_code == 201
    assert not Summary.objects.exists()
    assert reconcile() == 1
    assert Summary.objects.get().n_results == 1
