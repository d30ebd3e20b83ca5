"""/check/<model>/: every GPU measured for the model, fastest first, with a bar chart."""

from __future__ import annotations

import pytest

from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.pages_data import fill_rtx_4090, fill_rtx_5070, fill_tiny_on_cpu, visible_text

pytestmark = pytest.mark.django_db


def test_cards_and_configurations_are_ranked_by_seconds_per_image_with_a_bar_chart(client, catalog):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    response = client.get("/check/flux-2-klein-4b/")

    assert response.status_code == 200
    text = visible_text(response)
    assert (
        "Fastest first [plot: Bar chart of median seconds per image for FLUX.2 [klein] 4B on 3 "
        "cards and configurations; fastest: RTX 4090 in bf16-resident (diffusers) at 1.9 s per "
        "image. The table below lists every value.]"
    ) in text
    assert (
        "Rank GPU Configuration Verdict Median s/image p10-p90 Peak VRAM Results Contributors "
        "1 RTX 4090 bf16-resident (diffusers) runs 1.9 s 1.9 s - 2.0 s 19.2 GB 3 3 "
        "2 RTX 5070 fp8-storage (ComfyUI) runs 2.4 s 2.3 s - 2.6 s 8.5 GB 6 5 "
        "3 RTX 5070 bf16-model-offload (diffusers) needs offload 6.7 s 6.5 s - 6.9 s 9.7 GB 3 3"
    ) in text
    assert (
        "Configurations that did not run RTX 5070, bf16-resident (diffusers): does not fit "
        "3 of 3 bf16-resident results ran out of memory during model load."
    ) in text
    assert (
        "Synthetic runs (random weights) of FLUX.2 [klein] 4B GPU Configuration Verdict Median "
        "s/image Peak VRAM Results RTX 5070 fp8-storage (diffusers) runs estimate 2.9 s 8.9 GB 1"
    ) in text
    assert text.endswith(
        "Not measured yet Nobody has submitted a result for these cards. Each page shows the "
        "card's specifications and what the most similar measured cards do. RTX 3090 RTX 4070 "
        "RTX 4070 Ti RTX 4080 RTX 5060 Ti 16 GB RTX 5070 Ti RTX 5080 RTX 5090 H100 80GB "
        "H200 141GB CPU (no GPU)"
    )
    assert response.content.count(b"<svg ") == 1


def test_a_model_nobody_measured_says_so_and_whether_the_agent_can_measure_it(client, catalog):
    klein = visible_text(client.get("/check/flux-2-klein-4b/"))
    base = visible_text(client.get("/check/flux-2-klein-base-4b/"))

    assert "No measurements of FLUX.2 [klein] 4B yet. Be the first: contribute a result." in klein
    assert (
        "No measurements of FLUX.2 [klein] Base 4B yet. The klein-bench agent cannot benchmark "
        "it yet; results will come with a newer agent."
    ) in base


def test_the_test_model_page_works_when_addressed_directly(client, catalog):
    fill_tiny_on_cpu(client)

    text = visible_text(client.get("/check/klein-tiny-random/"))

    assert "This is a test model: a tiny random network" in text
    assert "1 CPU (no GPU) bf16-resident (diffusers, 64x64, 4 steps)" not in text
    assert "1 CPU (no GPU) bf16-resident (diffusers) runs 0.50 s" in text


def test_an_unknown_model_is_a_404_with_suggestions(client, catalog):
    response = client.get("/check/klein-4b/")

    assert response.status_code == 404
    assert visible_text(response).startswith(
        "No such model We have no model called “klein-4b” in the catalog. Did you mean"
    )
    assert b'<a href="/check/flux-2-klein-4b/">FLUX.2 [klein] 4B</a>' in response.content
