"""Comparability classes, independent contributors and the "reproduced" mark: only
protocol-exact results make a median, each contributor counts once."""

from __future__ import annotations

import pytest
from klein_bench.contract import comparability, wire

from benchmarks.models import COUNTED, Result, Summary, is_counted
from benchmarks.services import group_stats
from benchmarks.services.aggregation import reconcile
from tests.contribute_support import _fresh_rate_limits, contribute  # noqa: F401
from tests.factories import result_payload, runs, signed_body
from tests.pages_data import visible_text

pytestmark = pytest.mark.django_db


def classify(**overrides):
    return comparability.classify(result_payload(**overrides))


def test_the_standard_protocol_in_a_standard_preset_is_protocol_exact():
    assert classify() == ("protocol-exact", [])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"telemetry": {"power_limit_share": 0.7, "capped": True}},
            "power limit at 70% of the card's default",
        ),
        (
            {"kernels": None, "environment": {"attention": "sage"}},
            "attention kernel sage, not PyTorch's SDPA",
        ),
        (
            {"configuration": {"width": 512, "height": 512}},
            "512x512 at 4 steps, not the protocol's 1024x1024 at 4 steps",
        ),
        (
            {"configuration": {"offload": "sequential", "preset": None}},
            "bf16 with sequential offload is not a standard preset",
        ),
        (
            {"environment": {"runtime_flags": ["--lowvram", "--preview-method"]}},
            "launched with --lowvram",
        ),
        ({"gpu": {"mig": True}}, "a MIG slice of the card, not the whole card"),
    ],
)
def test_other_settings_make_a_result_same_stack_and_say_which(overrides, reason):
    assert classify(**overrides) == ("same-stack", [reason])


def test_comfyuis_fp8_matmul_flag_is_standard_for_fp8_compute_only():
    flags = {"runtime_flags": ["--fast"]}
    fp8 = {"precision": "fp8-compute", "preset": "fp8-compute"}
    assert classify(configuration=fp8, environment=flags) == ("protocol-exact", [])
    assert classify(environment=flags) == ("same-stack", ["launched with --fast"])


def test_the_query_and_the_row_rule_for_what_counts_agree(catalog):
    from tests.factories import make_result

    cases = [
        ("accepted", "protocol-exact", False),
        ("accepted", "same-stack", False),
        ("accepted", "protocol-exact", True),
        ("withdrawn", "protocol-exact", False),
    ]
    made = {
        make_result(status=status, comparability=kind, image_differs=differs).pk: (
            status,
            kind,
            differs,
        )
        for status, kind, differs in cases
    }
    counted = set(Result.objects.filter(COUNTED).values_list("pk", flat=True))
    assert counted == {pk for pk, row in made.items() if is_counted(*row)}
    assert len(counted) == 1


def test_a_same_stack_result_is_stored_labelled_and_never_moves_the_median(client, catalog):
    for _ in range(3):
        assert contribute(client, wire.SigningKey.generate()).status_code == 201
    capped = result_payload(
        timings={"runs": runs(9.0, 9.0, 9.0)},
        telemetry={"power_limit_share": 0.5, "capped": True},
    )
    response = contribute(client, wire.SigningKey.generate(), capped)
    assert response.status_code == 201
    reconcile()

    stored = Result.objects.get(pk=response.json()["result_id"])
    assert (stored.comparability, stored.deviations, stored.summarized) == (
        "same-stack",
        ["power limit at 50% of the card's default"],
        False,
    )
    summary = Summary.objects.get()
    assert (summary.n_results, summary.n_contributors, summary.seconds_median) == (3, 3, 2.0)

    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4090/"))
    assert (
        "Results kept apart from the medians Signed agent runs that the figures above leave "
        "out" in text
    )
    assert (
        f"#{stored.pk} bf16-resident (diffusers) 9.0 s 19.2 GiB same stack, other settings "
        "other settings: power limit at 50% of the card's default." in text
    )
    page = visible_text(client.get(f"/r/{stored.pk}"))
    assert (
        "Accepted, kept apart from the medians. other settings: power limit at 50% of the "
        "card's default." in page
    )
    assert (
        "Comparability same stack, other settings: power limit at 50% of the card's default" in page
    )
    listed = client.get(f"/api/v1/results/{stored.pk}").json()
    assert (listed["comparability"], listed["deviations"]) == (
        "same-stack",
        ["power limit at 50% of the card's default"],
    )


def row(pk: int, contributor: int, seconds: float, card: str = "") -> dict:
    return {
        "id": pk,
        "contributor_id": contributor,
        "gpu_uuid_hash": card,
        "seconds_median": seconds,
    }


def test_keys_that_measured_the_same_card_are_one_independent_contributor():
    rows = [
        row(1, 10, 2.0, "aa"),
        row(2, 11, 2.0, "aa"),
        row(3, 12, 2.0, "bb"),
        row(4, 12, 2.0, ""),
    ]
    assert group_stats.independent(rows) == {1: 10, 2: 10, 3: 12, 4: 12}


def test_a_rotated_key_on_the_same_card_counts_once_in_a_summary(client, catalog):
    card = {"uuid_hash": "0123456789abcdef"}
    for _ in range(2):
        body = signed_body(result_payload(gpu=card), wire.SigningKey.generate())
        assert client.post("/contribute", body, content_type="application/json").status_code == 201
    reconcile()
    summary = Summary.objects.get()
    assert (summary.n_results, summary.n_contributors) == (2, 1)


@pytest.mark.parametrize(
    ("medians", "agreeing", "reproduced"),
    [
        ({1: [2.0], 2: [2.1], 3: [1.9]}, 3, True),
        # One contributor's many results count once.
        ({1: [2.0, 2.0, 2.0, 2.0, 2.0]}, 1, False),
        ({1: [2.0], 2: [2.05], 3: [3.0]}, 2, False),
        # A contributor's own median is what is compared: 2.0 of 1.0, 2.0, 3.0.
        ({1: [2.0], 2: [2.0], 3: [1.0, 2.0, 3.0]}, 3, True),
    ],
)
def test_a_median_is_reproduced_when_three_independent_contributors_agree_within_ten_percent(
    medians, agreeing, reproduced
):
    rows = []
    for contributor, values in medians.items():
        rows += [
            row(len(rows) + 1, contributor, value) | {"outcome": "success"} for value in values
        ]
    for r in rows:
        r.update(
            failed_stage="",
            energy_joules_per_image=None,
            **{f: None for f in group_stats.MEMORY_FIGURES},
            **{f: "" for f in group_stats.VERSION_FIELDS.values()},
        )
    computed = group_stats.exact(rows, "none")
    assert (computed.values["n_agreeing"], computed.values["reproduced"]) == (
        agreeing,
        reproduced,
    )
