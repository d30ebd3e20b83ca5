"""Models as data: every model the server knows is one registry entry; its protocols are its
own; its work is the registry's (guidance counted); its estimates need no measurement; and
a new entry alone is listed, validated and shown on its pages."""

from __future__ import annotations

import dataclasses

import pytest
from klein_bench import doctor, gpu
from klein_bench.contract import fit, models
from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.registry import tiny_variant

from benchmarks.models import ImageModel, Result
from benchmarks.services import estimates as est
from benchmarks.services.catalog import load_catalog
from tests.contribute_support import _fresh_rate_limits, contribute, key_fixture  # noqa: F401 - fixtures
from tests.factories import result_payload, runs

pytestmark = pytest.mark.django_db
PAYLOAD = "envelope.payload"


def _base_payload(seconds: float = 40.0, protocol=models.KLEIN_BASE_4B.protocol):
    return result_payload(
        model="flux-2-klein-base-4b",
        protocol={"id": protocol.id, "hash": protocol.hash},
        configuration={"steps": 50},
        timings={"runs": runs(*[seconds] * 5)},
    )


def test_the_catalog_is_the_registry(catalog):
    rows = {m.slug: m for m in ImageModel.objects.all()}

    assert list(rows) == list(models.MODELS)
    for slug, entry in models.MODELS.items():
        row = rows[slug]
        assert (row.name, row.licence, row.default_steps, row.default_guidance) == (
            entry.name,
            entry.licence,
            entry.protocol.steps,
            entry.protocol.guidance_scale,
        )
        assert row.is_test_model == entry.built_in
    assert rows["flux-2-klein-base-4b"].default_steps == 50
    assert rows["flux-2-klein-9b"].licence == "FLUX Non-Commercial License"


def test_a_result_whose_protocol_is_not_its_models_is_refused(client, catalog, key):
    payload = _base_payload(protocol=models.KLEIN_4B.protocol)

    response = contribute(client, key, payload)

    assert response.status_code == 400
    assert response.json()["fields"] == {
        f"{PAYLOAD}.protocol": '"klein4b-t2i-v1" is not a protocol of flux-2-klein-base-4b (its '
        "protocols: klein-base-4b-t2i-v1); run the model's own protocol with the agent"
    }
    assert not Result.objects.exists()


def test_a_base_4b_result_carries_twice_the_transformer_work_per_step(client, catalog, key):
    response = contribute(client, key, _base_payload(seconds=40.0))

    assert response.status_code == 201, response.json()
    result = Result.objects.get()
    distilled_per_step = models.KLEIN_4B.work(width=1024, height=1024, steps=1).transformer_flop
    assert result.transformer_tflop == pytest.approx(50 * 2 * distilled_per_step / 1e12)
    # The share of the card's peak is of that work: 3,482 TFLOP in 40 s on a 165.2 TFLOPS card.
    assert result.peak_share == pytest.approx(3482.0 / 40.0 / 165.2, rel=1e-3)


def test_the_physics_check_counts_the_base_models_guidance_passes(client, catalog, key):
    # One pass per step would take 10.5 s at the 4090's BF16 peak; two take 21.1 s.
    response = contribute(client, key, _base_payload(seconds=15.0))

    assert response.status_code == 400
    why = response.json()["fields"][f"{PAYLOAD}.timings.runs.0.seconds"]
    assert why == (
        "15 s is faster than physics allows: the transformer's 3.48e+03 TFLOP per image take at "
        "least 21.1 s at the NVIDIA GeForce RTX 4090's dense BF16 peak of 165.2 TFLOPS"
    )


