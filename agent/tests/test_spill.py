"""Item 2: a run that finished only because the driver lent the GPU system memory is its
own outcome, "spilled", which pages treat as not fitting."""

from __future__ import annotations

import subprocess
import sys

from fake_backend import FakeBackend

from klein_bench import measure, scenario
from klein_bench.contract.figures import NOT_FITTING, OUTCOMES
from klein_bench.contract.protocol import CURRENT
from klein_bench.progress import SilentProgress


def test_an_allocator_beyond_the_cards_memory_is_a_spill():
    reason = measure.spill_reason(
        memory_total_mb=4096, peak_reserved_mb=9000, context_mb=300, shared_peak_mb=None
    )

    assert reason.startswith("PyTorch held 9.1 GiB on a card with 4.0 GiB: the driver lent")


def test_the_platforms_shared_memory_counter_shows_a_spill():
    assert measure.spill_reason(
        memory_total_mb=8192, peak_reserved_mb=6000, context_mb=300, shared_peak_mb=3000
    ).startswith("The GPU used 2.9 GiB of system memory")
    assert (
        measure.spill_reason(
            memory_total_mb=8192, peak_reserved_mb=6000, context_mb=300, shared_peak_mb=100
        )
        is None
    )


def test_a_run_that_spilled_is_recorded_as_spilled_with_where_it_peaked():
    backend = FakeBackend(memory_total_mb=12000)  # the fake holds 15000 MiB in VAE decode

    payload = scenario.run(backend, CURRENT, 5, SilentProgress(), in_process_sampler=True)

    outcome = payload["outcome"]
    assert (outcome["status"], outcome["phase"], outcome["stage"]) == (
        "spilled",
        "warmup",
        "vae_decode",
    )
    assert "system memory fallback" in outcome["message"]
    assert len(payload["timings"]["runs"]) == 5
    assert OUTCOMES["spilled"] == "spilled into system memory"
    assert "spilled" in NOT_FITTING


def test_windows_shared_gpu_memory_is_read_from_its_performance_counter(monkeypatch):
    output = (
        '"(PDH-CSV 4.0)","\\\\PC\\GPU Process Memory(pid_42_luid_0x1_phys_0)\\Shared Usage"\n'
        '"12/01/2026 10:00:00.000","3221225472.000000"\n'
    )
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(
        subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=output)
    )

    assert measure.windows_shared_usage_mb(42) == 3072


def test_elsewhere_there_is_no_shared_memory_counter(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")

    assert measure.windows_shared_usage_mb(42) is None
