"""The check pages' plots: drawn with matplotlib on the server, returned as SVG text that
the templates embed inline (no JavaScript, no image requests).

Each function takes plain numbers and returns two <svg> elements: one drawn for a wide
screen (class plot-wide) and one drawn narrow, with labels above the bars (plot-narrow);
the stylesheet shows the one that fits, so text stays readable on a phone. Ids are
prefixed with the plot's name, so several plots can share a page. Values are written by
checkpages.formatting, as in the tables. matplotlib is imported on first use: pages served
from the cache never load it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.utils.html import escape

from checkpages import formatting

INK = "#1f2328"
MUTED = "#59636e"
# A card that drives a display: what is left for the model.
USABLE = "#b35900"
WIDE_IN = 7.5
NARROW_IN = 4.0

_RC = {
    # Text stays text: smaller files, selectable, read by screen readers and find-in-page.
    "svg.fonttype": "none",
    # Deterministic ids, so the same numbers give byte-identical SVG.
    "svg.hashsalt": "klein-bench",
    # Labels are card and configuration names, some typed by contributors: plain text,
    # never TeX ("$" in a name must not break a page).
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": MUTED,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Distribution:
    label: str
    values: list[float]
    median: float | None
    p10: float | None
    p90: float | None
    colour: str


@dataclass(frozen=True)
class MemoryBar:
    label: str
    median_mib: float
    max_mib: float | None
    colour: str


@dataclass(frozen=True)
class RankedBar:
    label: str
    median: float
    p10: float | None
    p90: float | None
    colour: str


@dataclass(frozen=True)
class Line:
    label: str
    points: list[tuple[str, float]]
    colour: str = INK


def _figure(width_in: float, height_in: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


_HEADER = re.compile(r"\A.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ROOT_SIZE = re.compile(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')
_FONTS = re.compile(r"font-family: [^;\"]*")
_REF = re.compile(r"url\(#([^)]+)\)|(xlink:href|href)=\"#([^\"]+)\"")


def _svg(figure, name: str, alt: str, kind: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    text = _METADATA.sub("", _HEADER.sub("", buffer.getvalue()))
    text = _ID.sub(lambda m: f'id="{name}-{m.group(1)}"', text)
    text = _REF.sub(
        lambda m: (
            f"url(#{name}-{m.group(1)})" if m.group(1) else f'{m.group(2)}="#{name}-{m.group(3)}"'
        ),
        text,
    )
    # The viewBox keeps the proportions; CSS sets the size, so the plot fits any screen.
    text = _ROOT_SIZE.sub(r"\1", text, count=1)
    # The page's own sans-serif, named once per label rather than matplotlib's long list.
    text = _FONTS.sub("font-family: system-ui, sans-serif", text)
    title = f'<title id="{name}-title">{escape(alt)}</title>'
    return re.sub(
        r"<svg\b([^>]*)>",
        rf'<svg\1 class="plot plot-{kind}" role="img" aria-labelledby="{name}-title">{title}',
        text,
        count=1,
    ).strip()


def _both(draw, name: str, alt: str, *args) -> str:
    """The plot drawn wide and narrow: two SVG elements, one shown at a time."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        wide = _svg(draw(*args, narrow=False), name, alt, "wide")
    with matplotlib.rc_context({**_RC, "font.size": 9}):
        narrow = _svg(draw(*args, narrow=True), f"{name}-narrow", alt, "narrow")
    return wide + "\n" + narrow


def _height(n: int, narrow: bool) -> float:
    # Narrow plots put each label above its bar: a taller row.
    return 0.9 + (0.8 if narrow else 0.55) * max(n, 1)


def _label_rows(axes, labels: list[str], narrow: bool) -> None:
    """Labels as y ticks on a wide plot; above each bar, left-aligned, on a narrow one."""
    if not narrow:
        axes.set_yticks(range(len(labels)), labels)
        return
    axes.set_yticks([])
    axes.spines["left"].set_visible(False)
    for y, label in enumerate(labels):
        axes.annotate(
            label,
            (0, y + 0.32),
            xycoords=("axes fraction", "data"),
            va="bottom",
            ha="left",
            fontsize=9,
            color=INK,
        )


def _seconds_figure(groups: list[Distribution], *, narrow: bool):
    figure = _figure(NARROW_IN if narrow else WIDE_IN, _height(len(groups), narrow))
    axes = figure.add_subplot()
    top = 0.0
    ordered = list(reversed(groups))
    for y, group in enumerate(ordered):
        if group.p10 is not None and group.p90 is not None:
            axes.barh(
                y,
                group.p90 - group.p10,
                left=group.p10,
                height=0.45,
                color=group.colour,
                alpha=0.2,
                linewidth=0,
            )
        values = sorted(group.values)
        # Spread equal values vertically so every result stays visible.
        offsets = [((i % 5) - 2) * 0.05 for i in range(len(values))]
        axes.scatter(
            values,
            [y + o for o in offsets],
            s=16 if narrow else 30,
            color=group.colour,
            alpha=0.75,
            linewidths=0,
            zorder=3,
        )
        if group.median is not None:
            axes.plot(
                [group.median, group.median], [y - 0.25, y + 0.25], color=INK, linewidth=2, zorder=4
            )
            axes.annotate(
                f"median {formatting.seconds(group.median)}",
                (group.median, y - 0.25),
                xytext=(0, -2),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8 if narrow else 9,
                color=INK,
            )
        top = max([top, *values, group.p90 or 0, group.median or 0])
    _label_rows(axes, [g.label for g in ordered], narrow)
    axes.set_ylim(-0.75, len(groups) - (0.05 if narrow else 0.3))
    axes.set_xlim(0, top * 1.15 if top else 1)
    axes.set_xlabel("seconds per image (lower is faster)")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure


