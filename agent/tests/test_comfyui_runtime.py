"""The ComfyUI runtime end to end against the stand-in ComfyUI server.

A run produces a payload that follows the result schema; every failure ComfyUI can
report becomes a result with its outcome and stage; and only runs ComfyUI finished
are in it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from comfyui_harness import (
    NVML_NOTE,
    RUNS_FP8,
    benchmark,
    finished_seconds,
    install_fake_nvml,
    isolate,
    refusal,
)
from comfyui_server import BF16_FILE, Behaviour, ComfyUIServer

from klein_bench.backends.comfyui import execution as comfyui_execution
from klein_bench.backends.comfyui import runner as comfyui
from klein_bench.contract.protocol import CURRENT
from klein_bench.errors import KleinBenchError
from klein_bench.progress import SilentProgress

KERNELS_FP8 = {
    "source": "comfyui-log",
    "model_file": "flux-2-klein-4b-fp8.safetensors",
    "weight_dtypes": {
        "transformer": "float8_e4m3fn",
        "text_encoder": "float16",
        "vae": "bfloat16",
    },
    "compute_dtypes": {"transformer": "bfloat16"},
    # ComfyUI reports no kernel counts.
    "matmul_dtypes": None,
    "matmuls": None,
    "fp8_matmuls": None,
    "fp8_matmul": False,
    "attention": None,
    "loading": {"transformer": "full", "text_encoder": "full", "vae": "full"},
    "offloaded_mb": None,
}
WARMUP = "Warm-up (loads FLUX.2 [klein] 4B, not timed)"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


def test_a_run_gives_a_comfyui_fp8_result_that_follows_the_schema():
    payload, _, progress = benchmark()

    assert payload["model"] == "flux-2-klein-4b"
    assert payload["synthetic"] is False
    assert payload["protocol"] == {"id": CURRENT.id, "hash": CURRENT.hash}
    assert payload["configuration"] == {
        "runtime": "comfyui",
        "precision": "fp8-storage",
        "offload": "none",
        "width": 1024,
        "height": 1024,
        "steps": 4,
        "preset": "fp8-storage",
        "fp8_method": "bfl-fp8-file",
    }
    assert payload["outcome"] == {"status": "success", "stage": None, "message": ""}
    assert payload["gpu"] == {
        "device": "cuda",
        "name": "NVIDIA GeForce RTX 4090",
        "memory_total_mb": 24564.0,
        "compute_capability": None,
        "uuid_hash": None,
        "drives_display": None,
        "power_limit_w": None,
        "pcie_generation": None,
        "pcie_width": None,
    }
    environment = payload["environment"]
    assert (environment["runtime_version"], environment["runtime_flags"]) == ("0.27.0", [])
    assert "kernel_path" not in environment
    assert payload["kernels"] == KERNELS_FP8
    assert (environment["torch"], environment["cuda"], environment["python"]) == (
        "2.9.1+cu128",
        "12.8",
        "3.12.3",
    )
    assert (environment["diffusers"], environment["transformers"]) == (None, None)
    assert payload["evidence"]["phash"] is not None
    assert payload["evidence"]["thumbnail_png"]
    assert progress.stages == [
        "Checking ComfyUI",
        WARMUP,
        *[f"Timed run {i}/5" for i in range(1, 6)],
    ]
    # One progress tick per sampling step, warm-up included.
    assert progress.events.count(("advance", 1)) == 6 * CURRENT.steps
    assert progress.notes == [NVML_NOTE, RUNS_FP8]
    # The CLI closes the last bar: the runner leaves it to it.
    assert ("done", None) not in progress.events


def test_each_timed_run_is_comfyuis_own_time_beside_the_agents_clock():
    payload, server, _ = benchmark()
    runs = payload["timings"]["runs"]

    assert [(r["prompt_index"], r["seed"]) for r in runs] == [
        (i, CURRENT.seeds[i]) for i in range(5)
    ]
    assert [r["seconds"] for r in runs] == finished_seconds(server)[1:]
    assert payload["timings"]["warmup_seconds"] == finished_seconds(server)[0]
    for run in runs:
        assert run["wall_seconds"] >= run["seconds"] - 0.002  # ComfyUI rounds to ms
        assert run["text_encoding_seconds"] > 0
        assert run["denoising_seconds"] > 0
        assert run["vae_decode_seconds"] > 0
    assert payload["timings"]["load_seconds"] > 0


def test_comfyui_is_emptied_first_and_never_serves_a_timed_image_from_its_cache():
    _, server, _ = benchmark()

    assert server.free_calls == [{"unload_models": True, "free_memory": True}]
    texts_and_seeds = [
        (p["4"]["inputs"]["text"], p["7"]["inputs"]["noise_seed"]) for p in server.prompts
    ]
    assert texts_and_seeds == [
        (f"{CURRENT.prompts[0]}, warm-up", max(CURRENT.seeds) + 1),
        *[(CURRENT.prompts[i], CURRENT.seeds[i]) for i in range(5)],
    ]
    for entry in list(server.history.values())[1:]:
        cached = dict(entry["status"]["messages"])["execution_cached"]["nodes"]
        # Only the loaders and the fixed sampling setup may come from the cache.
        assert {server.prompts[0][n]["class_type"] for n in cached} <= {
            "UNETLoader",
            "CLIPLoader",
            "VAELoader",
            "KSamplerSelect",
            "Flux2Scheduler",
            "EmptyFlux2LatentImage",
        }


def test_a_cache_that_would_serve_a_timed_image_stops_the_benchmark():
    with ComfyUIServer(Behaviour(cache="lru")) as server, pytest.raises(KleinBenchError) as caught:
        comfyui.run_protocol(url=server.url, runs=9, gpu_index=0, progress=SilentProgress())

    assert caught.value.message == (
        "ComfyUI served part of timed run 9 (CLIPTextEncode, ConditioningZeroOut, "
        "PreviewImage, RandomNoise, SamplerCustomAdvanced, VAEDecode) from its cache, so it "
        "cannot be timed: restart ComfyUI without --cache-lru or --cache-ram, or run at most "
        "8 timed runs."
    )


def test_without_the_websocket_the_runner_polls_history_and_leaves_stage_times_empty():
    payload, server, progress = benchmark(Behaviour(websocket=False))

    assert payload["outcome"]["status"] == "success"
    assert [r["seconds"] for r in payload["timings"]["runs"]] == finished_seconds(server)[1:]
    for run in payload["timings"]["runs"]:
        assert (run["text_encoding_seconds"], run["denoising_seconds"]) == (None, None)
    assert payload["timings"]["load_seconds"] is None
    [note] = [n for n in progress.notes if n.startswith("ComfyUI's progress WebSocket")]
    assert note.startswith("ComfyUI's progress WebSocket (/ws) is unavailable (ws://127.0.0.1:")
    assert note.endswith("so stage times are left empty and the agent polls /history.")


def test_the_bf16_file_and_low_vram_launch_are_recorded_as_such():
    behaviour = Behaviour(
        files={
            "diffusion_models": [BF16_FILE],
            "text_encoders": ["qwen_3_4b.safetensors"],
            "vae": ["flux2-vae.safetensors"],
        },
        argv=["main.py", "--lowvram", "--use-pytorch-cross-attention", "--port", "8190"],
    )
    payload, _, _ = benchmark(behaviour)

    assert payload["configuration"]["precision"] == "bf16"
    assert payload["configuration"]["offload"] == "model"
    assert payload["configuration"]["preset"] == "bf16-model-offload"
    assert payload["configuration"]["fp8_method"] is None
    assert payload["environment"]["runtime_flags"] == ["--lowvram", "--use-pytorch-cross-attention"]
    assert payload["environment"]["attention"] == "sdpa"


def test_disagreeing_clocks_are_flagged_in_the_result():
    payload, _, progress = benchmark(Behaviour(success_skew_ms=3000), runs=5)

    message = payload["outcome"]["message"]
    assert payload["outcome"]["status"] == "success"
    assert message.startswith(
        "ComfyUI's clock and the agent's disagree on 5 of 5 timed runs (timed run 1: ComfyUI "
        "timed 3."
    )
    assert progress.notes == [NVML_NOTE, RUNS_FP8, message]
    assert all(run["seconds"] > 3 for run in payload["timings"]["runs"])


def test_a_build_without_timestamps_is_timed_by_the_agents_clock():
    payload, _, progress = benchmark(Behaviour(timestamps=False))

    assert payload["outcome"]["status"] == "success"
    for run in payload["timings"]["runs"]:
        assert run["seconds"] == run["wall_seconds"]
    assert (
        "This ComfyUI build does not timestamp its status messages, so the agent's clock "
        "timed the runs."
    ) in progress.notes


def test_ctrl_c_stops_only_the_benchmarks_prompt(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(comfyui_execution.Execution, "_finish", interrupted)
    with ComfyUIServer() as server, pytest.raises(KeyboardInterrupt):
        comfyui.run_protocol(url=server.url, runs=5, gpu_index=0, progress=SilentProgress())

    [prompt_id] = server.history
    assert server.queue_calls == [{"delete": [prompt_id]}]
    assert server.interrupt_calls == [{"prompt_id": prompt_id}]


def test_out_of_memory_in_the_warm_up_is_a_result_with_the_stage_and_no_runs():
    payload, server, progress = benchmark(Behaviour(oom_at=("SamplerCustomAdvanced", 0)))

    assert payload["outcome"] == {
        "status": "out_of_memory",
        "phase": "warmup",
        "stage": "denoising",
        "message": "Out of memory in SamplerCustomAdvanced: torch.OutOfMemoryError Allocation on "
        "device",
    }
    assert payload["timings"]["runs"] == []
    assert payload["timings"]["warmup_seconds"] is None
    assert (payload["evidence"], payload["energy"]) == (None, None)
    assert len(server.prompts) == 1
    # The failed stage's bar goes; no "Warm-up 0/4" stays on screen.
    assert progress.events[-1] == ("abandon", None)


def test_out_of_memory_in_a_later_run_keeps_only_the_runs_that_finished():
    payload, server, _ = benchmark(Behaviour(oom_at=("VAEDecode", 3)))

    assert payload["outcome"]["status"] == "out_of_memory"
    assert payload["outcome"]["stage"] == "vae_decode"
    assert [r["seconds"] for r in payload["timings"]["runs"]] == finished_seconds(server)[1:]
    assert len(payload["timings"]["runs"]) == 2
    assert payload["evidence"] is not None
    assert len(server.prompts) == 4


def test_an_exception_in_a_node_is_an_error_at_that_nodes_stage():
    payload, _, _ = benchmark(Behaviour(error_at=("CLIPTextEncode", 1)))

    assert payload["outcome"] == {
        "status": "error",
        "phase": "timed",
        "stage": "text_encoding",
        "message": "CLIPTextEncode failed: RuntimeError: CUDA error: an illegal memory access "
        "was encountered",
    }
    assert payload["timings"]["runs"] == []
    assert payload["timings"]["warmup_seconds"] is not None


def test_a_prompt_interrupted_from_comfyui_is_no_result():
    message, server = refusal(Behaviour(interrupt_at=("SamplerCustomAdvanced", 2)))

    assert message == (
        "ComfyUI's timed run 2 was interrupted in SamplerCustomAdvanced (someone pressed "
        "Cancel or called /interrupt), so it measured nothing: leave ComfyUI to the benchmark "
        "until it finishes, then run klein-bench again."
    )
    assert len(server.prompts) == 3


def test_a_damaged_model_file_is_a_setup_error_not_a_result():
    message, server = refusal(Behaviour(damaged_files=("flux-2-klein-4b-fp8.safetensors",)))

    assert message == (
        "ComfyUI could not load flux-2-klein-4b-fp8.safetensors (safetensors_rust."
        "SafetensorError: Error while deserializing header: header too small): the file is "
        "damaged, incomplete or not the FLUX.2 [klein] 4B file; download it again, then run "
        "klein-bench again."
    )
    assert len(server.prompts) == 1


def test_a_comfyui_failing_to_answer_history_is_no_result():
    message, server = refusal(Behaviour(history_status=500))

    assert message.startswith("ComfyUI answered /history/")
    assert message.endswith(
        "with HTTP 500 during the warm-up, so the run cannot be followed: check ComfyUI's "
        "console, then run klein-bench again."
    )
    assert len(server.prompts) == 1


def test_model_files_that_do_not_belong_together_are_a_setup_error():
    behaviour = Behaviour(
        error_at=("SamplerCustomAdvanced", 0),
        error_message="mat1 and mat2 shapes cannot be multiplied (512x2560 and 7680x3072)\n",
    )
    message, _ = refusal(behaviour)

    assert message.startswith(
        "ComfyUI failed in SamplerCustomAdvanced (RuntimeError: mat1 and mat2 shapes cannot be "
        "multiplied (512x2560 and 7680x3072)): the three model files do not belong together"
    )


@pytest.mark.parametrize(
    ("websocket", "stage"), [(True, "denoising"), (False, "other")], ids=["websocket", "polling"]
)
def test_a_server_that_goes_away_mid_run_is_an_error_at_the_stage_it_was_in(websocket, stage):
    payload, server, _ = benchmark(
        Behaviour(disconnect_at=("SamplerCustomAdvanced", 2), websocket=websocket)
    )

    assert payload["outcome"] == {
        "status": "error",
        "phase": "timed",
        "stage": stage,
        "message": "ComfyUI stopped answering during timed run 2 (a crash or the operating "
        "system killing it for lack of memory looks like this): see ComfyUI's console.",
    }
    assert [r["seconds"] for r in payload["timings"]["runs"]] == finished_seconds(server)[1:]
    assert len(payload["timings"]["runs"]) == 1


def test_a_comfyui_killed_mid_run_is_said_to_have_exited(monkeypatch):
    # A process killed with SIGKILL stays a zombie until its parent reaps it.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    monkeypatch.setattr(comfyui, "comfyui_pid", lambda url, stats: child.pid)
    try:
        payload, _, _ = benchmark(Behaviour(disconnect_at=("VAEDecode", 1)))
    finally:
        child.wait()

    assert payload["outcome"] == {
        "status": "error",
        "phase": "timed",
        "stage": "vae_decode",
        "message": "ComfyUI's process exited during timed run 1 (a crash or the operating "
        "system killing it for lack of memory looks like this): see ComfyUI's console.",
    }


def test_stage_times_are_kept_when_history_shows_the_run_before_the_websocket_does():
    # ComfyUI writes /history and sends execution_success from different threads.
    payload, server, progress = benchmark(Behaviour(end_delay_s=1.3))

    for run in payload["timings"]["runs"]:
        assert run["text_encoding_seconds"] > 0
        assert run["denoising_seconds"] > 0
        assert run["vae_decode_seconds"] > 0
        # The agent's clock stops at the end message, not at the history poll.
        assert run["wall_seconds"] >= 1.3
    assert [r["seconds"] for r in payload["timings"]["runs"]] == finished_seconds(server)[1:]
    assert progress.notes[-1].startswith("ComfyUI's clock and the agent's disagree on 5 of 5")


def test_a_missing_end_message_is_said_and_leaves_only_that_runs_stage_times_empty(monkeypatch):
    monkeypatch.setattr(comfyui_execution, "END_GRACE_S", 0.3)
    monkeypatch.setattr(comfyui_execution, "GUARD_INTERVAL_S", 0.05)
    payload, _, progress = benchmark(Behaviour(end_delay_s=1.0), runs=5)

    assert all(run["denoising_seconds"] is None for run in payload["timings"]["runs"])
    assert (
        "ComfyUI's WebSocket did not say that timed run 1 ended, so its stage times are left "
        "empty and the agent's clock stopped when /history showed it."
    ) in progress.notes


def test_throttled_progress_messages_still_fill_the_bar():
    _, _, progress = benchmark(Behaviour(progress_every=3))

    advanced = sum(value for kind, value in progress.events if kind == "advance")
    assert advanced == 6 * CURRENT.steps


def test_the_protocols_warm_ups_run_each_with_their_own_prompt():
    protocol = CURRENT.__class__(**{**CURRENT.__dict__, "warmup_runs": 2})
    _, server, progress = benchmark(protocol=protocol)

    assert [p["7"]["inputs"]["noise_seed"] for p in server.prompts[:3]] == [
        max(CURRENT.seeds) + 1,
        max(CURRENT.seeds) + 2,
        CURRENT.seeds[0],
    ]
    assert progress.stages[1:3] == [
        "Warm-up 1/2 (loads FLUX.2 [klein] 4B, not timed)",
        "Warm-up 2/2 (not timed)",
    ]


def test_a_run_that_never_finishes_is_an_error_after_the_timeout():
    behaviour = Behaviour(node_seconds={"SamplerCustomAdvanced": 2.0})
    payload, _, _ = benchmark(behaviour, run_timeout=0.5)

    assert payload["outcome"] == {
        "status": "error",
        "phase": "warmup",
        "stage": "denoising",
        "message": "ComfyUI did not finish the warm-up within 0.5 seconds.",
    }
    assert payload["timings"]["runs"] == []


# --- with NVML ---------------------------------------------------------------------------


def test_with_nvml_the_comfyui_process_and_device_memory_are_recorded(monkeypatch):
    install_fake_nvml(monkeypatch)
    payload, _, progress = benchmark()

    memory = payload["memory"]
    assert memory["baseline_device_mb"] is not None
    assert memory["peak_device_mb"] > memory["baseline_device_mb"]
    assert memory["peak_process_mb"] == pytest.approx(memory["peak_device_mb"] - 300)
    # The shared loop's headline: ComfyUI's process, read by NVML, peaks per phase.
    assert (memory["peak_vram_mb"], memory["vram_source"]) == (
        memory["peak_process_mb"],
        "nvml-process",
    )
    assert list(memory["phases"]) == ["load", "warmup", "timed"]
    # The simulated card's use only grows, so the last phase holds the peak.
    assert memory["peak_phase"] == "timed"
    assert (memory["peak_allocated_mb"], memory["peak_reserved_mb"]) == (None, None)
    assert memory["context_mb"] is None
    assert memory["sample_interval_ms"] == 10.0
    assert payload["gpu"]["name"] == "NVIDIA GeForce RTX 5070"
    assert payload["gpu"]["compute_capability"] == "12.0"
    assert len(payload["gpu"]["uuid_hash"]) == 16
    assert (payload["environment"]["driver"], payload["environment"]["cuda_driver"]) == (
        "580.95.05",
        "13.0",
    )
    assert all(run["energy_joules"] > 0 for run in payload["timings"]["runs"])
    assert payload["energy"]["joules_per_image"] > 0
    assert payload["telemetry"] is not None
    assert NVML_NOTE not in progress.notes
    assert progress.notes == [RUNS_FP8]


def test_without_comfyuis_process_the_headline_is_the_cards_use_above_its_baseline(monkeypatch):
    install_fake_nvml(monkeypatch)
    monkeypatch.setattr(comfyui, "comfyui_pid", lambda url, stats: None)
    payload, _, progress = benchmark()

    memory = payload["memory"]
    assert memory["vram_source"] == "nvml-device-delta"
    assert memory["peak_vram_mb"] == pytest.approx(
        memory["peak_device_mb"] - memory["baseline_device_mb"]
    )
    assert (memory["peak_process_mb"], memory["peak_rss_mb"]) == (None, None)
    assert progress.notes[0].startswith("The ComfyUI process could not be found")


def test_comfyui_on_another_gpu_than_the_one_asked_for_is_refused(monkeypatch):
    install_fake_nvml(monkeypatch, devices=2, comfyui_device=1)

    with ComfyUIServer() as server:
        with pytest.raises(KleinBenchError) as caught:
            comfyui.run_protocol(url=server.url, runs=5, gpu_index=0, progress=SilentProgress())
        assert server.prompts == []

    assert caught.value.message == (
        "ComfyUI runs on GPU 1 (NVIDIA GeForce RTX 5070), not GPU 0: pass --gpu 1."
    )


def test_a_remote_comfyui_is_measured_without_local_gpu_figures(monkeypatch):
    monkeypatch.setattr(comfyui, "is_local", lambda url: False)
    payload, _, progress = benchmark()

    assert payload["outcome"]["status"] == "success"
    assert payload["memory"]["peak_rss_mb"] is None
    assert payload["memory"]["system_ram_mb"] == 65536.0
    assert payload["environment"]["os"] == "linux"
    assert progress.notes[0].startswith("ComfyUI runs on another machine")
