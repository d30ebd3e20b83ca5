"""Moderators reject, flag and restore results and revoke keys in the admin, with a reason."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from benchmarks.models import Contributor, Gpu, Result, Submission, Summary
from benchmarks.services import moderation
from benchmarks.services.aggregation import update_summary
from tests.factories import make_result

pytestmark = pytest.mark.django_db


@pytest.fixture
def results(catalog) -> list[Result]:
    made = [make_result(seconds=s) for s in (2.0, 3.0, 4.0)]
    update_summary(made[0].model_id, made[0].gpu_id, made[0].configuration_id, False)
    return made


def run_action(admin_client, model: str, action: str, ids: list[int], **data):
    return admin_client.post(
        f"/admin/benchmarks/{model}/",
        {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], **data},
    )


def test_the_admin_is_behind_a_login(client):
    response = client.get("/admin/benchmarks/result/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_rejecting_asks_for_a_reason_first(admin_client, results):
    response = run_action(admin_client, "result", "mark_rejected", [results[0].pk])

    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert Submission.objects.filter(status="rejected").count() == 0


def test_rejecting_without_a_reason_changes_nothing(admin_client, results):
    response = run_action(admin_client, "result", "mark_rejected", [results[0].pk], apply="1")

    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert Submission.objects.filter(status="rejected").count() == 0


def test_rejecting_with_a_reason_takes_the_result_out_of_its_summary(
    admin_client, results, django_capture_on_commit_callbacks
):
    before = results[2].changed_at

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(
            admin_client, "result", "mark_rejected", [results[2].pk],
            apply="1", reason="Timings impossible for this card",
        )  # fmt: skip

    assert response.status_code == 302
    submission = Submission.objects.get(result=results[2])
    assert (submission.status, submission.moderation_reason) == (
        "rejected",
        "Timings impossible for this card",
    )
    assert submission.moderated_at is not None
    results[2].refresh_from_db()
    assert results[2].changed_at > before
    summary = Summary.objects.get()
    assert (summary.n_results, summary.seconds_median) == (2, 2.5)


def test_flagging_a_submission_takes_it_out_of_the_aggregates(
    admin_client, results, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "submission", "mark_flagged", [results[0].submission_id],
                   apply="1", reason="Same GPU uuid as three other keys")  # fmt: skip

    assert Submission.objects.get(result=results[0]).status == "flagged"
    assert Summary.objects.get().n_results == 2


def test_restoring_a_rejected_result_brings_it_back(results, django_capture_on_commit_callbacks):
    submissions = Submission.objects.filter(result=results[0])
    with django_capture_on_commit_callbacks(execute=True):
        moderation.set_status(submissions, "rejected", "mistake")
    with django_capture_on_commit_callbacks(execute=True):
        assert moderation.set_status(submissions, "accepted", "was fine after all") == 1

    assert Summary.objects.get().n_results == 3


def test_revoking_a_key_records_the_reason_and_can_reject_its_results(
    admin_client, results, django_capture_on_commit_callbacks
):
    contributor = results[0].contributor

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(
            admin_client, "contributor", "revoke_keys", [contributor.pk],
            apply="1", reason="Fabricated results", reject_results="on",
        )  # fmt: skip

    assert response.status_code == 302
    contributor.refresh_from_db()
    assert contributor.is_revoked
    assert contributor.revoked_reason == "Fabricated results"
    assert Submission.objects.get(result=results[0]).status == "rejected"
    assert Summary.objects.get().n_results == 2


def test_revoking_a_key_alone_leaves_its_results(admin_client, results):
    run_action(admin_client, "contributor", "revoke_keys", [results[0].contributor_id],
               apply="1", reason="Lost laptop")  # fmt: skip

    assert Contributor.objects.get(pk=results[0].contributor_id).is_revoked
    assert Submission.objects.get(result=results[0]).status == "accepted"


def test_a_submission_page_shows_the_signed_document_read_only(admin_client, results):
    submission = results[0].submission

    response = admin_client.get(f"/admin/benchmarks/submission/{submission.pk}/change/")

    assert response.status_code == 200
    assert submission.body_sha256.encode() in response.content
    assert b"Signed document (verbatim)" in response.content
    assert b"&quot;test&quot;" in response.content
    assert b'name="_save"' not in response.content


def test_records_cannot_be_added_or_deleted_in_the_admin(admin_client, results):
    assert admin_client.get("/admin/benchmarks/result/add/").status_code == 403
    assert admin_client.get("/admin/benchmarks/submission/add/").status_code == 403
    response = admin_client.get(f"/admin/benchmarks/result/{results[0].pk}/delete/")
    assert response.status_code == 403


def test_every_admin_list_renders(admin_client, results):
    for model in ("contributor", "submission", "result", "summary", "imagemodel", "gpu",
                  "configuration", "publishedclaim"):  # fmt: skip
        assert admin_client.get(f"/admin/benchmarks/{model}/").status_code == 200, model
    assert admin_client.get(f"/admin/benchmarks/result/{results[0].pk}/change/").status_code == 200


def test_approving_a_flagged_gpu_lists_it(admin_client, catalog):
    gpu = Gpu.objects.create(slug="mystery", name="Mystery", is_flagged=True)

    run_action(admin_client, "gpu", "approve", [gpu.pk])

    gpu.refresh_from_db()
    assert not gpu.is_flagged


def test_the_admin_says_whose_it_is(client):
    page = client.get("/admin/login/").content.decode()

    assert "<title>Log in | klein-bench admin</title>" in page
    assert "klein-bench moderation" in page
    assert "Django administration" not in page


def test_the_results_list_has_short_columns_with_memory_in_gib(admin_client, results):
    page = admin_client.get("/admin/benchmarks/result/").content.decode()

    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert headers == ["id", "model_slug", "gpu_slug", "config", "outcome", "seconds", "peak",
                       "status", "is_outlier", "synthetic", "created_at"]  # fmt: skip
    assert '<td class="field-config">bf16-resident, diffusers</td>' in page
    assert '<td class="field-seconds">2.00</td>' in page
