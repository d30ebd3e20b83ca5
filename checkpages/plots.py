"""The check pages' plots: drawn with matplotlib on the server, returned as SVG text that
the templates embed inline (no JavaScript, no image requests).

Each function takes plain numbers and returns one <svg> element whose ids are prefixed
with the plot's name, so several plots can share a page. matplotlib is imported on first
use: pages served from the cache never load it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.utils.html import escape

# The verdict colours, shared with the CSS (static/checkpages/site.css).
COLOURS = {
    "runs": "#1a7f37",
    "needs_offload": "#9a6700",
    "does_not_fit": "#cf222e",
    "unknown": "#6e7781",
}
INK = "#1f2328"
MUTED = "#59636e"
WIDTH_IN = 7.5

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


def _figure(height_in: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


_HEADER = re.compile(r"\A.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ROOT_SIZE = re.compile(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r"url\(#([^)]+)\)|(xlink:href|href)=\"#([^\"]+)\"")


def _svg(figure, name: str, alt: str) -> str:
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
    title = f'<title id="{name}-title">{escape(alt)}</title>'
    return re.sub(
        r"<svg\b([^>]*)>",
        rf'<svg\1 class="plot" role="img" aria-labelledby="{name}-title">{title}',
        text,
        count=1,
    ).strip()


def _with_rc(draw):
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    wrapper.__doc__ = draw.__doc__
    wrapper.__name__ = draw.__name__
    return wrapper


def _row_height(n: int) -> float:
    return 0.9 + 0.55 * max(n, 1)


@_with_rc
def seconds_distribution(name: str, groups: list[Distribution], alt: str) -> str:
    """Each configuration's results (one dot per result's median), its p10-p90 band and
    its median, on one seconds-per-image axis starting at zero."""
    figure = _figure(_row_height(len(groups)))
    axes = figure.add_subplot()
    top = 0.0
    for index, group in enumerate(reversed(groups)):
        y = index
        if group.p10 is not None and group.p90 is not None:
            axes.barh(
                y,
                group.p90 - group.p10,
                left=group.p10,
                height=0.5,
                color=group.colour,
                alpha=0.18,
                linewidth=0,
            )
        values = sorted(group.values)
        # Spread equal values vertically so every result stays visible.
        offsets = [((i % 5) - 2) * 0.06 for i in range(len(values))]
        axes.scatter(
            values,
            [y + o for o in offsets],
            s=30,
            color=group.colour,
            alpha=0.75,
            linewidths=0,
            zorder=3,
        )
        if group.median is not None:
            axes.plot(
                [group.median, group.median], [y - 0.3, y + 0.3], color=INK, linewidth=2, zorder=4
            )
            axes.annotate(
                f"median {group.median:.2f} s",
                (group.median, y + 0.3),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
                color=INK,
            )
        top = max([top, *values, group.p90 or 0, group.median or 0])
    axes.set_yticks(range(len(groups)), [g.label for g in reversed(groups)])
    axes.set_ylim(-0.6, len(groups) - 0.3)
    axes.set_xlim(0, top * 1.15 if top else 1)
    axes.set_xlabel("seconds per image (lower is faster)")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.6)
    axes.set_axisbelow(True)
    return _svg(figure, name, alt)


@_with_rc
def memory_against_capacity(
    name: str,
    bars: list[MemoryBar],
    capacity_mib: float | None,
    usable_mib: float | None,
    alt: str,
) -> str:
    """Median peak GPU memory per configuration (a tick at the largest), against the
    card's capacity and, for a card that drives a display, what is left for the model."""
    figure = _figure(_row_height(len(bars)) + 0.3)
    axes = figure.add_subplot()
    ordered = list(reversed(bars))
    top = 0.0
    for y, bar in enumerate(ordered):
        median_gb = bar.median_mib / 1024
        axes.barh(y, median_gb, height=0.55, color=bar.colour, alpha=0.85)
        end = median_gb
        if bar.max_mib is not None and bar.max_mib > bar.median_mib:
            end = bar.max_mib / 1024
            axes.plot([end, end], [y - 0.3, y + 0.3], color=INK, linewidth=1.2)
        axes.annotate(
            f"{median_gb:.1f} GB",
            (end, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=INK,
        )
        top = max(top, end)
    if capacity_mib:
        capacity_gb = capacity_mib / 1024
        axes.axvline(capacity_gb, color=INK, linewidth=1.6)
        axes.annotate(
            f"card: {capacity_gb:.0f} GB",
            (capacity_gb, len(bars) - 0.45),
            xytext=(3, 0),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=9,
            color=INK,
        )
        top = max(top, capacity_gb)
    if usable_mib:
        usable_gb = usable_mib / 1024
        axes.axvline(usable_gb, color=COLOURS["does_not_fit"], linewidth=1.4, linestyle="--")
        axes.annotate(
            f"usable with a display: {usable_gb:.1f} GB",
            (usable_gb, -0.55),
            xytext=(-3, 0),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=9,
            color=COLOURS["does_not_fit"],
        )
    axes.set_yticks(range(len(ordered)), [bar.label for bar in ordered])
    axes.set_ylim(-0.65, len(bars) - 0.1 + (0.35 if capacity_mib else 0))
    # Room right of the capacity line for its label.
    axes.set_xlim(0, top * 1.22 if top else 1)
    axes.set_xlabel("peak GPU memory, GB (bar: median; tick: largest)")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.6)
    axes.set_axisbelow(True)
    return _svg(figure, name, alt)


