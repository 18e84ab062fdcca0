"""Server-side SVG charts (standard library only) for the dashboard page and the WeasyPrint PDF report."""

import html
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

#: Single-series colour; dark enough to print well in greyscale.
ACCENT = "#1f4e79"
#: Series colours for stacked bars, from the Okabe–Ito colour-blind-safe set plus the accent. Their lightness
#: (CIE L* ≈ 32, 72, 57, 89) differs by at least 15, so the segments stay apart on a greyscale printer too.
PALETTE = ("#1f4e79", "#e69f00", "#009e73", "#f0e442")
#: Text drawn on a segment of that colour: white on the dark ones, near-black on the light ones.
_ON_PALETTE = {"#1f4e79": "#ffffff", "#e69f00": "#1a1a1a", "#009e73": "#ffffff", "#f0e442": "#1a1a1a"}

FONT_FAMILY = "Noto Sans CJK SC, Noto Sans SC, sans-serif"
TEXT = "#1a1a1a"
MUTED = "#595959"
GRID = "#d9d9d9"
AXIS = "#808080"
EMPTY_TEXT = "暂无数据"

WIDTH = 640
FONT = 12
SMALL = 11
TITLE_FONT = 14
#: Label columns never take more than this share of the width; longer labels are cut with "…".
MAX_LABEL_SHARE = 0.42

# Characters XML 1.0 forbids; a stray one pasted into a name would make the whole page unparsable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

Formatter = Callable[[int], str]


# --- helpers ---------------------------------------------------------------------------------------------------


def nice_ticks(max_value: int, count: int = 5) -> list[int]:
    """Round axis ticks 0, s, 2s, … up to at least ``max_value``, at most ``count`` steps, s ∈ {1, 2, 2.5, 5}×10^k.

    Steps stay integers (2.5 only from 25 up), since every value drawn is a whole number of 分 or people.
    ``max_value`` 0 gives ``[0, 1]`` so that a scale always has a non-zero span.
    """
    max_value = _as_int(max_value, "max_value")
    if max_value < 0:
        raise ValueError("刻度最大值不能为负数。")
    if count < 1:
        raise ValueError("刻度数量至少为 1。")
    if max_value == 0:
        return [0, 1]
    exponent = 0
    while True:
        base = 10**exponent
        steps = (base, 2 * base, 5 * base) if exponent == 0 else (base, 2 * base, 25 * base // 10, 5 * base)
        for step in steps:
            intervals = -(-max_value // step)  # ceiling division on integers, exact for any size
            if intervals <= count:
                return [i * step for i in range(intervals + 1)]
        exponent += 1


def _as_int(value, what: str) -> int:
    """Accept exact whole numbers only: int, or an integral Decimal (PostgreSQL SUM() over BIGINT returns one)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"图表数值必须是整数（{what}：{value!r}）。")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise TypeError(f"图表数值必须是整数（{what}：{value}）。")
        return int(value)
    return value


def _value(label: str, value) -> int:
    number = _as_int(value, label)
    if number < 0:
        raise ValueError(f"图表数值不能为负数：“{label}”为 {number}。")
    return number


def _esc(text) -> str:
    """Escape user text for both element content and attribute values; drop characters XML cannot carry."""
    return html.escape(_XML_INVALID.sub("", str(text)), quote=True)


def _n(number: float) -> str:
    """A coordinate with at most one decimal, without a trailing ".0" or a "-0"."""
    rounded = round(number, 1)
    if rounded == 0:
        return "0"
    return f"{rounded:.1f}".removesuffix(".0")


def text_width(text: str, size: float = FONT) -> float:
    """Estimated rendered width: CJK and full-width characters take 1 em, everything else about 0.6 em."""
    units = sum(1.0 if unicodedata.east_asian_width(ch) in ("W", "F") else 0.6 for ch in str(text))
    return units * size


def _fit(text: str, width: float, size: float = FONT) -> str:
    """Cut ``text`` with "…" so it fits ``width`` (the full label stays in the bar's tooltip)."""
    if text_width(text, size) <= width:
        return text
    kept = ""
    for ch in text:
        if text_width(kept + ch + "…", size) > width:
            break
        kept += ch
    return kept + "…"


def _text(x: float, y: float, content, *, size: float = FONT, anchor: str = "start", fill: str = TEXT, bold=False):
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-family="{FONT_FAMILY}" font-size="{_n(size)}" fill="{fill}"'
        f' text-anchor="{anchor}"{weight}>{_esc(content)}</text>'
    )


#: Background of a label drawn over lines (the chart's own background), so no grid line or data line strikes it.
LABEL_BACKGROUND = "#ffffff"


def _label(x: float, y: float, content, *, size: float = FONT, anchor: str = "start", fill: str = TEXT) -> str:
    """Text on a box of the background colour, drawn after the lines it may sit on: a grid line or the data line
    passes behind a value label, never through it. The box is the estimated text extent plus a 2-unit margin."""
    width = text_width(str(content), size) + 4
    left = {"start": x - 2, "middle": x - width / 2, "end": x - width + 2}[anchor]
    box = (
        f'<rect x="{_n(left)}" y="{_n(y - size * 0.9)}" width="{_n(width)}" height="{_n(size * 1.2)}"'
        f' fill="{LABEL_BACKGROUND}" class="label-bg"/>'
    )
    return box + _text(x, y, content, size=size, anchor=anchor, fill=fill)


def _line(x1: float, y1: float, x2: float, y2: float, *, stroke: str = GRID, width: float = 1) -> str:
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" stroke-width="{_n(width)}"/>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tooltip: str | None = None) -> str:
    attrs = f'x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" fill="{fill}"'
    if tooltip is None:
        return f"<rect {attrs}/>"
    # A <title> child is the hover tooltip in browsers; WeasyPrint does not draw it.
    return f"<rect {attrs}><title>{_esc(tooltip)}</title></rect>"


def _svg(height: float, title: str, body: list[str]) -> str:
    """Wrap the drawing: viewBox for scaling, width 100% so it fills the column, height follows the ratio.

    Its size cap lives in the stylesheets (``.chart-svg``): a ``style`` attribute would be refused by the
    page's Content-Security-Policy.
    """
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_n(height)}" width="100%"'
        ' role="img" class="chart-svg">'
        f"<title>{_esc(title)}</title>" + "".join(body) + "</svg>"
    )


