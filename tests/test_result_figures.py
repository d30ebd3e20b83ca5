"""The measurement figures a result carries (headline VRAM and its source, per-phase
peaks, kernel path, host link, power, work and share of peak) are stored, served by the
API and shown on /r/<id>; a spilled result counts as not fitting."""

from __future__ import annotations

import pytest
from klein_bench.contract.models import KLEIN_4B

from benchmarks.models import Result
from benchmarks.services import aggregation
from tests.contribute_support import _fresh_rate_limits, contribute, key_fixture  # noqa: F401
from tests.factories import result_payload

pytestmark = pytest.mark.usefixtures("catalog")


def post_signed(client, payload):
    from klein_bench.contract import wire

    return contribute(client, wire.SigningKey.generate(), payload)


BF16 = {"transformer": "bfloat16", "text_encoder": "bfloat16", "vae": "bfloat16"}
# What the diffusers runtime observed, and what ComfyUI's log said it ran.
OBSERVED = {
    "source": "observed",
    "model_file": None,
    "weight_dtypes": BF16,
    "compute_dtypes": BF16,
    "matmul_dtypes": ["bfloat16"],
    "matmuls": 1200,
    "fp8_matmuls": 0,
    "fp8_matmul": False,
    "attention": "sdpa-flash",
    "loading": None,
    "offloaded_mb": None,
}
FROM_COMFYUI_LOG = {
    "source": "comfyui-log",
    "model_file": "flux-2-klein-4b.safetensors",
    "weight_dtypes": BF16,
    "compute_dtypes": {"transformer": "bfloat16"},
    "matmul_dtypes": None,
    "matmuls": None,
    "fp8_matmuls": None,
    "fp8_matmul": False,
    "attention": "sdpa",
    "loading": {"transformer": "partial", "text_encoder": "full", "vae": "full"},
    "offloaded_mb": 1945.6,
}


def valid_payload():
    return result_payload()


def _payload(**changes):
    payload = valid_payload()
    payload["memory"].update(
        peak_vram_mb=20480.0,
        vram_source="torch-reserved+context",
        peak_phase="timed",
        peak_stage="vae_decode",
        context_mb=420.0,
        phases={
            "load": {"peak_vram_mb": 15600.0, "stage": "load"},
            "warmup": {"peak_vram_mb": 20400.0, "stage": "vae_decode"},
            "timed": {"peak_vram_mb": 20480.0, "peak_reserved_mb": 20060.0, "stage": "vae_decode"},
        },
    )
    payload["gpu"].update(pcie_generation=4, pcie_width=16, default_power_limit_w=450.0)
    payload["telemetry"] = {
        "power_limit_share": 0.6,
        "capped": True,
        "throttled": False,
        "throttle_reasons": ["sw_power_cap"],
    }
    payload["kernels"] = dict(OBSERVED)
    payload["work"] = {"transformer_tflop": 139.3, "total_tflop": 154.1}
    for key, value in changes.items():
        payload[key] = value
    return payload


