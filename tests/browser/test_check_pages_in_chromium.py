"""The check pages in headless Chromium with JavaScript off, filled by real signed
submissions to POST /contribute: what a person sees, and that the plots are drawn."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.pages_data import fill_rtx_4090, fill_rtx_5070, fill_tiny_on_cpu, withdraw

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def visible_text(page) -> str:
    return " ".join(page.locator("main").inner_text().split())


def assert_plots_drawn(page, expected: int) -> None:
    # Each plot is drawn wide and narrow; at this width the wide drawing shows.
    assert page.locator("svg.plot").count() == 2 * expected
    plots = page.locator("svg.plot-wide")
    assert plots.count() == expected
    for index in range(expected):
        plot = plots.nth(index)
        box = plot.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50, box
        # Drawn marks, not an empty frame: axes, bars, dots and text.
        assert plot.locator("path").count() > 10
        assert plot.get_attribute("role") == "img"
        assert (plot.locator("title").text_content() or "").strip()


def test_the_rtx_5070_page_answers_whether_how_fast_and_with_how_much_memory(
    site, page, screenshot
):
    posted = fill_rtx_5070(Client())

    page.goto(f"{site.url}/check/flux-2-klein-4b/rtx-5070/")

    assert page.title() == "FLUX.2 [klein] 4B on the RTX 5070: runs · klein-bench"
    answer = " ".join(page.locator("section.answer").inner_text().split())
    assert answer.startswith(
        "runs Runs fully on the GPU in FP8 weights, BF16 compute (ComfyUI) at 1024x1024: median "
        "2.4 s per image, "
        "8.5 GiB peak of the card's 12 GiB, from 6 results by 5 contributors. How sure we "
        "are: high. 6 results by 5 contributors, and they agree: the middle 80% of results "
        "lie between 2.3 s and 2.6 s per image."
    )
    assert (
        "needs offload BF16 with model CPU offload (diffusers) at 1024x1024, 4 steps: median "
        in answer
    )
    assert "3 tried: 3 out of memory in model load." in answer
    # The answer comes before everything else in the page.
    first = page.locator("main section").first
    assert "answer" in (first.get_attribute("class") or "")

    text = visible_text(page)
    assert "bf16-model-offload (diffusers): 3 tried: 1 out of memory in VAE decode." in text
    assert "Runs with random weights" in text
    assert "klein-bench submit --model flux-2-klein-4b --preset bf16-resident" in text
    assert page.get_by_role("link", name="/api/v1/checks/flux-2-klein-4b/rtx-5070").count() == 1
    # Speed distribution, memory against capacity, and the trend across drivers.
    assert_plots_drawn(page, expected=3)
    assert (
        page.locator("svg.plot-wide text", has_text="usable with a display: 10.5 GiB").count() == 1
    )
    screenshot("pair-rtx-5070")

    newest_measurement = posted.ids["resident-oom-2"]
    page.get_by_role("link", name=f"#{newest_measurement}", exact=True).click()
    assert page.url == f"{site.url}/r/{newest_measurement}"
    assert page.locator("h1").inner_text() == (
        f"Result #{newest_measurement}: FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 5070"
    )
    assert "Out of memory during model load" in visible_text(page)
    screenshot("result-out-of-memory")


def test_the_index_shows_each_card_s_verdict_in_words_and_filters_by_preset(site, page, screenshot):
    client = Client()
    fill_rtx_5070(client)
    fill_rtx_4090(client)
    fill_tiny_on_cpu(client)

    page.goto(f"{site.url}/check/")

    rows = {
        " ".join(row.locator("th").inner_text().split()): " ".join(
            row.locator("td").first.inner_text().split()
        )
        for row in page.locator("table.matrix tbody tr:not(.family)").all()
    }
    assert rows["RTX 4090 24 GiB"] == "runs 1.9 s · 19.2 GiB bf16-resident (diffusers)"
    assert rows["RTX 5070 12 GiB"] == "runs 2.4 s · 8.5 GiB fp8-storage (ComfyUI)"
    assert rows["RTX 5080 16 GiB"].startswith("expected to fit estimate in ")
    assert rows["RTX 5080 16 GiB"].endswith(" measure it")
    assert "Klein tiny random" not in visible_text(page)
    screenshot("index")

    # The filter is a plain GET form: it works with JavaScript off.
    page.select_option("#preset", "bf16-resident")
    page.get_by_role("button", name="Show").click()
    assert page.url == f"{site.url}/check/?preset=bf16-resident"
    cell = page.get_by_role(
        "link",
        name="FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 5070 in bf16-resident: does not fit",
    )
    assert cell.count() == 1
    screenshot("index-bf16-resident")


def test_a_card_nobody_measured_leads_with_its_estimate_and_shows_the_nearest_measured_cards(
    site, page, screenshot
):
    fill_rtx_5070(Client())

    page.goto(f"{site.url}/check/flux-2-klein-4b/rtx-5070-ti/")

    text = visible_text(page)
    assert "4 steps expected to fit estimate Estimate: expected to fit" in text
    assert "Nobody has submitted a result for FLUX.2 [klein] 4B on this card yet" in text
    assert "Memory 16 GiB Memory bandwidth 896 GB/s" in text
    assert "klein-bench submit --model flux-2-klein-4b --preset fp8-storage" in text
    nearest = " ".join(page.locator("ul.nearest").inner_text().split())
    assert nearest.startswith("runs NVIDIA GeForce RTX 5070 (12 GiB, 25% less memory; 672 GB/s,")
    assert page.locator("svg.plot").count() == 0
    screenshot("pair-unknown-rtx-5070-ti")


def test_a_slug_that_is_not_in_the_catalog_gets_a_404_with_suggestions(site, page, screenshot):
    response = page.goto(f"{site.url}/check/flux-2-klein-4b/rtx5070/")

    assert response.status == 404
    assert page.locator("h1").inner_text() == "No such GPU"
    page.get_by_role("link", name="FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 5070").click()
    assert page.url == f"{site.url}/check/flux-2-klein-4b/rtx-5070/"
    screenshot("pair-empty-rtx-5070")


def test_a_withdrawn_result_s_permalink_says_so_and_still_shows_its_signature(
    site, page, screenshot
):
    client = Client()
    posted = fill_rtx_4090(client)
    withdraw(client, posted.ids["resident-0"], posted.keys["contributor-0"], "wrong power limit")

    page.goto(f"{site.url}/r/{posted.ids['resident-0']}")

    banner = " ".join(page.locator(".status-banner").inner_text().split())
    assert banner.startswith("Withdrawn by its contributor on ")
    assert banner.endswith("Their reason: “wrong power limit”")
    text = visible_text(page)
    assert "The signature matches the stored submission and the public key" in text
    assert "Signed by the same key; the signature checks out." in text
    screenshot("result-withdrawn")


def test_the_test_model_page_works_for_a_contributor_trying_the_agent_on_a_cpu(
    site, page, screenshot
):
    fill_tiny_on_cpu(Client())

    page.goto(f"{site.url}/check/klein-tiny-random/cpu/")

    answer = " ".join(page.locator("section.answer").inner_text().split())
    assert answer.startswith("runs Runs on the CPU in BF16 (diffusers) at 64x64: median 0.50 s")
    assert "Based on a single result" in answer
    assert_plots_drawn(page, expected=1)
    screenshot("pair-tiny-cpu")
