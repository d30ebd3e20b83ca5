"""`klein-bench doctor` looks at ComfyUI: asked to with --runtime comfyui, or when one
answers at the default address; the diffusers packages are then no problem."""

from __future__ import annotations

import pytest
from comfyui_harness import isolate
from comfyui_server import Behaviour, ComfyUIServer

from klein_bench import doctor, gpu
from klein_bench.backends.comfyui import client as comfyui_client


@pytest.fixture(autouse=True)
def machine(monkeypatch, tmp_path):
    """A machine with a GPU and the comfyui extra, without torch or diffusers."""
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(gpu, "gpus_or_reason", lambda: ([], "NVML was not found."))
    monkeypatch.setattr(gpu, "torch_info", lambda: gpu.TorchInfo(installed=False))
    monkeypatch.setattr(gpu, "package_version", lambda name: None)


def comfyui_findings(report: doctor.Report) -> list[tuple[str, str, str | None]]:
    return [(f.level, f.text, f.fix) for f in report.findings if f.topic == "ComfyUI"]


def test_doctor_checks_the_comfyui_it_is_pointed_at_and_all_its_problems():
    behaviour = Behaviour(
        version="0.9.1",
        files={"diffusion_models": [], "text_encoders": [], "vae": ["flux2-vae.safetensors"]},
        argv=["main.py", "--lowvram"],
        busy=True,
    )
    with ComfyUIServer(behaviour) as server:
        report = doctor.diagnose(runtime="comfyui", comfyui_url=server.url)

    found = comfyui_findings(report)
    assert found[0] == ("ok", f"ComfyUI 0.9.1 answers at {server.url} (PyTorch 2.9.1+cu128).", None)
    assert (
        "problem",
        "This ComfyUI is version 0.9.1, but FLUX.2 [klein] needs 0.9.2 or newer.",
        "Update it with `git pull && pip install -r requirements.txt` in your ComfyUI folder, "
        "then restart it.",
    ) in found
    assert ("ok", "ComfyUI runs on NVIDIA GeForce RTX 4090, 24.0 GiB.", None) in found
    assert any(
        level == "warning" and text.startswith("ComfyUI is busy") for level, text, _ in found
    )
    assert ("info", "Launch flags: --lowvram.", None) in found
    assert any(
        level == "problem"
        and text.startswith("ComfyUI cannot find the FLUX.2 [klein] 4B files it needs.")
        for level, text, _ in found
    )
    assert len(report.problems) == 2


def test_a_ready_comfyui_has_no_problems_and_missing_diffusers_is_only_a_fact():
    with ComfyUIServer() as server:
        report = doctor.diagnose(runtime="comfyui", comfyui_url=server.url)

    assert report.problems == []
    diffusers = next(f for f in report.findings if f.topic == "diffusers")
    assert diffusers.level == "info"
    assert diffusers.text.endswith(
        "Only the diffusers runtime needs it; ComfyUI runs the model in its own process."
    )
    assert (
        "ok",
        "ComfyUI lists flux-2-klein-4b-fp8.safetensors, qwen_3_4b.safetensors and "
        "flux2-vae.safetensors (runs the FP8 file unless told --comfyui-model).",
        None,
    ) in comfyui_findings(report)


def test_a_comfyui_answering_at_the_default_address_is_checked_without_asking(monkeypatch):
    with ComfyUIServer(Behaviour(pytorch_version="2.5.1+rocm6.2")) as server:
        monkeypatch.setattr(comfyui_client, "DEFAULT_URL", server.url)
        report = doctor.diagnose()

    assert any(
        text.startswith("ComfyUI runs on an AMD GPU") for _, text, _ in comfyui_findings(report)
    )


def test_no_comfyui_at_the_default_address_is_not_a_problem(monkeypatch):
    monkeypatch.setattr(comfyui_client, "DEFAULT_URL", "http://127.0.0.1:9")

    report = doctor.diagnose()

    assert comfyui_findings(report) == []
    assert next(f for f in report.findings if f.topic == "diffusers").level == "problem"


def test_a_comfyui_asked_for_but_not_running_is_a_problem_with_the_fix():
    report = doctor.diagnose(runtime="comfyui", comfyui_url="http://127.0.0.1:9")

    assert comfyui_findings(report) == [
        (
            "problem",
            "ComfyUI is not answering at http://127.0.0.1:9.",
            "Start it (`python main.py` in your ComfyUI folder) or pass its address with "
            "--comfyui-url.",
        )
    ]


def test_doctor_command_takes_the_runtime_and_url(cli):
    with ComfyUIServer() as server:
        result = cli("doctor", "--runtime", "comfyui", "--comfyui-url", server.url)

    assert result.exit_code == 0, result.output
    assert "ComfyUI 0.27.0 answers at" in result.stdout
    assert "No problems found." in result.stdout


def test_doctor_exits_1_when_the_comfyui_it_checks_has_a_problem(cli):
    result = cli("doctor", "--runtime", "comfyui", "--comfyui-url", "http://127.0.0.1:9")

    assert result.exit_code == 1, result.output
    assert "ComfyUI is not answering at http://127.0.0.1:9." in result.stdout
    assert "problem to fix." in result.stdout
