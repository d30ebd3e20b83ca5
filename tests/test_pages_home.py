"""/: a short landing that explains the site and leads to /check/."""

from __future__ import annotations

import pytest

from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.pages_data import fill_rtx_4090, fill_tiny_on_cpu, visible_text

pytestmark = pytest.mark.django_db


def test_the_home_page_explains_the_site_and_links_to_every_check(client, catalog):
    fill_rtx_4090(client)
    fill_tiny_on_cpu(client)

    response = client.get("/")

    assert response.status_code == 200
    text = visible_text(response)
    assert text.startswith(
        "Will it run on my GPU? klein-bench answers three questions about an image model and a "
        "graphics card: does it run, how fast (seconds per image) and how much GPU memory it "
        "needs"
    )
    assert "3 results on 1 card so far" in text, "the test model's result is left out"
    page = response.content.decode()
    assert '<a class="button" href="/check/">See every GPU and model</a>' in page
    assert '<a href="/check/flux-2-klein-4b/rtx-5070/">' in page
    assert '<a href="/contribute">' in page


def test_an_address_that_is_no_page_gets_the_site_s_own_404(client, catalog):
    response = client.get("/checks/")

    assert response.status_code == 404
    assert visible_text(response) == (
        "Page not found There is no page at this address. Every GPU and model How to "
        "contribute a result"
    )


def test_the_card_picker_is_a_plain_get_form_that_leads_to_the_pair(client, catalog):
    page = client.get("/").content.decode()

    assert '<form class="picker" method="get" action="/pick">' in page
    picker = page.split('id="pick-gpu"')[1].split("</select>")[0]
    assert picker.startswith(
        ' name="gpu" required><option value="" selected disabled>Choose your card'
    )
    assert '<option value="rtx-5070">RTX 5070 12 GiB</option>' in picker
    assert "klein-tiny-random" not in page.split('id="pick-model"')[1].split("</select>")[0]
    response = client.get("/pick", {"model": "flux-2-klein-4b", "gpu": "rtx-5070"})
    assert (response.status_code, response["Location"]) == (302, "/check/flux-2-klein-4b/rtx-5070/")


def test_the_picker_without_a_card_explains_what_to_choose(client, catalog):
    response = client.get("/pick", {"model": "flux-2-klein-4b", "gpu": ""})

    assert response.status_code == 400
    assert (
        "with a standard, versioned benchmark. Choose your card to see whether it runs. Model "
    ) in visible_text(response)
    assert '<form class="picker" method="get" action="/pick">' in response.content.decode()


def test_the_picker_with_a_card_not_in_the_catalog_says_so(client, catalog):
    response = client.get("/pick", {"model": "flux-2-klein-4b", "gpu": "nope"})

    assert response.status_code == 400
    assert "There is no gpu “nope” in the catalog: choose your card from the list." in (
        visible_text(response)
    )


def test_in_debug_a_wrong_address_still_gets_the_site_s_own_404(client, catalog, settings):
    settings.DEBUG = True

    response = client.get("/checks/")

    assert response.status_code == 404
    assert visible_text(response).startswith("Page not found There is no page at this address.")
    assert b"URLconf" not in response.content
    assert client.get("/check").status_code == 301, "a missing slash is still redirected"


def test_the_technical_404_is_there_behind_its_own_setting(client, catalog, settings):
    settings.DEBUG = True
    settings.TECHNICAL_404 = True

    response = client.get("/checks/")

    assert response.status_code == 404
    assert b"URLconf" in response.content


def test_a_permalink_with_a_trailing_slash_leads_to_the_result(client, catalog):
    response = client.get("/r/1/")

    assert (response.status_code, response["Location"]) == (301, "/r/1")


def test_on_an_empty_site_the_home_page_does_not_claim_every_figure_is_measured(client, catalog):
    text = visible_text(client.get("/"))

    assert "Every figure comes from real runs" not in text
    assert (
        "Every measured figure comes from real runs: 0 results on 0 cards so far, each one "
        "signed and linked to its raw data. Until the first ones arrive, the pages show "
        "estimates, each labelled as one."
    ) in text
