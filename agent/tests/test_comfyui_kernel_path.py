"""What ComfyUI really ran: the result's precision, offload and kernel path come from
ComfyUI's own log lines and launch flags, not from the file's name."""

from __future__ import annotations

import pytest
from comfyui_harness import benchmark, install_fake_nvml, isolate
from comfyui_server import BF16_FILE, Behaviour

from klein_bench.backends.comfyui import logs as comfyui_logs

BF16_FILES = {
    "diffusion_models": [BF16_FILE],
    "text_encoders": ["qwen_3_4b.safetensors"],
    "vae": ["flux2-vae.safetensors"],
}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


def configuration_and_path(payload: dict) -> tuple[tuple, dict]:
    config = payload["configuration"]
    return (
        (config["precision"], config["offload"], config["preset"], config["fp8_method"]),
        payload["kernels"],
    )


def test_the_fp8_file_without_fast_is_fp8_storage_with_bf16_matmuls():
    config, path = configuration_and_path(benchmark()[0])

    assert config == ("fp8-storage", "none", "fp8-storage", "bfl-fp8-file")
    assert (path["weight_dtypes"]["transformer"], path["compute_dtypes"]) == (
        "float8_e4m3fn",
        {"transformer": "bfloat16"},
    )
    assert (path["fp8_matmul"], path["source"]) == (False, "comfyui-log")


def test_fast_fp8_matmuls_on_a_card_with_fp8_tensor_cores_are_fp8_compute(monkeypatch):
    install_fake_nvml(monkeypatch, capability=(12, 0))
    behaviour = Behaviour(argv=["main.py", "--fast", "fp8_matrix_mult"])
    config, path = configuration_and_path(benchmark(behaviour)[0])

    # The contract has an fp8-compute preset now: ComfyUI's FP8 matmuls group with it.
    assert config == ("fp8-compute", "none", "fp8-compute", "bfl-fp8-file")
    assert (path["fp8_matmul"], path["compute_dtypes"]["transformer"]) == (True, "float8_e4m3fn")


def test_fast_on_a_card_without_fp8_tensor_cores_stays_fp8_storage(monkeypatch):
    install_fake_nvml(monkeypatch, capability=(8, 6))
    config, path = configuration_and_path(benchmark(Behaviour(argv=["main.py", "--fast"]))[0])

    assert config[0] == "fp8-storage"
    assert path["fp8_matmul"] is False


def test_a_quantized_file_is_fp8_compute_only_where_comfyui_runs_fp8_ops_natively():
    native, _ = configuration_and_path(benchmark(Behaviour(quantized_native_fp8=True))[0])
    emulated, path = configuration_and_path(benchmark(Behaviour(quantized_native_fp8=False))[0])

    assert (native[0], emulated[0]) == ("fp8-compute", "fp8-storage")
    assert path["weight_dtypes"]["transformer"] == "float8_e4m3fn"


def test_the_bf16_file_cast_to_fp8_by_a_launch_flag_is_recorded_as_fp8():
    behaviour = Behaviour(
        files=BF16_FILES,
        argv=["main.py", "--fp8_e4m3fn-unet"],
        weight_dtype="torch.float8_e4m3fn",
    )
    config, path = configuration_and_path(benchmark(behaviour)[0])

    assert config == ("fp8-storage", "none", "fp8-storage", "comfyui-fp8-weight-dtype")
    assert path["model_file"] == BF16_FILE


def test_partial_loading_is_offload_even_without_lowvram():
    payload, _, _ = benchmark(Behaviour(files=BF16_FILES, loading="partial"))
    config, path = configuration_and_path(payload)

    assert config == ("bf16", "model", "bf16-model-offload", None)
    assert (path["loading"]["transformer"], path["offloaded_mb"]) == ("partial", 1900.0)


def test_a_warm_up_that_runs_out_of_memory_still_says_what_comfyui_loaded():
    # The out-of-memory result is filed under the configuration that really ran.
    behaviour = Behaviour(files=BF16_FILES, loading="partial", oom_at=("SamplerCustomAdvanced", 0))
    payload, _, _ = benchmark(behaviour)
    config, path = configuration_and_path(payload)

    assert (payload["outcome"]["status"], payload["outcome"]["phase"]) == (
        "out_of_memory",
        "warmup",
    )
    assert config == ("bf16", "model", "bf16-model-offload", None)
    assert (path["loading"]["transformer"], path["offloaded_mb"]) == ("partial", 1900.0)


def test_dynamic_vram_loading_is_recorded():
    _, path = configuration_and_path(benchmark(Behaviour(loading="dynamic"))[0])

    assert path["loading"] == {
        "transformer": "dynamic",
        "text_encoder": "dynamic",
        "vae": "dynamic",
    }


def test_without_comfyuis_log_the_file_and_flags_are_used_and_said():
    payload, _, progress = benchmark(Behaviour(logs=False))
    config, path = configuration_and_path(payload)

    assert config[0] == "fp8-storage"
    assert path["source"] == "file-and-launch-flags"
    assert (
        "ComfyUI's log (GET /internal/logs/raw) did not show the diffusion model loading, so "
        "the weight and compute dtypes are taken from the file and the launch flags."
    ) in progress.notes


def test_log_lines_from_before_the_benchmark_are_not_read():
    before = [{"t": "1", "m": "model weight dtype torch.float8_e4m3fn, manual cast: None"}]
    after = [
        *before,
        {"t": "2", "m": "\x1b[32mmodel weight dtype torch.bfloat16, manual cast: None"},
    ]

    path = comfyui_logs.read_log(comfyui_logs.new_entries(before, after))

    assert path is not None and path.weight_dtypes == {"transformer": "bfloat16"}
    assert comfyui_logs.read_log(comfyui_logs.new_entries(after, after)) is None


def test_comfyuis_prompt_executed_lines_are_read_in_both_forms():
    seconds = comfyui_logs.executed_seconds(
        [
            "got prompt",
            "\x1b[32m[INFO]\x1b[0m \x1b[32mPrompt executed in 0.74 seconds\x1b[0m\n",
            "Prompt executed in 0:11:02.50",
        ]
    )

    assert seconds == [0.74, 662.5]
