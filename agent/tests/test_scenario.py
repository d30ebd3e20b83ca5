"""The shared measurement loop, with a backend that needs no torch: warm-ups from the
protocol, per-phase peaks and their stages, failures, release, spills and the payload."""

from __future__ import annotations

import dataclasses
import os

import pytest
from fake_backend import FakeBackend
from fake_nvml import FakeCard, FakeNvml

from klein_bench import gpu, scenario
from klein_bench.contract.protocol import CURRENT
from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress
from klein_bench.result import schema_errors


@pytest.fixture
def card(monkeypatch):
    card = FakeCard()
    monkeypatch.setattr(gpu, "_nvml_module", FakeNvml([card]))
    return card


def _run(backend, protocol=CURRENT, runs=5, progress=None):
    progress = progress or SilentProgress()
    payload = scenario.run(backend, protocol, runs, progress, in_process_sampler=True)
    errors = schema_errors(payload)
    assert errors in (None, []), errors
    return payload


def test_the_loop_runs_the_protocols_warmups_then_the_timed_images():
    protocol = dataclasses.replace(CURRENT, warmup_runs=2)
    backend = FakeBackend()

    payload = _run(backend, protocol)

    assert backend.generated == [
        (f"{CURRENT.prompts[0]}, warm-up", 8),
        (f"{CURRENT.prompts[1]}, warm-up", 9),
        *((CURRENT.prompts[i], CURRENT.seeds[i]) for i in range(5)),
    ]
    assert payload["timings"]["warmup_seconds"] == pytest.approx(0.2)
    assert [r["prompt_index"] for r in payload["timings"]["runs"]] == [0, 1, 2, 3, 4]


def test_the_warmups_never_repeat_a_timed_prompt_and_seed():
    for prompt, seed in scenario.warmup_inputs(CURRENT):
        assert seed not in CURRENT.seeds
        assert prompt not in CURRENT.prompts


def test_peaks_are_kept_per_phase_with_the_stage_they_fell_in(card):
    backend = FakeBackend(card=card)

    payload = _run(backend)

    memory = payload["memory"]
    phases = memory["phases"]
    assert phases["load"]["peak_vram_mb"] == pytest.approx(8300)
    assert phases["load"]["stage"] == "load"
    assert phases["warmup"]["peak_vram_mb"] == pytest.approx(15300)
    assert phases["warmup"]["stage"] == "vae_decode"
    assert phases["timed"]["peak_vram_mb"] == pytest.approx(15300)
    assert phases["timed"]["peak_reserved_mb"] == pytest.approx(15000)
    assert (memory["peak_vram_mb"], memory["vram_source"]) == (pytest.approx(15300), "nvml-process")
    assert (memory["peak_phase"], memory["peak_stage"]) == ("warmup", "vae_decode")
    assert memory["baseline_device_mb"] == pytest.approx(600)


def test_a_failure_in_the_warmup_names_the_phase_and_stage_and_releases_the_backend():
    backend = FakeBackend(fail=(0, "denoising", MemoryError("CUDA out of memory")))

    payload = _run(backend)

    assert payload["outcome"] == {
        "status": "out_of_memory",
        "stage": "denoising",
        "phase": "warmup",
        "message": "MemoryError: CUDA out of memory",
    }
    assert payload["timings"]["runs"] == []
    assert payload["timings"]["warmup_seconds"] is None
    assert backend.released == 1 and backend.pipe is None


def test_a_failure_while_loading_names_the_load():
    backend = FakeBackend(fail=(-1, "load", RuntimeError("corrupt file")))

    payload = _run(backend)

    assert (payload["outcome"]["status"], payload["outcome"]["phase"]) == ("error", "load")
    assert payload["outcome"]["stage"] == "load"


def test_a_failure_in_a_timed_run_keeps_the_runs_before_it():
    backend = FakeBackend(fail=(3, "vae_decode", MemoryError("out of memory")))

    payload = _run(backend)

    assert (payload["outcome"]["phase"], payload["outcome"]["stage"]) == ("timed", "vae_decode")
    assert len(payload["timings"]["runs"]) == 2


