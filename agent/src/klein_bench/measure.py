"""Measuring memory, energy and the GPU's state while a benchmark runs.

Four VRAM figures, because each answers a different question:

- torch peak allocated: tensors the model needed (`torch.cuda.max_memory_allocated`);
- torch peak reserved: what torch's caching allocator held (`max_memory_reserved`);
- NVML per process: what the driver charged this process, CUDA context included
  (`nvmlDeviceGetComputeRunningProcesses`);
- NVML device-wide: the whole card's use, the display and other programs included
  (`nvmlDeviceGetMemoryInfo`), beside its baseline before loading.

The NVML figures come from `MemorySampler`, a background thread sampling every ~10 ms;
it can watch another process (the ComfyUI server) by PID. Host memory (RSS) of another
process is sampled too; this process's peak comes from the kernel's own high-water mark,
which is exact and free. With no GPU to watch, the sampler runs no thread at all: on the
CPU a thread waking every 10 ms would compete with torch's threads for the cores and slow
the very run it measures. The torch figures exist only for this process (`torch_peaks`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import psutil

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

from klein_bench.gpu import MIB, handle, nvml, safe

# Reasons NVML gives for clocks below their maximum. Idle is left out: the GPU idles
# between runs, which says nothing about the run itself.
_CLOCK_REASONS = (
    ("ApplicationsClocksSetting", "applications_clocks_setting"),
    ("SwPowerCap", "sw_power_cap"),
    ("HwSlowdown", "hw_slowdown"),
    ("SyncBoost", "sync_boost"),
    ("SwThermalSlowdown", "sw_thermal_slowdown"),
    ("HwThermalSlowdown", "hw_thermal_slowdown"),
    ("HwPowerBrakeSlowdown", "hw_power_brake_slowdown"),
    ("DisplayClockSetting", "display_clock_setting"),
)
# Telemetry (clocks, temperature, throttling) is read on every Nth memory sample.
_TELEMETRY_EVERY = 10


def system_ram_mb() -> float:
    return psutil.virtual_memory().total / MIB


def rss_mb(pids: Iterable[int]) -> float | None:
    total = 0
    found = False
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
            found = True
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / MIB if found else None


def own_peak_rss_mb() -> float:
    """This process's peak resident memory since it started (the kernel keeps the mark)."""
    if resource is not None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux counts kilobytes, macOS bytes.
        return peak / MIB if sys.platform == "darwin" else peak * 1024 / MIB
    return psutil.Process().memory_info().peak_wset / MIB


def device_used_mb(gpu_index: int) -> float | None:
    """Memory in use on the whole device now (display and other programs included)."""
    pynvml = nvml()
    memory = safe(pynvml.nvmlDeviceGetMemoryInfo, handle(gpu_index))
    return memory.used / MIB if memory else None


def _process_used_mb(pynvml: Any, device: Any, pids: set[int]) -> float | None:
    """The driver's figure for these processes; None when it cannot tell (in a container
    NVML reports host PIDs, and Windows' WDDM reports no per-process memory)."""
    processes = safe(pynvml.nvmlDeviceGetComputeRunningProcesses, device) or []
    used = [p.usedGpuMemory for p in processes if p.pid in pids and p.usedGpuMemory is not None]
    return sum(used) / MIB if used else None


def _clock_reasons(pynvml: Any, device: Any) -> set[str]:
    getter = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
        pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
    )
    mask = safe(getter, device) if getter else None
    if not mask:
        return set()
    names = set()
    for suffix, name in _CLOCK_REASONS:
        bit = getattr(pynvml, f"nvmlClocksEventReason{suffix}", None) or getattr(
            pynvml, f"nvmlClocksThrottleReason{suffix}", 0
        )
        if bit and mask & bit:
            names.add(name)
    return names


