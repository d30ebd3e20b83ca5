"""Measurement: the sampler, energy, stage clocks, and NVML errors turned into sentences.

Tests marked `gpu` measure a real NVIDIA GPU; without one they skip with the reason.
"""

from __future__ import annotations

import os
import time

import pytest

from klein_bench import gpu, measure
from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress


@pytest.fixture
def fresh_nvml(monkeypatch):
    """NVML as if this process had not started it yet."""
    monkeypatch.setattr(gpu, "_nvml_module", None)


@pytest.mark.parametrize(
    ("code", "sentence"),
    [
        ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVIDIA's NVML library was not found"),
        ("NVML_ERROR_DRIVER_NOT_LOADED", "The NVIDIA driver is installed but not loaded"),
        ("NVML_ERROR_NO_PERMISSION", "NVML refused access to the GPU"),
        ("NVML_ERROR_UNKNOWN", "NVML could not start"),
    ],
)
def test_nvml_failures_become_one_sentence_with_the_fix(monkeypatch, fresh_nvml, code, sentence):
    import pynvml

    def fail():
        raise pynvml.NVMLError(getattr(pynvml, code))

    monkeypatch.setattr(pynvml, "nvmlInit", fail)

    with pytest.raises(KleinBenchError) as error:
        gpu.nvml()

    assert error.value.message.startswith(sentence)
    assert "`nvidia-smi`" in error.value.message or "klein-tiny-random" in error.value.message


def test_the_sampler_on_the_cpu_reads_the_peak_host_memory_without_a_thread():
    # A sampling thread on the CPU would compete with torch's threads for the cores.
    resident_before = measure.rss_mb([os.getpid()])
    sampler = measure.MemorySampler(None, interval_s=0.005)

    with sampler:
        ballast = b"\x01" * (64 * 1024 * 1024)  # written, so resident
        del ballast

    assert not sampler.threaded
    assert sampler.peak("peak_rss_mb") >= resident_before + 60
    assert sampler.peak("peak_device_mb") is None
    assert sampler.baseline_device_mb is None


def test_the_sampler_watches_another_process_from_a_child_process():
    sampler = measure.MemorySampler(None, pids=[os.getppid()], interval_s=0.005)

    sampler.start()
    sampler.set_label("timed", "denoising")
    time.sleep(0.05)
    sampler.stop()

    assert sampler.threaded and not sampler.in_process
    assert sampler.pids == {os.getppid()}
    assert sampler.phases["timed"].peak_rss_mb > 0
    assert sampler.collector.samples >= 2


def test_a_vanished_process_gives_no_figure_rather_than_an_error():
    assert measure.rss_mb([2**22 + 12345]) is None


def test_energy_per_image_and_average_power_come_from_the_runs():
    runs = [
        {"seconds": 2.0, "energy_joules": 700.0},
        {"seconds": 2.0, "energy_joules": 900.0},
    ]

    assert measure.energy_section(runs) == {"joules_per_image": 800.0, "average_power_w": 400.0}
    assert measure.energy_section([{"seconds": 1.0, "energy_joules": None}]) is None


def test_an_energy_counter_that_went_backwards_gives_no_figure():
    assert measure.EnergyMeter.delta(100.0, 90.0) is None
    assert measure.EnergyMeter.delta(None, 90.0) is None
    assert measure.EnergyMeter.delta(90.0, 100.5) == 10.5


def test_the_cpu_stopwatch_measures_between_marks():
    pytest.importorskip("torch")
    from klein_bench.backends.diffusers.backend import Stopwatch

    watch = Stopwatch("cpu")
    watch.mark("a")
    time.sleep(0.02)
    watch.mark("b")

    assert 0.015 < watch.seconds("a", "b") < 1.0
    assert watch.seconds("a", "missing") is None


def test_compute_capability_support_reads_cubins_and_ptx():
    assert gpu.supports_capability(["sm_80", "sm_86", "sm_90"], "8.9")
    assert not gpu.supports_capability(["sm_80", "sm_86", "sm_90"], "12.0")
    assert gpu.supports_capability(["sm_90", "sm_100", "sm_120"], "12.0")
    assert gpu.supports_capability(["sm_80", "compute_90"], "12.0")
    assert not gpu.supports_capability(["sm_90a"], "8.9")


