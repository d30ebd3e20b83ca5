"""Accepting signed contributions (POST /contribute).

After the checks both signed endpoints share (benchmarks.services.signed), in this
order: identical retry, time window, submission id, nonce, payload. A contribution is
stored in one transaction: the nonce and the submission with the body verbatim first,
then the result, then the summary update is queued for after the commit. A nonce is used
once per key, whatever the purpose (UsedNonce).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import IntegrityError, transaction
from klein_bench.contract import comparability, stats, wire
from klein_bench.contract.figures import MEMORY_FIGURES, PEAK_FOR_PRECISION
from klein_bench.contract.models import work_of
from klein_bench.contract.work import Work

from benchmarks.models import Contributor, Result, Submission, SubmissionStatus, UsedNonce
from benchmarks.services import consensus
from benchmarks.services.signed import (
    Refused,
    Reply,
    authenticate,
    check_page,
    count_key,
    nonce_reused,
    parse,
    permalink,
    require_fresh,
    require_purpose,
)
from benchmarks.services.validation import (
    PayloadInvalid,
    ValidResult,
    failed_stage,
    thumbnail_bytes,
    validate_result,
)
from benchmarks.tasks import update_consensus, update_summary

log = logging.getLogger(__name__)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _replay(submission: Submission) -> Reply:
    response = submission.response or {}
    return Reply(201, response, {"Location": response.get("permalink", "")})


def submit(body: bytes, client_ip: str, site: str = "") -> Reply:
    """Answer one POST /contribute: store a signed result, or say why not. Permalinks
    name `site` (benchmarks.site.site_url of the request)."""
    document = parse(body, client_ip)
    require_purpose(document, wire.PURPOSE_CONTRIBUTE, "POST /contribute")
    contributor = authenticate(document)
    count_key(document)
    digest = _sha256(body)
    try:
        require_fresh(document)
    except Refused:
        # An identical retry is answered with the original response at any time: the same
        # signed bytes were verified and stored already, so answering them again stores
        # nothing.
        earlier = _earlier(contributor, document)
        if earlier is not None and earlier.body_sha256 == digest:
            return _replay(earlier)
        raise
    # No look for an earlier submission first: the unique constraints on (key, submission
    # id) and (key, nonce) refuse the insert of a retry, a reused id or a replayed nonce
    # (or a parallel request's twin), and _after_race answers it as if it had looked.
    try:
        return _store(document, body, digest, contributor, site)
    except IntegrityError:
        answer = _after_race(document, digest)
        if answer is None:
            raise
        return answer


def _earlier(contributor: Contributor | None, document: wire.SignedDocument) -> Submission | None:
    if contributor is None:
        return None
    return Submission.objects.filter(
        contributor=contributor, client_submission_id=document.submission_id
    ).first()


def _conflict() -> Refused:
    return Refused(
        409,
        "submission_conflict",
        "This submission_id was already used for a different document; "
        "use a new submission_id for a new result.",
        {"envelope.submission_id": "already used with a different body"},
    )


def _after_race(document: wire.SignedDocument, digest: str) -> Reply | None:
    """The answer to an insert the unique constraints refused: the original response for
    an identical retry, or a conflict; None when it was not a duplicate after all."""
    earlier = Submission.objects.filter(
        contributor__key_id=document.key_id, client_submission_id=document.submission_id
    ).first()
    if earlier is not None:
        if earlier.body_sha256 == digest:
            return _replay(earlier)
        raise _conflict()
    if UsedNonce.objects.filter(contributor__key_id=document.key_id, nonce=document.nonce).exists():
        raise nonce_reused()
    return None


def _store(
    document: wire.SignedDocument,
    body: bytes,
    digest: str,
    contributor: Contributor | None,
    site: str,
) -> Reply:
    with transaction.atomic():
        if contributor is None:
            # Trust on first use: from now on this key id is bound to this public key.
            assert document.public_key is not None
            contributor, _ = Contributor.objects.get_or_create(
                key_id=document.key_id, defaults={"public_key": document.public_key.hex()}
            )
        # The nonce and the signed document go in first; a payload that fails validation
        # below rolls them back with everything else (including any GPU or configuration
        # row it made).
        UsedNonce.objects.create(
            contributor=contributor, nonce=document.nonce, purpose=document.purpose
        )
        submission = Submission.objects.create(
            contributor=contributor,
            client_submission_id=document.submission_id,
            nonce=document.nonce,
            body=body.decode("utf-8"),
            body_sha256=digest,
            created_at=document.created_at,
        )
        try:
            valid = validate_result(document.payload)
        except PayloadInvalid as exc:
            raise Refused(
                400,
                "invalid_payload",
                "The result does not pass validation; see the fields for what is wrong.",
                exc.errors,
            ) from exc
        result = Result(submission=submission, contributor=contributor, **_result_fields(valid))
        # Judged against the consensus as it stands, so a straying image never counts.
        result.image_differs = consensus.strays(result)
        result.save()
        response = _created_response(result, site)
        submission.response = response
        submission.save(update_fields=["response"])
        update_summary.delay_on_commit(
            result.model_id, result.gpu_id, result.configuration_id, result.synthetic
        )
        if consensus.judged(result):
            update_consensus.delay_on_commit(*consensus.key_of(result))
    log.info("stored result %s from %s", result.pk, contributor.key_id)
    return Reply(201, response, {"Location": response["permalink"]})


def _created_response(result: Result, site: str) -> dict[str, Any]:
    c = result.configuration
    return {
        "result_id": result.pk,
        "permalink": permalink(result.pk, site),
        "check_page": check_page(result.model.slug, result.gpu.slug, site),
        "status": SubmissionStatus.ACCEPTED.value,
        "model": result.model.slug,
        "gpu": result.gpu.slug,
        "configuration": {
            "runtime": c.runtime,
            "precision": c.precision,
            "offload": c.offload,
            "width": c.width,
            "height": c.height,
            "steps": c.steps,
            "preset": c.preset,
        },
    }


def _median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run.get(key) is not None]
    return stats.median(values) if values else None


def _result_fields(valid: ValidResult) -> dict[str, Any]:
    """The Result columns of a validated payload."""
    p = valid.payload
    runs = p["timings"]["runs"]
    spread = stats.summarize([run["seconds"] for run in runs]) if runs else {}
    memory = p["memory"]
    environment = p["environment"]
    energy = p.get("energy") or {}
    evidence = p.get("evidence") or {}
    telemetry = dict(p.get("telemetry") or {})
    for key, value in (
        ("average_power_w", energy.get("average_power_w")),
        ("memory_sample_interval_ms", memory.get("sample_interval_ms")),
        ("warmup_seconds", p["timings"].get("warmup_seconds")),
    ):
        if value is not None:
            telemetry[key] = value
    return {
        "model": valid.model,
        "gpu": valid.gpu,
        "configuration": valid.configuration,
        "protocol_version": p["protocol"]["id"],
        "protocol_hash": p["protocol"]["hash"],
        "synthetic": p["synthetic"],
        "outcome": p["outcome"]["status"],
        "failed_stage": failed_stage(p),
        "error_message": p["outcome"].get("message", ""),
        "runs": runs,
        "n_runs": len(runs),
        "seconds_median": spread.get("median"),
        "seconds_p10": spread.get("p10"),
        "seconds_p90": spread.get("p90"),
        "seconds_mean": spread.get("mean"),
        "seconds_stdev": spread.get("stdev"),
        "seconds_cv": spread.get("cv"),
        "load_seconds": p["timings"].get("load_seconds"),
        "text_encoding_seconds": _median_of(runs, "text_encoding_seconds"),
        "denoising_seconds": _median_of(runs, "denoising_seconds"),
        "vae_decode_seconds": _median_of(runs, "vae_decode_seconds"),
        **{name: memory.get(name) for name in MEMORY_FIGURES},
        **_measurement_fields(p, valid, spread.get("median")),
        "energy_joules_per_image": energy.get("joules_per_image"),
        "driver_version": environment.get("driver") or "",
        "torch_version": environment.get("torch") or "",
        "diffusers_version": environment.get("diffusers") or "",
        "runtime_version": environment.get("runtime_version") or "",
        "agent_version": environment["agent"],
        "drives_display": p["gpu"].get("drives_display"),
        "environment": {**environment, "gpu": p["gpu"], "fp8_method": _fp8_method(p)},
        "telemetry": telemetry,
        "image_phash": evidence.get("phash") or "",
        "thumbnail_png": thumbnail_bytes(p),
        **_trust_fields(valid),
    }


def _trust_fields(valid: ValidResult) -> dict[str, Any]:
    """How comparable the result is, the card it ran on (for counting independent
    contributors) and the result it reproduces."""
    kind, deviations = comparability.classify(valid.payload)
    return {
        "comparability": kind,
        "deviations": deviations,
        "gpu_uuid_hash": valid.payload["gpu"].get("uuid_hash") or "",
        "reproduction_of": valid.reproduction_of,
    }


def _measurement_fields(
    p: dict[str, Any], valid: ValidResult, seconds_median: float | None
) -> dict[str, Any]:
    """The headline VRAM, per-phase peaks, kernel path, host link, power and work."""
    memory = p["memory"]
    kernels = p.get("kernels") or {}
    telemetry = p.get("telemetry") or {}
    c = p["configuration"]
    work = stats_work(p["model"], c, p["protocol"]["id"])
    peak = (
        valid.gpu.fp8_tflops
        if PEAK_FOR_PRECISION[c["precision"]] == "fp8"
        else (valid.gpu.bf16_tflops)
    )
    share = None
    if work is not None and peak and seconds_median and p["outcome"]["status"] == "success":
        share = work.transformer_flop / (seconds_median * peak * 1e12)
    return {
        "peak_vram_mb": memory.get("peak_vram_mb"),
        "vram_source": memory.get("vram_source") or "",
        "peak_phase": memory.get("peak_phase") or "",
        "peak_stage": memory.get("peak_stage") or "",
        "memory_phases": memory.get("phases") or {},
        "failed_phase": p["outcome"].get("phase") or "",
        "kernels": kernels,
        "attention_kernel": kernels.get("attention") or "",
        "fp8_kernels_ran": kernels.get("fp8_matmul"),
        "pcie_generation": p["gpu"].get("pcie_generation"),
        "pcie_width": p["gpu"].get("pcie_width"),
        "power_limit_share": telemetry.get("power_limit_share"),
        "capped": telemetry.get("capped"),
        "throttled": telemetry.get("throttled"),
        "work_tflop": work.total_flop / 1e12 if work else None,
        "transformer_tflop": work.transformer_flop / 1e12 if work else None,
        "peak_share": share,
    }


def stats_work(model: str, configuration: dict[str, Any], protocol_id: str) -> Work | None:
    """The work per image, from the registry (not the payload's word): the model's
    architecture under the result's protocol, guidance passes counted."""
    return work_of(
        model,
        width=configuration["width"],
        height=configuration["height"],
        steps=configuration["steps"],
        protocol_id=protocol_id,
    )


def _fp8_method(payload: dict[str, Any]) -> str | None:
    return payload["configuration"].get("fp8_method")