def test_the_new_figures_are_stored_served_and_shown(client):
    payload = _payload()
    response = post_signed(client, payload)
    assert response.status_code == 201, response.json()
    result = Result.objects.get(pk=response.json()["result_id"])

    assert (result.peak_vram_mb, result.vram_source) == (20480.0, "torch-reserved+context")
    assert (result.peak_phase, result.peak_stage) == ("timed", "vae_decode")
    assert result.memory_phases["warmup"]["stage"] == "vae_decode"
    assert (result.attention_kernel, result.fp8_kernels_ran) == ("sdpa-flash", False)
    assert (result.pcie_generation, result.pcie_width) == (4, 16)
    assert (result.power_limit_share, result.capped, result.throttled) == (0.6, True, False)
    c = payload["configuration"]
    work = KLEIN_4B.work(width=c["width"], height=c["height"], steps=c["steps"])
    assert result.transformer_tflop == pytest.approx(work.transformer_flop / 1e12)
    gpu = result.gpu
    if gpu.bf16_tflops:
        assert result.peak_share == pytest.approx(
            work.transformer_flop / (result.seconds_median * gpu.bf16_tflops * 1e12)
        )

    api = client.get(f"/api/v1/results/{result.pk}").json()
    assert api["peak_vram_mb"] == 20480.0
    assert api["vram_source"] == "torch-reserved+context"
    assert api["kernels"]["attention"] == "sdpa-flash"
    assert api["memory_phases"]["timed"]["peak_reserved_mb"] == 20060.0
    assert (api["capped"], api["throttled"], api["pcie_generation"]) == (True, False, 4)

    page = client.get(f"/r/{result.pk}").content.decode()
    assert "20.0 GiB peak VRAM" in page
    assert "<code>torch-reserved+context</code>, in the timed phase (vae_decode)" in page
    assert "Memory by phase" in page
    assert (
        '<tr><th scope="row">Read from</th><td>observed in the agent&#x27;s process (torch '
        "function and dispatch modes)</td></tr>"
    ) in page
    assert (
        '<tr><th scope="row">FP8 matmuls</th><td>no (0 of 1,200 matmul kernels)</td></tr>' in page
    )
    assert '<tr><th scope="row">Attention kernel</th><td>sdpa-flash</td></tr>' in page
    assert "default: <strong>capped</strong>" in page and ">60% of the card" in page
    assert "Gen4 x16" in page


def test_a_spilled_result_is_accepted_beyond_the_cards_memory_and_does_not_fit(client):
    payload = _payload(
        outcome={
            "status": "spilled",
            "stage": "vae_decode",
            "phase": "warmup",
            "message": "PyTorch held 30.0 GiB on a card with 24.0 GiB.",
        },
        # At the card's own power limit: a capped run is kept apart from the summaries.
        telemetry={"power_limit_share": 1.0, "capped": False, "throttled": False},
    )
    payload["memory"]["peak_reserved_mb"] = 30720.0

    response = post_signed(client, payload)

    assert response.status_code == 201, response.json()
    result = Result.objects.get(pk=response.json()["result_id"])
    assert (result.outcome, result.failed_phase) == ("spilled", "warmup")
    page = client.get(f"/r/{result.pk}").content.decode()
    assert "Spilled into system memory during VAE decode (warmup phase)" in page
    summary = aggregation.update_summary(
        result.model_id, result.gpu_id, result.configuration_id, result.synthetic
    )
    assert (summary.verdict, summary.failures_by_stage) == (
        "does_not_fit",
        {"spilled": {"vae_decode": 1}},
    )


def test_what_comfyui_ran_is_stored_and_shown_from_the_same_section(client):
    payload = _payload(kernels=dict(FROM_COMFYUI_LOG))
    payload["configuration"].update(
        runtime="comfyui", precision="bf16", offload="model", preset="bf16-model-offload"
    )
    response = post_signed(client, payload)
    assert response.status_code == 201, response.json()
    result = Result.objects.get(pk=response.json()["result_id"])

    assert (result.attention_kernel, result.fp8_kernels_ran) == ("sdpa", False)
    assert result.kernels == FROM_COMFYUI_LOG
    assert "kernel_path" not in result.environment
    page = client.get(f"/r/{result.pk}").content.decode()
    for row in (
        '<th scope="row">Read from</th><td>ComfyUI&#x27;s own log lines and launch flags</td>',
        '<th scope="row">Model file</th><td>flux-2-klein-4b.safetensors</td>',
        '<th scope="row">Matmuls computed in</th><td>transformer: bfloat16</td>',
        '<th scope="row">FP8 matmuls</th><td>no</td>',
        '<th scope="row">Model loading</th><td>transformer: partially (the rest '
        "streamed from system RAM), text_encoder: fully, vae: fully; 1.9 GiB left in system "
        "RAM</td>",
    ):
        assert row in page, row
    assert "Matmul input dtypes" not in page
