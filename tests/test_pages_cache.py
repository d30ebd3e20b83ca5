"""Pages are cached until the data changes and plots until what they draw does; a failing
cache costs nothing but speed; answers carry an ETag and may be kept by a proxy."""

from __future__ import annotations

import pytest
from django.test import override_settings
from klein_bench.contract import wire

from benchmarks.caching import data_changed
from benchmarks.models import Gpu
from benchmarks.services.aggregation import reconcile
from checkpages import plots, views
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - autouse fixture
from tests.factories import result_payload, runs
from tests.pages_data import around, fill_rtx_4090, post, visible_text
from tests.processes import closed_port

pytestmark = pytest.mark.django_db

PAGE = "/check/flux-2-klein-4b/rtx-4090/"


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


def test_a_plot_outlives_its_page_in_the_cache_until_what_it_draws_changes(
    client, catalog, drawings
):
    fill_rtx_4090(client)
    first = client.get(PAGE)

    data_changed()  # say, another card's summary
    again = client.get(PAGE)

    assert again.content == first.content
    assert len(drawings) == 1


def test_pages_render_in_full_while_the_cache_is_unreachable(client, catalog, drawings):
    fill_rtx_4090(client)
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"IGNORE_EXCEPTIONS": True},
        }
    }

    with override_settings(CACHES=unreachable):
        for url in ("/check/", "/check/flux-2-klein-4b/", PAGE, PAGE):
            assert client.get(url).status_code == 200
        assert "Runs fully on the GPU in BF16" in visible_text(client.get(PAGE))
        assert client.get("/healthz").json()["checks"]["cache"] == {
            "ok": False,
            "backend": "RedisCache",
            "error": "ConnectionError",
        }
    assert len(drawings) == 3, "drawn each time, since nothing could be kept"


def test_pages_carry_an_etag_and_may_be_kept_by_a_proxy_for_a_minute(client, catalog):
    fill_rtx_4090(client)

    for url in ("/check/", "/check/flux-2-klein-4b/", PAGE):
        first = client.get(url)
        assert first["Cache-Control"] == "max-age=60, public", url
        assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304, url


def test_the_overview_changes_when_a_summary_does(client, catalog):
    assert "RTX 4090 24 GiB expected to fit estimate" in visible_text(client.get("/check/"))

    fill_rtx_4090(client)

    assert "RTX 4090 24 GiB runs 1.9 s" in visible_text(client.get("/check/"))


def test_a_renamed_card_is_shown_under_its_new_name_at_once(client, catalog):
    fill_rtx_4090(client)
    client.get(PAGE)
    Gpu.objects.filter(slug="rtx-4090").update(name="NVIDIA GeForce RTX 4090 (renamed)")
    gpu = Gpu.objects.get(slug="rtx-4090")
    gpu.save()

    assert "RTX 4090 (renamed)" in visible_text(client.get(PAGE))


def test_a_plot_is_not_drawn_again_when_only_its_words_change(drawings):
    groups = [plots.Distribution("bf16-resident", [1.9, 2.0, 2.1], 2.0, 1.92, 2.08, "#1a7f37")]

    first = views._plot(plots.seconds_distribution, "speed", groups, alt="Over 3 results.")
    again = views._plot(plots.seconds_distribution, "speed", groups, alt="Over 4 <results>.")

    assert len(drawings) == 1
    assert '<title id="speed-title">Over 3 results.</title>' in first
    assert again == first.replace("Over 3 results.", "Over 4 &lt;results&gt;.")
