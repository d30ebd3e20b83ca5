"""Measuring memory, energy and the GPU's state while a benchmark runs.

The figures, and what each one answers, are named in klein_bench.contract.figures and
defined in docs/measurements.md. This module reads them:

- `MemorySampler`: NVML (the process's and the whole card's GPU memory), host memory,
  clocks, temperature, PCIe link and clock-limit reasons, sampled every ~10 ms and kept
  per phase (load, warm-up, timed) and pipeline stage. On a GPU it samples from a child
  process, as optimum-benchmark does, so that the sampling costs the benchmark's process
  nothing; it can watch another process (the ComfyUI server) by PID. On the CPU it runs
  no sampler at all (a thread waking every 10 ms would compete with torch for the cores)
  and reads the kernel's high-water mark of this process's resident memory.
- `AllocatorPeaks`: torch's peak allocated and reserved memory per phase and stage (this
  process only), read and reset at each stage boundary (host-side counters: no sync).
- `EnergyMeter`: the card's energy counter around each timed image.
- `headline`: the one peak VRAM figure comparable across platforms, and its source.
- `spill_reason`: whether the driver put GPU memory in system RAM (Windows).
"""

from __future__ import annotations

import contextlib
import csv
import io
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

from klein_bench.contract.figures import CAPPED_BELOW_SHARE, PHASES, THROTTLE_REASONS
from klein_bench.gpu import MIB, NvmlDevice, nvml, reopen, safe

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
STAGES = ("load", "text_encoding", "denoising", "vae_decode", "other")
# Every (phase, stage) label a sample can carry, as one small integer for the child.
LABELS = [(phase, stage) for phase in PHASES for stage in STAGES]
# Windows lends a GPU system memory ("shared GPU memory") for a few buffers even when
# everything fits; past this the model itself is there.
SHARED_SPILL_MB = 512.0


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


def _process_used_mb(pynvml: Any, device: Any, pids: set[int]) -> float | None:
    """The driver's figure for these processes; None when it cannot tell (in a container
    NVML reports host PIDs, and Windows' WDDM reports no per-process memory)."""
    processes = safe(pynvml.nvmlDeviceGetComputeRunningProcesses, device) or []
    used = [p.usedGpuMemory for p in processes if p.pid in pids and p.usedGpuMemory is not None]
    return sum(used) / MIB if used else None


def clock_reasons(pynvml: Any, device: Any) -> set[str]:
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


