"""/check/<model>/: every GPU measured for the model, fastest first, with a bar chart."""

from __future__ import annotations

import re

import pytest

from benchmarks.models import ImageModel
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.pages_data import fill_rtx_4090, fill_rtx_5070, fill_tiny_on_cpu, visible_text

pytestmark = pytest.mark.django_db


def test_cards_are_ranked_by_the_configuration_their_users_should_run_with_a_bar_chart(
    client, catalog
):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    response = client.get("/check/flux-2-klein-4b/")

    assert response.status_code == 200
    text = visible_text(response)
    assert (
        "Fastest first [plot: Bar chart of median seconds per image for FLUX.2 [klein] 4B on 2 "
        "cards, each in the configuration its users should run; fastest: RTX 4090 in "
        "bf16-resident (diffusers) at 1.9 s per image. The table below lists every value.]"
    ) in text
    assert (
        "Rank GPU Configuration Verdict Median s/image p10-p90 Peak VRAM Results Contributors "
        "1 RTX 4090 24 GiB bf16-resident (diffusers) runs 1.9 s 1.9 s - 2.0 s 19.2 GiB 3 3 "
        "2 RTX 5070 12 GiB fp8-storage (ComfyUI) (+2 more) runs 2.4 s 2.3 s - 2.6 s 8.5 GiB 6 5 "
        "Compare cards side by side · Every result in a table"
    ) in text
    assert (
        "Synthetic runs (random weights) of FLUX.2 [klein] 4B GPU Configuration Verdict Median "
        "s/image Peak VRAM Results RTX 5070 12 GiB fp8-storage (diffusers) runs random weights "
        "2.9 s "
        "8.9 GiB 1"
    ) in text
    assert (
        "Not measured yet Nobody has submitted a result for these cards at the model's standard "
        "1024x1024, 4 steps. Where the model's architecture allows, each has an estimate (not a "
        "measurement), and its page shows the card's specifications and what the most similar "
        "measured cards do. RTX 3090 24 GiB expected to fit estimate in bf16-resident "
        "(diffusers), about 4.4 s per image RTX 4070 12 GiB expected to fit estimate in "
        "fp8-storage (ComfyUI), about "
    ) in text
    assert text.endswith("H200 141GB expected to fit estimate in bf16-resident (diffusers), "
                         "about 0.33 s per image CPU (no GPU) not measured")  # fmt: skip
    # Drawn wide and narrow; labels are the cards' short names, which fit.
    assert response.content.count(b"<svg ") == 2
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", response.content.decode())
    assert {"RTX 4090", "RTX 5070"} <= set(labels)


def test_the_configuration_filter_ranks_cards_in_that_preset(client, catalog):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    text = visible_text(client.get("/check/flux-2-klein-4b/", {"preset": "bf16-resident"}))

    assert "1 RTX 4090 24 GiB bf16-resident (diffusers) runs 1.9 s" in text
    assert (
        "Cards where it did not run in bf16-resident RTX 5070 12 GiB, bf16-resident (diffusers): "
        "does not fit 3 tried: 3 out of memory in model load."
    ) in text
    assert "2 RTX 5070" not in text
    # The other cards in that configuration only: its estimate, never another's figures.
    assert (
        "RTX 3090 24 GiB expected to fit estimate in bf16-resident (diffusers), about 4.4 s per "
        "image RTX 4070 12 GiB expected not to fit estimate in bf16-resident (diffusers) "
    ) in text


def test_a_model_nobody_measured_says_so_and_whether_the_agent_can_measure_it(client, catalog):
    # A catalog row the agent's registry does not have (one an older catalog left behind).
    ImageModel.objects.create(
        slug="stable-diffusion-xl", name="SDXL", default_steps=30, default_guidance=5.0
    )
    klein = visible_text(client.get("/check/flux-2-klein-4b/"))
    base = visible_text(client.get("/check/flux-2-klein-base-4b/"))
    other = visible_text(client.get("/check/stable-diffusion-xl/"))

    assert "No measurements of FLUX.2 [klein] 4B yet. Be the first: contribute a result." in klein
    assert "No measurements of FLUX.2 [klein] Base 4B yet. Be the first: contribute a result." in (
        base
    )
    assert (
        "No measurements of SDXL yet. The klein-bench agent cannot benchmark it yet; results "
        "will come with a newer agent."
    ) in other


def test_the_test_model_page_works_when_addressed_directly(client, catalog):
    fill_tiny_on_cpu(client)

    text = visible_text(client.get("/check/klein-tiny-random/"))

    assert "This is a test model: a tiny random network" in text
    assert "1 CPU (no GPU) bf16-resident (diffusers, 64x64, 4 steps)" not in text
    assert "1 CPU (no GPU) bf16-resident (diffusers) runs 0.50 s" in text
    assert "estimate" not in text, "estimates describe real models only"


def test_an_unknown_model_is_a_404_with_suggestions(client, catalog):
    response = client.get("/check/klein-4b/")

    assert response.status_code == 404
    assert visible_text(response).startswith(
        "No such model We have no model called “klein-4b” in the catalog. Did you mean"
    )
    assert b'<a href="/check/flux-2-klein-4b/">FLUX.2 [klein] 4B</a>' in response.content
