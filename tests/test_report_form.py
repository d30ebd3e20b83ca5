"""/contribute/report: a form for people who will not run the agent. Every field checked
with a clear message, CSRF, a honeypot, a minimum fill time, a per-address limit; stored
for moderation, shown apart once approved, never in a median."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client

from benchmarks import reports
from benchmarks.models import Gpu, ImageModel, SelfReport, Summary
from benchmarks.services import moderation
from tests.contribute_support import _fresh_rate_limits  # noqa: F401
from tests.pages_data import fill_rtx_4090, visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _generous_limit(settings):
    settings.REPORT_RATE_PER_IP = "1000/hour"
    cache.clear()


def filled(**changes) -> dict:
    data = {
        "model": ImageModel.objects.get(slug="flux-2-klein-4b").pk,
        "gpu": Gpu.objects.get(slug="rtx-4090").pk,
        "runtime": "comfyui",
        "runtime_version": "ComfyUI 0.3.66",
        "settings": "FP8 file, no offload, 1024x1024, 4 steps",
        "outcome": "ran",
        "seconds_per_image": "1.9",
        "peak_vram_gb": "13.2",
        "vram_reading": "task-manager",
        "notes": "Windows 11, driver 581.57",
        "link": "https://example.org/my-post",
        "website": "",
        "started": reports.form_stamp(time.time() - 30),
    }
    data.update(changes)
    return data


def errors_of(response) -> str:
    return visible_text(response)


def test_the_form_says_a_signed_run_counts_for_more_and_shows_the_command(client, catalog):
    response = client.get("/contribute/report")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    text = visible_text(response)
    assert (
        "A signed agent run counts for more: it is measured the same way on every machine, its "
        "figures go into the medians, and anyone can check its signature. If you can, run this "
        "instead (how to install it): klein-bench submit --preset bf16-resident --server "
        "http://testserver"
    ) in text
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
    assert "Report your setup by hand" in visible_text(client.get("/contribute"))


def test_a_filled_in_report_is_stored_for_moderation_and_thanked_for(client, catalog):
    response = client.post("/contribute/report", filled())
    assert response.status_code == 303
    assert response["Location"] == "/contribute/report?sent=1"
    stored = SelfReport.objects.get()
    assert (stored.status, stored.seconds_per_image, stored.peak_vram_gb, stored.vram_reading) == (
        "pending",
        1.9,
        13.2,
        "task-manager",
    )
    thanks = visible_text(client.get(response["Location"]))
    assert "Thank you: your report is stored. A moderator reviews it first" in thanks


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"model": ""}, "Model", "Choose the model you ran."),
        ({"gpu": "99999"}, "Card", "Choose a card from the list."),
        (
            {"runtime": "a1111"},
            "Runtime",
            "Select a valid choice. a1111 is not one of the available choices.",
        ),
        (
            {"runtime_version": ""},
            "Runtime version",
            "Give the runtime's version, e.g. ComfyUI 0.3.66.",
        ),
        (
            {"settings": "x" * 201},
            "Settings",
            "Ensure this value has at most 200 characters (it has 201).",
        ),
        (
            {"seconds_per_image": ""},
            "Seconds per image",
            "Give the seconds per image of the run that worked.",
        ),
        ({"seconds_per_image": "fast"}, "Seconds per image", "Enter a number."),
        (
            {"seconds_per_image": "0"},
            "Seconds per image",
            "Ensure this value is greater than or equal to 0.05.",
        ),
        (
            {"outcome": "out_of_memory"},
            "Seconds per image",
            "Leave the seconds empty for a run that failed.",
        ),
        (
            {"peak_vram_gb": "30"},
            "Peak VRAM, GB",
            "30 GB is more than the NVIDIA GeForce RTX 4090's 24 GB: give the card's own "
            "memory figure (Task Manager's dedicated GPU memory), not shared memory.",
        ),
        ({"vram_reading": ""}, "How you read the VRAM", "Say how you read the VRAM figure."),
        (
            {"link": "javascript:alert(1)"},
            "Link (optional)",
            "Give a web address starting with https:// or http://, or leave it empty.",
        ),
        ({"notes": "a\x00b"}, "Notes (optional)", "Null characters are not allowed."),
    ],
)
def test_every_field_is_checked_with_a_clear_message_and_nothing_is_stored(
    client, catalog, changes, field, message
):
    response = client.post("/contribute/report", filled(**changes))
    assert response.status_code == 400
    text = visible_text(response)
    assert "The report was not stored: fix the fields marked below and send it again." in text
    assert f"{field}" in text and message in text
    assert not SelfReport.objects.exists()


def test_the_honeypot_and_the_minimum_fill_time_stop_programs(client, catalog):
    trapped = client.post("/contribute/report", filled(website="http://spam.example"))
    assert trapped.status_code == 400
    assert "This field must stay empty: it is there to catch programs that fill in forms." in (
        visible_text(trapped)
    )
    hasty = client.post("/contribute/report", filled(started=reports.form_stamp(time.time() - 1)))
    assert hasty.status_code == 400
    assert "sooner than a person fills it in; check the figures and send it again." in (
        visible_text(hasty)
    )
    forged = client.post("/contribute/report", filled(started="1700000000.0"))
    assert "The form was changed; open it again and fill it in." in visible_text(forged)
    assert not SelfReport.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(catalog):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/contribute/report", filled()).status_code == 403
    assert not SelfReport.objects.exists()


def test_each_address_may_send_a_few_reports_an_hour(client, catalog, settings):
    settings.REPORT_RATE_PER_IP = "2/hour"
    assert [client.post("/contribute/report", filled()).status_code for _ in range(2)] == [303, 303]
    refused = client.post("/contribute/report", filled())
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many reports from your address: wait" in visible_text(refused)
    assert SelfReport.objects.count() == 2


def test_an_approved_report_is_shown_apart_and_never_moves_a_median(client, catalog):
    fill_rtx_4090(client)
    before = client.get("/api/v1/checks/flux-2-klein-4b/rtx-4090").json()
    client.post("/contribute/report", filled(seconds_per_image="40", notes="Very slow"))
    client.post("/contribute/report", filled(seconds_per_image="50", notes="Never shown"))
    first, second = SelfReport.objects.order_by("id")
    page = "/check/flux-2-klein-4b/rtx-4090/"
    assert "What people report" not in visible_text(client.get(page))

    assert moderation.set_report_status([first], "approved", "plausible") == 1
    moderation.set_report_status([second], "rejected", "spam")
    text = visible_text(client.get(page))
    assert (
        "What people report Self-reported: figures people typed into the report form, read with "
        "their own tools and checked by a moderator for sense, not measured by the agent. They "
        "never enter the medians or verdicts above."
    ) in text
    assert (
        "self-reported ComfyUI ComfyUI 0.3.66 FP8 file, no offload, 1024x1024, 4 steps it ran "
        "40 s 13.2 GB (Windows Task Manager (dedicated GPU memory)) Very slow link" in text
    )
    assert "Never shown" not in text
    after = client.get("/api/v1/checks/flux-2-klein-4b/rtx-4090").json()
    assert after["summaries"] == before["summaries"] and after["verdict"] == before["verdict"]
    assert Summary.objects.get().seconds_median == before["summaries"][0]["seconds_median"]


def test_moderators_approve_reports_in_the_admin(admin_client, client, catalog):
    client.post("/contribute/report", filled())
    report = SelfReport.objects.get()
    listing = admin_client.get("/admin/benchmarks/selfreport/")
    assert listing.status_code == 200 and "awaiting moderation" in listing.content.decode()
    response = admin_client.post(
        "/admin/benchmarks/selfreport/",
        {"action": "report_approved", "_selected_action": [report.pk], "apply": "1", "reason": ""},
    )
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.status == "approved"
