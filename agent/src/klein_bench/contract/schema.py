"""The result payload's JSON Schema (schemas/result-v1.json), shared with the server."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

RESULT_SCHEMA = "klein-bench/result/v1"


@cache
def result_schema() -> dict[str, Any]:
    text = resources.files("klein_bench.contract").joinpath("schemas/result-v1.json").read_text()
    return json.loads(text)