def _header(title: str, unit_label: str) -> list[str]:
    parts = [_text(0, 18, title, size=TITLE_FONT, bold=True)]
    if unit_label:
        parts.append(_text(WIDTH - 4, 18, f"单位：{unit_label}", size=SMALL, anchor="end", fill=MUTED))
    return parts


def _empty(title: str, unit_label: str) -> str:
    """The "no data" chart: title and a framed box saying 暂无数据, so the report still shows the section."""
    height = 120
    body = _header(title, unit_label)
    body.append(f'<rect x="0.5" y="30.5" width="{WIDTH - 1}" height="{height - 31}" fill="none" stroke="{GRID}"/>')
    body.append(_text(WIDTH / 2, 30 + (height - 30) / 2 + 5, EMPTY_TEXT, size=13, anchor="middle", fill=MUTED))
    return _svg(height, title, body)


def _labels(items: Sequence[tuple]) -> list[str]:
    return [_XML_INVALID.sub("", str(label)) for label, _ in items]


# --- charts ----------------------------------------------------------------------------------------------------


def line_chart(
    points: Sequence[tuple[str, int]],
    *,
    title: str,
    unit_label: str,
    value_format: Formatter,
    show_values: bool = True,
) -> str:
    """Monthly trend as an SVG line chart: ``points`` is ``[(label, value), …]`` in order, e.g. ("1月", 分).

    ``value_format`` turns an integer into the text of tick and point labels (e.g. 分 → 万元); ``unit_label``
    is printed as 单位：… in the corner. An empty list draws a 暂无数据 box; all zeros draw a flat line on the
    axis. Negative values raise ValueError (the registry records none; a negative sum means a caller bug).
    """
    values = [_value(label, value) for label, value in points]
    labels = _labels(points)
    if not values:
        return _empty(title, unit_label)

    top = max(values)
    ticks = nice_ticks(top, 5)
    scale_max = ticks[-1]
    # With all zeros the "1" tick would read as 0.00 万元 after formatting; show the baseline only.
    shown_ticks = ticks if top > 0 else [0]
    tick_labels = [value_format(t) for t in shown_ticks]

    height = 300
    plot_top = 52 if show_values else 40
    plot_bottom = height - 30
    plot_left = max(text_width(t, SMALL) for t in tick_labels) + 14
    plot_right = WIDTH - 8
    plot_h = plot_bottom - plot_top
    slot = (plot_right - plot_left) / len(values)

    def y_of(value: int) -> float:
        return plot_bottom - value * plot_h / scale_max

    body = _header(title, unit_label)
    for tick, tick_label in zip(shown_ticks, tick_labels, strict=True):
        y = y_of(tick)
        if tick:
            body.append(_line(plot_left, y, plot_right, y))
        body.append(_text(plot_left - 6, y + 4, tick_label, size=SMALL, anchor="end", fill=MUTED))
    body.append(_line(plot_left, plot_top - 6, plot_left, plot_bottom, stroke=AXIS))
    body.append(_line(plot_left, plot_bottom, plot_right, plot_bottom, stroke=AXIS))

    xs = [plot_left + slot * (i + 0.5) for i in range(len(values))]
    ys = [y_of(v) for v in values]
    # Thin out x labels when they would collide (e.g. 24 or 36 months on one axis).
    label_every = max(1, math.ceil((max(text_width(lb, SMALL) for lb in labels) + 6) / slot))
    for i, (x, label) in enumerate(zip(xs, labels, strict=True)):
        if i % label_every == 0:
            body.append(_line(x, plot_bottom, x, plot_bottom + 4, stroke=AXIS))
            body.append(_text(x, plot_bottom + 17, label, size=SMALL, anchor="middle"))

    if len(values) > 1:
        coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in zip(xs, ys, strict=True))
        body.append(
            f'<polyline points="{coords}" fill="none" stroke="{ACCENT}" stroke-width="2" stroke-linejoin="round"/>'
        )
    value_texts = [value_format(v) for v in values]
    # Point labels only when each fits its slot; otherwise they would overprint each other.
    values_fit = show_values and max(text_width(t, 10) for t in value_texts) + 4 <= slot - 2
    for x, y, label, value_text in zip(xs, ys, labels, value_texts, strict=True):
        body.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="{ACCENT}" stroke="#ffffff" stroke-width="1">'
            f"<title>{_esc(label)}：{_esc(value_text)}</title></circle>"
        )
    if values_fit:
        # After the line and every marker: each label's box hides the stretch of line that would cross it.
        for x, y, value_text in zip(xs, ys, value_texts, strict=True):
            body.append(_label(x, y - 8, value_text, size=10, anchor="middle"))
    return _svg(height, title, body)


