"""`klein-bench doctor`: useful on a CPU-only machine, and every problem has its fix."""

from __future__ import annotations

import json

import pytest

from klein_bench import doctor, gpu
from klein_bench.backends.comfyui import client as comfyui_client
from klein_bench.contract import fit
from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.models import KLEIN_4B, KLEIN_9B


@pytest.fixture(autouse=True)
def no_comfyui(monkeypatch):
    """No ComfyUI at the default address, whatever runs on this machine."""
    monkeypatch.setattr(comfyui_client, "DEFAULT_URL", "http://127.0.0.1:9")


def _card(**overrides) -> gpu.GpuInfo:
    values = {
        "index": 0,
        "name": "NVIDIA GeForce RTX 5070",
        "uuid": "GPU-00000000-0000-0000-0000-000000000000",
        "memory_total_mb": 12227.0,
        "memory_used_mb": 1100.0,
        "compute_capability": "12.0",
        "drives_display": True,
        "power_limit_w": 250.0,
        "pcie_generation": 1,
        "pcie_width": 16,
        "pcie_max_generation": 5,
        "pcie_max_width": 16,
    }
    values.update(overrides)
    return gpu.GpuInfo(**values)


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A pretend machine: GPUs, driver, torch build and package versions."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    state = {
        "gpus": [_card()],
        "driver": ("575.64", "12.9"),
        "torch": gpu.TorchInfo(
            installed=True,
            version="2.5.1+cu124",
            cuda="12.4",
            cuda_available=True,
            device_count=1,
            arch_list=["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
        ),
        "versions": {"diffusers": "0.42.1", "transformers": "5.23.0"},
    }
    monkeypatch.setattr(gpu, "gpus_or_reason", lambda: (state["gpus"], None))
    monkeypatch.setattr(gpu, "driver_versions", lambda: state["driver"])
    monkeypatch.setattr(gpu, "torch_info", lambda: state["torch"])
    real_version = gpu.package_version
    monkeypatch.setattr(
        gpu, "package_version", lambda name: state["versions"].get(name, real_version(name))
    )
    return state


def _finding(report, topic_start: str, text_part: str):
    for finding in report.findings:
        if finding.topic.startswith(topic_start) and text_part in finding.text:
            return finding
    raise AssertionError(f"no finding about {text_part!r}: {report.findings}")


def test_doctor_on_this_machine_exits_cleanly_with_findings(cli):
    result = cli("doctor")

    assert result.exit_code == 0, result.output
    assert "Software and system" in result.stdout
    assert "Findings" in result.stdout
    assert "Traceback" not in result.output


def test_doctor_without_nvml_says_why_and_what_still_runs(cli, monkeypatch):
    reason = "NVIDIA's NVML library was not found, so no NVIDIA driver is installed: ..."
    monkeypatch.setattr(gpu, "gpus_or_reason", lambda: ([], reason))

    report = doctor.diagnose()

    assert report.gpus == []
    assert report.fits == {}
    finding = _finding(report, "GPU", "NVML library was not found")
    assert finding.level == "info"


def test_doctor_json_is_machine_readable(cli):
    result = cli("doctor", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"gpus", "torch", "diffusers", "system_ram_gb", "findings", "fits"} <= set(data)


def test_doctor_json_with_a_problem_still_prints_it_and_exits_1(cli, machine):
    result = cli("doctor", "--json")

    assert result.exit_code == 1, result.output
    levels = [finding["level"] for finding in json.loads(result.stdout)["findings"]]
    assert "problem" in levels


def test_doctor_says_ram_and_disk_in_gib(cli, machine, monkeypatch):
    monkeypatch.setattr(doctor.measure, "system_ram_mb", lambda: 8 * 1024)

    report = doctor.diagnose()
    result = cli("doctor")

    assert _finding(report, "memory", "8 GiB of system RAM: loading FLUX.2 [klein] 4B (~15 GiB")
    assert " GB " not in result.stdout.replace("GB/s", "")
    assert "GiB in " in result.stdout, "free disk"


def test_a_blackwell_card_without_sm_120_kernels_gets_the_exact_pip_command(machine):
    report = doctor.diagnose()

    finding = _finding(report, "GPU 0", "has no kernels for the NVIDIA GeForce RTX 5070 (sm_120)")
    assert finding.level == "problem"
    assert finding.fix == (
        "pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu128"
    )
    assert _finding(report, "attention", "FlashAttention-2 crashes on Blackwell")


def test_a_torch_build_with_the_kernels_is_not_a_problem(machine):
    machine["torch"].arch_list = ["sm_80", "sm_90", "sm_100", "sm_120"]

    report = doctor.diagnose()

    assert [f for f in report.findings if "has no kernels" in f.text] == []


