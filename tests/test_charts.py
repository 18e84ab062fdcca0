"""SVG charts: well-formed, safe with hostile labels, honest geometry, and renderable by WeasyPrint."""

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from registry.kernel.money import wan
from registry.reports.charts import ACCENT, PALETTE, bar_chart, line_chart, nice_ticks, stacked_bar_chart, text_width

HOSTILE = [
    "<script>alert(1)</script>",
    "R&D 渠道",
    'say "hi"',
    "file:///etc/passwd",
    "http://evil.example/x.png",
]
FORBIDDEN_TAGS = {"script", "image", "img", "a", "foreignobject", "use", "iframe", "style"}
MONTH_VALUES = [0, 125_000_000, 340_000_000, 0, 56_000_000, 7, 0, 1, 2, 3, 4, 5]
MONTHS = [(f"{m}月", v) for m, v in enumerate(MONTH_VALUES, start=1)]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert local(root.tag) == "svg"
    assert root.get("viewBox", "").startswith("0 0 ")
    assert root.get("width") == "100%"
    assert root.get("role") == "img"
    assert local(root[0].tag) == "title"
    return root


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def elements(root: ET.Element, name: str) -> list[ET.Element]:
    return [el for el in root.iter() if local(el.tag) == name]


def bars_of(root: ET.Element) -> list[ET.Element]:
    # Data bars are the rects carrying a tooltip; legend swatches and frames have none.
    return [r for r in elements(root, "rect") if any(local(c.tag) == "title" for c in r)]


def all_text(root: ET.Element) -> str:
    return "\n".join("".join(el.itertext()) for el in root.iter() if local(el.tag) in ("text", "title"))


def count(value: int) -> str:
    return f"{value}人"


def all_charts(pairs):
    return [
        line_chart(pairs, title="趋势", unit_label="人", value_format=count),
        bar_chart(pairs, title="条形", unit_label="人", value_format=count),
        stacked_bar_chart(
            [(label, {"采购": v, "帮助销售": v * 2}) for label, v in pairs],
            series=["采购", "帮助销售"],
            title="堆叠",
            unit_label="人",
            value_format=count,
        ),
    ]


# --- nice_ticks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("maximum", [0, 1, 7, 95, 100, 1234567, 10**10, 999_999_999_999])
def test_nice_ticks_are_round_increasing_and_cover_the_maximum(maximum):
    ticks = nice_ticks(maximum)
    assert ticks[0] == 0 and ticks[-1] >= maximum
    assert all(isinstance(t, int) for t in ticks)
    assert 2 <= len(ticks) <= 6
    step = ticks[1]
    assert all(b - a == step for a, b in zip(ticks, ticks[1:], strict=False))
    mantissa = step
    while mantissa % 10 == 0 and mantissa >= 100:
        mantissa //= 10
    assert mantissa in (1, 2, 5, 10, 20, 25, 50)
    # The smallest such step was chosen: the next smaller one would need more than five intervals.
    if maximum:
        assert ticks[-2] < maximum


def test_nice_ticks_examples():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(1) == [0, 1]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(95) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(1234567) == [0, 250000, 500000, 750000, 1000000, 1250000]
    assert nice_ticks(10**10) == [0, 2 * 10**9, 4 * 10**9, 6 * 10**9, 8 * 10**9, 10**10]
    assert nice_ticks(7, count=2) == [0, 5, 10]


def test_nice_ticks_refuses_negative_and_floats():
    with pytest.raises(ValueError, match="负数"):
        nice_ticks(-1)
    with pytest.raises(TypeError):
        nice_ticks(1.5)


# --- structure and safety --------------------------------------------------------------------------------------


def test_hostile_labels_are_only_escaped_text():
    pairs = [(label, 10 * (i + 1)) for i, label in enumerate(HOSTILE)]
    for svg in all_charts(pairs):
        assert "<script" not in svg and 'say "hi"' not in svg
        assert "&lt;script&gt;" in svg and "R&amp;D" in svg and "&quot;hi&quot;" in svg
        root = parse(svg)
        for el in root.iter():
            assert local(el.tag).lower() not in FORBIDDEN_TAGS
            for name, value in el.attrib.items():
                assert local(name).lower() not in ("href", "src", "style") or name == "style" and el is root
                assert "url(" not in value and "javascript:" not in value and "file:" not in value
        text = all_text(root)
        for label in HOSTILE:
            assert label in text


