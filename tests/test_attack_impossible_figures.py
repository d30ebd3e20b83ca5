"""Attack: figures no card can produce. Times under the card's physical bound or over a
day, memory beyond the card, the machine or the address space, card memory no board of
that name has, numbers past what JSON and the database hold, and success with a failure
stage are refused with the field that is wrong, and store nothing (no flagged card
either); on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from klein_bench.contract import wire
from klein_bench.contract.figures import PEAK_VRAM_FIGURES

from tests.attack_support import (  # noqa: F401 - fixtures
    ATTACK_MARKS,
    platform_fixture,
    postgres_server_fixture,
    sqlite_server_fixture,
)
from tests.factories import result_payload, runs, signed_body
from tests.factories import signed_document as signed_document_for

pytestmark = ATTACK_MARKS
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PAYLOAD = "envelope.payload"
# FLUX.2 [klein] 4B at 1024x1024, 4 steps, 512 text tokens: 139.3 TFLOP in the
# transformer; an RTX 4090 computes BF16 at 165.2 TFLOPS dense, FP8 at 330.4.
RTX_4090_BF16_BOUND = 0.8431
RTX_4090_FP8_BOUND = 0.4216
HUGE = st.sampled_from([2.0**53, 2.0**53 + 2, 1e17, 1e300, 1.7976931348623157e308])


def refused(platform, payload: dict) -> dict[str, str]:
    """Post the payload; assert it is refused as invalid and stores nothing; its fields."""
    before = platform.rows()
    answer = platform.post(signed_body(payload, wire.SigningKey.generate()))
    assert answer.error == (400, "invalid_payload"), answer.body
    assert platform.rows() == before
    assert len(answer.body) < 4096, "an error answer echoes what was sent"
    return answer.json()["fields"]


@SETTINGS
@given(seconds=st.floats(1e-9, RTX_4090_BF16_BOUND - 1e-3))
def test_a_time_per_image_under_the_cards_physical_bound_is_refused(platform, seconds):
    fields = refused(platform, result_payload(timings={"runs": runs(seconds, 2.0, 2.0)}))

    why = fields[f"{PAYLOAD}.timings.runs.0.seconds"]
    assert why.endswith(
        "is faster than physics allows: the transformer's 139 TFLOP per image take at least "
        "0.843 s at the NVIDIA GeForce RTX 4090's dense BF16 peak of 165.2 TFLOPS"
    )


def test_fp8_compute_is_held_to_the_fp8_peak_and_bf16_to_the_bf16_peak(platform):
    seconds = (RTX_4090_FP8_BOUND + RTX_4090_BF16_BOUND) / 2
    timings = {"runs": runs(seconds, seconds, seconds)}
    fp8 = {"precision": "fp8-compute", "preset": None}

    accepted = platform.post(
        signed_body(result_payload(configuration=fp8, timings=timings), wire.SigningKey.generate())
    )
    fields = refused(platform, result_payload(timings=timings))

    assert accepted.status == 201, accepted.body
    assert set(fields) == {f"{PAYLOAD}.timings.runs.{i}.seconds" for i in range(3)}


@SETTINGS
@given(seconds=st.floats(86_400.001, 1e300) | HUGE)
def test_a_time_per_image_over_a_day_is_refused(platform, seconds):
    fields = refused(platform, result_payload(timings={"runs": runs(2.0, seconds, 2.0)}))

    assert fields[f"{PAYLOAD}.timings.runs.1.seconds"] == "must be at most 86400"


@SETTINGS
@given(figure=st.sampled_from(["baseline_device_mb", *PEAK_VRAM_FIGURES]), value=HUGE)
def test_a_gpu_memory_figure_past_the_address_space_is_refused(platform, figure, value):
    fields = refused(platform, result_payload(memory={figure: value}))

    assert fields == {f"{PAYLOAD}.memory.{figure}": "must be at most 536870912"}


@SETTINGS
@given(figure=st.sampled_from(["peak_rss_mb", "system_ram_mb"]), value=HUGE)
def test_a_host_memory_figure_past_the_address_space_is_refused(platform, figure, value):
    fields = refused(platform, result_payload(memory={figure: value}))

    assert fields == {f"{PAYLOAD}.memory.{figure}": "must be at most 4294967296"}


def test_a_peak_above_the_cards_memory_and_rss_above_the_machines_ram_are_refused(platform):
    memory = {"peak_reserved_mb": 26000.0, "peak_rss_mb": 70000.0, "system_ram_mb": 65536.0}

    fields = refused(platform, result_payload(memory=memory))

    assert fields == {
        f"{PAYLOAD}.memory.peak_reserved_mb": "26000 MiB is more than the card's memory, 24576 MiB",
        f"{PAYLOAD}.memory.peak_rss_mb": "70000 MiB is more than the machine's system RAM, "
        "65536 MiB",
    }


@pytest.mark.parametrize(
    ("memory_total_mb", "why"),
    [
        (0, "must be above 0"),
        (2.0**53, "must be at most 536870912"),
        (1e308, "must be at most 536870912"),
        (
            10**6,
            "1000000 MiB is not the memory of any NVIDIA GeForce RTX 4090: the catalog's has "
            "24576 MiB, and boards of one GPU differ by at most 2x (and 10% for how NVML "
            "counts)",
        ),
    ],
)
def test_card_memory_no_board_of_that_name_has_is_refused_not_minted(
    platform, memory_total_mb, why
):
    fields = refused(platform, result_payload(gpu={"memory_total_mb": memory_total_mb}))

    assert fields == {f"{PAYLOAD}.gpu.memory_total_mb": why}


def test_a_board_with_twice_the_catalogs_memory_is_a_flagged_variant(platform):
    payload = result_payload(gpu={"memory_total_mb": 49140})

    answer = platform.post(signed_body(payload, wire.SigningKey.generate()))

    assert (answer.status, answer.json()["gpu"]) == (201, "rtx-4090-48gb")
    flagged = platform.request("GET", "/api/v1/gpus").json()
    assert [g["is_flagged"] for g in flagged if g["slug"] == "rtx-4090-48gb"] == [True]


@pytest.mark.parametrize("stage", ["load", "denoising", "vae_decode", "other"])
def test_success_with_a_failure_stage_is_refused(platform, stage):
    fields = refused(platform, result_payload(outcome={"status": "success", "stage": stage}))

    assert fields == {
        f"{PAYLOAD}.outcome.stage": "must be null: a successful result did not stop in any stage"
    }


@pytest.mark.parametrize("count", [101, 2000])
def test_too_many_runs_are_refused_without_echoing_them(platform, count):
    fields = refused(platform, result_payload(timings={"runs": runs(*[2.0] * count)}))

    assert fields == {f"{PAYLOAD}.timings.runs": f"must hold at most 100 items, not {count}"}


def test_nul_in_any_string_is_refused(platform):
    payload = result_payload(outcome={"status": "success", "stage": None, "message": "a\x00"})
    payload["environment"]["os"] = "Linux\x00"

    fields = refused(platform, payload)

    why = "must not contain NUL characters"
    assert fields == {f"{PAYLOAD}.environment.os": why, f"{PAYLOAD}.outcome.message": why}


def test_an_unpaired_surrogate_has_no_canonical_form_and_is_refused(platform):
    text = wire.encode(signed_document_for(result_payload())).decode()
    body = text.replace('"os":"Linux"', '"os":"\\ud800"', 1).encode()
    before = platform.rows()

    answer = platform.post(body)

    assert answer.error == (400, "malformed_document")
    assert answer.json()["fields"] == {
        "envelope": "value cannot be canonicalized: input contains non-UTF-8 codepoints"
    }
    assert platform.rows() == before
    platform.no_tracebacks()