def _max(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else max(current, value)


@dataclass
class PhasePeaks:
    """The highest readings within one phase, and the stage each fell in."""

    peak_process_mb: float | None = None
    peak_device_mb: float | None = None
    peak_rss_mb: float | None = None
    peak_allocated_mb: float | None = None
    peak_reserved_mb: float | None = None
    stages: dict[str, str] = field(default_factory=dict)

    def see(self, name: str, value: float | None, stage: str) -> None:
        if value is None:
            return
        current = getattr(self, name)
        if current is None or value > current:
            setattr(self, name, value)
            self.stages[name] = stage


@dataclass
class Telemetry:
    max_sm_clock_mhz: float | None = None
    max_memory_clock_mhz: float | None = None
    max_temperature_c: float | None = None
    reasons: set[str] = field(default_factory=set)


class _Collector:
    """Peaks per phase from labelled readings; the part of the sampler with no I/O."""

    def __init__(self) -> None:
        self.phases: dict[str, PhasePeaks] = {}
        # Telemetry of the timed images only: warm-up and load say nothing about the runs.
        self.timed = Telemetry()
        self.max_pcie_generation: int | None = None
        self.max_pcie_width: int | None = None
        self.samples = 0

    def add(self, label: int, readings: dict[str, Any]) -> None:
        phase, stage = LABELS[label]
        peaks = self.phases.setdefault(phase, PhasePeaks())
        for name in ("peak_process_mb", "peak_device_mb", "peak_rss_mb"):
            peaks.see(name, readings.get(name), stage)
        self.samples += 1
        if "sm" not in readings:
            return
        self.max_pcie_generation = _max(self.max_pcie_generation, readings["gen"])
        self.max_pcie_width = _max(self.max_pcie_width, readings["width"])
        if phase == "timed":
            t = self.timed
            t.max_sm_clock_mhz = _max(t.max_sm_clock_mhz, readings["sm"])
            t.max_memory_clock_mhz = _max(t.max_memory_clock_mhz, readings["mem"])
            t.max_temperature_c = _max(t.max_temperature_c, readings["temp"])
            t.reasons |= readings["reasons"]


class _Reader:
    """One sample of NVML and host memory for the watched processes."""

    def __init__(self, device: NvmlDevice | None, pids: set[int], own_rss: bool):
        self.device = device
        self.pids = pids
        self.own_rss = own_rss
        self.pynvml = nvml() if device is not None else None
        self.count = 0

    def read(self) -> dict[str, Any]:
        rss = own_peak_rss_mb() if self.own_rss else rss_mb(self.pids)
        readings: dict[str, Any] = {"peak_rss_mb": rss}
        if self.device is None:
            return readings
        pynvml, memory, card = self.pynvml, self.device.memory, self.device.card
        info = safe(pynvml.nvmlDeviceGetMemoryInfo, memory)
        readings["peak_device_mb"] = info.used / MIB if info else None
        readings["peak_process_mb"] = _process_used_mb(pynvml, memory, self.pids)
        if self.count % _TELEMETRY_EVERY == 0:
            readings.update(
                sm=safe(pynvml.nvmlDeviceGetClockInfo, card, pynvml.NVML_CLOCK_SM),
                mem=safe(pynvml.nvmlDeviceGetClockInfo, card, pynvml.NVML_CLOCK_MEM),
                temp=safe(pynvml.nvmlDeviceGetTemperature, card, pynvml.NVML_TEMPERATURE_GPU),
                gen=safe(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, card),
                width=safe(pynvml.nvmlDeviceGetCurrPcieLinkWidth, card),
                reasons=clock_reasons(pynvml, card),
            )
        self.count += 1
        return readings


def _child_loop(conn: Any, stop: Any, label: Any, where: Any, pids: list[int], interval: float):
    """The sampler's child process: sample until told to stop, then send the peaks."""
    device = reopen(*where) if where is not None else None
    reader = _Reader(device, set(pids), own_rss=False)
    collector = _Collector()
    conn.send("ready")
    while True:
        collector.add(label.value, reader.read())
        if stop.wait(interval):
            break
    collector.add(label.value, reader.read())
    conn.send(collector)
    conn.close()


class MemorySampler:
    """Peak memory and GPU telemetry per phase and stage, sampled in the background.

    `MemorySampler(device, pids=None, interval_s=0.01, in_process=False)`: watch the
    NVML `device` (None: host memory only) and the processes `pids` (None: this one; []:
    none, so no host memory figure, as for a server on another machine).
    `set_label(phase, stage)` says what is running; `start()` records the card's baseline
    and starts sampling, `stop()` takes a last sample. A child process samples unless
    `in_process` (a thread: for tests and simulated NVML) or nothing needs sampling.
    """

    def __init__(
        self,
        device: NvmlDevice | None,
        pids: list[int] | None = None,
        interval_s: float = 0.01,
        in_process: bool = False,
    ):
        self.device = device
        self.pids = {os.getpid()} if pids is None else set(pids)
        own_rss = self.pids == {os.getpid()}
        self.interval_s = interval_s
        self.threaded = device is not None or (bool(self.pids) and not own_rss)
        self.in_process = in_process
        self.baseline_device_mb: float | None = None
        self.collector = _Collector()
        self._reader = _Reader(device, self.pids, own_rss=own_rss)
        self._label = multiprocessing.get_context("spawn").Value("i", 0, lock=False)
        self._stop_thread = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: Any = None
        self._conn: Any = None
        self._stop_child: Any = None

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_label(self, phase: str, stage: str) -> None:
        self._label.value = LABELS.index((phase, stage))

    def start(self) -> MemorySampler:
        if self.device is not None:
            info = safe(self._reader.pynvml.nvmlDeviceGetMemoryInfo, self.device.memory)
            self.baseline_device_mb = info.used / MIB if info else None
        if not self.threaded:
            self.sample()
        elif self.in_process:
            self.sample()
            self._stop_thread.clear()
            self._thread = threading.Thread(
                target=self._thread_loop, name="klein-bench-sampler", daemon=True
            )
            self._thread.start()
        else:
            self._start_child()
        return self

    def _start_child(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._stop_child = context.Event()
        where = (self.device.index, self.device.mig_index) if self.device is not None else None
        self._child = context.Process(
            target=_child_loop,
            args=(child_conn, self._stop_child, self._label, where, sorted(self.pids)),
            kwargs={"interval": self.interval_s},
            name="klein-bench-sampler",
            daemon=True,
        )
        self._child.start()
        # Sampling must have begun before the phase it is to watch.
        self._conn.recv()

    def stop(self) -> MemorySampler:
        if self._thread is not None:
            self._stop_thread.set()
            self._thread.join()
            self._thread = None
            self.sample()
        elif self._child is not None:
            self._stop_child.set()
            self.collector = self._conn.recv()
            self._child.join()
            self._child = None
        else:
            self.sample()
        return self

    def _thread_loop(self) -> None:
        while not self._stop_thread.wait(self.interval_s):
            self.sample()

    def checkpoint(self) -> None:
        """A sample now, when nothing samples in the background (the CPU)."""
        if not self.threaded:
            self.sample()

    def sample(self) -> None:
        self.collector.add(self._label.value, self._reader.read())

    @property
    def phases(self) -> dict[str, PhasePeaks]:
        return self.collector.phases

    def peak(self, name: str) -> float | None:
        values = [getattr(p, name) for p in self.phases.values() if getattr(p, name) is not None]
        return max(values, default=None)


class AllocatorPeaks:
    """torch's peak allocated and reserved memory per phase and stage, this process only.

    `mark(phase, stage)` at each boundary files the peaks since the last mark under the
    label that was running, then resets torch's peak counters (host-side: no sync).
    """

    def __init__(self, device: Any):
        import torch

        self._torch = torch
        self.device = device
        self.cuda = torch.device(device).type == "cuda"
        self.phases: dict[str, PhasePeaks] = {}
        self._label = LABELS[0]
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)

    def mark(self, phase: str, stage: str) -> None:
        if self.cuda:
            cuda = self._torch.cuda
            before_phase, before_stage = self._label
            peaks = self.phases.setdefault(before_phase, PhasePeaks())
            peaks.see(
                "peak_allocated_mb", cuda.max_memory_allocated(self.device) / MIB, before_stage
            )
            peaks.see("peak_reserved_mb", cuda.max_memory_reserved(self.device) / MIB, before_stage)
            cuda.reset_peak_memory_stats(self.device)
        self._label = (phase, stage)


class EnergyMeter:
    """The card's energy counter (millijoules since the driver loaded; Volta and later)."""

    def __init__(self, device: NvmlDevice | None):
        self._card = device.card if device is not None else None
        self._pynvml = nvml() if device is not None else None

    def read_joules(self) -> float | None:
        if self._card is None:
            return None
        value = safe(self._pynvml.nvmlDeviceGetTotalEnergyConsumption, self._card)
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


def telemetry_section(
    timed: Telemetry,
    *,
    power_limit_w: float | None,
    default_power_limit_w: float | None,
    max_sm_clock_mhz: float | None,
) -> dict[str, Any]:
    """Clocks, temperature and clock limits of the timed images, and the run's labels:
    `capped` (a power limit below the card's default) and `throttled` (thermal or
    hardware slowdowns while timing)."""
    share = (
        power_limit_w / default_power_limit_w
        if power_limit_w is not None and default_power_limit_w
        else None
    )
    clock_share = (
        timed.max_sm_clock_mhz / max_sm_clock_mhz
        if timed.max_sm_clock_mhz is not None and max_sm_clock_mhz
        else None
    )
    return {
        "max_sm_clock_mhz": timed.max_sm_clock_mhz,
        "max_memory_clock_mhz": timed.max_memory_clock_mhz,
        "max_temperature_c": timed.max_temperature_c,
        "throttle_reasons": sorted(timed.reasons),
        "power_limit_share": share,
        "capped": None if share is None else share < CAPPED_BELOW_SHARE,
        "throttled": bool(timed.reasons & set(THROTTLE_REASONS)),
        "sm_clock_share": clock_share,
    }


# --- the headline and spills ---------------------------------------------------------


def headline(
    *,
    process_mb: float | None,
    reserved_mb: float | None,
    context_mb: float | None,
    device_mb: float | None = None,
    baseline_mb: float | None = None,
) -> tuple[float | None, str | None]:
    """The process's peak GPU memory with its CUDA context, and where it came from (the
    order of figures.VRAM_SOURCES): NVML's per-process figure where NVML has one, else
    torch's reserved peak plus the measured context, else what is left."""
    if process_mb is not None:
        return process_mb, "nvml-process"
    if reserved_mb is not None and context_mb is not None:
        return reserved_mb + context_mb, "torch-reserved+context"
    if reserved_mb is not None:
        return reserved_mb, "torch-reserved"
    if device_mb is not None and baseline_mb is not None:
        return max(device_mb - baseline_mb, 0.0), "nvml-device-delta"
    return None, None


def windows_shared_usage_mb(pid: int) -> float | None:
    """System memory the driver lends this process's GPU work (Windows' "Shared GPU
    memory" performance counter); None elsewhere or when it cannot be read."""
    if sys.platform != "win32":
        return None
    counter = rf"\GPU Process Memory(pid_{pid}_*)\Shared Usage"
    try:
        output = subprocess.run(
            ["typeperf", counter, "-sc", "1"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [row for row in csv.reader(io.StringIO(output)) if len(row) > 1]
    if len(rows) < 2:
        return None
    values = []
    for cell in rows[1][1:]:
        with contextlib.suppress(ValueError):
            values.append(float(cell))
    return sum(values) / MIB if values else None


def spill_reason(
    *,
    memory_total_mb: float | None,
    peak_reserved_mb: float | None,
    context_mb: float | None,
    shared_peak_mb: float | None,
) -> str | None:
    """Why the run must have used system memory as VRAM, or None: the allocator held more
    than the card has (only a driver fallback lets that succeed), or the platform's
    counter shows the GPU using system memory."""
    if memory_total_mb and peak_reserved_mb is not None:
        held = peak_reserved_mb + (context_mb or 0.0)
        if held > memory_total_mb:
            return (
                f"PyTorch held {held / 1024:.1f} GiB on a card with {memory_total_mb / 1024:.1f} "
                "GiB: the driver lent it system memory (Windows' system memory fallback), so "
                "this configuration does not fit and its speed is not the card's."
            )
    if shared_peak_mb is not None and shared_peak_mb > SHARED_SPILL_MB:
        return (
            f"The GPU used {shared_peak_mb / 1024:.1f} GiB of system memory (Windows' shared "
            "GPU memory): this configuration does not fit and its speed is not the card's."
        )
    return None
