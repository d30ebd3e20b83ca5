"""checkpages.plots: matplotlib on the server, SVG text that embeds inline in the pages."""

from __future__ import annotations

import re

from checkpages import plots

GROUPS = [
    plots.Distribution(
        "fp8-storage (ComfyUI)", [2.31, 2.38, 2.42, 2.45], 2.4, 2.33, 2.44, "#1a7f37"
    ),
    plots.Distribution("bf16-model-offload (diffusers)", [6.4], 6.4, None, None, "#d55e00"),
]


def both(drawn: str) -> tuple[str, str]:
    """The wide and the narrow drawing of a plot."""
    wide, narrow = re.split(r"(?<=</svg>)\n(?=<svg)", drawn)
    return wide, narrow


def test_a_plot_is_two_inline_svg_elements_wide_and_narrow_scaled_by_css_with_alt_text():
    drawn = plots.seconds_distribution("speed", GROUPS, "Seconds per image <on> the RTX 5070")

    wide, narrow = both(drawn)
    assert wide.startswith('<svg xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 540 ')
    assert narrow.startswith('<svg xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 288 ')
    for svg, kind, name in ((wide, "wide", "speed"), (narrow, "narrow", "speed-narrow")):
        assert svg.endswith("</svg>")
        root = svg[: svg.index(">") + 1]
        assert "width=" not in root and "height=" not in root
        assert f'class="plot plot-{kind}" role="img" aria-labelledby="{name}-title"' in root
        assert svg[len(root) :].startswith(
            f'<title id="{name}-title">Seconds per image &lt;on&gt; the RTX 5070</title>'
        )
        assert "<?xml" not in svg and "<metadata>" not in svg


def test_the_narrow_drawing_puts_labels_above_the_bars_in_readable_type():
    narrow = both(plots.seconds_distribution("speed", GROUPS, "alt"))[1]

    sizes = {float(size) for size in re.findall(r"font-size: ?([\d.]+)px", narrow)}
    # 288 units drawn on a 358-pixel phone column: 8 px type shows at about 10 px.
    assert min(sizes) >= 8
    assert "fp8-storage (ComfyUI)" in re.findall(r"<text[^>]*>([^<]*)</text>", narrow)


def test_ids_carry_the_plot_name_so_two_plots_can_share_a_page():
    svg = plots.seconds_distribution("speed", GROUPS, "alt")

    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    assert ids and all(i.startswith("speed-") for i in ids)
    references = set(re.findall(r"url\(#([^)]+)\)", svg)) | set(re.findall(r'href="#([^"]+)"', svg))
    assert references <= ids


def test_the_same_numbers_draw_the_same_svg():
    assert plots.seconds_distribution("speed", GROUPS, "alt") == plots.seconds_distribution(
        "speed", GROUPS, "alt"
    )


def test_labels_stay_text_for_readers_and_find_in_page():
    svg = plots.seconds_distribution("speed", GROUPS, "alt")

    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "seconds per image (lower is faster)" in texts
    assert "fp8-storage (ComfyUI)" in texts
    assert "median 2.4 s" in texts, "written as the tables write it"


def test_the_memory_plot_marks_the_card_and_what_a_display_leaves_for_the_model():
    svg = plots.memory_against_capacity(
        "memory",
        [plots.MemoryBar("fp8-storage (ComfyUI)", 8750, 8850, "#1a7f37")],
        capacity_mib=12288,
        usable_mib=10.5 * 1024,
        alt="alt",
    )

    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "card: 12 GiB" in texts
    assert "usable with a display: 10.5 GiB" in texts
    assert "8.5 GiB" in texts


def test_the_trend_and_ranking_plots_label_versions_in_order_and_cards():
    versions = ["570.86.16", "575.64.03", "580.82.09", "580.95.05"]
    trend = plots.version_trend(
        "trend-driver",
        "driver",
        versions,
        [
            plots.Line("bf16-resident", [("570.86.16", 2.0), ("580.95.05", 2.2)], "#0072b2"),
            plots.Line("fp8-storage", [("575.64.03", 1.8), ("580.82.09", 1.9)], "#d55e00"),
        ],
        "alt",
    )
    ranking = plots.ranking(
        "ranking", [plots.RankedBar("RTX 4090", 1.9, 1.85, 2.0, "#1a7f37")], "alt"
    )

    wide = re.findall(r"<text[^>]*>([^<]*)</text>", both(trend)[0])
    assert [t for t in wide if t in versions] == versions
    assert "driver version, oldest to newest" in wide
    assert "RTX 4090" in re.findall(r"<text[^>]*>([^<]*)</text>", ranking)


def test_names_from_contributors_are_plain_escaped_text_in_the_svg():
    svg = plots.ranking(
        "ranking",
        [plots.RankedBar("<script>alert(1)</script> $\\frac{$ 5090", 1.0, None, None, "#000")],
        "alt",
    )

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $\\frac{$ 5090" in svg