def test_a_runtime_that_reports_its_own_failure_is_recorded_as_it_said():
    failure = scenario.Failure("out_of_memory", "Out of memory in VAEDecode", "vae_decode")
    backend = FakeBackend(fail=(1, "text_encoding", scenario.GenerationFailed(failure)))

    payload = _run(backend)

    assert payload["outcome"]["stage"] == "vae_decode"
    assert payload["outcome"]["message"] == "Out of memory in VAEDecode"


def test_the_kernel_path_and_the_work_per_image_are_in_the_payload():
    payload = _run(FakeBackend())

    assert payload["kernels"]["attention"] == "sdpa-flash"
    assert payload["work"]["transformer_tflop"] > 0


def test_telemetry_comes_from_the_timed_images(card):
    card.reasons = 0
    payload = _run(FakeBackend(card=card))

    telemetry = payload["telemetry"]
    assert telemetry["max_sm_clock_mhz"] == 2520
    assert (telemetry["capped"], telemetry["throttled"]) == (False, False)
    assert payload["gpu"]["pcie_generation"] == 4


def test_the_sampler_costs_this_process_nothing_on_a_gpu(card):
    # Default: a child process samples NVML (the thread here is only for simulated NVML).
    from klein_bench import measure

    sampler = measure.MemorySampler(gpu.nvml_device(0))
    assert sampler.threaded and not sampler.in_process
    assert os.getpid() in sampler.pids


def test_each_generation_is_named_for_the_backends_messages():
    protocol = dataclasses.replace(CURRENT, warmup_runs=2)
    backend = FakeBackend()

    _run(backend, protocol, runs=5)

    assert backend.labels == [
        "warm-up 1",
        "warm-up 2",
        *(f"timed run {i}" for i in range(1, 6)),
    ]


def test_a_setup_error_is_no_result_and_leaves_nothing_behind():
    problem = KleinBenchError("The model file is damaged: download it again.")
    backend = FakeBackend(fail=(1, "denoising", problem))

    with pytest.raises(KleinBenchError) as caught:
        _run(backend)

    assert caught.value is problem
    assert backend.released == 1 and backend.pipe is None


def test_a_failed_run_abandons_its_bar_and_a_finished_one_leaves_the_last_to_the_caller():
    failed, finished = SilentProgress(), SilentProgress()

    _run(FakeBackend(fail=(0, "denoising", MemoryError("out of memory"))), progress=failed)
    _run(FakeBackend(), progress=finished)

    assert failed.events[-1] == ("abandon", None)
    assert ("done", None) not in finished.events
    assert ("abandon", None) not in finished.events


def test_a_runtime_clock_that_disagrees_with_the_agents_is_said_in_the_result():
    progress = SilentProgress()
    # The runtime says 2 s for images the agent's clock saw take a few milliseconds.
    payload = _run(FakeBackend(seconds=2.0), progress=progress)

    message = payload["outcome"]["message"]
    assert payload["outcome"]["status"] == "success"
    assert message.startswith(
        "diffusers' clock and the agent's disagree on 5 of 5 timed runs (timed run 1: "
        "diffusers timed 2.000 s, the agent 0."
    )
    assert progress.notes == [message]


def test_agreeing_clocks_leave_the_message_empty():
    payload = _run(FakeBackend(seconds=0.1, overhead_s=0.0))

    assert payload["outcome"] == {"status": "success", "stage": None, "message": ""}
    for run in payload["timings"]["runs"]:
        assert run["wall_seconds"] >= 0.09


def test_a_runtime_that_loads_in_its_first_warmup_reports_that_as_the_load():
    progress = SilentProgress()
    payload = _run(FakeBackend(lazy_load_s=0.04), progress=progress)

    assert payload["timings"]["load_seconds"] == 0.04
    assert progress.stages[0] == "Warm-up (loads the model, not timed)"
    assert not any(stage.startswith("Loading") for stage in progress.stages)


def test_watching_no_process_records_no_host_memory():
    payload = _run(FakeBackend(pids=[]))

    assert payload["memory"]["peak_rss_mb"] is None
    assert payload["memory"]["sample_interval_ms"] is None
