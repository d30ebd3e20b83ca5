"""/compare/<model>/?gpu=a&gpu=b: cards side by side, measured where measured, estimated
(and labelled so) where not."""

from __future__ import annotations

import pytest

from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.pages_data import fill_rtx_4090, fill_rtx_5070, visible_text

pytestmark = pytest.mark.django_db

COMPARE = "/compare/flux-2-klein-4b/"


def test_cards_sit_side_by_side_with_verdicts_and_each_configuration(client, catalog):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    response = client.get(COMPARE, {"gpu": ["rtx-5070", "rtx-4090", "rtx-4080"]})

    assert response.status_code == 200
    text = visible_text(response)
    cards = text[text.index("Compare RTX 5070") + 8 :]
    assert cards.startswith(
        "RTX 5070 12 GiB · Blackwell · 672 GB/s runs Runs fully on the GPU in FP8 weights, BF16 "
        "compute (ComfyUI) at 1024x1024: median 2.4 s per image, 8.5 GiB peak of the card's "
        "12 GiB, from 6 results by 5 contributors. fp8-storage (ComfyUI) runs 2.4 s per image, "
        "8.5 GiB peak (6 results) bf16-model-offload (diffusers) needs offload 6.7 s per image, "
        "9.7 GiB peak (3 results) bf16-resident (diffusers) does not fit 3 tried: 3 out of "
        "memory in model load. fp8-storage (diffusers) random weights only: 2.9 s per image, "
        "8.9 GiB peak fp8-compute (diffusers) expected not to fit estimate about 13.8 GiB "
        "(11.0-16.5 GiB) at the peak: more than the card's 12 GiB "
    ), "a configuration run with random weights on the card needs no estimate"
    assert (
        "RTX 4090 24 GiB · Ada Lovelace · 1008 GB/s runs Runs fully on the GPU in BF16 (diffusers)"
    ) in cards
    assert (
        "RTX 4080 16 GiB · Ada Lovelace · 717 GB/s expected to fit estimate Estimate: "
        "expected to fit, fully on the GPU, in fp8-storage (ComfyUI)"
    ) in cards
    assert (
        "bf16-resident (diffusers) expected not to fit estimate about 19.2 GiB (18.6-19.7 GiB) "
        "at the peak: more than the card's 16 GiB"
    ) in cards
    page = response.content.decode()
    assert '<option value="rtx-4080" selected>RTX 4080 16 GiB</option>' in page


def test_unknown_cards_are_named_and_left_out(client, catalog):
    response = client.get(COMPARE, {"gpu": ["rtx-4090", "gtx-1080"]})

    text = visible_text(response)
    assert "Not in the catalog, so left out: “gtx-1080”." in text
    assert "RTX 4090 24 GiB" in text


def test_without_cards_the_page_asks_for_some(client, catalog):
    text = visible_text(client.get(COMPARE))

    assert text.endswith("Pick up to four cards above to see them side by side.")


def test_an_unknown_model_is_a_404(client, catalog):
    assert client.get("/compare/sdxl/", {"gpu": "rtx-4090"}).status_code == 404