def test_value_format_output_escaped_too():
    svg = bar_chart([("a", 5)], title="t", unit_label="u", value_format=lambda v: f"<b>{v}</b>")
    root = parse(svg)
    assert "<b>" not in svg and "<b>5</b>" in all_text(root)


def test_control_characters_in_labels_do_not_break_xml():
    for svg in all_charts([("坏\x00名\x1b字", 3)]):
        assert "坏名字" in all_text(parse(svg))


def test_line_chart_markers_match_points_and_ticks_are_formatted():
    root = parse(line_chart(MONTHS, title="2024年拨付", unit_label="万元", value_format=wan))
    assert len(elements(root, "circle")) == 12
    assert len(elements(root, "polyline")) == 1
    text = all_text(root)
    for tick in nice_ticks(340_000_000):
        assert wan(tick) in text
    assert "单位：万元" in text and "12月" in text


def test_line_chart_marker_height_is_proportional():
    root = parse(line_chart([("a", 0), ("b", 50), ("c", 100)], title="t", unit_label="人", value_format=str))
    ys = [float(c.get("cy")) for c in elements(root, "circle")]
    assert ys[0] > ys[1] > ys[2]
    assert abs((ys[0] - ys[1]) - (ys[1] - ys[2])) <= 0.2


def test_line_chart_single_point_and_all_zero():
    root = parse(line_chart([("1月", 5)], title="t", unit_label="人", value_format=count))
    assert len(elements(root, "circle")) == 1 and not elements(root, "polyline")

    zeros = [(f"{m}月", 0) for m in range(1, 13)]
    root = parse(line_chart(zeros, title="t", unit_label="万元", value_format=wan))
    circles = elements(root, "circle")
    assert len(circles) == 12 and len({c.get("cy") for c in circles}) == 1
    assert "暂无数据" not in all_text(root)


@pytest.mark.parametrize("chart", [line_chart, bar_chart])
def test_empty_data_draws_no_data_box(chart):
    root = parse(chart([], title="空", unit_label="人", value_format=count))
    assert "暂无数据" in all_text(root)
    root = parse(stacked_bar_chart([], series=["采购"], title="空", unit_label="人", value_format=count))
    assert "暂无数据" in all_text(root)


@pytest.mark.parametrize("chart", [line_chart, bar_chart])
def test_negative_and_inexact_values_are_refused(chart):
    with pytest.raises(ValueError, match="不能为负数"):
        chart([("1月", 3), ("2月", -1)], title="t", unit_label="人", value_format=count)
    for bad in (1.5, True, Decimal("1.5"), "3"):
        with pytest.raises(TypeError, match="整数"):
            chart([("1月", bad)], title="t", unit_label="人", value_format=count)


def test_integral_decimal_from_postgres_sum_is_accepted():
    root = parse(bar_chart([("a", Decimal("12"))], title="t", unit_label="人", value_format=count))
    assert "12人" in all_text(root)


def test_bar_chart_bars_match_data_and_lengths_are_proportional():
    bars = [("到东部协作地就业", 1200), ("县内就近就地", 300), ("其他", 0)]
    root = parse(bar_chart(bars, title="去向", unit_label="人", value_format=count))
    rects = bars_of(root)
    assert len(rects) == 3
    assert all(r.get("fill") == ACCENT for r in rects)
    widths = [float(r.get("width")) for r in rects]
    assert widths[2] == 0
    assert widths[0] == pytest.approx(4 * widths[1], abs=0.3)
    assert len({r.get("x") for r in rects}) == 1  # all bars start at the same axis
    text = all_text(root)
    for label, value in bars:
        assert label in text and count(value) in text


def test_bar_chart_label_column_fits_the_longest_label():
    long_label = "到东部协作地就业"
    root = parse(bar_chart([(long_label, 5), ("短", 9)], title="t", unit_label="人", value_format=count))
    bar_x = float(bars_of(root)[0].get("x"))
    assert bar_x >= text_width(long_label)
    assert long_label in [t.text for t in elements(root, "text")]


