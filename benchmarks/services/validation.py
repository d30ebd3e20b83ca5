"""Every rule a result payload must satisfy, in one place.

`validate_result(payload)` checks the payload against the JSON Schema shared with the
agent (klein_bench/contract/schemas/result-v1.json, Draft 2020-12) and then for plausibility, and
answers every bad field at once, by its dotted path from the request body's root
(`envelope.payload.timings.runs.2.seconds`). The API and anything else that accepts
results call it; nothing else decides whether a result is acceptable.

It resolves the GPU and the configuration, which may create a flagged GPU entry or a
non-standard configuration row: call it inside the transaction that stores the result,
so that a rejected payload leaves nothing behind.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from klein_bench.contract.figures import PEAK_VRAM_FIGURES
from klein_bench.contract.protocol import known_protocol
from klein_bench.contract.schema import result_schema

from benchmarks.models import Configuration, Gpu, ImageModel, Outcome, Stage, preset_for
from benchmarks.services.catalog import configuration_for, gpu_for_reported_name, model_by_slug

PAYLOAD_PATH = "envelope.payload"
# A successful result needs a spread, not a single run.
MIN_TIMED_RUNS = 3
# NVML reports slightly less than the marketed size, and samplers round: a peak may sit
# a little above the reported total without being implausible.
VRAM_TOLERANCE = 1.02
VRAM_SLACK_MB = 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PayloadInvalid(ValueError):
    """The payload breaks the rules; `errors` maps each bad field's dotted path to why."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {why}" for path, why in errors.items()))


@dataclass(frozen=True)
class ValidResult:
    payload: dict[str, Any]
    model: ImageModel
    gpu: Gpu
    configuration: Configuration


@functools.cache
def _validator() -> Draft202012Validator:
    schema = result_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _path(*parts: Any) -> str:
    return ".".join([PAYLOAD_PATH, *(str(p) for p in parts)])


def _schema_errors(payload: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in _validator().iter_errors(payload):
        for path, why in _describe(error):
            errors.setdefault(path, why)
    return dict(sorted(errors.items()))


def _describe(error: ValidationError) -> list[tuple[str, str]]:
    """(path, reason) pairs naming the field itself, not just its parent."""
    where = list(error.absolute_path)
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(_path(*where, name), "is required") for name in missing]
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        return [(_path(*where, name), "is not a field of this schema") for name in extra]
    if error.validator == "const":
        return [(_path(*where), f"must be {error.validator_value!r}")]
    if error.validator == "enum":
        choices = ", ".join("null" if v is None else repr(v) for v in error.validator_value)
        return [(_path(*where), f"must be one of {choices}")]
    return [(_path(*where), error.message)]


def _bad_under(errors: dict[str, str], *sections: str) -> bool:
    """Whether the schema already found something wrong in any of these sections."""
    prefixes = tuple(_path(section) for section in sections)
    return any(path == p or path.startswith(p + ".") for path in errors for p in prefixes)


def validate_result(payload: Any) -> ValidResult:
    """The payload's model, GPU and configuration, or PayloadInvalid naming every bad field.

    Each plausibility rule runs when the schema found nothing wrong in the sections it
    reads, so one answer names the schema's complaints and the implausible figures alike.
    """
    if not isinstance(payload, dict):
        raise PayloadInvalid({PAYLOAD_PATH: "must be a JSON object"})
    errors = _schema_errors(payload)
    for path in _nul_strings(payload, [PAYLOAD_PATH]):
        # PostgreSQL cannot store NUL in text or jsonb.
        errors.setdefault(path, "must not contain NUL characters")

    model = None
    if not _bad_under(errors, "model"):
        model = model_by_slug(payload["model"])
        if model is None:
            errors[_path("model")] = f"{payload['model']!r} is not a model in the catalog"

    if not _bad_under(errors, "protocol"):
        protocol = payload["protocol"]
        if known_protocol(protocol["id"], protocol["hash"]) is None:
            errors[_path("protocol")] = (
                f"{protocol['id']!r} with this hash is not a protocol the server knows; "
                "update the agent"
            )

    if not _bad_under(errors, "outcome", "timings"):
        errors.update(_timing_errors(payload))

    if not _bad_under(errors, "configuration"):
        errors.update(_configuration_errors(payload["configuration"]))

    thumbnail = (payload.get("evidence") or {}).get("thumbnail_png")
    if thumbnail and not _bad_under(errors, "evidence") and thumbnail_bytes(payload) is None:
        errors[_path("evidence", "thumbnail_png")] = "must be a base64-encoded PNG image"

    if not _bad_under(errors, "gpu"):
        gpu_info = payload["gpu"]
        if gpu_info["device"] == "cuda" and not gpu_info["name"].strip():
            errors[_path("gpu", "name")] = "is required for a CUDA device"

    if errors:
        raise PayloadInvalid(dict(sorted(errors.items())))

    gpu = _gpu_for(payload["gpu"])
    memory_errors = _memory_errors(payload, gpu)
    if memory_errors:
        raise PayloadInvalid(memory_errors)
    assert model is not None
    return ValidResult(
        payload=payload, model=model, gpu=gpu, configuration=_configuration_for(payload)
    )


