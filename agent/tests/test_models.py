"""Every model the registry lists runs end to end on the CPU as its tiny variant, through
both runtimes, with its own protocol; and a new entry alone is runnable."""

from __future__ import annotations

import dataclasses

import pytest
from comfyui_harness import benchmark, isolate
from comfyui_server import Behaviour

from klein_bench.backends.comfyui import workflow
from klein_bench.contract import models
from klein_bench.contract.protocol import known_protocol
from klein_bench.contract.registry import tiny_variant
from klein_bench.progress import SilentProgress
from klein_bench.result import schema_errors

REAL = [m for m in models.MODELS.values() if not m.built_in]


def _diffusers(slug: str, runs: int = 5) -> tuple[dict, SilentProgress]:
    pytest.importorskip("diffusers", reason="the tiny pipelines need klein-bench[diffusers]")
    from klein_bench.backends.diffusers.backend import run_protocol

    progress = SilentProgress()
    payload = run_protocol(
        model=slug,
        preset_name="bf16-resident",
        runs=runs,
        gpu_index=None,
        progress=progress,
        salt=b"0" * 32,
    )
    return payload, progress


@pytest.fixture(scope="module")
def diffusers_runs() -> dict[str, tuple[dict, SilentProgress]]:
    """One run of each tiny variant the other tests do not run already (the 4B's is the
    session's tiny run)."""
    return {slug: _diffusers(slug) for slug in ("klein-base-tiny-random", "klein-9b-tiny-random")}


def test_every_model_has_its_own_protocols_a_tiny_variant_and_its_files():
    ids = [p.id for m in REAL for p in m.protocols]

    assert len(ids) == len(set(ids)), "a protocol belongs to one model"
    for entry in REAL:
        tiny = models.MODELS[entry.tiny]
        assert (tiny.built_in, tiny.tiny_of, tiny.protocols) == (True, entry.slug, entry.protocols)
        assert known_protocol(entry.protocol.id, entry.protocol.hash) == entry.protocol
        assert (
            entry.hf_repo
            and entry.comfyui
            and set(entry.comfyui.diffusion_models)
            == {
                "fp8",
                "bf16",
            }
        )
    assert [m.protocol.cfg for m in REAL] == [False, True, False, True]
    assert {m.slug: m.commercial_use for m in REAL} == {
        "flux-2-klein-4b": True,
        "flux-2-klein-base-4b": True,
        "flux-2-klein-9b": False,
        "flux-2-klein-base-9b": False,
    }


@pytest.mark.parametrize("slug", ["klein-base-tiny-random", "klein-9b-tiny-random"])
def test_a_tiny_variant_runs_its_models_protocol_through_diffusers(diffusers_runs, slug):
    payload, progress = diffusers_runs[slug]
    entry = models.MODELS[slug]
    protocol = entry.protocol
    work = entry.work(width=64, height=64, steps=protocol.steps)

    assert schema_errors(payload) == []
    assert payload["outcome"]["status"] == "success"
    assert payload["protocol"] == {"id": protocol.id, "hash": protocol.hash}
    assert payload["configuration"]["steps"] == protocol.steps
    assert payload["work"]["transformer_tflop"] == pytest.approx(work.transformer_flop / 1e12)
    # One tick a step (not a pass), the warm-up and five timed images.
    assert sum(1 for kind, _ in progress.events if kind == "advance") == 6 * protocol.steps
    for run in payload["timings"]["runs"]:
        assert run["text_encoding_seconds"] > 0 and run["denoising_seconds"] > 0


def test_the_base_variants_work_counts_both_passes_and_both_prompts(diffusers_runs):
    base, _ = diffusers_runs["klein-base-tiny-random"]
    distilled = models.KLEIN_TINY.work(width=64, height=64, steps=50)

    assert base["work"]["transformer_tflop"] == pytest.approx(2 * distilled.transformer_flop / 1e12)
    assert base["work"]["text_encoder_tflop"] == pytest.approx(
        2 * distilled.text_encoder_flop / 1e12
    )


@pytest.fixture
def model_dirs(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    return {
        folder: tmp_path / "models" / folder
        for folder in ("diffusion_models", "text_encoders", "vae")
    }


def _comfyui(model_dirs, slug: str):
    pytest.importorskip("safetensors", reason="the tiny ComfyUI model needs klein-bench[comfyui]")
    behaviour = Behaviour(
        files={}, model_dirs=model_dirs, device_type="cpu", argv=["main.py", "--cpu"]
    )
    return benchmark(behaviour, model=slug)


def test_the_base_variant_runs_the_templates_base_graph_through_comfyui(model_dirs):
    payload, server, _ = _comfyui(model_dirs, "klein-base-tiny-random")
    protocol = models.KLEIN_BASE_4B.protocol

    assert payload["outcome"]["status"] == "success", payload["outcome"]
    assert payload["protocol"]["id"] == protocol.id
    graph = server.prompts[0]
    assert graph[workflow.NEGATIVE]["class_type"] == "CLIPTextEncode"
    assert graph[workflow.NEGATIVE]["inputs"]["text"] == ""
    assert graph[workflow.GUIDER]["inputs"]["cfg"] == protocol.guidance_scale
    assert graph[workflow.SCHEDULER]["inputs"]["steps"] == 50
    assert len(payload["timings"]["runs"]) == 5


def test_the_9b_variant_runs_the_distilled_graph_through_comfyui(model_dirs):
    payload, server, _ = _comfyui(model_dirs, "klein-9b-tiny-random")

    assert payload["outcome"]["status"] == "success", payload["outcome"]
    assert payload["protocol"]["id"] == "klein9b-t2i-v1"
    assert server.prompts[0][workflow.NEGATIVE]["class_type"] == "ConditioningZeroOut"
    assert server.prompts[0][workflow.GUIDER]["inputs"]["cfg"] == 1.0


def test_a_new_entry_alone_is_runnable_on_the_cpu_as_its_tiny_variant(monkeypatch):
    protocol = dataclasses.replace(models.KLEIN_9B.protocol, id="klein-6b-t2i-v1", steps=3)
    entry = dataclasses.replace(
        models.KLEIN_9B, slug="flux-2-klein-6b", protocols=(protocol,), tiny="klein-6b-tiny"
    )
    tiny = tiny_variant(
        entry,
        slug="klein-6b-tiny",
        name="Klein 6B tiny",
        architecture=models.KLEIN_9B_TINY.architecture,
        sort_order=99,
    )
    monkeypatch.setitem(models.MODELS, entry.slug, entry)
    monkeypatch.setitem(models.MODELS, tiny.slug, tiny)

    payload, _ = _diffusers("klein-6b-tiny")

    assert payload["outcome"]["status"] == "success"
    assert payload["protocol"] == {"id": "klein-6b-t2i-v1", "hash": protocol.hash}
    assert payload["configuration"]["steps"] == 3
