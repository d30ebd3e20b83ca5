"""Failures become results (out of memory above all), and runs that cannot happen here
are refused with the reason and the fix before anything starts."""

from __future__ import annotations

import json

import pytest

from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress
from klein_bench.result import schema_errors

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip(
    "diffusers", reason="the tiny pipeline needs klein-bench[diffusers]"
)

from klein_bench.backends.diffusers import backend as runner  # noqa: E402
from klein_bench.backends.diffusers import pipeline  # noqa: E402

OOM_MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB."


def _run(**overrides):
    options = {
        "model": "klein-tiny-random",
        "preset_name": "bf16-resident",
        "runs": 5,
        "gpu_index": None,
        "progress": SilentProgress(),
        "salt": b"0" * 32,
    }
    options.update(overrides)
    return runner.run_protocol(**options)


def _raise_oom(*args, **kwargs):
    raise torch.OutOfMemoryError(OOM_MESSAGE)


def _assert_valid(payload):
    errors = schema_errors(payload)
    if errors is not None:
        assert errors == []


def test_out_of_memory_in_vae_decode_becomes_a_result_naming_that_stage(monkeypatch):
    monkeypatch.setattr(diffusers.AutoencoderKLFlux2, "decode", _raise_oom)

    payload = _run()

    assert payload["outcome"] == {
        "status": "out_of_memory",
        "stage": "vae_decode",
        "message": f"OutOfMemoryError: {OOM_MESSAGE}",
        "phase": "warmup",
    }
    assert payload["timings"]["runs"] == []
    assert payload["timings"]["load_seconds"] > 0
    assert payload["timings"]["warmup_seconds"] is None
    assert payload["evidence"] is None
    _assert_valid(payload)


def test_out_of_memory_in_the_text_encoder_names_text_encoding(monkeypatch):
    from transformers import Qwen3ForCausalLM

    monkeypatch.setattr(Qwen3ForCausalLM, "forward", _raise_oom)

    payload = _run()

    assert payload["outcome"]["status"] == "out_of_memory"
    assert payload["outcome"]["stage"] == "text_encoding"


def test_out_of_memory_in_a_transformer_step_names_denoising(monkeypatch):
    monkeypatch.setattr(diffusers.Flux2Transformer2DModel, "forward", _raise_oom)

    payload = _run()

    assert (payload["outcome"]["status"], payload["outcome"]["stage"]) == (
        "out_of_memory",
        "denoising",
    )


def test_out_of_memory_while_loading_names_load(monkeypatch):
    from klein_bench.backends.diffusers import tiny

    monkeypatch.setattr(tiny, "build_pipeline", _raise_oom)

    payload = _run()

    assert (payload["outcome"]["status"], payload["outcome"]["stage"]) == ("out_of_memory", "load")
    assert payload["timings"]["load_seconds"] is None


def test_out_of_memory_in_a_later_timed_run_keeps_the_runs_before_it(monkeypatch):
    decode = diffusers.AutoencoderKLFlux2.decode
    calls = {"n": 0}

    def decode_then_fail(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the warm-up, then timed runs 1 and 2 succeed
            _raise_oom()
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.AutoencoderKLFlux2, "decode", decode_then_fail)

    payload = _run()

    assert payload["outcome"]["stage"] == "vae_decode"
    assert len(payload["timings"]["runs"]) == 2
    assert payload["evidence"]["phash"]


def test_a_cublas_allocation_failure_counts_as_out_of_memory():
    assert runner.is_out_of_memory(
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling")
    )
    assert runner.is_out_of_memory(MemoryError())
    assert not runner.is_out_of_memory(RuntimeError("shape mismatch"))


def test_another_failure_becomes_an_error_result(monkeypatch):
    def mismatch(*args, **kwargs):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (512x4096 and 7680x3072)")

    monkeypatch.setattr(diffusers.Flux2Transformer2DModel, "forward", mismatch)

    payload = _run()

    assert payload["outcome"] == {
        "status": "error",
        "stage": "denoising",
        "message": (
            "RuntimeError: mat1 and mat2 shapes cannot be multiplied (512x4096 and 7680x3072)"
        ),
        "phase": "warmup",
    }
    _assert_valid(payload)


