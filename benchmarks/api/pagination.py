"""Cursor pagination for results, with the next page also in a Link header (for CSV)."""

from __future__ import annotations

import binascii
from base64 import b64decode
from urllib import parse

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination

# Result ids are 64-bit signed integers.
MAX_ID = 2**63 - 1
BAD_CURSOR = "is not a cursor this API gave out; follow the next and previous links as they are"


def _whole(text: str, maximum: int) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > maximum:
        raise ValueError(text)
    return int(text)


class ResultCursorPagination(CursorPagination):
    # Ids only grow, so the newest-first order is stable while results keep arriving.
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF's cursor, read strictly: any cursor that is not one of ours (bad base64,
        unknown parts, a position that is not a result id) is a 400 naming `cursor`,
        never a query the database refuses."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            text = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            tokens = parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
            if set(tokens) - {"o", "r", "p"} or any(len(v) != 1 for v in tokens.values()):
                raise ValueError(text)
            offset = min(_whole(tokens.get("o", ["0"])[0], MAX_ID), self.offset_cutoff)
            reverse = _whole(tokens.get("r", ["0"])[0], 1) == 1
            position = tokens.get("p", [None])[0]
            if position is not None:
                position = str(_whole(position, MAX_ID))
        except (UnicodeError, binascii.Error, ValueError):
            raise ValidationError({self.cursor_query_param: BAD_CURSOR}) from None
        return Cursor(offset=offset, reverse=reverse, position=position)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            raise ValidationError({self.page_size_query_param: "Enter a whole number above 0."})
        # Larger pages are cut to the maximum rather than refused.
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page (default {self.page_size}, at most {self.max_page_size})"
                )
        return parameters

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        links = [
            f'<{url}>; rel="{rel}"'
            for rel, url in (("next", self.get_next_link()), ("prev", self.get_previous_link()))
            if url
        ]
        if links:
            response["Link"] = ", ".join(links)
        return response
