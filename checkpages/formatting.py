"""How figures read on the pages. The same functions write the sentences and the tables,
so "2.3 s" in the verdict is "2.3 s" in the table below it.

Memory is stored in MiB and shown in GB of 1024 MiB, the unit nvidia-smi and the cards'
marketing use ("24 GB").
"""

from __future__ import annotations

import re

from benchmarks.services.catalog import without_vendor

MISSING = "\u2013"  # an en dash: "no figure"


def seconds(value: float | None) -> str:
    """'0.85 s', '2.3 s', '14 s': two significant figures below 10 s."""
    if value is None:
        return MISSING
    if value < 1:
        return f"{value:.2f} s"
    if value < 10:
        return f"{value:.1f} s"
    return f"{value:.0f} s"


def gb_number(mib: float | None) -> str:
    if mib is None:
        return MISSING
    return f"{mib / 1024:.1f}"


def gb(mib: float | None) -> str:
    """'19.8 GB' from MiB."""
    if mib is None:
        return MISSING
    return f"{gb_number(mib)} GB"


def card_gb(mib: float | None) -> str:
    """A card's memory as marketed: '12 GB', '141 GB'."""
    if mib is None:
        return MISSING
    value = mib / 1024
    return f"{value:.0f} GB" if abs(value - round(value)) < 0.05 else f"{value:.1f} GB"


def joules(value: float | None) -> str:
    """'780 J (0.22 Wh)': joules, with watt-hours for people who think in electricity bills."""
    if value is None:
        return MISSING
    return f"{value:.0f} J ({value / 3600:.2f} Wh)"


def percent(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value * 100:.0f}%"


def short_gpu_name(name: str) -> str:
    """'RTX 4090' from 'NVIDIA GeForce RTX 4090', for plots and narrow cells."""
    return without_vendor(name) or name


def names_memory(name: str) -> bool:
    """Whether a card's name already says its memory size ('RTX 5060 Ti 16 GB')."""
    return bool(re.search(r"\d\s*GB\b", name, re.IGNORECASE))


def count(n: int, singular: str, plural: str | None = None) -> str:
    """'1 result', '41 results'."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def plain(value: object) -> str:
    """A reported value as text: lists joined by commas, nothing as a dash."""
    if value is None or value == "" or value == []:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    return str(value)