def test_run_command_shows_an_out_of_memory_result_with_what_to_try(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(diffusers.AutoencoderKLFlux2, "decode", _raise_oom)
    output = tmp_path / "oom.json"

    result = cli("run", "--model", "klein-tiny-random", "-o", str(output))

    assert result.exit_code == 0, result.output
    assert "out of memory during VAE decode" in result.stdout
    assert "try --preset bf16-model-offload or --preset fp8-storage" in result.stdout
    assert json.loads(output.read_text())["outcome"]["status"] == "out_of_memory"


def test_klein_4b_on_the_cpu_is_refused_with_the_reason(cli, home):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")

    result = cli("run", "--model", "flux-2-klein-4b")

    assert result.exit_code == 1
    assert result.stderr.strip().startswith(
        "Error: FLUX.2 [klein] 4B needs an NVIDIA GPU with CUDA, but torch"
    )
    assert "--model klein-tiny-random" in result.stderr
    assert "Traceback" not in result.output
    assert home.history() == []


def test_synthetic_on_the_cpu_is_refused_with_the_reason():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")

    with pytest.raises(
        KleinBenchError,
        match=r"^--synthetic \(the full-size FLUX\.2 \[klein\] 4B\) needs an NVIDIA GPU",
    ):
        _run(model="flux-2-klein-4b", synthetic=True)


def test_the_synthetic_9b_on_the_cpu_is_refused_before_anything_is_built(cli, home, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    from klein_bench.backends.diffusers import tiny

    def never(*args, **kwargs):
        raise AssertionError("the full-size 9B must not be built on a CPU")

    monkeypatch.setattr(tiny, "build_pipeline", never)
    monkeypatch.setattr(tiny, "build_components", never)

    result = cli("run", "--model", "flux-2-klein-9b", "--synthetic")

    assert result.exit_code == 1
    assert result.stderr.strip().startswith(
        "Error: --synthetic (the full-size FLUX.2 [klein] 9B) needs an NVIDIA GPU with CUDA, "
        "but torch"
    )
    assert "--model klein-9b-tiny-random" in result.stderr
    assert "Traceback" not in result.output
    assert home.history() == []


def test_offload_on_the_cpu_is_refused_with_the_alternative():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")

    with pytest.raises(KleinBenchError, match="on the CPU use --preset bf16-resident"):
        _run(preset_name="bf16-model-offload")


def test_choosing_a_gpu_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")

    with pytest.raises(KleinBenchError, match=r"^--gpu 1 needs CUDA"):
        _run(gpu_index=1)


def test_synthetic_tiny_model_is_refused_as_a_contradiction():
    with pytest.raises(KleinBenchError, match="leave out one of them"):
        _run(synthetic=True)


# --- choosing the GPU (simulated: these run without one) ------------------------------


def _pretend_cuda(monkeypatch, arch_list, nvml_gpus, nvml_problem=None):
    from klein_bench import gpu

    monkeypatch.setattr(
        gpu,
        "torch_info",
        lambda: gpu.TorchInfo(
            installed=True,
            version="2.9.1+cu128",
            cuda="12.8",
            cuda_available=True,
            device_count=len(nvml_gpus) or 1,
            arch_list=arch_list,
        ),
    )
    monkeypatch.setattr(gpu, "gpus_or_reason", lambda: (nvml_gpus, nvml_problem))
    monkeypatch.setattr(gpu, "gpu_info", lambda index, device=None: nvml_gpus[index])
    monkeypatch.setattr(gpu, "driver_versions", lambda: ("580.95.05", "13.0"))
    # CUDA_VISIBLE_DEVICES=1: torch's only device is NVML's GPU 1.
    monkeypatch.setattr(
        gpu,
        "resolve_device",
        lambda torch_index, nvml_index=None: gpu.NvmlDevice(
            1 if nvml_index is None else nvml_index, None, None
        ),
    )
    monkeypatch.setattr(gpu, "torch_index_for", lambda index: 0)


def _card(index, name, capability):
    from klein_bench import gpu

    return gpu.GpuInfo(
        index=index,
        name=name,
        uuid=f"GPU-{index}",
        memory_total_mb=12227.0,
        memory_used_mb=500.0,
        compute_capability=capability,
        drives_display=False,
        power_limit_w=250.0,
        pcie_generation=4,
        pcie_width=16,
        pcie_max_generation=5,
        pcie_max_width=16,
    )


def test_without_gpu_option_the_run_uses_torchs_first_visible_device(monkeypatch):
    from klein_bench.contract.catalog import PRESETS
    from klein_bench.contract.models import KLEIN_4B

    cards = [_card(0, "NVIDIA GeForce RTX 3090", "8.6"), _card(1, "NVIDIA GeForce RTX 4070", "8.9")]
    _pretend_cuda(monkeypatch, ["sm_80", "sm_86", "sm_89", "sm_90"], cards)

    target = pipeline.choose_target(KLEIN_4B, PRESETS["bf16-resident"], None, False)

    assert (target.device, target.nvml.index, target.info.name) == (
        "cuda:0",
        1,
        "NVIDIA GeForce RTX 4070",
    )
    assert (target.driver, target.cuda_driver) == ("580.95.05", "13.0")


def test_a_blackwell_card_without_sm_120_kernels_is_refused_with_the_pip_command(monkeypatch):
    from klein_bench.contract.catalog import PRESETS
    from klein_bench.contract.models import KLEIN_4B

    cards = [_card(0, "NVIDIA GeForce RTX 5070", "12.0")]
    _pretend_cuda(monkeypatch, ["sm_80", "sm_86", "sm_90"], cards)

    with pytest.raises(KleinBenchError) as error:
        pipeline.choose_target(KLEIN_4B, PRESETS["bf16-resident"], 0, False)

    assert error.value.message == (
        "torch 2.9.1+cu128 has no kernels for the NVIDIA GeForce RTX 5070 (sm_120; it has "
        "sm_80, sm_86, sm_90): install a build that does with `pip install --upgrade torch "
        "--index-url https://download.pytorch.org/whl/cu128`."
    )


def test_cuda_without_nvml_measures_with_torch_alone_and_says_so(monkeypatch):
    from types import SimpleNamespace

    from klein_bench.contract.catalog import PRESETS
    from klein_bench.contract.models import KLEIN_4B

    _pretend_cuda(monkeypatch, ["sm_89"], [], nvml_problem="NVML is missing.")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda index: SimpleNamespace(
            name="NVIDIA GeForce RTX 4090", total_memory=24 * 1024**3, major=8, minor=9
        ),
    )

    target = pipeline.choose_target(KLEIN_4B, PRESETS["bf16-resident"], None, False)

    assert (target.device, target.nvml) == ("cuda:0", None)
    assert target.info.name == "NVIDIA GeForce RTX 4090"
    assert target.info.memory_total_mb == 24 * 1024
    assert target.note.startswith("NVML (the NVIDIA driver's monitoring library) is unavailable")
