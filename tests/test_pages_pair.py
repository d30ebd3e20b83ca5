"""/check/<model>/<gpu>/: the verdict in plain words first, then the evidence."""

from __future__ import annotations

import pytest
from klein_bench.contract import wire

from benchmarks.models import Gpu, ImageModel, Result, Submission, SubmissionStatus, Summary
from benchmarks.services import moderation
from benchmarks.services.aggregation import reconcile
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import oom_payload, result_payload, runs
from tests.pages_data import (
    RTX_5070,
    around,
    fill_rtx_4090,
    fill_rtx_5070,
    fill_tiny_on_cpu,
    post,
    visible_text,
    withdraw,
)

pytestmark = pytest.mark.django_db

RTX_5070_PAGE = "/check/flux-2-klein-4b/rtx-5070/"
OOM_MEMORY = {
    "baseline_device_mb": 600.0,
    "peak_allocated_mb": 11000.0,
    "peak_reserved_mb": 11200.0,
    "peak_process_mb": 11500.0,
    "peak_device_mb": 12100.0,
    "peak_rss_mb": 6000.0,
    "system_ram_mb": 32768.0,
}


def test_the_rtx_5070_page_says_whether_how_fast_how_much_memory_and_how_sure(client, catalog):
    fill_rtx_5070(client)

    response = client.get(RTX_5070_PAGE)

    assert response.status_code == 200
    text = visible_text(response)
    assert text.startswith(
        "All checks > FLUX.2 [klein] 4B > RTX 5070 "
        "Does FLUX.2 [klein] 4B run on the NVIDIA GeForce RTX 5070? "
        "12 GiB of memory · Blackwell (sm_120) · 672 GB/s · FLUX.2 [klein] 4B (Apache-2.0) at "
        "1024x1024, 4 steps runs "
        "Runs fully on the GPU in FP8 weights, BF16 compute (ComfyUI) at 1024x1024: median 2.4 s "
        "per image, 8.5 GiB "
        "peak of the card's 12 GiB, from 6 results by 5 contributors. "
        "How sure we are: high. 6 results by 5 contributors, and they agree: the middle 80% of "
        "results lie between 2.3 s and 2.6 s per image. "
        "Every configuration measured on this card: "
        ""
        "runs FP8 weights, BF16 compute, fully on the GPU (ComfyUI) at 1024x1024, 4 steps: "
        "median 2.4 s per image, "
        "8.5 GiB peak (6 results). "
        "needs offload BF16 with model CPU offload (diffusers) at 1024x1024, 4 steps: median "
        "6.7 s per image, 9.7 GiB peak (3 results: 1 out of memory in VAE decode). "
        "does not fit BF16, fully on the GPU (diffusers) at 1024x1024, 4 steps: 3 tried: 3 "
        "out of memory in model load. "
        "Lead with a configuration: bf16-resident · bf16-model-offload · fp8-storage · "
        "fp8-compute · "
        "Compare with other cards "
        "By configuration"
    )
    assert (
        "fp8-storage (ComfyUI) FP8 weights, BF16 compute, fully on the GPU (ComfyUI), 1024x1024, "
        "4 steps runs 2.4 s reproduced "
        "2.3 s - 2.6 s 8.5 GiB (8.6 GiB) 468 J (0.13 Wh) 6 5"
    ) in text
    assert (
        "bf16-model-offload (diffusers) BF16 with model CPU offload (diffusers), 1024x1024, "
        "4 steps needs offload 6.7 s 6.5 s - 6.9 s 9.7 GiB (9.8 GiB) 1150 J (0.32 Wh) 3 "
        "2 finished 3"
    ) in text
    assert (
        "What failed, and where "
        "bf16-model-offload (diffusers): 3 tried: 1 out of memory in VAE decode. "
        "bf16-resident (diffusers): 3 tried: 3 out of memory in model load."
    ) in text


