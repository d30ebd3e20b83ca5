"""CSV for result lists (`?format=csv`): one row per result, the list's fields as columns,
booleans as true and false (as in the JSON), offered as a file to save; and `?format=`
checked against the formats an endpoint has."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code == 200:
            response["Content-Disposition"] = 'attachment; filename="klein-bench-results.csv"'
        rows = data.get("results", []) if isinstance(data, dict) else data or []
        columns = list(renderer_context["view"].get_serializer().fields)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in columns])
        return out.getvalue().encode(self.charset)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


class FormatNegotiation(DefaultContentNegotiation):
    """`?format=` must name a format the endpoint has: otherwise a 400 naming the ones it
    has (DRF answers 404 with an empty detail)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        asked = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        formats = [renderer.format for renderer in renderers]
        if asked is not None and asked not in formats:
            raise ValidationError(
                {
                    self.settings.URL_FORMAT_OVERRIDE: f"{asked!r} is not a format of this "
                    f"endpoint; use {' or '.join(formats)}"
                }
            )
        return super().select_renderer(request, renderers, format_suffix)
