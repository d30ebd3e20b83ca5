"""The consensus image: the rule on generated hashes, flags on stored results, and a
straying image that never moves a median."""

from __future__ import annotations

import pytest
from klein_bench.contract import consensus, wire

from benchmarks.models import ImageConsensus, Result, Summary
from benchmarks.services import consensus as service
from benchmarks.services.aggregation import reconcile
from tests.contribute_support import _fresh_rate_limits, contribute  # noqa: F401
from tests.factories import result_payload, runs
from tests.pages_data import visible_text

pytestmark = pytest.mark.django_db

HONEST = "c3c3e1e1f0f87c3e"


def flipped(phash: str, bits: int) -> str:
    """The hash with its lowest `bits` bits flipped."""
    return f"{int(phash, 16) ^ ((1 << bits) - 1):016x}"


def test_no_consensus_until_three_independent_contributors_agree():
    assert consensus.find({1: [HONEST], 2: [HONEST]}) is None
    assert consensus.find({1: [HONEST], 2: [HONEST], 3: [HONEST]}) == consensus.Consensus(
        HONEST, 3, 3
    )


def test_near_identical_images_are_one_cluster_and_the_largest_wins():
    votes = {
        1: [HONEST],
        2: [HONEST],
        3: [flipped(HONEST, 3)],
        4: [flipped(HONEST, 10)],
        5: [flipped(HONEST, 40)],
    }
    found = consensus.find(votes)
    assert (found.phash, found.agreeing, found.contributors) == (HONEST, 4, 5)
    assert not found.strays(flipped(HONEST, 10))
    assert found.strays(flipped(HONEST, 11))


def test_one_contributors_many_submissions_are_one_vote():
    wrong = flipped(HONEST, 32)
    votes = {1: [wrong] * 50, 2: [HONEST], 3: [HONEST], 4: [HONEST]}
    assert consensus.find(votes).phash == HONEST


def test_no_consensus_without_a_majority():
    other = flipped(HONEST, 32)
    votes = {1: [HONEST], 2: [HONEST], 3: [HONEST], 4: [other], 5: [other], 6: [other]}
    assert consensus.find(votes) is None


def test_hashes_that_are_not_hashes_do_not_vote():
    assert consensus.find({1: ["zz"], 2: [""], 3: [HONEST], 4: [HONEST]}) is None


def image(phash: str, seconds: float = 2.0) -> dict:
    return result_payload(
        evidence={"phash": phash, "thumbnail_png": None},
        timings={"runs": runs(seconds, seconds, seconds)},
    )


def test_a_straying_image_is_flagged_shown_and_never_moves_the_median(client, catalog):
    for _ in range(3):
        assert contribute(client, wire.SigningKey.generate(), image(HONEST)).status_code == 201
    wrong = flipped(HONEST, 30)
    # Before the consensus exists nothing can be judged; once it does, the earlier
    # straying result is flagged too.
    early = contribute(client, wire.SigningKey.generate(), image(wrong, 6.0)).json()["result_id"]
    # (The task queued after each commit; the tests' transactions never commit.)
    service.reconcile()
    stored = ImageConsensus.objects.get()
    assert (stored.phash, stored.n_agreeing, stored.n_contributors) == (HONEST, 3, 4)
    assert Result.objects.get(pk=early).image_differs
    late = contribute(client, wire.SigningKey.generate(), image(wrong, 6.0)).json()["result_id"]
    # Judged as it is stored, before any task ran on it.
    assert Result.objects.get(pk=late).image_differs
    reconcile()

    summary = Summary.objects.get()
    assert (summary.n_results, summary.seconds_median, summary.n_contributors) == (3, 2.0, 3)
    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4090/"))
    assert (
        f"#{late} bf16-resident (diffusers) 6.0 s 19.2 GiB image differs {consensus.STRAYS}" in text
    )
    page = visible_text(client.get(f"/r/{late}"))
    assert f"Accepted, kept apart from the medians. {consensus.STRAYS}" in page


def test_the_consensus_moves_when_the_votes_do_and_flags_follow(client, catalog):
    wrong = flipped(HONEST, 30)
    ids = [
        contribute(client, wire.SigningKey.generate(), image(h)).json()["result_id"]
        for h in (wrong, wrong, wrong, HONEST)
    ]
    service.reconcile()
    assert ImageConsensus.objects.get().phash == wrong
    assert Result.objects.get(pk=ids[3]).image_differs
    for pk in ids[:3]:
        Result.objects.filter(pk=pk).update(image_phash=HONEST)
    for _ in range(2):
        contribute(client, wire.SigningKey.generate(), image(HONEST))
    assert service.reconcile() == 1
    assert ImageConsensus.objects.get().phash == HONEST
    assert not Result.objects.filter(image_differs=True).exists()


def test_runtimes_and_precisions_have_consensus_images_of_their_own(client, catalog):
    comfy = {"runtime": "comfyui"}
    for _ in range(3):
        contribute(client, wire.SigningKey.generate(), image(HONEST))
    other = flipped(HONEST, 30)
    for _ in range(3):
        payload = image(other)
        payload["configuration"].update(comfy)
        contribute(client, wire.SigningKey.generate(), payload)
    service.reconcile()
    assert sorted(ImageConsensus.objects.values_list("runtime", "phash")) == [
        ("comfyui", other),
        ("diffusers", HONEST),
    ]
    assert not Result.objects.filter(image_differs=True).exists()


def test_the_api_gives_the_consensus_the_agent_checks_against(client, catalog):
    for _ in range(3):
        contribute(client, wire.SigningKey.generate(), image(HONEST))
    service.reconcile()
    answer = client.get("/api/v1/consensus/flux-2-klein-4b").json()
    assert answer == {
        "model": "flux-2-klein-4b",
        "threshold_bits": 10,
        "min_contributors": 3,
        "images": [
            {
                "protocol": "klein4b-t2i-v1",
                "runtime": "diffusers",
                "precision": "bf16",
                "phash": HONEST,
                "n_agreeing": 3,
                "n_contributors": 3,
                "computed_at": answer["images"][0]["computed_at"],
            }
        ],
    }
    missing = client.get("/api/v1/consensus/no-such-model")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "There is no model 'no-such-model' in the catalog."
