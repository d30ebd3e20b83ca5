"""Running the ComfyUI runtime against the stand-in server, for the test files."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
from comfyui_server import Behaviour, ComfyUIServer

from klein_bench import gpu
from klein_bench.backends.comfyui import runner as comfyui
from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress
from klein_bench.result import schema_errors

NVML_NOTE = (
    "NVML (the NVIDIA driver's monitoring library) is unavailable, so the VRAM, energy and "
    "telemetry figures are left empty: `klein-bench doctor` says why."
)
RUNS_FP8 = "ComfyUI 0.27.0 runs flux-2-klein-4b-fp8.safetensors."


def _no_nvml():
    raise KleinBenchError("NVIDIA's NVML library was not found.")


def isolate(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KLEIN_BENCH_HOME", str(tmp_path / "home"))
    # The same answers on a machine with an NVIDIA driver as on CI's.
    monkeypatch.setattr(gpu, "_nvml_module", None)
    # The stand-in applies /free at once.
    monkeypatch.setattr(comfyui, "FREE_SETTLE_S", 0.0)
    monkeypatch.setattr(comfyui, "nvml", _no_nvml)


def benchmark(
    behaviour: Behaviour | None = None, runs: int = 5, **kwargs: Any
) -> tuple[dict[str, Any], ComfyUIServer, SilentProgress]:
    progress = SilentProgress()
    with ComfyUIServer(behaviour) as server:
        payload = comfyui.run_protocol(
            url=server.url, runs=runs, gpu_index=0, progress=progress, **kwargs
        )
    assert schema_errors(payload) == []
    return payload, server, progress


def refusal(behaviour: Behaviour | None = None, **kwargs: Any) -> tuple[str, ComfyUIServer]:
    """The sentence run_protocol stops with, and the server it stopped on."""
    with ComfyUIServer(behaviour) as server, pytest.raises(KleinBenchError) as caught:
        comfyui.run_protocol(
            url=server.url, runs=5, gpu_index=0, progress=SilentProgress(), **kwargs
        )
    return caught.value.message, server


def finished_seconds(server: ComfyUIServer) -> list[float]:
    """ComfyUI's own seconds for each prompt it finished, in order (warm-up first)."""
    seconds = []
    for entry in server.history.values():
        messages = dict(entry["status"]["messages"])
        if entry["status"]["status_str"] == "success":
            end, start = messages["execution_success"], messages["execution_start"]
            seconds.append((end["timestamp"] - start["timestamp"]) / 1000)
    return seconds


class FakeNvml:
    """Just enough of pynvml for one GPU that ComfyUI (this test process) uses."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 0, 1, 0

    def __init__(
        self,
        comfyui_pid: int,
        devices: int = 1,
        comfyui_device: int = 0,
        capability: tuple[int, int] = (12, 0),
    ):
        self.pid = comfyui_pid
        self.devices = devices
        self.comfyui_device = comfyui_device
        self.capability = capability
        self.used = 800 * gpu.MIB
        self.energy_mj = 1_000_000

    def __getattr__(self, name: str) -> Any:
        # Queries this fake does not answer read as "not supported".
        return lambda *args: None

    def nvmlDeviceGetCount(self):
        return self.devices

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, device):
        return "NVIDIA GeForce RTX 5070"

    def nvmlDeviceGetUUID(self, device):
        return "GPU-0f0e0d0c-0b0a-0908-0706-050403020100"

    def nvmlDeviceGetCudaComputeCapability(self, device):
        return self.capability

    def nvmlDeviceGetMemoryInfo(self, device):
        self.used += 10 * gpu.MIB
        return SimpleNamespace(total=12227 * gpu.MIB, used=self.used, free=0)

    def nvmlDeviceGetComputeRunningProcesses(self, device):
        if device != self.comfyui_device:
            return []
        return [SimpleNamespace(pid=self.pid, usedGpuMemory=self.used - 300 * gpu.MIB)]

    def nvmlDeviceGetTotalEnergyConsumption(self, device):
        self.energy_mj += 25_000
        return self.energy_mj

    def nvmlSystemGetDriverVersion(self):
        return "580.95.05"

    def nvmlSystemGetCudaDriverVersion_v2(self):
        return 13000


def install_fake_nvml(monkeypatch, **kwargs: Any) -> FakeNvml:
    fake = FakeNvml(os.getpid(), **kwargs)
    monkeypatch.setattr(gpu, "_nvml_module", fake)
    monkeypatch.setattr(comfyui, "nvml", gpu.nvml)
    return fake
