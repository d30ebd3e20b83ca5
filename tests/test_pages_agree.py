"""Every page says one thing. For every card in the catalog and every model, on an empty
site and on generated data, with and without a ?preset=: the check page's headline, its
tables and its title, the overview's cell, the model page, the compare page and the API
give the same answer (benchmarks.services.answers), and measured beats estimated."""

from __future__ import annotations

import html
import re

import pytest

from benchmarks.models import Gpu, ImageModel, Preset
from benchmarks.services import estimates
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.pages_data import (
    fill_base_on_rtx_4090,
    fill_rtx_4090,
    fill_rtx_5070,
    fill_tiny_on_cpu,
    visible_text,
)

pytestmark = pytest.mark.django_db

PRESETS = ["", *Preset.values]


def fill_everything(client) -> None:
    fill_rtx_5070(client)
    fill_rtx_4090(client)
    fill_tiny_on_cpu(client)
    fill_base_on_rtx_4090(client)


SCENARIOS = {"empty site": lambda client: None, "generated data": fill_everything}


def attributes(fragment: str) -> tuple[str, str]:
    found = re.search(r'data-source="([^"]*)" data-verdict="([^"]*)"', fragment)
    assert found, fragment[:300]
    return found.group(1), found.group(2)


def answer_section(page: str) -> str:
    return page[page.index('<section class="answer') : page.index("</section>")]


def overview_cells(client, preset: str) -> dict[tuple[str, str], tuple[str, str]]:
    page = client.get("/check/", {"preset": preset} if preset else {}).content.decode()
    cells = re.findall(
        r'<td class="cell[^"]*" data-label="[^"]*" (data-source="[^"]*" data-verdict="[^"]*")>'
        r'\s*<a href="/check/([^/]+)/([^/]+)/',
        page,
    )
    return {(model, gpu): attributes(attrs) for attrs, model, gpu in cells}


def model_entries(client, model: str, preset: str) -> dict[str, str]:
    """Each card's verdict on the model page (measured rows and the cards not measured)."""
    page = client.get(f"/check/{model}/", {"preset": preset} if preset else {}).content.decode()
    found = {}
    for gpu, rest in re.findall(
        r'data-gpu="([^"]+)" ((?:data-source="[^"]*" )?data-verdict="[^"]*")', page
    ):
        found[gpu] = re.search(r'data-verdict="([^"]*)"', rest).group(1)
    return found


def check_pair(client, model: ImageModel, gpu: Gpu, preset: str) -> tuple[str, str]:
    """The pair page against the API; returns the answer they agree on."""
    query = {"preset": preset} if preset else {}
    api = client.get(f"/api/v1/checks/{model.slug}/{gpu.slug}", query).json()
    response = client.get(f"/check/{model.slug}/{gpu.slug}/", query)
    assert response.status_code == 200
    page = response.content.decode()
    where = f"{model.slug} on {gpu.slug}, preset {preset or 'none'}"
    answer = api["answer"]

    # The headline's pill, the section it leads and the page title say the API's answer.
    section = answer_section(page)
    assert attributes(section) == (answer["source"], answer["verdict"]), where
    pill = re.search(r'data-verdict="[^"]*">([^<]*)</span>', section).group(1)
    assert pill == answer["label"], where
    title = html.unescape(re.search(r"<title>(.*?) · klein-bench</title>", page).group(1))
    suffix = " (estimate)" if answer["source"] == "estimated" else ""
    assert title.endswith(f": {answer['label']}{suffix}"), (where, title)

    # The configuration the headline names is the API's.
    headline = html.unescape(re.search(r'<p class="headline">(.*?)</p>', section, re.S).group(1))
    configuration = answer["configuration"]
    if configuration and answer["source"] == "estimated":
        assert f"{configuration['preset']} ({_runtime(configuration)})" in headline, where

    # The measured table: each configuration's verdict is the API's for that summary.
    table_rows = re.findall(r'<tr data-verdict="([^"]*)">\s*<th scope="row"><span', page)
    measured = [s for s in api["summaries"] if not s["synthetic"]]
    if measured:
        assert sorted(table_rows[: len(measured)]) == sorted(s["verdict"] for s in measured)
    if answer["source"] == "measured" and not preset:
        standard = [
            s["verdict"]
            for s in measured
            if (s["configuration"]["width"], s["configuration"]["steps"])
            == (model.default_width, model.default_steps)
        ]
        assert answer["verdict"] in standard, where

    # The estimates table: each row's verdict is the API's for that configuration, in order.
    estimate_rows = re.findall(r'<tr data-verdict="([^"]*)"><th scope="row">', page)
    api_estimates = (api["estimate"] or {}).get("configurations", [])
    assert estimate_rows == [c["verdict"] or "" for c in api_estimates], where
    if (
        api["estimate"]
        and api["estimate"]["verdict"]
        and answer["source"] == "estimated"
        and not preset
    ):
        assert answer["verdict"] == api["estimate"]["verdict"], where
        lead = (
            api_estimates[api["estimate"]["lead"]] if api["estimate"]["lead"] is not None else None
        )
        if lead is not None:
            assert lead["verdict"] == answer["verdict"], "the lead row says the headline's verdict"

    # Measured beats estimated: nothing estimated where the card has a measurement (an
    # estimate that nothing fits rests on no configuration).
    if answer["source"] == "estimated" and configuration is not None:
        measured_families = {
            (
                s["configuration"]["runtime"],
                s["configuration"]["precision"],
                s["configuration"]["offload"],
            )
            for s in api["summaries"]
            if (s["configuration"]["width"], s["configuration"]["steps"])
            == (model.default_width, model.default_steps)
        }
        assert (
            configuration["runtime"],
            configuration["precision"],
            configuration["offload"],
        ) not in measured_families
    if preset and answer["source"] == "measured":
        assert configuration["preset"] == preset, where
    return answer["source"], answer["verdict"]