def test_a_cpu_only_torch_on_a_gpu_machine_is_a_problem_with_the_cuda_install(machine):
    machine["torch"] = gpu.TorchInfo(installed=True, version="2.13.0+cpu", cuda=None)

    report = doctor.diagnose()

    finding = _finding(report, "torch", "is a CPU-only build and cannot use your GPU")
    assert finding.fix == (
        "pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128"
    )


def test_missing_torch_gets_the_install_command_for_the_driver(machine):
    machine["gpus"] = [_card(name="NVIDIA GeForce RTX 3090", compute_capability="8.6")]
    machine["driver"] = ("550.1", "12.4")
    machine["torch"] = gpu.TorchInfo(installed=False)

    report = doctor.diagnose()

    assert _finding(report, "torch", "not installed").fix == (
        "pip install --upgrade torch --index-url https://download.pytorch.org/whl/cu124"
    )


def test_old_diffusers_gets_the_upgrade_command(machine):
    machine["versions"]["diffusers"] = "0.35.2"

    report = doctor.diagnose()

    finding = _finding(report, "diffusers", "has no Flux2KleinPipeline")
    assert finding.level == "problem"
    assert finding.fix == gpu.DIFFUSERS_UPGRADE


def test_missing_diffusers_gets_the_extra(machine):
    machine["versions"] = {"diffusers": None}

    report = doctor.diagnose()

    assert (
        _finding(report, "diffusers", "not installed").fix == 'pip install "klein-bench[diffusers]"'
    )


