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
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from klein_bench.contract import wire
from klein_bench.contract.figures import PEAK_VRAM_FIGURES
from klein_bench.contract.models import MODELS, work_of
from klein_bench.contract.protocol import known_protocol
from klein_bench.contract.schema import result_schema

from benchmarks.models import (
    Configuration,
    Gpu,
    ImageModel,
    Outcome,
    Result,
    Stage,
    preset_for,
)
from benchmarks.services.catalog import (
    ImpossibleMemory,
    configuration_for,
    gpu_for_reported_name,
    model_by_slug,
)

PAYLOAD_PATH = "envelope.payload"
# A successful result needs a spread, not a single run.
MIN_TIMED_RUNS = 3
# NVML reports slightly less than the marketed size, and samplers round: a peak may sit
# a little above the reported total without being implausible.
VRAM_TOLERANCE = 1.02
VRAM_SLACK_MB = 64
# Figures of the card's own memory, checked against its size.
CARD_MEMORY_FIGURES = ("baseline_device_mb", *PEAK_VRAM_FIGURES)
# A card without a peak in the catalog (the CPU row, a name the catalog does not know) is
# held to this many times the fastest card the catalog has.
UNKNOWN_CARD_PEAK_FACTOR = 4
# Unicode categories a GPU name must not contain: controls, format characters (the
# bidirectional overrides among them), unpaired surrogates, private use, line breaks.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
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
    reproduction_of: Result | None = None


@functools.cache
def _validator() -> Draft202012Validator:
    schema = result_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _path(*parts: Any) -> str:
    return ".".join([PAYLOAD_PATH, *(wire.path_name(str(p)) for p in parts)])


def _schema_errors(payload: Any) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in _validator().iter_errors(payload):
        for path, why in _describe(error):
            errors.setdefault(path, why)
    return dict(sorted(errors.items()))


def _json(value: Any) -> str:
    """A schema value as JSON writes it: null, true, "bf16", 16."""
    return json.dumps(value, ensure_ascii=False)


_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _describe(error: ValidationError) -> list[tuple[str, str]]:
    """(path, reason) pairs naming the field itself, not just its parent, in JSON's terms
    and without echoing what was sent (which may be huge)."""
    where = list(error.absolute_path)
    rule, limit = error.validator, error.validator_value
    if rule == "required":
        missing = [name for name in limit if name not in error.instance]
        return [(_path(*where, name), "is required") for name in missing]
    if rule == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        return [(_path(*where, name), "is not a field of this schema") for name in extra]
    if rule == "type":
        kinds = [limit] if isinstance(limit, str) else list(limit)
        why = "must be " + " or ".join(_TYPE_WORDS.get(kind, kind) for kind in kinds)
    elif rule == "const":
        why = f"must be {_json(limit)}"
        if error.schema.get("description"):
            why += f": {error.schema['description']}"
    elif rule == "enum":
        why = f"must be one of {', '.join(_json(choice) for choice in limit)}"
    elif rule == "minimum":
        why = f"must be at least {_json(limit)}"
    elif rule == "exclusiveMinimum":
        why = f"must be above {_json(limit)}"
    elif rule == "maximum":
        why = f"must be at most {_json(limit)}"
    elif rule == "multipleOf":
        why = f"must be a multiple of {_json(limit)}"
    elif rule == "maxLength":
        why = f"must be at most {limit} characters long"
    elif rule == "maxItems":
        why = f"must hold at most {limit} items, not {len(error.instance)}"
    elif rule == "pattern":
        why = f"must match the pattern {limit}"
    else:
        why = error.message[:200]
    return [(_path(*where), why)]


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
    for path in _nul_strings(payload):
        # PostgreSQL cannot store NUL in text or jsonb. (An unpaired surrogate, the other
        # string it cannot store, has no canonical JSON: wire.parse_document refuses it.)
        errors.setdefault(path, "must not contain NUL characters")

    model = None
    if not _bad_under(errors, "model"):
        model = model_by_slug(payload["model"])
        if model is None:
            errors[_path("model")] = f"{_json(payload['model'])} is not a model in the catalog"

    if not _bad_under(errors, "protocol"):
        problem = _protocol_problem(payload["protocol"], model)
        if problem:
            errors[_path("protocol")] = problem

    if not _bad_under(errors, "outcome", "timings"):
        errors.update(_timing_errors(payload))

    if not _bad_under(errors, "configuration"):
        errors.update(_configuration_errors(payload["configuration"]))

    thumbnail = (payload.get("evidence") or {}).get("thumbnail_png")
    if thumbnail and not _bad_under(errors, "evidence") and thumbnail_bytes(payload) is None:
        errors[_path("evidence", "thumbnail_png")] = "must be a base64-encoded PNG image"

    if not _bad_under(errors, "gpu"):
        problem = _gpu_name_problem(payload["gpu"])
        if problem:
            errors[_path("gpu", "name")] = problem

    if errors:
        raise PayloadInvalid(dict(sorted(errors.items())))

    try:
        gpu = _gpu_for(payload["gpu"])
    except ImpossibleMemory as exc:
        raise PayloadInvalid({_path("gpu", "memory_total_mb"): str(exc)}) from exc
    assert model is not None
    errors = {**_memory_errors(payload, gpu), **_speed_errors(payload, model, gpu)}
    configuration = _configuration_for(payload)
    original, problem = _reproduced(payload, model, configuration)
    if problem:
        errors[_path("reproduction_of")] = problem
    if errors:
        raise PayloadInvalid(dict(sorted(errors.items())))
    return ValidResult(
        payload=payload,
        model=model,
        gpu=gpu,
        configuration=configuration,
        reproduction_of=original,
    )