def test_the_pair_page_draws_speed_memory_and_driver_trend_plots_with_their_numbers(
    client, catalog
):
    fill_rtx_5070(client)

    text = visible_text(client.get(RTX_5070_PAGE))

    assert (
        "[plot: Seconds per image for FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 5070, one dot "
        "per result: fp8-storage (ComfyUI): median 2.4 s over 6 results, 80% between 2.3 s and "
        "2.6 s; "
        "bf16-model-offload (diffusers): median 6.7 s over 2 results, 80% between 6.5 s and "
        "6.9 s.]"
    ) in text
    assert "fp8-storage (ComfyUI) 6 2.3 s 2.4 s 2.6 s 2.31, 2.38, 2.42, 2.45, 2.52, 2.60" in text, (
        "the distribution's numbers are in a table"
    )
    assert (
        "[plot: Peak GPU memory for FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 5070 against "
        "the card's 12 GiB: fp8-storage (ComfyUI): median 8.5 GiB, largest 8.6 GiB; "
        "bf16-model-offload "
        "(diffusers): median 9.7 GiB, largest 9.8 GiB. Usable with a display attached: about "
        "10.5 GiB.]"
    ) in text
    assert (
        "fp8-storage (ComfyUI) 8.5 GiB (8.6 GiB) 8.3 GiB (8.4 GiB) 7.9 GiB (8.0 GiB) "
        "9.2 GiB (9.2 GiB) 5.3 GiB (5.3 GiB)"
    ) in text
    assert (
        "Across driver versions [plot: Median seconds per image by driver version for FLUX.2 "
        "[klein] 4B on the NVIDIA GeForce RTX 5070: fp8-storage (ComfyUI): 570.133.07 2.3 s, "
        "575.64 "
        "2.4 s, 580.95.05 2.5 s.]"
    ) in text
    assert "Across diffusers versions" not in text, "one diffusers version is no history"


def test_published_claims_sit_beside_the_community_medians_with_their_sources(client, catalog):
    fill_rtx_5070(client)

    response = client.get(RTX_5070_PAGE)

    text = visible_text(response)
    assert (
        "BFL model card 16 GB-class cards diffusers BF16 + enable_model_cpu_offload() ~13 GB "
        'VRAM "Fits in ~13GB VRAM and is accessible on NVIDIA RTX 3090/4070 and above." '
        "bf16-model-offload (diffusers): 6.7 s per image, 9.7 GiB peak (needs offload, 3 results)"
    ) in text
    # The recipe's claim is attached to its own configuration, FP8 in ComfyUI.
    assert (
        "RTX 5070 recipe RTX 5070 12 GB display attached ~10.5-11.3 GB usable VRAM A 12 GB card "
        "that drives a display has about 10.5-11.3 GB free for the model: the BF16 + offload "
        "path (~13 GB) is too tight; FP8 (~8.4 GB) fits. fp8-storage (ComfyUI): 2.4 s per "
        "image, 8.5 GiB peak (runs, 6 results)"
    ) in text
    assert "docs.comfy.org Klein tutorial" not in text, "a claim about another card"
    assert b'href="https://huggingface.co/black-forest-labs/FLUX.2-klein-4B"' in response.content


def test_synthetic_results_are_shown_apart_as_runs_with_random_weights(client, catalog):
    fill_rtx_5070(client)

    text = visible_text(client.get(RTX_5070_PAGE))

    section = text[text.index("Runs with random weights") : text.index("Recent results")]
    assert section == (
        "Runs with random weights These runs used the full-size architecture with random "
        "weights: the speed and memory match the real model, but no real image was made. "
        "They are kept apart from the measurements above. Runs fully on the GPU in FP8 weights, "
        "BF16 compute "
        "(diffusers) at 1024x1024: median 2.9 s per image, 8.9 GiB peak of the card's 12 GiB, "
        "from 1 result by 1 contributor. Synthetic runs (random weights) on the RTX 5070 "
        "Configuration Verdict Median s/image p10-p90 Peak VRAM Results "
        "fp8-storage (diffusers) runs random weights 2.9 s 2.9 s - 2.9 s 8.9 GiB 1 "
    )
    assert "fp8-storage (diffusers)" not in text[: text.index("Runs with random weights")], (
        "and no estimate for it either: a run with random weights measured it"
    )


