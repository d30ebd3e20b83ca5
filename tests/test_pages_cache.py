"""Pages and plots are cached under their summaries' version: a summary change is a new
page and a redrawn plot, and a failing cache costs nothing but speed."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from klein_bench.contract import wire

from benchmarks.models import Gpu, ImageModel, Summary
from benchmarks.services.aggregation import reconcile
from checkpages import plots
from checkpages.cache import key
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import result_payload, runs
from tests.pages_data import around, fill_rtx_4090, post, visible_text

pytestmark = pytest.mark.django_db

PAGE = "/check/flux-2-klein-4b/rtx-4090/"


def pair_key() -> str:
    model = ImageModel.objects.get(slug="flux-2-klein-4b")
    gpu = Gpu.objects.get(slug="rtx-4090")
    return key("pair", model.pk, gpu.pk, Summary.objects.for_pair(model, gpu).version())


@pytest.fixture
def drawings(monkeypatch):
    """Counts the speed plots actually drawn."""
    drawn = []
    draw = plots.seconds_distribution

    def counting(*args, **kwargs):
        drawn.append(args[0])
        return draw(*args, **kwargs)

    monkeypatch.setattr(plots, "seconds_distribution", counting)
    return drawn


def test_a_cached_page_is_served_without_touching_the_database(
    client, catalog, django_assert_num_queries
):
    fill_rtx_4090(client)
    first = client.get(PAGE)

    with django_assert_num_queries(0):
        again = client.get(PAGE)

    assert again.content == first.content


def test_a_new_result_makes_a_new_page_and_redraws_the_plot(client, catalog, drawings):
    fill_rtx_4090(client)
    assert "from 3 results by 3 contributors" in visible_text(client.get(PAGE))
    client.get(PAGE)
    assert len(drawings) == 1

    post(client, result_payload(timings={"runs": runs(*around(2.2))}), wire.SigningKey.generate())
    reconcile()

    assert "from 4 results by 4 contributors" in visible_text(client.get(PAGE))
    assert len(drawings) == 2


def test_a_plot_outlives_its_page_in_the_cache_until_the_summary_changes(client, catalog, drawings):
    fill_rtx_4090(client)
    client.get(PAGE)

    cache.delete(pair_key())
    client.get(PAGE)

    assert len(drawings) == 1


def test_pages_render_in_full_when_the_cache_fails(client, catalog, monkeypatch, drawings):
    fill_rtx_4090(client)

    def broken(*args, **kwargs):
        raise ConnectionError("cache is down")

    monkeypatch.setattr(cache, "get", broken)
    monkeypatch.setattr(cache, "set", broken)

    for url in ("/check/", "/check/flux-2-klein-4b/", PAGE):
        assert client.get(url).status_code == 200
    assert "Runs fully on the GPU in BF16" in visible_text(client.get(PAGE))
    assert len(drawings) == 2, "drawn each time, since nothing could be kept"


def test_the_overview_changes_when_a_summary_does(client, catalog):
    assert "RTX 4090 24 GiB unknown" in visible_text(client.get("/check/"))

    fill_rtx_4090(client)

    assert "RTX 4090 24 GiB runs 1.9 s" in visible_text(client.get("/check/"))


def test_a_renamed_card_is_shown_under_its_new_name_at_once(client, catalog):
    fill_rtx_4090(client)
    client.get(PAGE)
    Gpu.objects.filter(slug="rtx-4090").update(name="NVIDIA GeForce RTX 4090 (renamed)")
    gpu = Gpu.objects.get(slug="rtx-4090")
    gpu.save()

    assert "RTX 4090 (renamed)" in visible_text(client.get(PAGE))
