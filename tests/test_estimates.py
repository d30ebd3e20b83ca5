"""benchmarks.services.estimates: peak memory and speed for pairs nobody measured, from the
architecture and the card, calibrated by other cards; and how far off it is on held-out
cards of generated data (perf/estimates.py, whose figures docs/estimates.md gives)."""

from __future__ import annotations

import pytest
from klein_bench.contract import fit
from klein_bench.contract.models import KLEIN_4B

from benchmarks.services import estimates as est
from perf import estimates as evaluation

MIB = 2**20
RESIDENT = est.Setup("diffusers", "bf16", "none", 1024, 1024, 4)
OFFLOAD = est.Setup("diffusers", "bf16", "model", 1024, 1024, 4)
FP8 = est.Setup("diffusers", "fp8-storage", "none", 1024, 1024, 4)


def card(slug="card", architecture="Ada Lovelace", vram_gib=24, tflops=100.0, bandwidth=1000.0):
    return est.Card(slug, slug, architecture, vram_gib * 1024, tflops, tflops * 2, bandwidth)


def test_memory_from_the_architecture_is_weights_at_their_precision_plus_activations():
    weights = {name: n / MIB for name, n in KLEIN_4B.architecture.parameters.items()}
    activations = 1024 * 1024 * fit.VAE_DECODE_BYTES_PER_PIXEL / MIB

    resident = est.formula_mib(KLEIN_4B, RESIDENT)
    fp8 = est.formula_mib(KLEIN_4B, FP8)
    offload = est.formula_mib(KLEIN_4B, OFFLOAD)

    overhead = fit.RUNTIME_OVERHEAD_MIB
    assert resident == pytest.approx(2 * sum(weights.values()) + activations + overhead)
    assert fp8 == pytest.approx(
        weights["transformer"] + weights["text_encoder"] + 2 * weights["vae"] + activations
        + overhead
    )  # fmt: skip
    assert offload == pytest.approx(2 * weights["text_encoder"] + activations + overhead)
    # Larger images need more activation memory.
    large = est.Setup("diffusers", "bf16", "none", 2048, 2048, 4)
    assert est.formula_mib(KLEIN_4B, large) > resident + 4000


def test_memory_is_calibrated_by_the_same_configuration_measured_on_any_card():
    measured = [
        est.Observation(card("a"), RESIDENT, 2.0, 19_600.0),
        est.Observation(card("b", "Blackwell"), RESIDENT, 1.5, 19_800.0),
        est.Observation(card("c"), FP8, 2.0, 9_000.0),
    ]

    memory = est.estimate_memory(KLEIN_4B, RESIDENT, measured, capacity_mib=24_576)

    assert memory.basis == est.MEASURED
    assert memory.cards == ("a", "b")
    assert memory.mib.value == pytest.approx(19_700.0)
    assert memory.mib.low < 19_600.0 < 19_800.0 < memory.mib.high
    assert memory.fit == est.FITS


@pytest.mark.parametrize(
    ("capacity_gib", "usable_gib", "fit"),
    [(24, None, est.FITS), (16, None, est.DOES_NOT_FIT), (19.5, None, est.TIGHT),
     (24, 19.5, est.TIGHT)],
)  # fmt: skip
def test_a_peak_is_compared_with_the_cards_memory_and_what_a_display_leaves(
    capacity_gib, usable_gib, fit
):
    measured = [est.Observation(card("a"), RESIDENT, 2.0, 19_600.0)]
    usable = usable_gib * 1024 if usable_gib else None

    memory = est.estimate_memory(KLEIN_4B, RESIDENT, measured, capacity_gib * 1024, usable)

    assert memory.fit == fit


