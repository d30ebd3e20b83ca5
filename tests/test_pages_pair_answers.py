"""/check/<model>/<gpu>/ leads with what the visitor came for: the configuration a user of
the card should run (or the ?preset= asked for), true counts, failures per configuration
with their stages, and a peak above the card's memory never shown as "runs"."""

from __future__ import annotations

import re

import pytest
from klein_bench.contract import wire

from benchmarks.models import Contributor
from benchmarks.services.aggregation import reconcile
from checkpages.presentation import colour
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import make_result, result_payload, runs
from tests.pages_data import FP8_COMFYUI, around, fill_rtx_4090, post, visible_text

pytestmark = pytest.mark.django_db

RTX_4090_PAGE = "/check/flux-2-klein-4b/rtx-4090/"
RTX_5070_PAGE = "/check/flux-2-klein-4b/rtx-5070/"


def answer(response) -> str:
    text = visible_text(response)
    return text[text.index("4 steps ") + 8 : text.index("How sure we are")]


@pytest.fixture
def rtx_4090_with_faster_fp8(client, catalog):
    """The 4090 recipe's BF16 fully resident, and FP8 in ComfyUI measured faster."""
    fill_rtx_4090(client)
    for seconds in (1.2, 1.25):
        post(
            client,
            result_payload(configuration=FP8_COMFYUI, timings={"runs": runs(*around(seconds))}),
            wire.SigningKey.generate(),
        )
    reconcile()


def test_without_a_preset_the_page_leads_with_what_a_user_of_the_card_should_run(
    client, rtx_4090_with_faster_fp8
):
    assert answer(client.get(RTX_4090_PAGE)).startswith(
        "runs Runs fully on the GPU in BF16 (diffusers) at 1024x1024: median 1.9 s per image"
    )


def test_a_preset_link_leads_with_that_configuration(client, rtx_4090_with_faster_fp8):
    response = client.get(RTX_4090_PAGE, {"preset": "fp8-storage"})

    assert response.status_code == 200
    assert answer(response).startswith(
        "runs in fp8-storage Runs fully on the GPU in FP8 weights, BF16 compute (ComfyUI) at "
        "1024x1024: median 1.2 s per image"
    )
    page = response.content.decode()
    assert '<a href="?preset=fp8-storage" aria-current="page">fp8-storage</a>' in page


def test_a_preset_nobody_measured_on_the_card_leads_with_its_estimate(client, catalog):
    fill_rtx_4090(client)

    text = visible_text(client.get(RTX_4090_PAGE, {"preset": "bf16-model-offload"}))

    assert (
        "expected to fit with offload estimate in bf16-model-offload Nobody has measured "
        "bf16-model-offload (diffusers) on this card yet. Estimate: expected to fit with "
        "offload, about 10.0 GiB (8.0-12.0 GiB) at the peak, within the card's 24 GiB, about "
    ) in text
    assert "Measured on this card: runs. See what runs best on it." in text


def test_an_unknown_preset_says_so_and_shows_the_page(client, catalog):
    fill_rtx_4090(client)

    response = client.get(RTX_4090_PAGE, {"preset": "int4"})

    assert response.status_code == 200
    assert "There is no configuration called “int4”; showing all configurations." in (
        visible_text(response)
    )


def test_failures_are_one_line_per_configuration_by_outcome_and_stage(client, catalog):
    who = Contributor.objects.create(key_id="kb1_failures", public_key="00" * 32)
    for stage, n in (("vae_decode", 4), ("denoising", 3)):
        for _ in range(n):
            make_result(
                gpu="rtx-5070", outcome="out_of_memory", failed_stage=stage, contributor=who
            )
    for _ in range(2):
        make_result(gpu="rtx-5070", outcome="error", failed_stage="other", contributor=who)
    make_result(gpu="rtx-5070", outcome="spilled", failed_stage="denoising", contributor=who)
    reconcile()

    text = visible_text(client.get(RTX_5070_PAGE))

    assert (
        "What failed, and where bf16-resident (diffusers): 10 tried: 7 out of memory (4 in VAE "
        "decode, 3 in denoising), 1 spilled into system memory in denoising, 2 errors."
    ) in text
    assert "does not fit Does not run" in text


