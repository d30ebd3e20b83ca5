"""/r/<id>: one result with every figure, its environment, its signature and its status."""

from __future__ import annotations

import re

import pytest

from benchmarks.models import Submission, SubmissionStatus
from benchmarks.services import moderation
from checkpages import formatting
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import make_result
from tests.pages_data import fill_rtx_4090, fill_rtx_5070, fill_tiny_on_cpu, visible_text, withdraw

pytestmark = pytest.mark.django_db


def test_a_result_shows_every_figure_its_configuration_and_environment(client, catalog):
    posted = fill_rtx_5070(client)
    result_id = posted.ids["fp8-0"]

    response = client.get(f"/r/{result_id}")

    assert response.status_code == 200
    text = visible_text(response)
    assert text.startswith(
        f"All checks > FLUX.2 [klein] 4B > RTX 5070 > Result #{result_id} "
        f"Result #{result_id}: FLUX.2 [klein] 4B on the NVIDIA GeForce RTX 5070 "
        "Accepted. This result counts in the summary for FLUX.2 [klein] 4B on the RTX 5070. "
        "Outcome Median 2.3 s per image over 5 timed images (warm-up excluded), 8.4 GiB peak VRAM "
        "of the card's 12 GiB, in FP8 weights, BF16 compute, fully on the GPU (ComfyUI) "
        "at 1024x1024. "
        "Configuration How it was run Preset fp8-storage Runtime ComfyUI 0.3.66 Precision FP8 "
        "weights, BF16 compute Offload "
        "none (fully resident) Size 1024x1024 Steps 4 Protocol klein4b-t2i-v1 sha256:"
    )
    assert (
        "Timings Seconds per image over the timed images Median 2.3 s p10 - p90 2.3 s - 2.3 s "
        "Mean (standard deviation) 2.3 s (0.04 s) Coefficient of variation 2% "
        "Text encoding / denoising / VAE decode (median) 0.12 s / 1.8 s / 0.35 s Model load 14 s"
    ) in text
    assert "1 2.264 0.113 1.811 0.340 0 0" in text, "every timed image"
    assert (
        "Memory Peak memory in GiB; the card has 12 GiB Peak VRAM (the headline: the process "
        "with its CUDA context) - In use on the card before loading 0.6 GiB Process on the GPU "
        "(NVML) 8.4 GiB PyTorch reserved 8.2 GiB PyTorch allocated 7.8 GiB Whole card, "
        "including the display (NVML) 9.1 GiB System RAM used by the process 5.3 GiB System "
        "RAM installed 32.0 GiB PCIe link while working Gen5 x16 Drives a display yes"
    ) in text
    assert (
        "Energy per image 455 J (0.13 Wh) Power limit - Throttling while timing not reported "
        "Warm-up image (not timed) 6.1 s Average power while "
        "generating 190 W Highest GPU clock 2,745 MHz Highest memory clock 10,501 MHz Highest "
        "temperature 71 °C Why clocks dropped none reported Memory sampled every 10 ms"
    ) in text
    assert "Weights real" in text
    assert "driver 570.133.07" in text and "runtime_version 0.3.66" in text
    assert "uuid_hash 5070aa00bb11cc22" in text
    assert b'<img class="thumbnail" src="data:image/png;base64,iVBORw0KGgo' in response.content


def test_a_result_shows_its_key_id_signature_and_the_body_as_received(client, catalog):
    posted = fill_rtx_4090(client, n=1)
    result_id = posted.ids["resident-0"]
    key = posted.keys["contributor-0"]
    submission = Submission.objects.get(result__id=result_id)

    text = visible_text(client.get(f"/r/{result_id}"))

    assert (f"Key id {key.key_id} Public key (Ed25519) {key.public_bytes.hex()} Signature ") in text
    assert (
        "Verification The signature matches the stored submission and the public key "
        "(checked when this page was made)."
    ) in text
    assert f"SHA-256 of the body {submission.body_sha256} Status accepted" in text
    assert submission.body in text