def test_recent_results_link_to_their_permalinks_and_the_contribute_commands_are_exact(
    client, catalog
):
    posted = fill_rtx_5070(client)

    response = client.get(RTX_5070_PAGE)

    text = visible_text(response)
    newest = posted.ids["synthetic"]
    assert f'href="/r/{newest}"'.encode() in response.content
    assert (
        f"#{newest} " in text
        and "fp8-storage (diffusers) random weights success 2.9 s 8.9 GiB 580.95.05 counted" in text
    )
    assert f'href="/r/{posted.ids["fp8-0"]}"'.encode() not in response.content, "only ten"
    server = "--server http://testserver"
    assert text.endswith(
        "Add your own result Have an RTX 5070? Install torch for your card first, then the "
        "agent from a clone of the repository: pip install torch --index-url "
        'https://download.pytorch.org/whl/cu128 pip install "./agent[diffusers]" Then run one '
        "of these: it benchmarks, prints the figures and uploads a signed result. Add "
        "--dry-run --print-payload to see exactly what would be sent without sending it. What "
        "is sent, and how to withdraw it. "
        f"klein-bench submit --model flux-2-klein-4b --preset fp8-storage {server} FP8 weights, "
        "BF16 compute, not measured on this card yet "
        f"klein-bench submit --model flux-2-klein-4b --preset fp8-compute {server} FP8 matmuls "
        "(torchao), not measured on this card yet "
        f"klein-bench submit --model flux-2-klein-4b --preset bf16-resident {server} BF16, "
        "fully resident "
        f"klein-bench submit --model flux-2-klein-4b --preset bf16-model-offload {server} "
        "BF16, model CPU offload "
        f"klein-bench submit --model flux-2-klein-4b --runtime comfyui {server} FP8 in your "
        "running ComfyUI (the "
        "recipes' path) The same data as JSON: /api/v1/checks/flux-2-klein-4b/rtx-5070"
    )
    assert b'href="/api/v1/checks/flux-2-klein-4b/rtx-5070"' in response.content


def test_a_catalog_card_with_no_results_leads_with_its_estimate_specs_nearest_cards_and_commands(
    client, catalog
):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    response = client.get("/check/flux-2-klein-4b/rtx-4070/")

    assert response.status_code == 200
    text = visible_text(response)
    assert text.startswith(
        "All checks > FLUX.2 [klein] 4B > RTX 4070 Does FLUX.2 [klein] 4B run on the NVIDIA "
        "GeForce RTX 4070? 12 GiB of memory · Ada Lovelace (sm_89) · 504 GB/s · FLUX.2 [klein] "
        "4B (Apache-2.0) at 1024x1024, 4 steps expected to fit estimate Estimate: expected to "
        "fit, fully on the GPU, in fp8-storage (ComfyUI): about 8.5 GiB (8.3-8.8 GiB) at the "
        "peak, within the card's 12 GiB, about "
    )
    assert (
        "Memory from fp8-storage (ComfyUI) measured on the RTX 5070; speed scaled from the RTX "
        "5070 (Blackwell) by tensor throughput and memory bandwidth: other architectures, so "
        "the range is wide. Nobody has submitted a result for FLUX.2 [klein] 4B on this card "
        "yet: this is an estimate from the model's architecture and the card's specifications, "
        "calibrated by other cards' measurements, not a measurement."
    ) in text
    # Every preset estimated, apart from the measurements and labelled: BF16 fully resident
    # was measured at 19.2 GiB on the 4090, more than this card has.
    assert (
        "bf16-resident (diffusers) BF16, fully on the GPU (diffusers) expected not to fit "
        "estimate More than the card's 12 GiB about 19.2 GiB (18.6-19.7 GiB) - memory measured "
        "on the RTX 4090 "
    ) in text
    assert (
        "The card The NVIDIA GeForce RTX 4070 Memory 12 GiB Memory bandwidth 504 GB/s "
        "Architecture Ada Lovelace (sm_89, compute capability 8.9) BF16 tensor throughput "
        "58.3 TFLOPS (dense) Board power 200 W Kind GeForce RTX 40"
    ) in text
    assert (
        "runs NVIDIA GeForce RTX 5070 (12 GiB, the same memory; 672 GB/s, 33% more memory "
        "bandwidth): Runs fully on the GPU in FP8 weights, BF16 compute (ComfyUI) at 1024x1024: "
        "median 2.4 s per "
        "image, 8.5 GiB peak of the card's 12 GiB, from 6 results by 5 contributors. "
        "runs NVIDIA GeForce RTX 4090 (24 GiB, 100% more memory; 1008 GB/s, 100% more memory "
        "bandwidth): Runs fully on the GPU in BF16 (diffusers)"
    ) in text
    assert (
        "klein-bench submit --model flux-2-klein-4b --preset bf16-resident --server "
        "http://testserver BF16, fully resident, not measured on this card yet"
    ) in text
    assert "<svg" not in response.content.decode().split("<main", 1)[1], "no plots drawn"
    compare = '<a href="/compare/flux-2-klein-4b/?gpu=rtx-4070&amp;gpu=rtx-5070&amp;gpu=rtx-4090">'
    assert compare in response.content.decode()


