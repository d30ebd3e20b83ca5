"""/check/: every public model on every listed GPU, verdicts in colour and words."""

from __future__ import annotations

import re

import pytest
from klein_bench.contract import wire

from benchmarks.services.aggregation import reconcile
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import result_payload
from tests.pages_data import (
    fill_base_on_rtx_4090,
    fill_rtx_4090,
    fill_rtx_5070,
    fill_tiny_on_cpu,
    post,
    visible_text,
)

pytestmark = pytest.mark.django_db


def cells(response) -> dict[str, str]:
    """Each GPU row's text by its header, for the first model column."""
    page = response.content.decode()
    rows = re.findall(r'<tr>\s*<th scope="row">(.*?)</th>\s*<td[^>]*>(.*?)</td>', page, re.S)

    def text(fragment: str) -> str:
        return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())

    return {text(gpu): text(cell) for gpu, cell in rows}


def test_each_cell_gives_the_verdict_in_words_with_speed_and_memory_of_the_best_configuration(
    client, catalog
):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    response = client.get("/check/")

    assert response.status_code == 200
    found = cells(response)
    assert found["RTX 4090 24 GiB"] == "runs 1.9 s · 19.2 GiB bf16-resident (diffusers)"
    assert found["RTX 5070 12 GiB"] == "runs 2.4 s · 8.5 GiB fp8-storage (ComfyUI)"
    assert found["RTX 3090 24 GiB"] == (
        "expected to fit estimate in bf16-resident (diffusers), about 4.4 s measure it"
    )
    assert found["RTX 5060 Ti 16 GB"].startswith("expected to fit estimate in "), (
        "the name already says 16 GB"
    )
    page = response.content.decode()
    assert (
        'class="verdict verdict-runs" data-source="measured" data-verdict="runs">runs</span>'
        in (page)
    )
    assert (
        '<span class="verdict verdict-runs verdict-estimate" data-source="estimated" '
        'data-verdict="expected_to_fit">expected to fit</span> <span class="estimate-tag">'
        "estimate</span>"
    ) in page
    assert (
        '<a href="/check/flux-2-klein-4b/rtx-5070/" aria-label="FLUX.2 [klein] 4B on the NVIDIA '
        'GeForce RTX 5070: runs">'
    ) in page
    assert '<a class="contribute-link" href="/contribute">measure it</a>' in page


def test_gpus_are_grouped_by_family_and_ordered_by_memory(client, catalog):
    text = visible_text(client.get("/check/"))

    order = [
        "GeForce RTX 30",
        "RTX 3090",
        "GeForce RTX 40",
        "RTX 4070 12 GiB",
        "RTX 4070 Ti 12 GiB",
        "RTX 4080 16 GiB",
        "RTX 4090 24 GiB",
        "GeForce RTX 50",
        "RTX 5070 12 GiB",
        "RTX 5060 Ti 16 GB",
        "RTX 5070 Ti 16 GiB",
        "RTX 5080 16 GiB",
        "RTX 5090 32 GiB",
        "Data centre",
        "H100 80GB",
        "H200 141GB",
        "CPU (no GPU)",
    ]
    positions = [text.index(name) for name in order]
    assert positions == sorted(positions)
    assert "GPU FLUX.2 [klein] 4B FLUX.2 [klein] Base 4B" in text


def test_the_test_model_and_cards_awaiting_review_stay_out_of_the_matrix(client, catalog):
    fill_tiny_on_cpu(client)
    post(
        client,
        result_payload(gpu={"name": "NVIDIA RTX PRO 6000 Blackwell", "memory_total_mb": 97887}),
        wire.SigningKey.generate(),
    )
    reconcile()

    text = visible_text(client.get("/check/"))

    assert "Klein tiny random" not in text
    assert "RTX PRO 6000" not in text
    # Neither model is measured on a CPU, and the agent would refuse to: no "measure it".
    assert "CPU (no GPU) not measured not measured" in text


def test_the_preset_filter_is_a_plain_get_form_that_shows_that_configuration_only(client, catalog):
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    everything = client.get("/check/")
    response = client.get("/check/", {"preset": "bf16-resident"})

    assert '<form class="filter" method="get" action="/check/">' in everything.content.decode()
    found = cells(response)
    assert found["RTX 5070 12 GiB"] == (
        "does not fit bf16-resident (diffusers): 3 tried: 3 out of memory in model load"
    )
    assert found["RTX 4090 24 GiB"] == "runs 1.9 s · 19.2 GiB bf16-resident (diffusers)"
    assert '<option value="bf16-resident" selected>' in response.content.decode()
    assert "in the BF16, fully resident configuration" in visible_text(response)


def test_an_unknown_preset_is_explained_and_everything_is_shown(client, catalog):
    fill_rtx_5070(client)

    response = client.get("/check/", {"preset": "int4"})

    assert response.status_code == 200
    assert "There is no configuration called “int4”; showing all configurations." in (
        visible_text(response)
    )
    assert cells(response)["RTX 5070 12 GiB"] == "runs 2.4 s · 8.5 GiB fp8-storage (ComfyUI)"


def test_filtered_a_cell_shows_that_configuration_only_and_says_so(client, catalog):
    """Issue 19: /check/?preset=fp8-compute showed the RTX 4090's bf16-resident estimate
    (1.9 s) although bf16-resident was measured there; other cards other configurations."""
    fill_rtx_5070(client)
    fill_rtx_4090(client)

    found = cells(client.get("/check/", {"preset": "fp8-compute"}))

    assert found["RTX 4090 24 GiB"].startswith(
        "expected to fit estimate in fp8-compute (diffusers), about "
    )
    assert found["RTX 5070 12 GiB"] == (
        "expected not to fit estimate in fp8-compute (diffusers) measure it"
    )
    # No FP8 tensor cores: nothing measured and nothing to estimate, said plainly.
    assert found["RTX 3090 24 GiB"] == "not measured fp8-compute: no result, no estimate measure it"
    for cell in found.values():
        assert "bf16" not in cell and "fp8-storage" not in cell
    fp8 = cells(client.get("/check/", {"preset": "fp8-storage"}))
    assert fp8["RTX 5070 12 GiB"] == "runs 2.4 s · 8.5 GiB fp8-storage (ComfyUI)"
    assert fp8["RTX 4090 24 GiB"].startswith("expected to fit estimate in fp8-storage (diffusers)")


def test_a_model_measured_only_at_other_step_counts_shows_its_estimate(client, catalog):
    """The base model measured at the distilled model's 4 steps, not its standard 50: the
    cell shows the estimate the legend promises, never a bare "unknown"."""
    fill_base_on_rtx_4090(client)

    page = client.get("/check/").content.decode()
    base = re.findall(
        r'data-label="FLUX.2 \[klein\] Base 4B" data-source="([^"]*)" data-verdict="([^"]*)">'
        r'\s*<a href="/check/flux-2-klein-base-4b/([^/]+)/',
        page,
    )

    assert base, "a cell per card"
    assert dict((gpu, (source, verdict)) for source, verdict, gpu in base)["rtx-4090"] == (
        "estimated",
        "expected_to_fit",
    )
    assert all(source == "estimated" for source, _, gpu in base if gpu != "cpu")
    text = visible_text(client.get("/check/flux-2-klein-base-4b/rtx-4090/"))
    assert (
        "Not measured at the model's standard 1024x1024, 50 steps: only other step counts so "
        "far (4 steps; see below)."
    ) in text
    assert "only other sizes" not in text
