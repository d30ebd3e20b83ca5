"""A finding of `klein-bench doctor`: one thing checked, how it stands, and its fix.

Its own module so every runtime's checks (doctor.py, backends/comfyui/doctor.py) can
return findings without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Finding:
    level: str  # "ok", "info", "warning" or "problem"
    topic: str
    text: str
    fix: str | None = None