def _reproduced(
    payload: dict[str, Any], model: ImageModel, configuration: Configuration
) -> tuple[Result | None, str]:
    """The result a reproduction names, or why it cannot be one: it must exist and have
    run the same model, configuration and protocol (on any card)."""
    wanted = payload.get("reproduction_of")
    if wanted is None:
        return None, ""
    original = (
        Result.objects.select_related("model", "configuration").filter(pk=wanted).first()
        if wanted < 2**63
        else None
    )
    if original is None:
        return None, f"there is no result {wanted} on this server to reproduce"
    mine = (model.pk, configuration.pk, payload["protocol"]["id"], payload["synthetic"])
    theirs = (
        original.model_id,
        original.configuration_id,
        original.protocol_version,
        original.synthetic,
    )
    if mine != theirs:
        weights = " with random weights" if original.synthetic else ""
        return None, (
            f"result {wanted} ran {original.model.slug} in {original.configuration}{weights} "
            f"under protocol {original.protocol_version}; a reproduction runs exactly that "
            "(klein-bench reproduce sets it up)"
        )
    return original, ""


def _nul_strings(payload: Any) -> list[str]:
    """The paths of every string (member names too) that holds NUL, walked without
    recursion (wire.MAX_DEPTH bounds the depth anyway)."""
    found = []
    pending: list[tuple[Any, tuple[Any, ...]]] = [(payload, ())]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            found.append(_path(*where))
        elif isinstance(value, dict):
            found += [_path(*where, key) for key in value if "\x00" in key]
            pending += [(item, (*where, key)) for key, item in value.items()]
        elif isinstance(value, list):
            pending += [(item, (*where, index)) for index, item in enumerate(value)]
    return found


def _gpu_name_problem(gpu_info: dict[str, Any]) -> str | None:
    name = gpu_info["name"]
    if not name.strip():
        return "is required for a CUDA device" if gpu_info["device"] == "cuda" else None
    if any(unicodedata.category(ch) in _UNPRINTABLE for ch in name):
        return "must not contain control, formatting or bidirectional characters"
    if not any(ch.isalnum() for ch in name):
        return "must name the GPU: it has no letter or digit"
    return None


def _timing_errors(payload: dict[str, Any]) -> dict[str, str]:
    errors = {}
    runs = payload["timings"]["runs"]
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
                f"does not match precision and offload (expected {_json(expected)})"
                if expected
                else "must be null: no standard preset has this precision and offload"
            )
        }
    return {}