def test_bar_chart_cuts_absurdly_long_labels_but_keeps_them_in_the_tooltip():
    label = "很" * 80
    root = parse(bar_chart([(label, 5)], title="t", unit_label="人", value_format=count))
    drawn = [t.text for t in elements(root, "text") if t.text and t.text.startswith("很")]
    assert drawn and drawn[0].endswith("…") and len(drawn[0]) < 40
    assert float(bars_of(root)[0].get("x")) < 640 / 2
    assert label in all_text(root)


def test_bar_chart_all_zero_draws_zero_bars():
    root = parse(bar_chart([("甲", 0), ("乙", 0)], title="t", unit_label="人", value_format=count))
    assert [float(r.get("width")) for r in bars_of(root)] == [0, 0]
    assert "0人" in all_text(root) and "暂无数据" not in all_text(root)


def test_stacked_bar_chart_segments_legend_and_totals():
    rows = [("政采云四川馆", {"采购": 300, "帮助销售": 100}), ("832平台", {"采购": 200})]
    root = parse(
        stacked_bar_chart(rows, series=["采购", "帮助销售"], title="渠道", unit_label="人", value_format=count)
    )
    segments = bars_of(root)
    assert len(segments) == 4
    assert [s.get("fill") for s in segments] == [PALETTE[0], PALETTE[1]] * 2
    first, second = (float(s.get("width")) for s in segments[:2])
    assert first == pytest.approx(3 * second, abs=0.3)
    # The second segment starts where the first ends.
    assert float(segments[1].get("x")) == pytest.approx(float(segments[0].get("x")) + first, abs=0.15)
    text = all_text(root)
    assert "400人" in text and "200人" in text and "采购" in text and "帮助销售" in text


def test_stacked_bar_chart_refuses_unknown_series():
    with pytest.raises(ValueError, match="未列出"):
        stacked_bar_chart([("a", {"其他": 1})], series=["采购"], title="t", unit_label="人", value_format=count)
    with pytest.raises(ValueError):
        stacked_bar_chart([], series=list("abcde"), title="t", unit_label="人", value_format=count)


# --- WeasyPrint ------------------------------------------------------------------------------------------------


def test_weasyprint_renders_every_chart_kind(tmp_path):
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # Pango/Cairo system libraries missing
        pytest.skip(f"WeasyPrint unavailable: {exc}")
    pairs = [("到东部协作地就业", 1234), ("县内就近就地", 5678), (HOSTILE[0], 0)]
    body = "".join(f"<div>{svg}</div>" for svg in all_charts(pairs))
    head = "<meta charset='utf-8'><style>@page { size: A4; margin: 20mm }</style>"
    html = f"<html><head>{head}</head><body>{body}</body></html>"
    pdf = weasyprint.HTML(string=html).write_pdf()
    assert pdf.startswith(b"%PDF")


def test_value_labels_sit_on_a_box_drawn_after_every_line():
    """A steep line or a grid line would strike a value label; each label has a background box drawn over the
    lines, and it covers the label's text."""
    steep = [("1月", 0), ("2月", 900_000_000), ("3月", 100_000_000), ("4月", 880_000_000), ("5月", 20_000_000)]
    for svg in (
        line_chart(steep, title="t", unit_label="万元", value_format=wan),
        bar_chart([("甲", 37), ("乙", 40), ("丙", 52)], title="t", unit_label="人", value_format=count),
    ):
        root = parse(svg)
        children = list(root)
        boxes = [(i, el) for i, el in enumerate(children) if el.get("class") == "label-bg"]
        assert boxes
        for index, box in boxes:
            text = children[index + 1]
            assert local(text.tag) == "text" and text.text
            # Nothing that draws a line comes after the box: the label is on top of every line.
            later = children[index + 1 :]
            assert not [el for el in later if local(el.tag) in ("line", "polyline")]
            x, y, w, h = (float(box.get(k)) for k in ("x", "y", "width", "height"))
            assert w >= text_width(text.text, float(text.get("font-size")))
            assert y <= float(text.get("y")) - 0.8 * float(text.get("font-size")) and y + h >= float(text.get("y"))