def test_weights_found_in_the_hf_cache_are_reported_with_their_revision(machine, tmp_path):
    revision = "5e67da950fce4a097bc150c22958a05716994cea"
    repo = tmp_path / "hf" / "models--black-forest-labs--FLUX.2-klein-4B"
    snapshot = repo / "snapshots" / revision
    for component in ("transformer", "text_encoder", "vae", "tokenizer", "scheduler"):
        (snapshot / component).mkdir(parents=True)
    for component in ("transformer", "text_encoder", "vae"):
        (snapshot / component / "model.safetensors").write_bytes(b"")
    (snapshot / "model_index.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)

    report = doctor.diagnose()

    assert report.weights.revision == revision
    assert _finding(report, "weights", f"at revision {revision}").level == "ok"


def test_missing_weights_point_at_download_and_synthetic(machine):
    report = doctor.diagnose()

    finding = _finding(report, "weights", "are not in the Hugging Face cache")
    assert "--download" in finding.fix
    assert "--synthetic" in finding.fix


def test_presets_that_fit_come_from_free_vram():
    card = _card(memory_total_mb=24564.0, memory_used_mb=400.0, drives_display=False)

    verdicts = {p: doctor.preset_fit(card, PRESETS[p], 64, KLEIN_4B).verdict for p in PRESETS}

    assert verdicts == {
        "bf16-resident": "fits",
        "bf16-model-offload": "fits",
        "fp8-storage": "fits",
        "fp8-compute": "fits",
    }


def test_a_display_eats_into_what_fits():
    card = _card(memory_total_mb=12227.0, memory_used_mb=1100.0, drives_display=True)

    fits = {p: doctor.preset_fit(card, PRESETS[p], 64, KLEIN_4B) for p in PRESETS}

    # 12 GiB less the display's 1.1: the offloaded and FP8-stored pipelines (~10 GiB) are
    # within the card but not safely beside the display; BF16 resident is over the card.
    assert {p: f.verdict for p, f in fits.items()} == {
        "bf16-resident": "does not fit",
        "bf16-model-offload": "tight",
        "fp8-storage": "tight",
        "fp8-compute": "does not fit",
    }
    assert "GiB used by the display and other programs" in fits["fp8-storage"].note


def test_offload_with_little_system_ram_is_tight():
    card = _card(memory_total_mb=16311.0, memory_used_mb=300.0, drives_display=False)

    fit = doctor.preset_fit(card, PRESETS["bf16-model-offload"], 16, KLEIN_4B)

    assert fit.verdict == "tight"
    # The BF16 pipeline (14.9 GiB) held in RAM, and some room besides.
    assert "offload wants ~23 GiB of system RAM" in fit.note


def test_doctor_prints_the_gpu_and_preset_tables_and_exits_1_on_a_problem(cli, machine):
    result = cli("doctor")

    assert result.exit_code == 1, result.output
    assert "1 problem to fix." in result.stdout
    assert "NVIDIA GeForce RTX 5070" in result.stdout
    assert "Presets for FLUX.2 [klein] 4B" in result.stdout
    assert "fix: pip install --upgrade torch --index-url" in result.stdout
    assert "problem" in result.stdout


def test_a_cpu_only_torch_without_a_gpu_is_flagged_with_the_cuda_install(machine, cli):
    machine["gpus"] = []
    machine["torch"] = gpu.TorchInfo(installed=True, version="2.13.0+cpu", cuda=None)

    report = doctor.diagnose()
    result = cli("doctor")

    finding = _finding(report, "torch", "is a CPU-only build: only the tiny test models")
    assert finding.level == "warning"
    assert finding.fix == (
        "pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu128"
    )
    assert "No problems found" not in result.stdout
    assert "No NVIDIA GPU is usable here" in result.stdout
    # --synthetic needs a GPU, so it is not offered.
    assert "--synthetic" not in _finding(report, "weights", "are not in the").fix


def test_every_dependency_is_checked_against_the_agents_declared_minimum(machine):
    machine["versions"]["transformers"] = "4.50.3"
    machine["versions"]["accelerate"] = "0.34.2"

    report = doctor.diagnose()

    transformers = _finding(report, "transformers", "transformers 4.50.3 is older")
    assert transformers.level == "problem"
    assert "Qwen3, the text encoder, needs 4.51 or newer" in transformers.text
    assert transformers.fix == 'pip install --upgrade "transformers>=4.51"'
    assert _finding(report, "accelerate", "0.34.2 is older").fix == (
        'pip install --upgrade "accelerate>=1.0"'
    )


def test_a_missing_dependency_is_a_problem_with_its_install_command(machine):
    machine["versions"]["tokenizers"] = None

    report = doctor.diagnose()

    assert _finding(report, "tokenizers", "not installed").fix == ('pip install "tokenizers>=0.21"')


def test_fit_estimates_come_from_component_sizes_per_preset_plus_activations():
    gib = 1024**3
    weights = {"transformer": 3_875_544_576, "text_encoder": 4_022_468_096, "vae": 84_046_115}
    # The larger activations at 1024x1024 (the VAE decoder's) and the runtime's overhead:
    # the contract's fit rule, the one the server's estimates start from.
    overhead = (
        1024 * 1024 * fit.VAE_DECODE_BYTES_PER_PIXEL / 2**20 + fit.RUNTIME_OVERHEAD_MIB
    ) / 1024

    def needs(preset: str) -> float:
        return doctor.needs_gib(KLEIN_4B, PRESETS[preset])

    assert needs("bf16-resident") == pytest.approx(2 * sum(weights.values()) / gib + overhead)
    # One component on the GPU at a time: the largest, the text encoder.
    assert needs("bf16-model-offload") == pytest.approx(
        2 * weights["text_encoder"] / gib + overhead
    )
    assert needs("fp8-storage") == pytest.approx(
        (weights["transformer"] + weights["text_encoder"] + 2 * weights["vae"]) / gib + overhead
    )
    assert needs("fp8-compute") == pytest.approx(
        (weights["transformer"] + 2 * weights["text_encoder"] + 2 * weights["vae"]) / gib + overhead
    )


def test_the_9b_does_not_fit_a_24_gb_card_in_bf16_and_fits_in_fp8_storage():
    card = _card(memory_total_mb=24564.0, memory_used_mb=400.0, drives_display=False)

    verdicts = {p: doctor.preset_fit(card, PRESETS[p], 64, KLEIN_9B).verdict for p in PRESETS}

    assert verdicts == {
        "bf16-resident": "does not fit",
        "bf16-model-offload": "fits",
        "fp8-storage": "fits",
        "fp8-compute": "does not fit",
    }


def test_doctor_checks_the_model_it_is_asked_about(cli, machine):
    result = cli("doctor", "--model", "flux-2-klein-9b")
    report = doctor.diagnose(model="flux-2-klein-9b")

    # The machine's torch has no kernels for its RTX 5070: a problem, so exit status 1.
    assert result.exit_code == 1, result.output
    assert "Presets for FLUX.2 [klein] 9B at 1024x1024" in result.stdout
    assert _finding(report, "weights", "FLUX.2 [klein] 9B weights are not in").fix.startswith(
        "klein-bench run --model flux-2-klein-9b --download (about 33 GiB)"
    )


def test_fp8_compute_is_not_supported_without_fp8_tensor_cores():
    card = _card(name="NVIDIA GeForce RTX 3090", compute_capability="8.6", memory_used_mb=0)

    found = doctor.preset_fit(card, PRESETS["fp8-compute"], 64, KLEIN_4B)

    assert (found.verdict, found.note) == ("not supported", "no FP8 tensor cores")
