"""Valid payloads and signed request bodies for tests, built the way the agent builds them.

`result_payload()` is a successful FLUX.2 [klein] 4B run on an RTX 4090 in the
bf16-resident configuration; pass nested overrides to change any part of it, e.g.
`result_payload(gpu={"name": "NVIDIA GeForce RTX 5070"}, timings={"runs": runs(1.5)})`.
"""

from __future__ import annotations

import copy
from typing import Any

from klein_bench.contract import wire
from klein_bench.contract.models import MODELS
from klein_bench.contract.protocol import CURRENT
from klein_bench.contract.schema import RESULT_SCHEMA


def runs(*seconds: float) -> list[dict[str, Any]]:
    """Timed runs with these end-to-end seconds (five at 2.0 s when none are given)."""
    values = seconds or (2.0, 2.0, 2.0, 2.0, 2.0)
    return [
        {
            "seconds": s,
            "text_encoding_seconds": round(s * 0.05, 6),
            "denoising_seconds": round(s * 0.8, 6),
            "vae_decode_seconds": round(s * 0.15, 6),
            "prompt_index": i % len(CURRENT.prompts),
            "seed": CURRENT.seeds[i % len(CURRENT.seeds)],
        }
        for i, s in enumerate(values)
    ]


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


# The base payload's card hash. A real agent salts the GPU's UUID with its own machine's
# secret, so two keys never share a hash unless they measured one card from one machine
# (a rotated key); signed_document() salts this placeholder with the signing key the same
# way, so the results of different keys count as different contributors.
PER_KEY_CARD = "3f2a9c1d5e6b7a80"


def card_hash(key: wire.SigningKey, card: str = PER_KEY_CARD) -> str:
    import hashlib

    return hashlib.sha256(key.public_bytes + card.encode()).hexdigest()[:16]


_BASE: dict[str, Any] = {
    "schema": RESULT_SCHEMA,
    "protocol": {"id": CURRENT.id, "hash": CURRENT.hash},
    "model": "flux-2-klein-4b",
    "synthetic": False,
    "configuration": {
        "runtime": "diffusers",
        "precision": "bf16",
        "offload": "none",
        "width": 1024,
        "height": 1024,
        "steps": 4,
        "preset": "bf16-resident",
        "fp8_method": None,
    },
    "gpu": {
        "device": "cuda",
        "name": "NVIDIA GeForce RTX 4090",
        "memory_total_mb": 24564,
        "compute_capability": "8.9",
        "uuid_hash": PER_KEY_CARD,
        "drives_display": False,
        "power_limit_w": 450,
        "pcie_generation": 4,
        "pcie_width": 16,
    },
    "outcome": {"status": "success", "stage": None, "message": ""},
    "timings": {"load_seconds": 14.2, "warmup_seconds": 6.1, "runs": runs()},
    "memory": {
        "baseline_device_mb": 412.0,
        "peak_allocated_mb": 17950.0,
        "peak_reserved_mb": 19010.0,
        "peak_process_mb": 19620.0,
        "peak_device_mb": 20030.0,
        "peak_rss_mb": 3120.0,
        "system_ram_mb": 65536.0,
        "sample_interval_ms": 10.0,
    },
    "energy": {"joules_per_image": 780.0, "average_power_w": 390.0},
    "telemetry": {
        "max_sm_clock_mhz": 2745.0,
        "max_memory_clock_mhz": 10501.0,
        "max_temperature_c": 71.0,
        "throttle_reasons": [],
    },
    "environment": {
        "agent": "0.1.0",
        "os": "Linux",
        "python": "3.11.7",
        "torch": "2.9.1+cu128",
        "cuda": "12.8",
        "driver": "580.95.05",
        "cuda_driver": "13.0",
        "diffusers": "0.42.1",
        "transformers": "5.23.0",
        "runtime_version": "0.42.1",
        "runtime_flags": [],
        "cpu": "AMD Ryzen 9 7950X",
        "attention": "sdpa",
    },
    "evidence": {"phash": "c3c3e1e1f0f87c3e", "thumbnail_png": None},
}


def result_payload(**overrides: Any) -> dict[str, Any]:
    return _merge(copy.deepcopy(_BASE), overrides)


def oom_payload(stage: str = "vae_decode", **overrides: Any) -> dict[str, Any]:
    """An out-of-memory result: no timed runs, the stage it failed in."""
    payload = result_payload(
        outcome={"status": "out_of_memory", "stage": stage, "message": "CUDA out of memory."},
        timings={"runs": []},
        energy=None,
        evidence=None,
    )
    return _merge(payload, overrides)


def signed_document(
    payload: Any, key: wire.SigningKey | None = None, **envelope: Any
) -> dict[str, Any]:
    key = key or wire.SigningKey.generate()
    gpu = payload.get("gpu") if isinstance(payload, dict) else None
    if isinstance(gpu, dict) and gpu.get("uuid_hash") == PER_KEY_CARD:
        payload = {**payload, "gpu": {**gpu, "uuid_hash": card_hash(key)}}
    return wire.seal(payload, key, **envelope)


def signed_body(payload: Any, key: wire.SigningKey | None = None, **envelope: Any) -> bytes:
    return wire.encode(signed_document(payload, key, **envelope))


def make_result(
    *,
    model: str = "flux-2-klein-4b",
    gpu: str = "rtx-4090",
    configuration: dict[str, Any] | None = None,
    seconds: float | None = 2.0,
    outcome: str = "success",
    status: str = "accepted",
    contributor: Any = None,
    synthetic: bool = False,
    **fields: Any,
):
    """A stored Result (with its Submission) without going through the API, for tests of
    what reads results. The catalog must be loaded. `configuration` overrides the
    standard bf16-resident 1024x1024 4-step one; `fields` set any Result column."""
    import hashlib
    import uuid

    from django.utils import timezone

    from benchmarks.models import Configuration, Contributor, Gpu, ImageModel, Result, Submission

    if contributor is None:
        key = wire.SigningKey.generate()
        contributor = Contributor.objects.create(
            key_id=key.key_id, public_key=key.public_bytes.hex()
        )
    config_fields = {
        "runtime": "diffusers",
        "precision": "bf16",
        "offload": "none",
        "width": 1024,
        "height": 1024,
        "steps": 4,
        **(configuration or {}),
    }
    config, _ = Configuration.objects.get_or_create(**config_fields)
    body = f'{{"test": "{uuid.uuid4()}"}}'
    submission = Submission.objects.create(
        contributor=contributor,
        client_submission_id=uuid.uuid4(),
        nonce=uuid.uuid4().hex,
        body=body,
        body_sha256=hashlib.sha256(body.encode()).hexdigest(),
        created_at=timezone.now(),
        status=status,
    )
    if outcome == "success" and seconds is not None:
        fields.setdefault("runs", runs(seconds, seconds, seconds))
        fields.setdefault("n_runs", 3)
        fields.setdefault("seconds_median", seconds)
    elif outcome != "success":
        fields.setdefault("failed_stage", "vae_decode")
    return Result.objects.create(
        submission=submission,
        contributor=contributor,
        model=ImageModel.objects.get(slug=model),
        gpu=Gpu.objects.get(slug=gpu),
        configuration=config,
        protocol_version=MODELS[model].protocol.id,
        protocol_hash=MODELS[model].protocol.hash,
        synthetic=synthetic,
        outcome=outcome,
        **fields,
    )
