"""Reproductions: a payload's reproduction_of is checked, stored, and shown on the
original's page and in the API with whether it agrees."""

from __future__ import annotations

import pytest
from klein_bench.contract import wire

from benchmarks.models import Result, Submission, UsedNonce
from tests.contribute_support import _fresh_rate_limits, contribute  # noqa: F401
from tests.factories import result_payload, runs
from tests.pages_data import visible_text

pytestmark = pytest.mark.django_db


def posted(client, payload=None, key=None) -> int:
    response = contribute(client, key or wire.SigningKey.generate(), payload or result_payload())
    assert response.status_code == 201, response.content
    return response.json()["result_id"]


def test_a_reproduction_is_stored_and_listed_with_whether_it_agrees(client, catalog):
    original = posted(client)
    close = posted(
        client, result_payload(reproduction_of=original, timings={"runs": runs(2.1, 2.1, 2.1)})
    )
    far = posted(
        client, result_payload(reproduction_of=original, timings={"runs": runs(3.0, 3.0, 3.0)})
    )
    other_card = posted(
        client,
        result_payload(
            reproduction_of=original,
            gpu={"name": "NVIDIA GeForce RTX 5090", "memory_total_mb": 32607},
        ),
    )
    assert Result.objects.get(pk=close).reproduction_of_id == original

    text = visible_text(client.get(f"/r/{original}"))
    assert (
        f"Reproductions Runs of this same configuration sent with klein-bench reproduce "
        f"{original}." in text
    )
    assert f"#{close} RTX 4090 yes 2.1 s per image, 5% from the original's 2.0 s (agrees)" in text
    assert (
        f"#{far} RTX 4090 no 3.0 s per image, 50% from the original's 2.0 s (more than 10% apart)"
        in text
    )
    assert f"#{other_card} RTX 5090 not compared on another card (RTX 5090): not compared" in text
    assert f"Reproduces result #{original}" in visible_text(client.get(f"/r/{close}"))

    answer = client.get(f"/api/v1/results/{original}").json()["reproductions"]
    assert [(r["id"], r["gpu"], r["agrees"], r["apart"]) for r in answer] == [
        (close, "rtx-4090", True, pytest.approx(0.05)),
        (far, "rtx-4090", False, pytest.approx(0.5)),
        (other_card, "rtx-5090", None, None),
    ]
    assert client.get(f"/api/v1/results/{close}").json()["reproduction_of"] == original


def test_nobody_has_reproduced_it_yet_says_how(client, catalog):
    original = posted(client)
    text = visible_text(client.get(f"/r/{original}"))
    assert (
        "Nobody has reproduced this result yet. With the same card, anyone can: klein-bench "
        f"reproduce {original} --server http://testserver runs this configuration again"
    ) in text


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"reproduction_of": 999}, "there is no result 999 on this server to reproduce"),
        (
            {"configuration": {"precision": "fp8-storage", "preset": "fp8-storage"}},
            "result {id} ran flux-2-klein-4b in bf16-resident (diffusers, 1024x1024, 4 steps) "
            "under protocol klein4b-t2i-v1; a reproduction runs exactly that (klein-bench "
            "reproduce sets it up)",
        ),
        ({"reproduction_of": 0}, "must be at least 1"),
        ({"reproduction_of": "1"}, "must be a whole number or null"),
    ],
)
def test_a_reproduction_of_something_else_is_refused_and_nothing_is_stored(
    client, catalog, changes, why
):
    original = posted(client)
    payload = result_payload(reproduction_of=original)
    payload.update({k: v for k, v in changes.items() if k == "reproduction_of"})
    if "configuration" in changes:
        payload["configuration"].update(changes["configuration"])
    response = contribute(client, wire.SigningKey.generate(), payload)

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "envelope.payload.reproduction_of": why.format(id=original)
    }
    assert (Submission.objects.count(), UsedNonce.objects.count()) == (1, 1)
