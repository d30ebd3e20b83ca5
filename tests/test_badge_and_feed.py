"""The embeddable badge (badge.svg), the "embed this" snippet and the Atom feed per pair."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from klein_bench.contract import wire

from tests.contribute_support import _fresh_rate_limits, contribute  # noqa: F401
from tests.factories import result_payload, runs
from tests.pages_data import fill_rtx_5070, visible_text

pytestmark = pytest.mark.django_db
SVG_NS = "{http://www.w3.org/2000/svg}"
ATOM = "{http://www.w3.org/2005/Atom}"


def badge_texts(response) -> tuple[list[str], dict]:
    root = ET.fromstring(response.content)
    return [t.text for t in root.iter(f"{SVG_NS}text")], root.attrib


def test_a_measured_pair_badge_shows_speed_memory_and_runs(client, catalog):
    fill_rtx_5070(client)
    response = client.get("/check/flux-2-klein-4b/rtx-5070/badge.svg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "public" in response["Cache-Control"] and "max-age=60" in response["Cache-Control"]
    texts, attributes = badge_texts(response)
    assert texts == ["RTX 5070", "2.4 s · 8.5 GiB · 6 runs"]
    assert (attributes["width"], attributes["height"]) == ("228", "20")
    assert attributes["aria-label"].startswith(
        "FLUX.2 [klein] 4B: Runs fully on the GPU in FP8 weights, BF16 compute (ComfyUI)"
    )
    offload = client.get("/check/flux-2-klein-4b/rtx-5070/badge.svg?preset=bf16-model-offload")
    assert badge_texts(offload)[0] == ["RTX 5070", "6.7 s · 9.7 GiB · 3 runs"]
    resident = client.get("/check/flux-2-klein-4b/rtx-5070/badge.svg?preset=bf16-resident")
    assert badge_texts(resident)[0] == ["RTX 5070", "does not fit"]


def test_an_unmeasured_pair_badge_is_an_estimate_styled_as_one(client, catalog):
    fill_rtx_5070(client)
    response = client.get("/check/flux-2-klein-4b/rtx-4070/badge.svg")
    texts, _ = badge_texts(response)
    assert texts[0] == "RTX 4070" and texts[1].startswith("estimate ~")
    assert 'stroke-dasharray="3 2"' in response.content.decode()


def test_a_pair_nothing_can_be_said_of_is_unknown_and_a_missing_one_is_404(client, catalog):
    texts, _ = badge_texts(client.get("/check/klein-tiny-random/cpu/badge.svg"))
    assert texts == ["CPU (no GPU)", "unknown"]
    missing = client.get("/check/flux-2-klein-4b/rtx-9999/badge.svg")
    assert missing.status_code == 404
    assert badge_texts(missing)[0] == ["klein-bench", "not in the catalog"]


def test_the_badge_follows_the_data(client, catalog):
    assert badge_texts(client.get("/check/flux-2-klein-4b/rtx-4090/badge.svg"))[0][1].startswith(
        "estimate"
    )
    for _ in range(2):
        contribute(client, wire.SigningKey.generate(), result_payload())
    from benchmarks.services.aggregation import reconcile

    reconcile()
    texts, _ = badge_texts(client.get("/check/flux-2-klein-4b/rtx-4090/badge.svg"))
    assert texts == ["RTX 4090", "2.0 s · 19.2 GiB · 2 runs"]


def test_each_check_page_offers_the_badge_as_markdown_and_html(client, catalog):
    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-5070/"))
    assert (
        "Embed this A live badge for a recipe or tutorial page, always showing this card's "
        "current figures:"
    ) in text
    assert (
        "Markdown [![FLUX.2 [klein] 4B on the RTX 5070: klein-bench]"
        "(http://testserver/check/flux-2-klein-4b/rtx-5070/badge.svg)]"
        "(http://testserver/check/flux-2-klein-4b/rtx-5070/)"
    ) in text
    assert (
        'HTML <a href="http://testserver/check/flux-2-klein-4b/rtx-5070/"><img '
        'src="http://testserver/check/flux-2-klein-4b/rtx-5070/badge.svg" alt="FLUX.2 '
        '[klein] 4B on the RTX 5070: klein-bench" height="20"></a>'
    ) in text


def test_the_atom_feed_lists_new_results_of_the_pair(client, catalog):
    key = wire.SigningKey.generate()
    first = contribute(client, key, result_payload()).json()["result_id"]
    capped = result_payload(
        timings={"runs": runs(3.0, 3.0, 3.0)}, telemetry={"power_limit_share": 0.6, "capped": True}
    )
    second = contribute(client, key, capped).json()["result_id"]
    response = client.get("/check/flux-2-klein-4b/rtx-4090/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.find(f"{ATOM}title").text == (
        "klein-bench: FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 4090"
    )
    entries = root.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == [
        f"#{second}: 3.0 s per image, bf16-resident (diffusers)",
        f"#{first}: 2.0 s per image, bf16-resident (diffusers)",
    ]
    assert entries[0].find(f"{ATOM}id").text == f"http://testserver/r/{second}"
    assert "Kept apart from the medians: other settings: power limit at 60%" in (
        entries[0].find(f"{ATOM}summary").text
    )
    page = client.get("/check/flux-2-klein-4b/rtx-4090/").content.decode()
    assert '<link rel="alternate" type="application/atom+xml"' in page
    assert Client().get("/check/flux-2-klein-4b/nope/feed.atom").status_code == 404