def bar_chart(
    bars: Sequence[tuple[str, int]],
    *,
    title: str,
    unit_label: str,
    value_format: Formatter,
) -> str:
    """Horizontal bars per category: ``bars`` is ``[(label, value), …]``, drawn top to bottom in that order.

    The label column is as wide as the longest label (about 1 em per CJK character, capped at ~40% of the
    width, longer ones cut with "…" and kept whole in the tooltip); each bar ends with its value in
    ``value_format``. An empty list draws a 暂无数据 box; all zeros draw zero-length bars labelled 0.
    Negative values raise ValueError.
    """
    return stacked_bar_chart(
        [(label, {"": value}) for label, value in bars],
        series=[""],
        title=title,
        unit_label=unit_label,
        value_format=value_format,
    )


def stacked_bar_chart(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    *,
    series: Sequence[str],
    title: str,
    unit_label: str,
    value_format: Formatter,
) -> str:
    """Horizontal stacked bars: ``rows`` is ``[(label, {series_name: value}), …]``, ``series`` the stack order.

    E.g. purchases per channel split into 采购 / 帮助销售. A legend is drawn for two or more series; a missing
    series counts as 0, an unknown one raises ValueError (it would silently vanish otherwise). Each bar ends
    with its total; a segment also shows its own value when it fits inside. At most ``len(PALETTE)`` series.
    """
    series = [str(name) for name in series]
    if not series:
        raise ValueError("至少需要一个数据系列。")
    if len(series) > len(PALETTE):
        raise ValueError(f"图表最多支持 {len(PALETTE)} 个数据系列。")
    if len(set(series)) != len(series):
        raise ValueError("数据系列名称不能重复。")
    labels = _labels(rows)
    table: list[list[int]] = []
    for label, parts in rows:
        unknown = set(map(str, parts)) - set(series)
        if unknown:
            raise ValueError(f"“{label}”含有未列出的数据系列：{'、'.join(sorted(unknown))}。")
        table.append([_value(f"{label}·{name}" if name else str(label), parts.get(name, 0)) for name in series])
    if not table:
        return _empty(title, unit_label)

    totals = [sum(row) for row in table]
    top = max(totals)
    total_texts = [value_format(t) for t in totals]

    legend = len(series) > 1
    row_h, bar_h = 28, 16
    plot_top = 56 if legend else 34
    label_cap = WIDTH * MAX_LABEL_SHARE
    label_col = min(max(text_width(lb) for lb in labels) + 10, label_cap)
    plot_left = label_col + 4
    # Tick labels sit side by side under a possibly narrow plot: take fewer steps until they no longer touch.
    for step_count in range(5, 0, -1):
        ticks = nice_ticks(top, step_count)
        shown_ticks = ticks if top > 0 else [0]
        tick_labels = [value_format(t) for t in shown_ticks]
        # Room on the right for the longest total and for the last tick label, centred on the axis end.
        right_pad = max(max(text_width(t) for t in total_texts) + 10, text_width(tick_labels[-1], SMALL) / 2 + 4)
        plot_right = WIDTH - right_pad
        plot_w = plot_right - plot_left
        spacing = plot_w / (len(ticks) - 1)
        if max(text_width(t, SMALL) for t in tick_labels) + 10 <= spacing:
            break
    scale_max = ticks[-1]
    plot_bottom = plot_top + row_h * len(table)
    height = plot_bottom + 26

    def x_of(value: int) -> float:
        return plot_left + value * plot_w / scale_max

    body = _header(title, unit_label)
    if legend:
        x = 0.0
        for name, colour in zip(series, PALETTE, strict=False):
            body.append(_rect(x, 30, 12, 12, colour))
            body.append(_text(x + 17, 40, name, size=SMALL))
            x += 17 + text_width(name, SMALL) + 18

    for tick, tick_label in zip(shown_ticks, tick_labels, strict=True):
        x = x_of(tick)
        if tick:
            body.append(_line(x, plot_top, x, plot_bottom))
        body.append(_text(x, plot_bottom + 16, tick_label, size=SMALL, anchor="middle", fill=MUTED))
    body.append(_line(plot_left, plot_top, plot_left, plot_bottom, stroke=AXIS))

    for i, (label, row, total_text) in enumerate(zip(labels, table, total_texts, strict=True)):
        y = plot_top + i * row_h + (row_h - bar_h) / 2
        body.append(_text(label_col - 6, y + bar_h / 2 + 4, _fit(label, label_col - 10), anchor="end"))
        start = 0
        for name, colour, value in zip(series, PALETTE, row, strict=False):
            x0, x1 = x_of(start), x_of(start + value)
            value_text = value_format(value)
            tooltip = f"{label}·{name}：{value_text}" if name else f"{label}：{value_text}"
            body.append(_rect(x0, y, x1 - x0, bar_h, colour, tooltip))
            if legend and value and text_width(value_text, SMALL) + 6 <= x1 - x0:
                centre = (x0 + x1) / 2
                body.append(
                    _text(centre, y + bar_h / 2 + 4, value_text, size=SMALL, anchor="middle", fill=_ON_PALETTE[colour])
                )
            start += value
        body.append(_label(x_of(start) + 5, y + bar_h / 2 + 4, total_text))
    return _svg(height, title, body)
