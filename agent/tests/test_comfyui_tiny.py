"""`--model klein-tiny-random --runtime comfyui`: tiny random-weight files written into
ComfyUI's model folders, run through the real graph, on a CPU ComfyUI too."""

from __future__ import annotations

import pytest
from comfyui_harness import benchmark, isolate, refusal
from comfyui_server import Behaviour

from klein_bench.backends.comfyui import runner as comfyui
from klein_bench.backends.comfyui import tiny as comfyui_tiny

pytest.importorskip("safetensors", reason="the tiny ComfyUI model needs klein-bench[comfyui]")

CPU = {"device_type": "cpu", "argv": ["main.py", "--cpu"]}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def model_dirs(tmp_path):
    return {
        folder: tmp_path / "models" / folder
        for folder in ("diffusion_models", "text_encoders", "vae")
    }


def tiny_behaviour(model_dirs, **kwargs) -> Behaviour:
    return Behaviour(files={}, model_dirs=model_dirs, **{**CPU, **kwargs})


def test_the_tiny_model_runs_on_a_cpu_comfyui_from_files_the_agent_wrote(model_dirs):
    payload, server, progress = benchmark(tiny_behaviour(model_dirs), model="klein-tiny-random")

    assert payload["model"] == "klein-tiny-random"
    assert payload["outcome"]["status"] == "success"
    assert (payload["configuration"]["width"], payload["configuration"]["height"]) == (64, 64)
    assert payload["gpu"] == {"device": "cpu", "name": ""}
    assert len(payload["timings"]["runs"]) == 5
    assert all(run["denoising_seconds"] > 0 for run in payload["timings"]["runs"])
    assert server.prompts[0]["1"]["inputs"]["unet_name"] == (
        "klein-bench/klein-tiny-random-flux2.safetensors"
    )
    assert server.prompts[0]["10"]["inputs"]["width"] == 64
    assert payload["kernels"]["model_file"] == ("klein-tiny-random-flux2.safetensors")
    written = sorted(
        p.relative_to(model_dirs["vae"].parent).as_posix()
        for p in model_dirs["vae"].parent.rglob("*.safetensors")
    )
    assert written == [
        "diffusion_models/klein-bench/klein-tiny-random-flux2.safetensors",
        "text_encoders/klein-bench/klein-tiny-random-clip-l.safetensors",
        "vae/klein-bench/klein-tiny-random-flux2-vae.safetensors",
    ]
    assert progress.notes[0].startswith("Wrote the tiny test model's files for ComfyUI: ")


def test_the_tiny_files_are_written_once_and_reused(model_dirs):
    benchmark(tiny_behaviour(model_dirs), model="klein-tiny-random")
    stamps = {p: p.stat().st_mtime_ns for p in model_dirs["vae"].parent.rglob("*.safetensors")}
    _, _, progress = benchmark(tiny_behaviour(model_dirs), model="klein-tiny-random")

    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert not any(note.startswith("Wrote the tiny") for note in progress.notes)


def test_the_tiny_files_have_the_layouts_comfyui_detects(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "flux2.safetensors"
    comfyui_tiny.write_file(path, comfyui_tiny.flux2_layout(), 1.0)

    with safe_open(str(path), framework="numpy") as opened:
        assert opened.get_tensor("txt_in.weight").shape == (256, 768)
        assert opened.get_tensor("single_blocks.1.linear1.weight").shape == (3 * 256 + 2 * 768, 256)
        assert opened.metadata()["klein_bench_tiny"] == comfyui_tiny.FORMAT
    assert comfyui_tiny.parameter_count(comfyui_tiny.flux2_layout()) == 6_620_672
    assert comfyui_tiny.parameter_count(comfyui_tiny.clip_l_layout()) == 123_650_304


def test_a_damaged_tiny_file_is_rewritten(model_dirs):
    benchmark(tiny_behaviour(model_dirs), model="klein-tiny-random")
    damaged = model_dirs["diffusion_models"] / "klein-bench" / comfyui_tiny.DIFFUSION_MODEL
    damaged.write_bytes(b"")

    payload, _, _ = benchmark(tiny_behaviour(model_dirs), model="klein-tiny-random")

    assert payload["outcome"]["status"] == "success"
    assert damaged.stat().st_size > 1_000_000


def test_a_damaged_file_that_comfyui_loads_is_a_setup_error(model_dirs, monkeypatch):
    # The agent's own check finds nothing wrong, ComfyUI's loader does.
    benchmark(tiny_behaviour(model_dirs), model="klein-tiny-random")
    (model_dirs["vae"] / "klein-bench" / comfyui_tiny.VAE).write_bytes(b"\0" * 4)
    monkeypatch.setattr(comfyui_tiny, "_is_current", lambda path: True)

    message, _ = refusal(tiny_behaviour(model_dirs), model="klein-tiny-random")

    assert message.startswith(
        "ComfyUI could not load klein-bench/klein-tiny-random-flux2-vae.safetensors "
        "(safetensors_rust.SafetensorError: Error while deserializing header: header too small)"
    )


def test_the_tiny_model_needs_comfyui_on_this_machine(model_dirs, monkeypatch):
    monkeypatch.setattr(comfyui, "is_local", lambda url: False)

    message, _ = refusal(tiny_behaviour(model_dirs), model="klein-tiny-random")

    assert message == (
        "The tiny test model is written into ComfyUI's model folders, so it needs a ComfyUI on "
        "this machine: start one here, or use the diffusers runtime for the tiny model."
    )


def test_a_comfyui_that_does_not_name_its_folders_cannot_take_the_tiny_model():
    message, _ = refusal(Behaviour(files={}, **CPU), model="klein-tiny-random")

    assert message == (
        "This ComfyUI does not say where its model folders are (GET /internal/folder_paths), so "
        "the tiny test model cannot be put there: update ComfyUI, or use the diffusers runtime "
        "for the tiny model."
    )


def test_the_tiny_model_still_needs_a_comfyui_that_knows_klein(model_dirs):
    message, _server = refusal(
        tiny_behaviour(model_dirs, version="0.9.1"), model="klein-tiny-random"
    )

    assert message.startswith("This ComfyUI is version 0.9.1, but FLUX.2 [klein] needs 0.9.2")
    assert not any(model_dirs["vae"].parent.rglob("*.safetensors"))
