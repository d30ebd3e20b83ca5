"""The schemas a third-party client writes against: the result payload's JSON Schema at a
stable address (/schemas/result-v1.json), and POST /contribute and DELETE
/contribute/{result_id} in the OpenAPI schema (/api/schema/).

The two signed endpoints are plain Django views (they read the body's bytes, which DRF
would parse first), so drf-spectacular cannot see them: `contribution_endpoints` is a
postprocessing hook that adds them, every answer included. docs/protocol.md is the prose.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe
from klein_bench.contract import wire
from klein_bench.contract.schema import result_schema

from benchmarks.services.withdrawals import WITHDRAW_REASON_MAX

RESULT_SCHEMA_PATH = "/schemas/result-v1.json"
PROTOCOL_DOC = "docs/protocol.md in the klein-bench repository"


@require_safe
def result_schema_view(request: HttpRequest) -> JsonResponse:
    """The result payload's JSON Schema (Draft 2020-12), the one the server validates with."""
    response = JsonResponse(result_schema(), json_dumps_params={"indent": 2})
    response["Content-Type"] = "application/schema+json"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _envelope(purpose: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(wire.ENVELOPE_FIELDS),
        "description": "Signed as its RFC 8785 canonical JSON; see docs/protocol.md.",
        "properties": {
            "format": {"type": "string", "enum": [wire.ENVELOPE_FORMAT]},
            "purpose": {"type": "string", "enum": [purpose]},
            "key_id": {
                "type": "string",
                "pattern": "^kb1_[0-9a-f]{32}$",
                "description": '"kb1_" and the first 32 hex digits of SHA-256(public key)',
            },
            "created_at": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                "description": "UTC, to the second; within the server's time window",
            },
            "nonce": {
                "type": "string",
                "pattern": "^[0-9a-f]{16,64}$",
                "description": "Random; used once per key, whatever the purpose",
            },
            "submission_id": {
                "type": "string",
                "format": "uuid",
                "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                "description": "New for each result; scoped per key",
            },
            "payload": payload,
        },
    }


def _document(envelope: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["envelope", "signature"],
        "properties": {
            "envelope": _ref(envelope),
            "signature": {
                "type": "string",
                "pattern": "^[0-9a-f]{128}$",
                "description": "Ed25519 over the envelope's canonical JSON; canonical S",
            },
            "public_key": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "Raw Ed25519 public key; required the first time a key is used",
            },
        },
    }


_RESULT_LINKS = {
    "result_id": {"type": "integer"},
    "permalink": {"type": "string", "format": "uri"},
    "check_page": {"type": "string", "format": "uri"},
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "ContributionEnvelope": _envelope(
        wire.PURPOSE_CONTRIBUTE,
        {
            "type": "object",
            "description": (
                "The result: the JSON Schema (Draft 2020-12) served at "
                f"{RESULT_SCHEMA_PATH} defines every field and bound."
            ),
        },
    ),
    "WithdrawalEnvelope": _envelope(
        wire.PURPOSE_WITHDRAW,
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["result_id"],
            "properties": {
                "result_id": {"type": "integer", "description": "The id in the URL"},
                "reason": {"type": "string", "maxLength": WITHDRAW_REASON_MAX},
            },
        },
    ),
    "ContributionDocument": _document("ContributionEnvelope"),
    "WithdrawalDocument": _document("WithdrawalEnvelope"),
    "Accepted": {
        "type": "object",
        "required": [*_RESULT_LINKS, "status", "model", "gpu", "configuration"],
        "properties": {
            **_RESULT_LINKS,
            "status": {"type": "string", "enum": ["accepted"]},
            "model": {"type": "string"},
            "gpu": {"type": "string", "description": "The catalog's slug for the card"},
            "configuration": {
                "type": "object",
                "required": ["runtime", "precision", "offload", "width", "height", "steps"],
                "properties": {
                    "runtime": {"type": "string"},
                    "precision": {"type": "string"},
                    "offload": {"type": "string"},
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "steps": {"type": "integer"},
                    "preset": {"type": "string"},
                },
            },
        },
    },
    "Withdrawn": {
        "type": "object",
        "required": [*_RESULT_LINKS, "status", "withdrawn_at"],
        "properties": {
            **_RESULT_LINKS,
            "status": {"type": "string", "enum": ["withdrawn"]},
            "withdrawn_at": {"type": "string"},
        },
    },
}


def _header(description: str) -> dict[str, Any]:
    return {"schema": {"type": "string"}, "description": description, "required": True}


def _error(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        answer["headers"] = {name.replace("_", "-"): _header(why) for name, why in headers.items()}
    return answer


def _refusals(*, withdrawal: bool) -> dict[str, Any]:
    answers = {
        "400": _error(
            "malformed_document, wrong_purpose, stale or invalid_payload; `fields` names "
            "every bad field by its path"
        ),
        "401": _error(
            "unknown_key (send public_key) or bad_signature",
            WWW_Authenticate='KleinBench-Ed25519 realm="klein-bench"',
        ),
        "403": _error("key_revoked" + (", or not_owner" if withdrawal else "")),
        "409": _error("nonce_reused" + ("" if withdrawal else ", or submission_conflict")),
        "413": _error(f"too_large: over {settings.CONTRIBUTE_MAX_BYTES} bytes by default"),
        "415": _error("unsupported_media_type: the body must be application/json (UTF-8)"),
        "429": _error("rate_limited", Retry_After="Seconds until the limit's window ends"),
        "500": _error("server_error: a failure of the server's own; nothing was stored"),
        "503": _error("unavailable: the database cannot be reached", Retry_After="Seconds to wait"),
    }
    if withdrawal:
        answers["404"] = _error("not_found: there is no result with this id")
    return answers


def _body(component: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(component)}},
    }


PATHS: dict[str, dict[str, Any]] = {
    "/contribute": {
        "post": {
            "operationId": "contribute_create",
            "tags": ["contribute"],
            "summary": "Contribute one signed result",
            "description": (
                "A document signed for klein-bench/contribute/v1 whose payload is a result "
                f"(JSON Schema: {RESULT_SCHEMA_PATH}). Retrying the same bytes answers the "
                f"original 201 and stores nothing. Specified in {PROTOCOL_DOC}."
            ),
            "security": [],
            "requestBody": _body("ContributionDocument"),
            "responses": {
                "201": {
                    "description": "Stored, or an identical retry of a stored document",
                    "headers": {"Location": _header("The result's permalink")},
                    "content": {"application/json": {"schema": _ref("Accepted")}},
                },
                **_refusals(withdrawal=False),
            },
        }
    },
    "/contribute/{result_id}": {
        "delete": {
            "operationId": "contribute_destroy",
            "tags": ["contribute"],
            "summary": "Withdraw a result with a document signed by the key that submitted it",
            "description": f"Specified in {PROTOCOL_DOC}.",
            "security": [],
            "parameters": [
                {
                    "name": "result_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                    "description": "The result to withdraw",
                }
            ],
            "requestBody": _body("WithdrawalDocument"),
            "responses": {
                "200": {
                    "description": "Withdrawn, now or earlier",
                    "content": {"application/json": {"schema": _ref("Withdrawn")}},
                },
                **_refusals(withdrawal=True),
            },
        }
    },
}


def contribution_endpoints(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the signed endpoints and their schemas."""
    result["paths"].update(PATHS)
    result.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    return result
