"""The embeddable badge and the report form as Chromium shows them (JavaScript off)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from tests.pages_data import fill_rtx_5070

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_badge_renders_at_its_stated_size_on_the_check_page(site, page, screenshot):
    fill_rtx_5070(Client())
    svg = Client().get("/check/flux-2-klein-4b/rtx-5070/badge.svg").content
    stated = ET.fromstring(svg).attrib
    page.goto(f"{site.url}/check/flux-2-klein-4b/rtx-5070/")
    badge = page.locator("section.embed img")
    badge.scroll_into_view_if_needed()
    box = badge.bounding_box()
    assert box is not None
    assert (round(box["width"]), round(box["height"])) == (
        int(stated["width"]),
        int(stated["height"]),
    )
    # Drawn, not a broken-image icon: the browser decoded it at its own size.
    natural = badge.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert natural == [True, int(stated["width"]), int(stated["height"])]
    screenshot("badge-on-check-page")


def test_the_report_form_hides_its_trap_field_from_people(site, page):
    page.goto(f"{site.url}/contribute/report")
    assert page.get_by_label("Seconds per image").is_visible()
    trap = page.locator("#id_website")
    box = trap.bounding_box()
    # Off screen: a person never sees or tabs to it.
    assert box is None or box["x"] < -1000
