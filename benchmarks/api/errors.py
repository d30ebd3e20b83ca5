"""The API's error answers, in the same shape as /contribute's:
{"error": code, "detail": one sentence, "fields": {name: why}} (fields only when relevant)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

_CODES = {
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.ParseError: "malformed_request",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


class ErrorSerializer(serializers.Serializer):
    """Documents the error shape in the OpenAPI schema."""

    error = serializers.CharField(help_text="A stable code, e.g. not_found or invalid_query")
    detail = serializers.CharField(help_text="One sentence saying what is wrong")
    fields = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Why each bad field or query parameter is wrong",
    )


def _flatten(detail: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "request": " ".join(str(item) for item in detail)}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "request": str(detail)}


def api_exception_handler(exc: Exception, context: dict) -> Any:
    if isinstance(exc, (TooManyFieldsSent, RequestDataTooBig)):
        # Django answers these 400 itself, but in debug its error page reads the same
        # query again and fails: answer here, in the API's shape, in every mode.
        return Response(
            {
                "error": "invalid_query",
                "detail": "The request has too many query parameters or too large a body.",
            },
            status=400,
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "error": "invalid_query",
            "detail": "Some query parameters are not valid; see the fields for why.",
            "fields": _flatten(exc.detail),
        }
    else:
        code = next(
            (code for cls, code in _CODES.items() if isinstance(exc, cls)),
            getattr(exc, "default_code", "error"),
        )
        detail = str(getattr(exc, "detail", exc)).rstrip(".") + "."
        body = {"error": code, "detail": detail}
    response.data = body
    return response


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any /api/ address that names no endpoint: a JSON 404, like the endpoints' own."""
    return JsonResponse(
        {"error": "not_found", "detail": "There is no API endpoint at this address."},
        status=404,
    )