def seconds_distribution(name: str, groups: list[Distribution], alt: str) -> str:
    """Each configuration's results (one dot per result's median), its p10-p90 band and
    its median, on one seconds-per-image axis starting at zero."""
    return _both(_seconds_figure, name, alt, groups)


def _memory_figure(bars, capacity_mib, usable_mib, *, narrow: bool):
    figure = _figure(NARROW_IN if narrow else WIDE_IN, _height(len(bars), narrow) + 0.3)
    axes = figure.add_subplot()
    ordered = list(reversed(bars))
    top = 0.0
    for y, bar in enumerate(ordered):
        median_gib = bar.median_mib / 1024
        axes.barh(y, median_gib, height=0.5, color=bar.colour, alpha=0.85)
        end = median_gib
        if bar.max_mib is not None and bar.max_mib > bar.median_mib:
            end = bar.max_mib / 1024
            axes.plot([end, end], [y - 0.28, y + 0.28], color=INK, linewidth=1.2)
        axes.annotate(
            formatting.gb(bar.median_mib),
            (end, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=INK,
        )
        top = max(top, end)
    if capacity_mib:
        capacity_gib = capacity_mib / 1024
        axes.axvline(capacity_gib, color=INK, linewidth=1.6)
        axes.annotate(
            f"card: {formatting.card_gb(capacity_mib)}",
            (capacity_gib, len(bars) - 0.45),
            xytext=(-3, 0),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=9,
            color=INK,
        )
        top = max(top, capacity_gib)
    if usable_mib:
        axes.axvline(usable_mib / 1024, color=USABLE, linewidth=1.4, linestyle="--")
        axes.annotate(
            f"usable with a display: {formatting.gb(usable_mib)}",
            (usable_mib / 1024, -0.7),
            xytext=(-3, 0),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=8 if narrow else 9,
            color=USABLE,
        )
    _label_rows(axes, [bar.label for bar in ordered], narrow)
    axes.set_ylim(-0.75, len(bars) - 0.05 + (0.35 if capacity_mib else 0))
    axes.set_xlim(0, top * 1.12 if top else 1)
    axes.set_xlabel("peak GPU memory, GiB (bar: median; tick: largest)")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure


def memory_against_capacity(
    name: str,
    bars: list[MemoryBar],
    capacity_mib: float | None,
    usable_mib: float | None,
    alt: str,
) -> str:
    """Median peak GPU memory per configuration (a tick at the largest), against the
    card's capacity and, for a card that drives a display, what is left for the model."""
    return _both(_memory_figure, name, alt, bars, capacity_mib, usable_mib)


def _trend_figure(dimension: str, versions: list[str], lines: list[Line], *, narrow: bool):
    figure = _figure(NARROW_IN if narrow else WIDE_IN, 3.4 if narrow else 3.0)
    axes = figure.add_subplot()
    for line in lines:
        xs = [versions.index(version) for version, _ in line.points]
        ys = [seconds for _, seconds in line.points]
        axes.plot(xs, ys, marker="o", color=line.colour, label=line.label)
    axes.set_xticks(
        range(len(versions)),
        versions,
        rotation=30 if narrow else 0,
        ha="right" if narrow else "center",
    )
    axes.set_xlabel(f"{dimension} version, oldest to newest")
    axes.set_ylabel("median seconds per image")
    highest = max(seconds for line in lines for _, seconds in line.points)
    axes.set_ylim(0, highest * 1.3)
    axes.grid(axis="y", color="#d0d7de", linewidth=0.6)
    axes.legend(frameon=False, fontsize=8 if narrow else 9, loc="lower right")
    return figure


def version_trend(
    name: str, dimension: str, versions: list[str], lines: list[Line], alt: str
) -> str:
    """Median seconds per image for each version (given oldest to newest), one line per
    configuration."""
    return _both(_trend_figure, name, alt, dimension, versions, lines)


def _ranking_figure(bars: list[RankedBar], *, narrow: bool):
    figure = _figure(NARROW_IN if narrow else WIDE_IN, _height(len(bars), narrow) * 0.85 + 0.3)
    axes = figure.add_subplot()
    ordered = list(reversed(bars))
    top = 0.0
    for y, bar in enumerate(ordered):
        axes.barh(y, bar.median, height=0.5, color=bar.colour, alpha=0.85)
        if bar.p10 is not None and bar.p90 is not None:
            axes.plot([bar.p10, bar.p90], [y, y], color=INK, linewidth=1.2)
            top = max(top, bar.p90)
        axes.annotate(
            formatting.seconds(bar.median),
            (max(bar.median, bar.p90 or 0), y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=INK,
        )
        top = max(top, bar.median)
    _label_rows(axes, [bar.label for bar in ordered], narrow)
    axes.set_ylim(-0.6, len(bars) - (0.05 if narrow else 0.4))
    axes.set_xlim(0, top * 1.2 if top else 1)
    axes.set_xlabel("median seconds per image; line: p10 to p90")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure


def ranking(name: str, bars: list[RankedBar], alt: str) -> str:
    """Median seconds per image per card, fastest at the top, with the p10-p90 range of
    results as a line."""
    return _both(_ranking_figure, name, alt, bars)
