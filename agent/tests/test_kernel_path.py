"""Item 1: every result records the kernel path that ran, observed, not taken from the
settings; fp8-storage is FP8 storage with BF16 matmuls; fp8-compute is refused clearly
where it cannot run."""

from __future__ import annotations

import json

import pytest

from klein_bench import gpu, kernels
from klein_bench.backends.diffusers import kernels as observed
from klein_bench.contract import fit
from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.models import KLEIN_4B, KLEIN_TINY
from klein_bench.errors import KleinBenchError

torch = pytest.importorskip("torch")


def test_the_observer_sees_bf16_matmuls_and_the_attention_kernel_sdpa_chose():
    q = torch.randn(1, 2, 8, 16, dtype=torch.bfloat16)
    layer = torch.nn.Linear(16, 4, dtype=torch.bfloat16)

    with observed.KernelObserver() as observer:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
        layer(q)

    section = observer.section({})
    assert section["matmul_dtypes"] == ["bfloat16"]
    assert section["fp8_matmuls"] == 0
    assert section["attention"] == "sdpa-flash-cpu"


def test_an_fp8_matmul_kernel_is_counted_as_one():
    a = torch.randn(16, 16).to(torch.float8_e4m3fn)
    b = torch.randn(16, 16).to(torch.float8_e4m3fn).t()
    one = torch.tensor(1.0)

    with observed.KernelObserver() as observer:
        torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    assert observer.fp8_matmuls == 1
    assert observer.section({})["matmul_dtypes"] == ["float8_e4m3fn"]


def test_attention_without_a_fused_kernel_is_the_math_fallback():
    observer = observed.KernelObserver()
    observer.saw_function(torch.nn.functional.scaled_dot_product_attention, ())

    assert observer.attention == "sdpa-math"


def test_storage_dtypes_read_what_the_weights_are_stored_in():
    layer = torch.nn.Linear(64, 64, dtype=torch.bfloat16)
    stored = torch.nn.Linear(64, 64, dtype=torch.bfloat16).to(torch.float8_e4m3fn)

    assert observed.storage_dtypes({"vae": layer, "transformer": stored}) == {
        "vae": "bfloat16",
        "transformer": "float8_e4m3fn",
    }


@pytest.mark.parametrize("preset", ["bf16-resident", "fp8-storage"])
def test_a_tiny_run_records_the_kernel_path_it_observed(cli, tmp_path, preset):
    pytest.importorskip("diffusers")
    output = tmp_path / "result.json"

    result = cli("run", "--model", "klein-tiny-random", "--preset", preset, "-o", str(output))

    assert result.exit_code == 0, result.output
    payload = json.loads(output.read_text())
    path = payload["kernels"]
    stored = "float8_e4m3fn" if preset == "fp8-storage" else "bfloat16"
    assert path["weight_dtypes"] == {
        "transformer": stored,
        "text_encoder": stored,
        "vae": "bfloat16",
    }
    # FP8 storage upcasts every layer: each component's matmuls see BF16, no FP8 kernel.
    assert path["compute_dtypes"] == {
        "transformer": "bfloat16",
        "text_encoder": "bfloat16",
        "vae": "bfloat16",
    }
    assert path["matmul_dtypes"] == ["bfloat16"]
    assert path["fp8_matmuls"] == 0 and path["matmuls"] > 0
    assert path["fp8_matmul"] is False
    assert path["attention"] == payload["environment"]["attention"] == "sdpa-flash-cpu"
    # Observed in this process; what only ComfyUI reports stays empty.
    assert path["source"] == "observed"
    assert (path["model_file"], path["loading"], path["offloaded_mb"]) == (None, None, None)
    assert "Attention kernel" in result.stdout


def test_matmuls_are_filed_under_the_component_that_ran_them():
    layer = torch.nn.Linear(16, 16, dtype=torch.bfloat16)
    a = torch.randn(16, 16).to(torch.float8_e4m3fn)
    one = torch.tensor(1.0)

    with observed.KernelObserver() as observer:
        observer.component = "text_encoder"
        layer(torch.randn(2, 16, dtype=torch.bfloat16))
        observer.component = "transformer"
        torch._scaled_mm(a, a.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    section = observer.section({})
    assert section["compute_dtypes"] == {
        "transformer": "float8_e4m3fn",
        "text_encoder": "bfloat16",
    }
    assert (section["fp8_matmul"], section["fp8_matmuls"]) == (True, 1)


def test_the_schema_names_the_contracts_kernel_sources_and_loading_modes():
    from klein_bench.contract.figures import KERNEL_LOADINGS, KERNEL_SOURCES
    from klein_bench.contract.schema import result_schema

    schema = result_schema()["properties"]["kernels"]["properties"]
    assert schema["source"]["enum"] == list(KERNEL_SOURCES)
    for component in kernels.COMPONENTS:
        assert schema["loading"]["properties"][component]["enum"] == list(KERNEL_LOADINGS)
    sources = (kernels.SOURCE_OBSERVED, kernels.SOURCE_COMFYUI_LOG, kernels.SOURCE_ASSUMED)
    assert set(sources) == set(KERNEL_SOURCES)


def test_presets_are_named_by_what_runs():
    assert PRESETS["fp8-storage"].label == "FP8 weights, BF16 compute"
    assert PRESETS["fp8-compute"].needs_fp8_tensor_cores


def test_fp8_compute_on_the_cpu_is_refused_in_one_sentence():
    pytest.importorskip("diffusers")
    from klein_bench.backends.diffusers import pipeline

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(KleinBenchError) as error:
        pipeline.choose_target(KLEIN_TINY, PRESETS["fp8-compute"], None, False)
    assert error.value.message == (
        "--preset fp8-compute runs FP8 matmuls, which need an NVIDIA GPU with FP8 tensor "
        "cores (RTX 40 series or newer) and CUDA: on the CPU use --preset bf16-resident."
    )


def _card(name: str, capability: str) -> gpu.GpuInfo:
    return gpu.GpuInfo(0, name, None, 24576.0, 0.0, capability, False, 350.0, 4, 16, 4, 16)


def test_fp8_compute_on_a_card_without_fp8_tensor_cores_is_refused():
    pytest.importorskip("diffusers")
    from klein_bench.backends.diffusers import pipeline

    with pytest.raises(KleinBenchError) as error:
        pipeline._refuse_fp8_compute(_card("NVIDIA GeForce RTX 3090", "8.6"))
    assert error.value.message.startswith(
        "--preset fp8-compute runs FP8 matmuls, and the NVIDIA GeForce RTX 3090 (sm_86) has "
        "no FP8 tensor cores"
    )


def test_fp8_compute_without_torchao_says_how_to_install_it(monkeypatch):
    pytest.importorskip("diffusers")
    from klein_bench.backends.diffusers import pipeline

    monkeypatch.setattr(gpu, "package_version", lambda name: None)
    with pytest.raises(KleinBenchError, match=r'pip install "klein-bench\[fp8\]"'):
        pipeline._refuse_fp8_compute(_card("NVIDIA GeForce RTX 4090", "8.9"))


def test_fp8_compute_halves_the_transformers_weights_only():
    arch = KLEIN_4B.architecture
    bf16 = fit.weights_mib(arch, "bf16", "none")
    fp8 = fit.weights_mib(arch, "fp8-compute", "none")
    assert (bf16 - fp8) * fit.MIB == arch.transformer.parameters