def test_an_unknown_card_with_nothing_measured_anywhere_is_estimated_from_its_architecture(
    client, catalog
):
    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4080/"))

    assert (
        "4 steps expected to fit estimate Estimate: expected to "
        "fit, fully on the GPU, in fp8-storage (diffusers): about 10.0 GiB (8.0-12.0 GiB) at "
        "the peak, within the card's 16 GiB, about 3.2 s per image (2.3-5.4 s). Memory from "
        "the architecture alone: nobody has measured this configuration yet; speed from the "
        "architecture alone, assuming 30-70% of the card's tensor peak: nobody has measured "
        "this configuration yet."
    ) in text
    assert "What the most similar measured cards show" not in text


@pytest.mark.parametrize(
    ("url", "title", "suggestion"),
    [
        (
            "/check/flux-2-klein-4b/rtx5070/",
            "No such GPU We have no GPU called “rtx5070” in the catalog.",
            '<a href="/check/flux-2-klein-4b/rtx-5070/">FLUX.2 [klein] 4B on the NVIDIA GeForce '
            "RTX 5070</a>",
        ),
        (
            "/check/flux-2-klein-4b/geforce-rtx-4090/",
            "No such GPU We have no GPU called “geforce-rtx-4090” in the catalog.",
            '<a href="/check/flux-2-klein-4b/rtx-4090/">',
        ),
        (
            "/check/flux2-klein-4b/rtx-4090/",
            "No such model We have no model called “flux2-klein-4b” in the catalog.",
            '<a href="/check/flux-2-klein-4b/rtx-4090/">FLUX.2 [klein] 4B on the NVIDIA GeForce '
            "RTX 4090</a>",
        ),
    ],
)
def test_a_slug_not_in_the_catalog_is_a_helpful_404_with_suggestions(
    client, catalog, url, title, suggestion
):
    response = client.get(url)

    assert response.status_code == 404
    assert visible_text(response).startswith(title + " Did you mean ")
    assert suggestion.encode() in response.content


def test_the_recipes_links_without_a_slash_or_in_capitals_reach_the_page(client, catalog):
    assert client.get("/check/flux-2-klein-4b/rtx-5070").url == RTX_5070_PAGE
    assert client.get("/check/FLUX-2-Klein-4B/RTX-5070/").url == RTX_5070_PAGE


def test_the_test_model_is_reachable_directly_on_the_cpu(client, catalog):
    fill_tiny_on_cpu(client)

    response = client.get("/check/klein-tiny-random/cpu/")

    assert response.status_code == 200
    text = visible_text(response)
    assert text.startswith(
        "All checks > Klein tiny random (test model) > CPU (no GPU) Does Klein tiny random (test "
        "model) run on the CPU (no GPU)? No GPU memory · Klein tiny random (test model) "
        "(Apache-2.0) at 64x64, 4 steps Klein tiny random (test model) is a test model: a tiny "
        "random network for trying the agent. Its figures say nothing about any real model's speed "
        "or memory. runs Runs on the CPU in BF16 (diffusers) at 64x64: median 0.50 s per image, "
        "from 1 result by 1 contributor. How sure we are: low. Based on a single result from one "
        "contributor: a first indication, not yet a figure to rely on;"
    )
    assert text.endswith(
        "Have no GPU? Install torch for your CPU first, then the agent from a clone of the "
        "repository: pip install torch --index-url https://download.pytorch.org/whl/cpu pip "
        'install "./agent[diffusers]" Then run one of these: it benchmarks, prints the figures '
        "and uploads a signed result. Add --dry-run --print-payload to see exactly what would "
        "be sent without sending it. What is sent, and how to withdraw it. klein-bench submit "
        "--model klein-tiny-random --server http://testserver the tiny test model, on any "
        "CPU or GPU The same data as JSON: /api/v1/checks/klein-tiny-random/cpu"
    )