def _runtime(configuration: dict) -> str:
    return {"diffusers": "diffusers", "comfyui": "ComfyUI"}[configuration["runtime"]]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_card_answers_the_same_on_every_page_and_in_the_api(client, catalog, scenario):
    SCENARIOS[scenario](client)
    models = list(ImageModel.objects.all())
    gpus = list(Gpu.objects.all())
    for preset in PRESETS:
        cells = overview_cells(client, preset)
        assert cells, "the overview has cells"
        for model in models:
            entries = model_entries(client, model.slug, preset)
            for gpu in gpus:
                answer = check_pair(client, model, gpu, preset)
                if not model.is_test_model and not gpu.is_flagged:
                    assert cells[(model.slug, gpu.slug)] == answer, (model.slug, gpu.slug, preset)
                if gpu.slug in entries:
                    assert entries[gpu.slug] == answer[1], (model.slug, gpu.slug, preset)
                if not preset:
                    compare = client.get(f"/compare/{model.slug}/", {"gpu": gpu.slug})
                    card = compare.content.decode().split('<section class="compare-card', 1)[1]
                    assert attributes(card) == answer, (model.slug, gpu.slug)


def test_the_5070_recipe_page_never_contradicts_itself_on_an_empty_site(client, catalog):
    """Issue 19's report: the headline said "expected to fit in fp8-storage" while the
    table said "may not fit", and the API "fits" where the page said "may not fit"."""
    response = client.get("/check/flux-2-klein-4b/rtx-5070/")
    api = client.get("/api/v1/checks/flux-2-klein-4b/rtx-5070").json()

    text = visible_text(response)
    assert api["answer"] == {
        "source": "estimated",
        "verdict": estimates.MAY_NOT_FIT,
        "label": "may not fit",
        "preset": None,
        "configuration": {
            "runtime": "diffusers",
            "precision": "fp8-storage",
            "offload": "none",
            "width": 1024,
            "height": 1024,
            "steps": 4,
            "preset": "fp8-storage",
        },
    }
    assert (
        "4 steps may not fit estimate Estimate: may not fit; the best chance is fp8-storage "
        in text
    )
    fits = {
        (c["precision"], c["offload"]): (c["fit"], c["verdict"])
        for c in api["estimate"]["configurations"]
    }
    # The recipe's claim says a 12 GB card driving a display has about 10.5 GiB: the API
    # judges with it too.
    assert fits[("bf16", "model")] == ("tight", "may_not_fit")
    assert fits[("fp8-storage", "none")] == ("tight", "may_not_fit")
    assert (
        "bf16-model-offload (diffusers) BF16 with model CPU offload (diffusers) may not fit "
        "estimate Within the card's 12 GiB, but close to or above the about 10.5 GiB left when "
        "it drives a display"
    ) in text