def test_a_withdrawn_result_says_so_with_the_contributor_s_reason(client, catalog):
    posted = fill_rtx_4090(client, n=1)
    result_id = posted.ids["resident-0"]
    withdraw(client, result_id, posted.keys["contributor-0"], "ran with a 300 W power limit")
    withdrawn_at = Submission.objects.get(result__id=result_id).withdrawn_at

    text = visible_text(client.get(f"/r/{result_id}"))

    assert (
        f"Withdrawn by its contributor on {withdrawn_at:%Y-%m-%d %H:%M} UTC. It no longer counts "
        "in any summary; the record stays here so that links to it keep working. Their reason: "
        "“ran with a 300 W power limit”"
    ) in text
    assert "Withdrawal Signed by the same key; the signature checks out." in text


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (SubmissionStatus.REJECTED, "Rejected by a moderator"),
        (SubmissionStatus.FLAGGED, "Flagged by a moderator"),
    ],
)
def test_a_moderated_result_shows_the_moderator_s_decision_and_reason(
    client, catalog, status, shown
):
    posted = fill_rtx_4090(client, n=1)
    result_id = posted.ids["resident-0"]
    moderation.set_status(
        Submission.objects.filter(result__id=result_id), status, "clocks above the card's limit"
    )

    response = client.get(f"/r/{result_id}")

    text = visible_text(response)
    assert (
        f"{shown} on " in text
        and "UTC. This result does not count in any summary. Reason: clocks above the card's limit"
        in text
    )
    assert f'class="status-banner status-{status}"'.encode() in response.content


def test_an_out_of_memory_result_names_the_stage_and_the_message(client, catalog):
    posted = fill_rtx_5070(client)

    text = visible_text(client.get(f"/r/{posted.ids['offload-oom']}"))

    assert (
        "Outcome Out of memory during VAE decode, in BF16 with model CPU offload (diffusers) at "
        "1024x1024. CUDA out of memory."
    ) in text
    assert "System RAM used by the process 15.4 GiB System RAM installed 16.0 GiB" in text
    # No column of dashes for the timings of a run that never got to time an image.
    assert "Timings No timed image: the run stopped in VAE decode. Model load took 14 s." in text
    assert "Mean (standard deviation)" not in text


@pytest.mark.parametrize("result_id", ["987654", "99999999999999999999999"])
def test_an_unknown_result_id_is_a_404_page(client, catalog, result_id):
    response = client.get(f"/r/{result_id}")

    assert response.status_code == 404
    assert visible_text(response).startswith(
        f"No such result There is no result with id {result_id}."
    )


def test_the_test_models_weights_are_random_not_real(client, catalog):
    posted = fill_tiny_on_cpu(client)

    text = visible_text(client.get(f"/r/{posted.ids['tiny']}"))

    assert "Weights random (the built-in test model)" in text


def test_a_result_whose_peak_is_above_its_cards_memory_is_flagged(client, catalog):
    result = make_result(gpu="rtx-5070", seconds=9.5, peak_process_mb=13_619.0)

    text = visible_text(client.get(f"/r/{result.pk}"))

    assert (
        "Outcome Its peak, 13.3 GiB, is above the card's 12 GiB: the run only finished by "
        "spilling into system memory, so it counts as not fitting."
    ) in text


def test_a_small_model_s_work_per_image_reads_in_a_unit_that_keeps_its_digits(client, catalog):
    posted = fill_tiny_on_cpu(client)

    text = visible_text(client.get(f"/r/{posted.ids['tiny']}"))

    work = re.search(r"Work per image (\S+ \S+) \((\S+ \S+) in the transformer\)", text)
    assert work, text
    assert all(re.fullmatch(r"\d{1,3}(\.\d+)? [MGk]?FLOP", figure) for figure in work.groups())
    assert "0.0 TFLOP" not in text


@pytest.mark.parametrize(
    ("tflop", "words"),
    [(12.34, "12.3 TFLOP"), (0.42, "420 GFLOP"), (0.000923, "923 MFLOP"), (None, "\u2013")],
)
def test_work_is_written_to_three_figures(tflop, words):
    assert formatting.work(tflop) == words


def test_memory_by_phase_stacks_on_a_phone_with_each_figure_named(client, catalog):
    posted = fill_rtx_5070(client)

    page = client.get(f"/r/{posted.ids['fp8-0']}").content.decode()

    table = page[page.index('<h2 id="phases-title">') :]
    table = table[: table.index("</table>")]
    assert '<table class="stack">' in table
    assert (
        '<tr><th scope="row">Timed images</th><td class="num" data-label="Peak VRAM">8.4 GiB'
    ) in table
    assert '<td data-label="Stage">denoising</td>' in table