def test_the_wheel_tag_follows_the_driver_and_blackwell_needs_cu128():
    assert gpu.cuda_wheel_tag("13.0") == "cu128"
    assert gpu.cuda_wheel_tag("12.6") == "cu126"
    assert gpu.cuda_wheel_tag("12.2") == "cu121"
    assert gpu.cuda_wheel_tag("11.8") == "cu118"
    assert gpu.cuda_wheel_tag("12.4", blackwell=True) == "cu128"


# --- on a real GPU -------------------------------------------------------------------


def _cuda_and_nvml():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU is visible to torch on this machine")
    _, reason = gpu.gpus_or_reason()
    if reason:
        pytest.skip(f"NVML is unavailable: {reason}")
    return torch


@pytest.mark.gpu
def test_the_sampler_sees_device_memory_grow_on_a_gpu():
    torch = _cuda_and_nvml()
    torch.cuda.init()
    sampler = measure.MemorySampler(gpu.nvml_device(0), interval_s=0.005).start()
    block = torch.empty(1024**3, dtype=torch.uint8, device="cuda:0")
    torch.cuda.synchronize()
    time.sleep(0.1)
    sampler.stop()
    del block
    torch.cuda.empty_cache()

    assert sampler.baseline_device_mb is not None
    assert sampler.peak("peak_device_mb") >= sampler.baseline_device_mb + 1000


@pytest.mark.gpu
def test_the_energy_counter_counts_up_on_a_gpu():
    _cuda_and_nvml()
    meter = measure.EnergyMeter(gpu.nvml_device(0))
    first = meter.read_joules()
    time.sleep(0.2)
    second = meter.read_joules()
    if first is None:
        pytest.skip("this GPU has no energy counter (older than Volta)")
    assert second >= first


@pytest.mark.gpu
def test_the_cuda_stopwatch_times_gpu_work():
    torch = _cuda_and_nvml()
    from klein_bench.backends.diffusers.backend import Stopwatch

    watch = Stopwatch("cuda:0")
    a = torch.randn(4096, 4096, device="cuda:0")
    watch.mark("start")
    for _ in range(10):
        a = a @ a
        a = a / a.norm()
    watch.mark("end")

    assert watch.seconds("start", "end") > 0


@pytest.mark.gpu
def test_the_tiny_model_on_a_gpu_fills_every_memory_figure():
    _cuda_and_nvml()
    from klein_bench.backends.diffusers.backend import run_protocol

    payload = run_protocol(
        model="klein-tiny-random",
        preset_name="bf16-resident",
        runs=5,
        gpu_index=0,
        progress=SilentProgress(),
        salt=b"0" * 32,
    )

    assert payload["outcome"]["status"] == "success"
    assert payload["gpu"]["device"] == "cuda"
    assert payload["gpu"]["name"]
    assert len(payload["gpu"]["uuid_hash"]) == 16
    memory = payload["memory"]
    for figure in (
        "baseline_device_mb",
        "peak_allocated_mb",
        "peak_reserved_mb",
        "peak_device_mb",
        "peak_vram_mb",
    ):
        assert memory[figure] is not None, figure
    assert memory["peak_reserved_mb"] >= memory["peak_allocated_mb"] > 0
    assert memory["peak_device_mb"] >= memory["baseline_device_mb"]
    assert payload["environment"]["driver"]
    assert payload["telemetry"]["max_sm_clock_mhz"] > 0


@pytest.mark.gpu
def test_model_offload_on_a_gpu_runs_the_tiny_model():
    _cuda_and_nvml()
    from klein_bench.backends.diffusers.backend import run_protocol

    payload = run_protocol(
        model="klein-tiny-random",
        preset_name="bf16-model-offload",
        runs=5,
        gpu_index=0,
        progress=SilentProgress(),
        salt=b"0" * 32,
    )

    assert payload["outcome"]["status"] == "success", payload["outcome"]
    assert payload["configuration"]["offload"] == "model"


@pytest.mark.gpu
def test_doctor_lists_the_gpu_with_its_facts():
    _cuda_and_nvml()
    from klein_bench.doctor import diagnose

    report = diagnose()

    assert report.gpus
    first = report.gpus[0]
    assert first.memory_total_mb > 0
    assert first.compute_capability
    assert report.driver
    assert [fit.preset for fit in report.fits[0]] == [
        "bf16-resident",
        "bf16-model-offload",
        "fp8-storage",
        "fp8-compute",
    ]
