"""From figures to documents: the charts, the report's HTML and PDF, and report file names."""

import re
from decimal import Decimal

from flask import current_app, render_template
from markupsafe import Markup

from registry.agreements import ranking
from registry.counties.models import Unit
from registry.kernel import money
from registry.kernel.extensions import db
from registry.reports import charts
from registry.reports.pdf import render_pdf
from registry.reports.queries import QuarterFigures


def chart_set(f: QuarterFigures) -> dict[str, Markup]:
    """The three charts of a report, as SVG markup the dashboard and the PDF both embed."""
    # The same unit rule as the tables, chosen by the chart's largest value.
    funds_unit = money.money_unit(f.level, *(v for _, v in f.monthly_disbursed))
    funds = charts.line_chart(
        list(f.monthly_disbursed),
        title=f"{f.quarter.year} 年各月资金拨付（{'、'.join(f.programmes) or '全部协作计划'}）",
        unit_label=funds_unit,
        value_format=lambda fen: money.money(fen, funds_unit),
    )
    destinations = charts.bar_chart(
        [(d.label, d.year_to_date) for d in f.destinations],
        title="年累计就业人数（按就业去向）",
        unit_label="人",
        value_format=money.count,
    )
    types = list(dict.fromkeys(c.counting_type for c in f.channels)) or ["采购"]
    by_channel: dict[str, dict[str, int]] = {}
    for c in f.channels:
        by_channel.setdefault(c.channel, {})[c.counting_type] = c.year_to_date
    channels_unit = money.money_unit(f.level, *(sum(v.values()) for v in by_channel.values()))
    channels = charts.stacked_bar_chart(
        list(by_channel.items()),
        series=types,
        title="年累计消费帮扶金额（按渠道）",
        unit_label=channels_unit,
        value_format=lambda fen: money.money(fen, channels_unit),
    )
    # The chart module escapes every label and value it prints, so its output is safe markup.
    return {"funds": Markup(funds), "destinations": Markup(destinations), "channels": Markup(channels)}


def preparer_of(user) -> str:
    """The office a report is prepared by: the user's own unit, or the operating office."""
    unit = getattr(user, "scope_unit", None)
    return f"{unit.full_name}（{user.role.label}）" if unit else current_app.config["ORG_NAME"]


def signing_unit(subject: str) -> str:
    """The unit a signing certificate names, as the cover prints it (签章单位): its organisation, else its common
    name, from the subject as stored with a version ("Common Name: …, Organization: …, Country: CN" or "CN=…,O=…")."""
    fields = {}
    for part in re.split(r",\s*", subject or ""):
        key, sep, value = part.partition(": ") if ": " in part else part.partition("=")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    for key in ("Organization", "O", "Common Name", "CN"):
        if fields.get(key):
            return fields[key]
    return subject or ""


def rounding_note(unit: str, total: int, *values: int) -> str:
    """What a caption says when a table's rows, each rounded to the unit on its own, do not add up to its total
    (the rounding of the exact total, in 分): every amount is summed in 分 and rounded once, at display."""

    def printed(fen: int) -> Decimal:
        return Decimal(money.money(fen, unit).replace(",", ""))

    if sum(printed(v) for v in values) == printed(total):
        return ""
    return "各行与合计均由以分计的金额四舍五入得出，合计为精确合计的四舍五入，故各行相加与合计可能相差 0.01"


#: How many hex digits of the figures' hash the cover prints as its 核验码 (the verification page accepts them).
SHORT_CODE_DIGITS = 12


def short_code(figures_sha256: str) -> str:
    """核验码: the first 12 hex digits of the figures' hash in groups of four (``AB12-CD34-EF56``); the verification
    page shows the whole hash, which begins with it, and accepts the code as printed."""
    head = (figures_sha256 or "")[:SHORT_CODE_DIGITS].upper()
    return "-".join(head[i : i + 4] for i in range(0, len(head), 4))


#: What a render of the live figures says on its cover and in every page's footer once the quarter has a version
#: of record (an approved quarter's ``?live=1``): the file is not the signed, archived report.
NOT_OF_RECORD = "非存档版：本文件为实时生成，不是已审定的存档版本"


def report_html(f: QuarterFigures, preparer: str | None = None, *, not_of_record: bool = False) -> str:
    """The report's HTML. ``preparer`` (the office that asked for it) keys the caches; the cover's 编制单位 is the
    unit whose report it is, whoever downloads it. ``not_of_record`` marks a live render of a quarter that has an
    approved version of record (the caller knows: this package does not know the close)."""
    org_name = current_app.config["ORG_NAME"]
    # The ranking of the report's own paired counties (a liaison's already limited), for its own agreements.
    rankings = ranking.for_report(
        db.session.get(Unit, f.unit.id), f.quarter.year, f.cutoff, [c.id for c in f.counties],
        [(a.title, a.programme) for a in f.agreements],
    )  # fmt: skip
    return render_template(
        "reports/report.html", f=f, charts=chart_set(f), org_name=org_name, preparer=preparer or org_name,
        rankings=rankings, not_of_record=NOT_OF_RECORD if not_of_record else "",
    )  # fmt: skip


def report_pdf(f: QuarterFigures, preparer: str | None = None, *, not_of_record: bool = False) -> bytes:
    """The quarterly report of ``f`` as PDF bytes."""
    return render_pdf(report_html(f, preparer, not_of_record=not_of_record))


#: The file name's mark of a render that is not the archived version of its quarter (see ``not_of_record``).
NOT_OF_RECORD_SUFFIX = "-非存档版"


def report_stem(code: str, name: str, quarter) -> str:
    """``510000-四川省-2024Q3-东西部协作季度报告``: sortable by code, readable, safe on every file system."""
    name = re.sub(r'[\\/:*?"<>|\s]+', "", name) or "unit"
    return f"{code}-{name}-{quarter}-东西部协作季度报告"