def test_a_withdrawn_result_leaves_the_summary_and_shows_as_withdrawn(client, catalog):
    posted = fill_rtx_4090(client)
    withdraw(client, posted.ids["resident-0"], posted.keys["contributor-0"])
    reconcile()

    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4090/"))

    assert "from 2 results by 2 contributors." in text
    assert (
        f"#{posted.ids['resident-0']} " in text
        and "bf16-resident (diffusers) success 1.9 s 19.2 GiB 580.95.05 withdrawn by its "
        "contributor"
        in text
    )


def test_a_card_whose_runs_all_ran_out_of_memory_does_not_run(client, catalog):
    key = wire.SigningKey.generate()
    for stage in ("load", "denoising"):
        post(
            client,
            oom_payload(
                stage,
                gpu=RTX_5070,
                memory=OOM_MEMORY,
            ),
            key,
        )
    reconcile()

    text = visible_text(client.get(RTX_5070_PAGE))

    assert (
        "does not fit Does not run: every configuration measured on this card ran out of "
        "memory or spilled into system memory (2 results from at least 1 contributor)."
    ) in text
    assert (
        "bf16-resident (diffusers): 2 tried: 2 out of memory (1 in model load, 1 in denoising)."
    ) in text
    assert "How sure we are" not in text


def test_a_card_that_only_runs_with_offload_says_so(client, catalog):
    post(
        client,
        result_payload(
            gpu=RTX_5070,
            configuration={"precision": "bf16", "offload": "model", "preset": "bf16-model-offload"},
            timings={"runs": runs(*around(6.5))},
            memory={
                "peak_process_mb": 9900.0,
                "peak_reserved_mb": 9600.0,
                "peak_allocated_mb": 9100.0,
                "peak_device_mb": 10500.0,
            },
        ),
        wire.SigningKey.generate(),
    )
    reconcile()

    text = visible_text(client.get(RTX_5070_PAGE))

    assert (
        "needs offload Runs only with model CPU offload in BF16 (diffusers) at 1024x1024: "
        "median 6.5 s per image, 9.7 GiB peak of the card's 12 GiB, from 1 result by 1 "
        "contributor. How sure we are: low. Based on a single result"
    ) in text


def test_results_that_vary_widely_lower_how_sure_we_are(client, catalog):
    for seconds in (1.6, 2.0, 2.6, 3.4):
        post(
            client,
            result_payload(timings={"runs": runs(*around(seconds))}),
            wire.SigningKey.generate(),
        )
    reconcile()

    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4090/"))

    assert (
        "How sure we are: low. 4 results by 4 contributors, but they vary widely: the middle "
        "80% of results lie between 1.7 s and 3.2 s per image;"
    ) in text


def test_a_display_card_without_a_published_usable_figure_gets_it_from_its_results(client, catalog):
    rtx_4070 = {**RTX_5070, "name": "NVIDIA GeForce RTX 4070", "compute_capability": "8.9"}
    for _ in range(2):
        post(
            client,
            result_payload(
                gpu=rtx_4070,
                configuration={"precision": "fp8-storage", "preset": "fp8-storage"},
                timings={"runs": runs(*around(3.1))},
                memory={
                    "baseline_device_mb": 1024.0,
                    "peak_process_mb": 8700.0,
                    "peak_reserved_mb": 8400.0,
                    "peak_allocated_mb": 8000.0,
                    "peak_device_mb": 9724.0,
                },
            ),
            wire.SigningKey.generate(),
        )
    reconcile()

    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4070/"))

    assert (
        "Card memory: 12 GiB. Usable with a display attached: about 11.0 GiB (card size less the "
        "median 1.0 GiB in use before loading on 2 recent results from machines driving a "
        "display)."
    ) in text


