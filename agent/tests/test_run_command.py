"""`klein-bench run` with the tiny pipeline: the whole protocol on this machine."""

from __future__ import annotations

import json

import pytest

from klein_bench.contract.protocol import CURRENT
from klein_bench.result import schema_errors

pytest.importorskip("diffusers", reason="the tiny pipeline needs klein-bench[diffusers]")


def test_run_tiny_model_writes_a_result_that_follows_the_schema(cli, home, tmp_path):
    output = tmp_path / "result.json"

    result = cli("run", "--model", "klein-tiny-random", "--output", str(output))

    assert result.exit_code == 0, result.output
    payload = json.loads(output.read_text())
    if schema_errors(payload) is None:
        pytest.skip("jsonschema is not installed")
    assert schema_errors(payload) == []
    assert payload["model"] == "klein-tiny-random"
    assert payload["synthetic"] is False
    assert payload["outcome"] == {"status": "success", "stage": None, "message": ""}
    assert payload["protocol"] == {"id": CURRENT.id, "hash": CURRENT.hash}
    assert payload["configuration"] == {
        "runtime": "diffusers",
        "precision": "bf16",
        "offload": "none",
        "width": 64,
        "height": 64,
        "steps": 4,
        "preset": "bf16-resident",
        "fp8_method": None,
    }


def test_run_prints_the_table_and_where_the_result_is_kept(cli, home):
    result = cli("run", "--model", "klein-tiny-random")

    assert result.exit_code == 0, result.output
    for label in (
        "Seconds per image",
        "p10 / p90",
        "stdev / CV",
        "Text encoding (median)",
        "Denoising (median)",
        "VAE decode (median)",
        "Peak allocated (torch)",
        "Peak reserved (torch)",
        "Peak process (NVML)",
        "Peak device (NVML)",
        "Energy per image",
    ):
        assert label in result.stdout
    [entry] = home.history()
    assert f"local result {entry['local_id']}" in result.stderr
    assert (
        json.loads(home.result_path(entry["local_id"]).read_text())["model"] == "klein-tiny-random"
    )


def test_tiny_run_times_each_generation_and_its_stages(tiny_payload):
    runs = tiny_payload["timings"]["runs"]

    assert [(r["prompt_index"], r["seed"]) for r in runs] == [
        (i, CURRENT.seeds[i]) for i in range(5)
    ]
    for run in runs:
        stages = run["text_encoding_seconds"] + run["denoising_seconds"] + run["vae_decode_seconds"]
        assert 0 < stages <= run["seconds"]
    assert tiny_payload["timings"]["load_seconds"] > 0
    assert tiny_payload["timings"]["warmup_seconds"] > 0


def test_tiny_run_reports_progress_for_load_warmup_and_each_run(tiny_progress):
    assert tiny_progress.stages == [
        "Importing torch and diffusers",
        "Loading Klein tiny random (test model)",
        "Warm-up (not timed)",
        *(f"Timed run {i}/5" for i in range(1, 6)),
    ]
    # One advance per denoising step: the warm-up and five runs, four steps each.
    assert sum(1 for kind, _ in tiny_progress.events if kind == "advance") == 6 * CURRENT.steps


def test_tiny_run_on_the_cpu_leaves_gpu_figures_empty_and_measures_host_memory(tiny_payload):
    if tiny_payload["gpu"]["device"] != "cpu":
        pytest.skip("this machine ran the tiny model on its GPU")
    memory = tiny_payload["memory"]
    assert tiny_payload["gpu"] == {"device": "cpu", "name": ""}
    kept = ("peak_rss_mb", "system_ram_mb", "phases")
    assert {k: memory[k] for k in memory if k not in kept} == {
        "peak_vram_mb": None,
        "vram_source": None,
        "peak_phase": None,
        "peak_stage": None,
        "baseline_device_mb": None,
        "peak_allocated_mb": None,
        "peak_reserved_mb": None,
        "peak_process_mb": None,
        "peak_device_mb": None,
        "sample_interval_ms": None,
        "context_mb": None,
        "shared_peak_mb": None,
    }
    assert set(memory["phases"]) == {"load", "warmup", "timed"}
    assert 0 < memory["peak_rss_mb"] < memory["system_ram_mb"]
    assert tiny_payload["energy"] is None
    assert tiny_payload["telemetry"] is None


def test_tiny_run_carries_evidence_of_the_first_image(tiny_payload):
    evidence = tiny_payload["evidence"]
    assert len(evidence["phash"]) == 16
    assert evidence["thumbnail_png"]


def test_fp8_preset_uses_layerwise_casting_and_says_so(cli, tmp_path):
    output = tmp_path / "fp8.json"

    result = cli(
        "run", "--model", "klein-tiny-random", "--preset", "fp8-storage", "-o", str(output)
    )

    assert result.exit_code == 0, result.output
    payload = json.loads(output.read_text())
    assert payload["outcome"]["status"] == "success"
    assert payload["configuration"]["precision"] == "fp8-storage"
    assert payload["configuration"]["offload"] == "none"
    assert payload["configuration"]["fp8_method"] == (
        "diffusers-layerwise-casting:transformer,text_encoder"
    )
    assert "layerwise_casting:float8_e4m3fn" in payload["environment"]["runtime_flags"]


def test_too_few_runs_are_refused_before_anything_runs(cli, home):
    result = cli("run", "--model", "klein-tiny-random", "--runs", "3")

    assert result.exit_code == 2
    assert "3 is not in the range 5<=x<=100" in result.stderr
    assert home.history() == []