@_with_rc
def version_trend(name: str, dimension: str, lines: list[Line], alt: str) -> str:
    """Median seconds per image for each version, one line per configuration."""
    versions: list[str] = []
    for line in lines:
        for version, _ in line.points:
            if version not in versions:
                versions.append(version)
    figure = _figure(3.0)
    axes = figure.add_subplot()
    palette = ["#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700"]
    for index, line in enumerate(lines):
        xs = [versions.index(version) for version, _ in line.points]
        ys = [seconds for _, seconds in line.points]
        axes.plot(xs, ys, marker="o", color=palette[index % len(palette)], label=line.label)
    axes.set_xticks(range(len(versions)), versions)
    axes.set_xlabel(f"{dimension} version (oldest to newest)")
    axes.set_ylabel("median seconds per image")
    highest = max(seconds for line in lines for _, seconds in line.points)
    axes.set_ylim(0, highest * 1.25)
    axes.grid(axis="y", color="#d0d7de", linewidth=0.6)
    axes.legend(frameon=False, fontsize=9, loc="lower right")
    return _svg(figure, name, alt)


@_with_rc
def ranking(name: str, bars: list[RankedBar], alt: str) -> str:
    """Median seconds per image per card and configuration, fastest at the top, with the
    p10-p90 range of results as a line."""
    figure = _figure(_row_height(len(bars)) * 0.8 + 0.3)
    axes = figure.add_subplot()
    ordered = list(reversed(bars))
    top = 0.0
    for y, bar in enumerate(ordered):
        axes.barh(y, bar.median, height=0.6, color=bar.colour, alpha=0.85)
        if bar.p10 is not None and bar.p90 is not None:
            axes.plot([bar.p10, bar.p90], [y, y], color=INK, linewidth=1.2)
            top = max(top, bar.p90)
        axes.annotate(
            f"{bar.median:.2f} s",
            (max(bar.median, bar.p90 or 0), y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=INK,
        )
        top = max(top, bar.median)
    axes.set_yticks(range(len(ordered)), [bar.label for bar in ordered])
    axes.set_ylim(-0.6, len(bars) - 0.4)
    axes.set_xlim(0, top * 1.18 if top else 1)
    axes.set_xlabel("median seconds per image (shorter is faster; line: p10 to p90)")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.6)
    axes.set_axisbelow(True)
    return _svg(figure, name, alt)