def test_a_peak_above_the_cards_memory_is_flagged_and_never_shown_as_runs(client, catalog):
    # A Windows driver that spills into system memory lets such a run finish (stored here
    # directly: what the upload accepts is the submission chain's business).
    make_result(gpu="rtx-5070", seconds=9.5, peak_process_mb=13_619.0)
    reconcile()

    response = client.get(RTX_5070_PAGE)

    text = visible_text(response)
    assert "runs Runs" not in text
    assert (
        "does not fit Does not run: every configuration measured on this card ran out of "
        "memory or spilled into system memory (1 result from at least 1 contributor)."
    ) in text
    assert (
        "BF16, fully on the GPU (diffusers) at 1024x1024, 4 steps: The median peak, 13.3 GiB, "
        "is above the card's 12 GiB: these runs only finished by spilling into system memory, "
        "so this does not fit."
    ) in text
    assert "13.3 GiB above the card's 12 GiB" in text, "the result itself is flagged"


def test_counts_are_true_counts_with_thousands_separators(client, catalog):
    who = Contributor.objects.create(key_id="kb1_many", public_key="00" * 32)
    for i in range(1_050):
        make_result(seconds=1.9 + (i % 7) / 100, contributor=who, peak_process_mb=19_600.0)
    reconcile()

    text = visible_text(client.get(RTX_4090_PAGE))

    assert "from 1,050 results by 1 contributor." in text
    assert "19.2 GiB (19.2 GiB) 780 J" not in text
    assert (
        "bf16-resident (diffusers) 1,050 1.9 s 1.9 s 2.0 s 200 evenly spaced quantiles of "
        "1,050 results:"
    ) in text


def test_driver_versions_run_oldest_to_newest_in_the_plot_and_the_table(client, catalog):
    who = Contributor.objects.create(key_id="kb1_drivers", public_key="00" * 32)
    fp8 = {"runtime": "comfyui", "precision": "fp8-storage"}
    for driver, seconds, configuration in (
        ("570.86.16", 2.0, None),
        ("580.95.05", 2.2, None),
        ("575.64.03", 1.8, fp8),
        ("580.82.09", 1.9, fp8),
    ):
        for _ in range(2):
            make_result(
                seconds=seconds, driver_version=driver, configuration=configuration, contributor=who
            )
    reconcile()

    page = client.get(RTX_4090_PAGE).content.decode()

    plot = page[
        page.index('<svg xmlns:xlink="http://www.w3.org/1999/xlink"', page.index("trend")) :
    ]
    ticks = re.findall(r"<text[^>]*>(5\d\d\.\d\d\.\d\d)</text>", plot[: plot.index("</svg>")])
    assert ticks == ["570.86.16", "575.64.03", "580.82.09", "580.95.05"]


def test_plot_and_table_write_the_same_value_the_same_way(client, catalog):
    for seconds in (1.95, 1.95, 1.95):
        make_result(seconds=seconds)
    reconcile()

    response = client.get(RTX_4090_PAGE)

    page = response.content.decode()
    assert "median 1.9 s" in page and "median 2.0 s" not in page
    assert "median 1.9 s per image" in visible_text(response)


def test_each_configuration_has_one_colour_in_the_table_and_the_plots(client, catalog):
    make_result(seconds=2.0)
    make_result(seconds=1.3, configuration={"runtime": "comfyui", "precision": "fp8-storage"})
    reconcile()

    page = client.get(RTX_4090_PAGE).content.decode()

    resident, comfyui = (
        colour("diffusers", "bf16", "none"),
        colour("comfyui", "fp8-storage", "none"),
    )
    assert resident != comfyui
    for value in (resident, comfyui):
        assert f'style="background: {value}"' in page
        assert f"fill: {value}" in page, "the plots draw it too"


def test_a_cpu_page_offers_no_command_the_agent_would_refuse(client, catalog):
    text = visible_text(client.get("/check/flux-2-klein-4b/cpu/"))

    assert "klein-bench submit --model flux-2-klein-4b" not in text
    assert (
        "The klein-bench agent measures FLUX.2 [klein] 4B only on an NVIDIA GPU. Without one "
        "you can try the whole path with the tiny test model: its page on the CPU shows the "
        "commands."
    ) in text


def test_pages_are_compressed_for_browsers_that_accept_gzip(client, catalog):
    fill_rtx_4090(client)

    plain = client.get(RTX_4090_PAGE)
    packed = client.get(RTX_4090_PAGE, HTTP_ACCEPT_ENCODING="gzip")

    assert packed["Content-Encoding"] == "gzip"
    assert len(packed.content) < len(plain.content) / 4
