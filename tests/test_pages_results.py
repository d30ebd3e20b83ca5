"""/results/: every result in a table, filtered, sorted and a page at a time, for people who
would rather not use the API."""

from __future__ import annotations

import re

import pytest

from benchmarks.models import Contributor
from tests.factories import make_result
from tests.pages_data import visible_text

pytestmark = pytest.mark.django_db


def listed(response) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/r/(\d+)">', response.content.decode())]


@pytest.fixture
def results(catalog):
    who = Contributor.objects.create(key_id="kb1_table", public_key="00" * 32)
    return {
        "fast": make_result(seconds=1.5, contributor=who, driver_version="580.95.05"),
        "slow": make_result(seconds=3.0, contributor=who, driver_version="575.64.03"),
        "5070": make_result(gpu="rtx-5070", seconds=2.4, contributor=who,
                            configuration={"runtime": "comfyui", "precision": "fp8-storage"}),
        "oom": make_result(outcome="out_of_memory", contributor=who),
        "tiny": make_result(model="klein-tiny-random", gpu="cpu", contributor=who),
        "withdrawn": make_result(status="withdrawn", contributor=who),
    }  # fmt: skip


def test_the_table_lists_counted_results_newest_first_without_the_test_model(client, results):
    response = client.get("/results/")

    assert response.status_code == 200
    assert listed(response) == [results[n].pk for n in ("oom", "5070", "slow", "fast")]
    text = visible_text(response)
    assert (
        f"#{results['5070'].pk} " in text
        and "FLUX.2 [klein] 4B RTX 5070 fp8-storage (ComfyUI) success 2.4 s" in text
    )
    assert "4 results Result Submitted Model Card Configuration" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"gpu": "rtx-5070"}, ["5070"]),
        ({"preset": "fp8-storage"}, ["5070"]),
        ({"runtime": "comfyui"}, ["5070"]),
        ({"driver": "575.64.03"}, ["slow"]),
        ({"outcome": "out_of_memory"}, ["oom"]),
        ({"model": "klein-tiny-random"}, ["tiny"]),
        ({"status": "all", "outcome": "success", "gpu": "rtx-4090"}, ["withdrawn", "slow", "fast"]),
        ({"sort": "fastest"}, ["fast", "5070", "slow", "oom"]),
        ({"sort": "slowest"}, ["slow", "5070", "fast", "oom"]),
        ({"sort": "oldest"}, ["fast", "slow", "5070", "oom"]),
    ],
)  # fmt: skip
def test_the_table_filters_and_sorts(client, results, query, expected):
    assert listed(client.get("/results/", query)) == [results[n].pk for n in expected]


def test_the_table_goes_a_page_at_a_time_keeping_the_filters(client, catalog):
    who = Contributor.objects.create(key_id="kb1_pages", public_key="00" * 32)
    made = [make_result(seconds=2.0, contributor=who).pk for _ in range(55)]

    first = client.get("/results/", {"gpu": "rtx-4090"})
    page = first.content.decode()
    second = client.get("/results/", {"gpu": "rtx-4090", "page": "2"})

    assert listed(first) == made[::-1][:50]
    assert listed(second) == made[::-1][50:]
    assert '<a href="?gpu=rtx-4090&amp;page=2" rel="next">Next page' in page
    assert "55 results, page 1 of 2" in visible_text(first)
    assert 'href="/api/v1/results?format=csv&amp;gpu=rtx-4090&amp;status=accepted"' in page


def test_a_filter_that_is_not_a_choice_is_a_400_saying_which(client, catalog):
    response = client.get("/results/", {"gpu": "nope"})

    assert response.status_code == 400
    assert "Some filters are not valid: Card: Select a valid choice." in visible_text(response)


def test_a_fresh_site_says_there_are_no_results_yet_and_how_to_add_one(client, catalog):
    text = visible_text(client.get("/results/"))

    assert text.endswith(
        "Show No results yet Nobody has submitted a result to this site yet. Add the first "
        "one: install the klein-bench agent and run one command on your GPU; without a GPU, "
        "klein-bench submit --model klein-tiny-random tries the whole path on any CPU in "
        "seconds."
    )


def test_filters_that_match_nothing_say_so_with_the_way_back(client, results):
    response = client.get("/results/", {"gpu": "rtx-3090"})

    assert visible_text(response).endswith(
        "No result matches these filters Try fewer filters, or show every result (withdrawn "
        "and rejected ones are under “Every status”)."
    )
    assert '<a href="/results/">show every result</a>' in response.content.decode()


def test_only_uncounted_results_say_where_they_are(client, catalog):
    make_result(model="klein-tiny-random", gpu="cpu")

    text = visible_text(client.get("/results/"))

    assert (
        "No counted results of a real model yet The results stored so far are of the test "
        "model, or not counted"
    ) in text