class MemorySampler:
    """Peak memory and GPU telemetry, sampled by a background thread.

    `MemorySampler(gpu_index, pids=None, interval_s=0.01)`: watch NVML GPU `gpu_index`
    (None on the CPU: host memory only) and the processes `pids` (None: this one).
    `start()` records the device's baseline and starts sampling; `stop()` takes a last
    sample and joins the thread. Peaks are None where they could not be measured.
    The thread runs only when there is something that needs sampling: a GPU, or another
    process's RSS (`threaded`).
    """

    def __init__(
        self, gpu_index: int | None, pids: list[int] | None = None, interval_s: float = 0.01
    ):
        self.gpu_index = gpu_index
        self.pids = set(pids) if pids else {os.getpid()}
        # This process's peak RSS is the kernel's high-water mark, read at each sample;
        # other processes' RSS can only be sampled.
        self._own_rss = self.pids == {os.getpid()}
        self.interval_s = interval_s
        self.baseline_device_mb: float | None = None
        self.peak_device_mb: float | None = None
        self.peak_process_mb: float | None = None
        self.peak_rss_mb: float | None = None
        self.max_sm_clock_mhz: float | None = None
        self.max_memory_clock_mhz: float | None = None
        self.max_temperature_c: float | None = None
        self.max_pcie_generation: int | None = None
        self.max_pcie_width: int | None = None
        self.clock_reasons: set[str] = set()
        self.samples = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pynvml: Any = None
        self._device: Any = None
        if gpu_index is not None:
            self._pynvml = nvml()
            self._device = handle(gpu_index)
        self.threaded = self._device is not None or not self._own_rss

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> MemorySampler:
        if self._device is not None:
            memory = safe(self._pynvml.nvmlDeviceGetMemoryInfo, self._device)
            self.baseline_device_mb = memory.used / MIB if memory else None
        self.sample()
        if self.threaded:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="klein-bench-sampler", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> MemorySampler:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.sample()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    @staticmethod
    def _max(current: float | None, value: float | None) -> float | None:
        if value is None:
            return current
        return value if current is None else max(current, value)

    def sample(self) -> None:
        rss = own_peak_rss_mb() if self._own_rss else rss_mb(self.pids)
        device_mb = process_mb = None
        telemetry: dict[str, Any] = {}
        if self._device is not None:
            pynvml, device = self._pynvml, self._device
            memory = safe(pynvml.nvmlDeviceGetMemoryInfo, device)
            device_mb = memory.used / MIB if memory else None
            process_mb = _process_used_mb(pynvml, device, self.pids)
            if self.samples % _TELEMETRY_EVERY == 0:
                telemetry = {
                    "sm": safe(pynvml.nvmlDeviceGetClockInfo, device, pynvml.NVML_CLOCK_SM),
                    "mem": safe(pynvml.nvmlDeviceGetClockInfo, device, pynvml.NVML_CLOCK_MEM),
                    "temp": safe(
                        pynvml.nvmlDeviceGetTemperature, device, pynvml.NVML_TEMPERATURE_GPU
                    ),
                    "gen": safe(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, device),
                    "width": safe(pynvml.nvmlDeviceGetCurrPcieLinkWidth, device),
                    "reasons": _clock_reasons(pynvml, device),
                }
        with self._lock:
            self.samples += 1
            self.peak_rss_mb = self._max(self.peak_rss_mb, rss)
            self.peak_device_mb = self._max(self.peak_device_mb, device_mb)
            self.peak_process_mb = self._max(self.peak_process_mb, process_mb)
            if telemetry:
                self.max_sm_clock_mhz = self._max(self.max_sm_clock_mhz, telemetry["sm"])
                self.max_memory_clock_mhz = self._max(self.max_memory_clock_mhz, telemetry["mem"])
                self.max_temperature_c = self._max(self.max_temperature_c, telemetry["temp"])
                self.max_pcie_generation = self._max(self.max_pcie_generation, telemetry["gen"])
                self.max_pcie_width = self._max(self.max_pcie_width, telemetry["width"])
                self.clock_reasons |= telemetry["reasons"]

    def telemetry(self) -> dict[str, Any] | None:
        """The payload's telemetry section (None on the CPU)."""
        if self._device is None:
            return None
        return {
            "max_sm_clock_mhz": self.max_sm_clock_mhz,
            "max_memory_clock_mhz": self.max_memory_clock_mhz,
            "max_temperature_c": self.max_temperature_c,
            "throttle_reasons": sorted(self.clock_reasons),
        }


class EnergyMeter:
    """The GPU's energy counter (millijoules since the driver loaded; Volta and later)."""

    def __init__(self, gpu_index: int | None):
        self._device = handle(gpu_index) if gpu_index is not None else None
        self._pynvml = nvml() if gpu_index is not None else None

    def read_joules(self) -> float | None:
        if self._device is None:
            return None
        value = safe(self._pynvml.nvmlDeviceGetTotalEnergyConsumption, self._device)
        return value / 1000 if value is not None else None

    @staticmethod
    def delta(start: float | None, end: float | None) -> float | None:
        if start is None or end is None or end < start:
            return None
        return end - start


def energy_section(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Joules per image and average power over the timed runs that have an energy figure."""
    measured = [r for r in runs if r.get("energy_joules") is not None]
    if not measured:
        return None
    joules = sum(r["energy_joules"] for r in measured)
    seconds = sum(r["seconds"] for r in measured)
    return {
        "joules_per_image": joules / len(measured),
        "average_power_w": joules / seconds if seconds > 0 else None,
    }


# --- torch (this process only) -------------------------------------------------------


def reset_torch_peaks(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def torch_peaks(device: Any) -> tuple[float | None, float | None]:
    """torch's peak allocated and reserved MiB on `device` since the last reset."""
    import torch

    if torch.device(device).type != "cuda":
        return None, None
    return (
        torch.cuda.max_memory_allocated(device) / MIB,
        torch.cuda.max_memory_reserved(device) / MIB,
    )


def synchronize(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Seconds between marks, synchronized with the device.

    On CUDA the marks are CUDA events recorded on the current stream, read after the
    run has finished, so stage boundaries cost no synchronization; on the CPU they are
    perf_counter readings.
    """

    def __init__(self, device: Any):
        import torch

        self._cuda = torch.device(device).type == "cuda"
        self._device = device
        self._marks: dict[str, Any] = {}

    def mark(self, name: str) -> None:
        import torch

        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record(torch.cuda.current_stream(self._device))
            self._marks[name] = event
        else:
            self._marks[name] = time.perf_counter()

    def has(self, name: str) -> bool:
        return name in self._marks

    def seconds(self, start: str, end: str) -> float | None:
        if start not in self._marks or end not in self._marks:
            return None
        if self._cuda:
            self._marks[end].synchronize()
            return self._marks[start].elapsed_time(self._marks[end]) / 1000
        return self._marks[end] - self._marks[start]