def test_speed_scales_the_efficiency_of_cards_of_the_same_architecture():
    measured_card = card("measured", tflops=100.0)
    target = card("target", tflops=50.0)
    bound = est.bound_seconds(KLEIN_4B, measured_card, RESIDENT)
    measured = [est.Observation(measured_card, RESIDENT, bound / 0.5, None)]

    speed = est.estimate_speed(KLEIN_4B, target, RESIDENT, measured)

    assert speed.basis == est.SAME_ARCHITECTURE
    assert speed.cards == ("measured",)
    assert speed.efficiency.value == pytest.approx(0.5)
    target_bound = est.bound_seconds(KLEIN_4B, target, RESIDENT)
    assert speed.seconds.value == pytest.approx(target_bound / 0.5)
    assert speed.seconds.low < speed.seconds.value < speed.seconds.high


def test_speed_from_other_architectures_has_a_wider_range():
    measured_card = card("measured", "Blackwell")
    bound = est.bound_seconds(KLEIN_4B, measured_card, RESIDENT)
    other = [est.Observation(measured_card, RESIDENT, bound / 0.5, None)]
    same = [est.Observation(card("measured"), RESIDENT, bound / 0.5, None)]

    wide = est.estimate_speed(KLEIN_4B, card("target"), RESIDENT, other)
    narrow = est.estimate_speed(KLEIN_4B, card("target"), RESIDENT, same)

    assert (wide.basis, narrow.basis) == (est.OTHER_ARCHITECTURES, est.SAME_ARCHITECTURE)
    assert wide.seconds.high - wide.seconds.low > narrow.seconds.high - narrow.seconds.low


def test_with_no_measurement_the_estimate_comes_from_the_architecture_alone_and_says_so():
    found = est.estimate(KLEIN_4B, card("target"), RESIDENT, [])

    assert found.memory.basis == est.ARCHITECTURE_ONLY
    assert found.speed.basis == est.ARCHITECTURE_ONLY
    assert found.speed.efficiency == est.Range(*est.PRIOR_EFFICIENCY["none"])


def test_a_cards_own_measurements_never_estimate_it():
    target = card("target")
    own = [est.Observation(target, RESIDENT, 2.0, 19_600.0)]

    found = est.estimate(KLEIN_4B, target, RESIDENT, own)

    assert (found.memory.basis, found.speed.basis) == (est.ARCHITECTURE_ONLY,) * 2


@pytest.mark.parametrize(
    ("vram_gib", "verdict", "lead"),
    [(24, est.EXPECTED_TO_FIT, RESIDENT), (12, est.EXPECTED_TO_FIT, FP8),
     (8, est.NEEDS_OFFLOAD, OFFLOAD), (5, est.EXPECTED_NOT_TO_FIT, None)],
)  # fmt: skip
def test_the_pair_is_expected_to_fit_fully_resident_to_need_offload_or_not_to_fit(
    vram_gib, verdict, lead
):
    measured = [
        est.Observation(card("a"), RESIDENT, 2.0, 19_600.0),
        est.Observation(card("a"), OFFLOAD, 3.2, 6_500.0),
        est.Observation(card("a"), FP8, 2.1, 8_900.0),
    ]

    pair = est.estimate_pair(
        KLEIN_4B, card("target", vram_gib=vram_gib), [RESIDENT, OFFLOAD, FP8], measured
    )

    assert pair.verdict == verdict
    assert (pair.lead.setup if pair.lead else None) == lead
    no_speed = [e.setup for e in pair.estimates if e.speed is None]
    assert no_speed == [e.setup for e in pair.estimates if e.memory.fit == est.DOES_NOT_FIT]


def test_held_out_cards_of_generated_data_are_estimated_within_the_documented_error():
    levels = {name: errors.summary() for name, errors in evaluation.evaluate(10).items()}

    same = levels["speed, same architecture measured"]
    other = levels["speed, only other architectures measured"]
    memory = levels["memory, configuration measured elsewhere"]
    assert same["median_abs_error"] < 0.10 and same["range_coverage"] > 0.75
    assert other["median_abs_error"] < 0.20
    assert other["median_abs_error"] > same["median_abs_error"]
    assert memory["median_abs_error"] < 0.03 and memory["range_coverage"] > 0.9
    assert levels["fit verdict agrees with out of memory or not"]["range_coverage"] > 0.95
