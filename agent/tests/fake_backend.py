"""A scenario backend that needs no torch: it sets simulated NVML and allocator figures
per stage, so the shared loop's trackers can be checked on any machine."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from klein_bench import gpu, kernels, measure, result, scenario
from klein_bench.contract.models import KLEIN_TINY

STAGE_SECONDS = 0.03


class FakeAllocator:
    """AllocatorPeaks' interface over a figure the backend sets (torch's would be read)."""

    def __init__(self) -> None:
        self.phases: dict[str, measure.PhasePeaks] = {}
        self.reserved_mb = 0.0
        self.peak_since_mark = 0.0
        self._label = ("load", "load")

    def set(self, reserved_mb: float) -> None:
        self.reserved_mb = reserved_mb
        self.peak_since_mark = max(self.peak_since_mark, reserved_mb)

    def mark(self, phase: str, stage: str) -> None:
        before_phase, before_stage = self._label
        peaks = self.phases.setdefault(before_phase, measure.PhasePeaks())
        peaks.see("peak_reserved_mb", self.peak_since_mark, before_stage)
        peaks.see("peak_allocated_mb", self.peak_since_mark * 0.9, before_stage)
        self.peak_since_mark = self.reserved_mb
        self._label = (phase, stage)


class FakeBackend:
    """Per stage, `memory[stage]` MiB: charged to this process by the fake NVML card (when
    `card` is given and `per_process`) and held by the fake allocator."""

    def __init__(
        self,
        *,
        card: Any = None,
        per_process: bool = True,
        memory: dict[str, float] | None = None,
        context_mb: float | None = 300.0,
        # (generation number, stage, exception): generation -1 is the load, 0 the warm-up.
        fail: tuple[int, str, BaseException] | None = None,
        memory_total_mb: float = 24564.0,
        seconds: float = 0.1,
        overhead_s: float = 0.0,
        # A runtime that loads the model in its first generation (ComfyUI), this long.
        lazy_load_s: float | None = None,
        pids: list[int] | None = None,
    ):
        self.card = card
        self.per_process = per_process
        self.memory = memory or {
            "load": 8000.0,
            "text_encoding": 9000.0,
            "denoising": 12000.0,
            "vae_decode": 15000.0,
        }
        self.context_mb = context_mb
        self.fail = fail
        self.memory_total_mb = memory_total_mb
        self.allocator_fake = FakeAllocator()
        self.on_stage = lambda stage: None
        self.generated: list[tuple[str, int]] = []
        self.labels: list[str] = []
        # Seconds the backend reports per image, and sleeps while the agent's clock runs.
        self.seconds = seconds
        self.overhead_s = overhead_s
        self.lazy_load_s = lazy_load_s
        self.pids = pids
        self.pipe: Any = None
        self.released = 0
        self.count = -1

    def describe(self) -> scenario.Description:
        device = gpu.nvml_device(0) if self.card is not None else None
        return scenario.Description(
            model="klein-tiny-random",
            synthetic=False,
            configuration=result.configuration_section(
                runtime="diffusers",
                precision="bf16",
                offload="none",
                width=64,
                height=64,
                steps=4,
                preset="bf16-resident",
            ),
            gpu={"device": "cuda", "name": "NVIDIA GeForce RTX 4090"}
            if device
            else {"device": "cpu", "name": ""},
            environment=result.environment_section(),
            watch=scenario.Watch(
                device=device,
                pids=self.pids,
                memory_total_mb=self.memory_total_mb,
                power_limit_w=450.0 if device else None,
                default_power_limit_w=450.0 if device else None,
                max_sm_clock_mhz=2520.0 if device else None,
            ),
            work=result.work_section(
                KLEIN_TINY.slug, width=64, height=64, steps=4, protocol=KLEIN_TINY.protocol
            ),
            loads_in_warmup=self.lazy_load_s is not None,
        )

    def prepare(self) -> float | None:
        return self.context_mb

    def _hold(self, stage: str) -> None:
        self.on_stage(stage)
        mb = self.memory.get(stage, 0.0)
        self.allocator_fake.set(mb)
        if self.card is not None:
            if self.per_process:
                self.card.processes[os.getpid()] = mb + (self.context_mb or 0)
            self.card.used_mb = 600 + mb + (self.context_mb or 0)
        if self.fail and self.fail[:2] == (self.count, stage):
            raise self.fail[2]
        time.sleep(STAGE_SECONDS)

    def load(self) -> None:
        self.pipe = object()
        self._hold("load")

    def generate(self, prompt: str, seed: int, label: str) -> scenario.Generation:
        self.generated.append((prompt, seed))
        self.labels.append(label)
        self.count += 1
        for stage in ("text_encoding", "denoising", "vae_decode"):
            self._hold(stage)
        self.on_stage("other")
        time.sleep(self.overhead_s)
        return scenario.Generation(
            self.seconds,
            {"text_encoding": 0.02, "denoising": 0.05},
            load_seconds=self.lazy_load_s if self.count == 0 else None,
        )

    @contextlib.contextmanager
    def kernels(self):
        yield lambda: kernels.section(
            source=kernels.SOURCE_OBSERVED,
            weight_dtypes={},
            compute_dtypes={"transformer": "bfloat16"},
            fp8_matmul=False,
            attention="sdpa-flash",
            matmul_dtypes=["bfloat16"],
            matmuls=3,
            fp8_matmuls=0,
        )

    def allocator(self) -> FakeAllocator:
        return self.allocator_fake

    def failure(self, exc: BaseException) -> scenario.Failure:
        status = "out_of_memory" if isinstance(exc, MemoryError) else "error"
        return scenario.Failure(status, f"{type(exc).__name__}: {exc}")

    def release(self) -> None:
        self.pipe = None
        self.released += 1