def test_on_an_empty_site_the_9b_on_a_4090_is_estimated_to_fit_only_with_fp8_weights(catalog):
    from benchmarks.models import Gpu

    pair = est.for_pair(
        ImageModel.objects.get(slug="flux-2-klein-9b"), Gpu.objects.get(slug="rtx-4090")
    )

    fits = {e.setup.precision + "/" + e.setup.offload: e.memory.fit for e in pair.estimates}
    assert fits == {
        "bf16/none": est.DOES_NOT_FIT,
        "bf16/model": est.FITS,
        "fp8-storage/none": est.FITS,
        "fp8-compute/none": est.DOES_NOT_FIT,
    }
    assert (pair.verdict, pair.lead.setup.precision) == (est.EXPECTED_TO_FIT, "fp8-storage")
    resident = next(
        e for e in pair.estimates if e.setup.precision == "bf16" and e.setup.offload == "none"
    )
    # The weights alone: the 9.1B transformer and Qwen3-8B (about 15 GiB) in BF16.
    assert resident.memory.mib.value / 1024 == pytest.approx(34.8, abs=0.1)
    assert models.KLEIN_9B.architecture.text_encoder.parameters * 2 / 2**30 == pytest.approx(
        15.3, abs=0.1
    )


def test_the_9b_check_page_says_it_is_an_estimate_and_non_commercial(client, catalog):
    response = client.get("/check/flux-2-klein-9b/rtx-4090/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "FLUX.2 [klein] 9B" in text
    assert "FLUX.2 [klein] 9B (FLUX Non-Commercial License) at 1024x1024" in text
    assert "estimate" in text
    assert "FP8 weights, BF16 compute" in text


def test_doctor_and_the_estimates_say_one_verdict_for_the_same_card(catalog):
    from benchmarks.models import Gpu

    card = Gpu.objects.get(slug="rtx-4090")
    info = gpu.GpuInfo(
        index=0, name=card.name, uuid=None, memory_total_mb=float(card.vram_mb), memory_used_mb=0.0,
        compute_capability=card.compute_capability, drives_display=False, power_limit_w=None,
        pcie_generation=None, pcie_width=None, pcie_max_generation=None, pcie_max_width=None,
    )  # fmt: skip
    words = {v: k for k, v in fit.VERDICT_WORDS.items()}
    for slug in ("flux-2-klein-4b", "flux-2-klein-base-4b", "flux-2-klein-9b"):
        entry = models.MODELS[slug]
        pair = est.for_pair(ImageModel.objects.get(slug=slug), card)
        estimated = {(e.setup.precision, e.setup.offload): e.memory.fit for e in pair.estimates}
        for name in entry.presets:
            preset = PRESETS[name]
            verdict = doctor.preset_fit(info, preset, 64, entry).verdict
            assert words[verdict] == estimated[(preset.precision, preset.offload)], (slug, name)


def test_a_new_model_is_one_registry_entry(client, catalog, key, monkeypatch):
    protocol = dataclasses.replace(models.KLEIN_9B.protocol, id="klein-6b-t2i-v1", steps=6)
    entry = dataclasses.replace(
        models.KLEIN_9B,
        slug="flux-2-klein-6b",
        name="FLUX.2 [klein] 6B",
        protocols=(protocol,),
        sort_order=35,
        tiny="klein-6b-tiny-random",
    )
    tiny = tiny_variant(
        entry,
        slug="klein-6b-tiny-random",
        name="Klein 6B tiny random (test model)",
        architecture=models.KLEIN_9B_TINY.architecture,
        sort_order=95,
    )
    monkeypatch.setitem(models.MODELS, entry.slug, entry)
    monkeypatch.setitem(models.MODELS, tiny.slug, tiny)

    load_catalog()
    listed = [m["slug"] for m in client.get("/api/v1/models").json()]
    page = client.get("/check/flux-2-klein-6b/rtx-4090/")
    accepted = contribute(
        client,
        key,
        result_payload(
            model="flux-2-klein-6b",
            protocol={"id": protocol.id, "hash": protocol.hash},
            configuration={"steps": 6},
            timings={"runs": runs(5.0, 5.0, 5.0, 5.0, 5.0)},
        ),
    )

    assert {"flux-2-klein-6b", "klein-6b-tiny-random"} <= set(listed)
    assert page.status_code == 200
    assert "FLUX.2 [klein] 6B" in page.content.decode()
    assert accepted.status_code == 201, accepted.json()
    result = Result.objects.get()
    assert result.transformer_tflop == pytest.approx(
        entry.work(width=1024, height=1024, steps=6).transformer_flop / 1e12
    )