def test_a_card_reported_by_name_only_has_a_page_marked_for_review(client, catalog):
    post(
        client,
        result_payload(gpu={"name": "NVIDIA RTX PRO 6000 Blackwell", "memory_total_mb": 97887}),
        wire.SigningKey.generate(),
    )
    reconcile()
    gpu = Gpu.objects.get(is_flagged=True)

    text = visible_text(client.get(f"/check/flux-2-klein-4b/{gpu.slug}/"))

    assert (
        "This card was named by a contributor's result and is not yet in our reviewed catalog"
    ) in text
    assert "Runs fully on the GPU in BF16 (diffusers) at 1024x1024" in text


def test_a_rejected_result_stops_counting_but_stays_listed_with_its_status(client, catalog):
    posted = fill_rtx_4090(client)
    moderation.set_status(
        Submission.objects.filter(result__id=posted.ids["resident-2"]),
        SubmissionStatus.REJECTED,
        "implausible clocks",
    )
    reconcile()

    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4090/"))

    assert "from 2 results by 2 contributors." in text
    assert "rejected by a moderator" in text


def test_the_pair_page_reads_summaries_not_every_result(
    client, catalog, django_assert_max_num_queries
):
    fill_rtx_5070(client)
    for _ in range(15):
        post(
            client,
            result_payload(
                gpu=RTX_5070,
                configuration={
                    "precision": "fp8-storage",
                    "preset": "fp8-storage",
                    "runtime": "comfyui",
                },
                memory={
                    "peak_process_mb": 8700.0,
                    "peak_reserved_mb": 8400.0,
                    "peak_allocated_mb": 8000.0,
                    "peak_device_mb": 9300.0,
                },
                timings={"runs": runs(2.4, 2.4, 2.4)},
            ),
            wire.SigningKey.generate(),
        )
    reconcile()
    assert Result.objects.count() > 25

    with django_assert_max_num_queries(12):
        response = client.get(RTX_5070_PAGE)

    assert response.status_code == 200
    assert Summary.objects.get(synthetic=False, configuration__runtime="comfyui").n_results == 21


def test_a_model_the_agent_cannot_run_shows_no_command_that_would_fail(client, catalog):
    # A catalog row the agent's registry does not have (one an older catalog left behind).
    ImageModel.objects.create(
        slug="stable-diffusion-xl", name="SDXL", default_steps=30, default_guidance=5.0
    )

    text = visible_text(client.get("/check/stable-diffusion-xl/rtx-4090/"))

    assert "klein-bench submit" not in text
    assert "The klein-bench agent cannot benchmark SDXL yet;" in text


def test_the_estimates_say_what_they_rest_on_once_not_in_every_row(client, catalog):
    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-5070/"))

    table = text[text.index("Estimates for FLUX.2 [klein] 4B on the RTX 5070") :]
    table = table[: table.index("The card ")]
    assert "nobody has measured this configuration yet" not in table
    assert text.count("Where a row says “from the architecture alone”, nobody has measured") == 1
    assert (
        "fp8-storage (diffusers) FP8 weights, BF16 compute, fully on the GPU (diffusers) may not "
        "fit estimate Within the card's 12 GiB, but close to or above the about 10.5 GiB left "
        "when it drives a display about 10.0 GiB (8.0-12.0 GiB) about 5.1 s per image "
        "(3.6-8.4 s) memory from the architecture alone; speed from the architecture alone "
        "(30-70% of the tensor peak)"
    ) in table


def test_the_test_model_on_a_cpu_offers_only_what_makes_sense_there(client, catalog):
    fill_tiny_on_cpu(client)

    response = client.get("/check/klein-tiny-random/cpu/")

    page = response.content.decode()
    text = visible_text(response)
    assert "Lead with a configuration" not in text, "one configuration, nothing to choose"
    assert "Compare with other cards" not in text
    assert "fp8-compute" not in text and "bf16-model-offload" not in text
    assert "/compare/" not in page
