"""The live badge of a model on a card (/check/<model>/<gpu>/badge.svg), for recipe and
tutorial pages: "RTX 5070 | 3.7 s · 10.6 GiB · 24 runs" from the same verdict the check
page leads with, "estimate ~3.9 s · ~11 GiB" (dashed, grey-blue) where nobody measured,
or "unknown". A fixed height and a width from the text, so it lays out before it loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape

from benchmarks.models import Gpu, ImageModel, Verdict
from checkpages import formatting, queries
from checkpages.formatting import count
from checkpages.verdicts import AnswerView

HEIGHT = 20
# Verdana 11px, as shields.io badges: an average of 6.5 px a character, 10 px padding.
CHAR_WIDTH = 6.5
PADDING = 10
COLOURS = {
    Verdict.RUNS: "#1a7f37",
    Verdict.NEEDS_OFFLOAD: "#9a6700",
    Verdict.DOES_NOT_FIT: "#cf222e",
    Verdict.UNKNOWN: "#57606a",
    "estimate": "#4a6785",
}
LABEL_COLOUR = "#24292f"


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    kind: str
    title: str

    @property
    def label_width(self) -> int:
        return round(len(self.label) * CHAR_WIDTH + PADDING)

    @property
    def message_width(self) -> int:
        return round(len(self.message) * CHAR_WIDTH + PADDING)

    @property
    def width(self) -> int:
        return self.label_width + self.message_width


def _estimate_badge(model: ImageModel, gpu: Gpu, found: AnswerView, label: str) -> Badge:
    title = f"{model.name} on the {gpu.name}: not measured yet; {found.headline}"
    row = found.estimate_row
    if row is None:
        return Badge(label, f"estimate: {found.label}", "estimate", title)
    parts = []
    if row.estimate.speed is not None:
        parts.append(f"~{formatting.seconds(row.estimate.speed.seconds.value)}")
    parts.append(f"~{formatting.gb(row.estimate.memory.mib.value)}")
    return Badge(label, "estimate " + " · ".join(parts), "estimate", title)


def badge_for(model: ImageModel, gpu: Gpu, preset: str = "") -> Badge:
    """What the badge says: the check page's answer (checkpages.verdicts) in a few words."""
    label = formatting.short_gpu_name(gpu.name) or gpu.name
    found = queries.read_pair(model, gpu, preset).found.answer
    title = f"{model.name}: {found.headline}"
    best = found.best
    if found.measured and best is not None and best.summary.seconds_median is not None:
        s = best.summary
        parts = [formatting.seconds(s.seconds_median)]
        if best.peak_mb is not None:
            parts.append(formatting.gb(best.peak_mb))
        parts.append(count(s.n_results, "run"))
        return Badge(label, " · ".join(parts), found.verdict, title)
    if found.measured and found.verdict == Verdict.DOES_NOT_FIT:
        return Badge(label, "does not fit", found.verdict, title)
    if found.estimated:
        return _estimate_badge(model, gpu, found, label)
    return Badge(
        label, "unknown", Verdict.UNKNOWN, f"{model.name} on the {gpu.name}: {found.headline}"
    )


def svg(badge: Badge) -> str:
    """The badge as a standalone SVG document."""
    lw, mw, w = badge.label_width, badge.message_width, badge.width
    colour = COLOURS.get(badge.kind, COLOURS[Verdict.UNKNOWN])
    dashed = (
        f'<rect x="{lw + 0.5}" y="0.5" width="{mw - 1}" height="{HEIGHT - 1}" fill="none" '
        'stroke="#ffffff" stroke-opacity=".7" stroke-dasharray="3 2"/>'
        if badge.kind == "estimate"
        else ""
    )
    title = escape(badge.title)
    label, message = escape(badge.label), escape(badge.message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{HEIGHT}" '
        f'viewBox="0 0 {w} {HEIGHT}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<clipPath id="r"><rect width="{w}" height="{HEIGHT}" rx="3"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="{HEIGHT}" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{lw}" width="{mw}" height="{HEIGHT}" fill="{colour}"/>{dashed}</g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{lw / 2}" y="14">{label}</text>'
        f'<text x="{lw + mw / 2}" y="14">{message}</text></g></svg>'
    )