def _nul_strings(value: Any, where: list[str]) -> list[str]:
    if isinstance(value, str):
        return [".".join(where)] if "\x00" in value else []
    if isinstance(value, dict):
        found = [".".join([*where, k]) for k in value if "\x00" in k]
        for key, item in value.items():
            found += _nul_strings(item, [*where, key])
        return found
    if isinstance(value, list):
        return [
            path for i, item in enumerate(value) for path in _nul_strings(item, [*where, str(i)])
        ]
    return []


def _timing_errors(payload: dict[str, Any]) -> dict[str, str]:
    errors = {}
    runs = payload["timings"]["runs"]
    for index, run in enumerate(runs):
        if run["seconds"] <= 0:
            errors[_path("timings", "runs", index, "seconds")] = "must be above 0"
    if payload["outcome"]["status"] == Outcome.SUCCESS and len(runs) < MIN_TIMED_RUNS:
        errors[_path("timings", "runs")] = (
            f"a successful result needs at least {MIN_TIMED_RUNS} timed runs, got {len(runs)}"
        )
    return errors


def _configuration_errors(configuration: dict[str, Any]) -> dict[str, str]:
    expected = preset_for(configuration["precision"], configuration["offload"])
    given = configuration.get("preset")
    if given not in (None, "", expected):
        return {
            _path("configuration", "preset"): (
                f"does not match precision and offload (expected {expected!r})"
                if expected
                else "must be null: no standard preset has this precision and offload"
            )
        }
    return {}


def _memory_errors(payload: dict[str, Any], gpu: Gpu) -> dict[str, str]:
    reported = payload["gpu"].get("memory_total_mb")
    capacities = [c for c in (reported, gpu.vram_mb) if c]
    if not capacities:
        return {}
    limit = max(capacities) * VRAM_TOLERANCE + VRAM_SLACK_MB
    errors = {}
    # A spilled run's allocator held more than the card: that is what it reports.
    if payload["outcome"]["status"] == Outcome.SPILLED:
        return {}
    for figure in PEAK_VRAM_FIGURES:
        value = payload["memory"].get(figure)
        if value is not None and value > limit:
            errors[_path("memory", figure)] = (
                f"{value:.0f} MiB is more than the card's {max(capacities):.0f} MiB"
            )
    return errors


def _gpu_for(gpu_info: dict[str, Any]) -> Gpu:
    # An empty name is how the catalog lookup spells "no GPU".
    name = "" if gpu_info["device"] == "cpu" else gpu_info["name"]
    return gpu_for_reported_name(name, gpu_info.get("memory_total_mb"))


def _configuration_for(payload: dict[str, Any]) -> Configuration:
    c = payload["configuration"]
    return configuration_for(
        c["runtime"],
        c["precision"],
        c["offload"],
        int(c["width"]),
        int(c["height"]),
        int(c["steps"]),
    )


def thumbnail_bytes(payload: dict[str, Any]) -> bytes | None:
    """The evidence thumbnail's PNG bytes; None when there is none or it is not a PNG."""
    encoded = (payload.get("evidence") or {}).get("thumbnail_png")
    if not encoded:
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    return data if data.startswith(PNG_SIGNATURE) else None


def failed_stage(payload: dict[str, Any]) -> str:
    """The stage a failed result stopped in; 'other' when the agent could not tell."""
    if payload["outcome"]["status"] == Outcome.SUCCESS:
        return ""
    return payload["outcome"]["stage"] or Stage.OTHER