def _memory_errors(payload: dict[str, Any], gpu: Gpu) -> dict[str, str]:
    """Memory figures above what holds them: the card's memory for the card's figures,
    the machine's RAM for the process's resident set (plus VRAM_TOLERANCE and
    VRAM_SLACK_MB for rounding and sampling)."""
    memory = payload["memory"]
    reported = payload["gpu"].get("memory_total_mb")
    card = max((c for c in (reported, gpu.vram_mb) if c), default=None)
    checks = [("peak_rss_mb", memory.get("system_ram_mb"), "the machine's system RAM")]
    # A spilled run's figures exceed the card: the driver lent it system memory.
    if payload["outcome"]["status"] != Outcome.SPILLED:
        checks += [(figure, card, "the card's memory") for figure in CARD_MEMORY_FIGURES]
    errors = {}
    for figure, capacity, what in checks:
        value = memory.get(figure)
        if value is not None and capacity and value > capacity * VRAM_TOLERANCE + VRAM_SLACK_MB:
            errors[_path("memory", figure)] = (
                f"{value:.0f} MiB is more than {what}, {capacity:.0f} MiB"
            )
    return errors


def _peak_tflops(gpu: Gpu, precision: str) -> tuple[float, str]:
    """The dense tensor peak the precision that ran computes at on this card, and what it
    is: FP8 for fp8-compute where the card has FP8 tensor cores, BF16 otherwise (bf16 and
    fp8-storage compute in BF16). A card without a catalog peak is held to
    UNKNOWN_CARD_PEAK_FACTOR times the fastest catalog card."""
    fp8 = precision == "fp8-compute"
    own = (gpu.fp8_tflops if fp8 else None) or gpu.bf16_tflops
    if own:
        kind = "FP8" if fp8 and gpu.fp8_tflops else "BF16"
        return own, f"the {gpu.name}'s dense {kind} peak of {own:g} TFLOPS"
    field = "fp8_tflops" if fp8 else "bf16_tflops"
    fastest = max(
        Gpu.objects.filter(is_flagged=False).exclude(**{field: None}).values_list(field, flat=True)
    )
    peak = fastest * UNKNOWN_CARD_PEAK_FACTOR
    return peak, (
        f"{UNKNOWN_CARD_PEAK_FACTOR} times the fastest catalog card's peak ({peak:g} TFLOPS), "
        "as the catalog has no figure for this card"
    )


def _protocol_problem(protocol: dict[str, Any], model: ImageModel | None) -> str | None:
    """A protocol the server does not know, or one that is not the model's (each model
    owns its protocols: a base model's result under the distilled protocol is not one)."""
    if known_protocol(protocol["id"], protocol["hash"]) is None:
        return (
            f"{_json(protocol['id'])} with this hash is not a protocol the server knows; "
            "update the agent"
        )
    entry = MODELS.get(model.slug) if model is not None else None
    if model is not None and (entry is None or entry.protocol_for(protocol["id"]) is None):
        owned = ", ".join(p.id for p in entry.protocols) if entry else "none"
        return (
            f"{_json(protocol['id'])} is not a protocol of {model.slug} (its protocols: "
            f"{owned}); run the model's own protocol with the agent"
        )
    return None


def _speed_errors(payload: dict[str, Any], model: ImageModel, gpu: Gpu) -> dict[str, str]:
    """Runs faster than the card's physics: nothing can do the transformer's work per
    image (klein_bench.contract.work) faster than the card's dense tensor peak."""
    runs = payload["timings"]["runs"]
    c = payload["configuration"]
    work = work_of(
        model.slug,
        width=int(c["width"]),
        height=int(c["height"]),
        steps=int(c["steps"]),
        protocol_id=payload["protocol"]["id"],
    )
    if work is None or not runs:
        return {}
    peak, what = _peak_tflops(gpu, c["precision"])
    least = work.bound_seconds(peak)
    errors = {}
    for index, run in enumerate(runs):
        if run["seconds"] < least:
            errors[_path("timings", "runs", index, "seconds")] = (
                f"{run['seconds']:.3g} s is faster than physics allows: the transformer's "
                f"{work.transformer_flop / 1e12:.3g} TFLOP per image take at least "
                f"{least:.3g} s at {what}"
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
