"""What a notice discloses: the fields the 2018 guidance names, per notice type, and the notice's HTML and PDF.

``FIELDS`` is the whole list of what may ever appear on a public page. A row is built from a project and its fund
totals with exactly these keys (never a database id, a person's name or number, or a 责任人); the public pages and
the PDF print only the columns of the notice's type, each looked up here, so a key outside the list cannot show.
"""

from datetime import date

from flask import current_app, render_template

from registry.disclosure.models import NoticeType
from registry.kernel import money
from registry.projects.models import FundSource
from registry.reports.pdf import render_pdf

#: key -> (column heading, kind): text, money (分, shown in 万元), count.
FIELDS = {
    "name": ("项目名称", "text"),
    "place": ("实施地点", "text"),
    "category": ("项目类别", "text"),
    "implementing_unit": ("实施单位", "text"),
    "period": ("实施期限", "text"),
    "sources": ("资金来源", "text"),
    "planned_total": ("资金规模（万元）", "money"),
    "east_planned": ("其中东部财政援助资金（万元）", "money"),
    "arrived_total": ("到位资金（万元）", "money"),
    "disbursed_total": ("拨付资金（万元）", "money"),
    "east_disbursed": ("其中东部财政援助资金拨付（万元）", "money"),
    "status": ("实施情况", "text"),
    "actual_period": ("实际建设期限", "text"),
    "beneficiaries": ("带动人数", "count"),
    "beneficiaries_lifted": ("其中脱贫人口", "count"),
    "farmer_benefit": ("带贫机制（联农带农）", "text"),
    "performance_targets": ("绩效目标", "text"),
}

#: The columns each notice type discloses, in order.
COLUMNS = {
    NoticeType.ANNUAL_PLAN: (
        "name", "place", "category", "implementing_unit", "period", "sources", "planned_total", "east_planned",
        "farmer_benefit", "performance_targets",
    ),
    NoticeType.ARRANGEMENT: (
        "name", "place", "category", "implementing_unit", "period", "planned_total", "east_planned",
        "farmer_benefit", "performance_targets",
    ),
    NoticeType.ALLOCATION: (
        "name", "place", "implementing_unit", "sources", "arrived_total", "disbursed_total", "east_disbursed",
    ),
    NoticeType.COMPLETION: (
        "name", "place", "implementing_unit", "actual_period", "status", "disbursed_total", "beneficiaries",
        "beneficiaries_lifted", "farmer_benefit", "performance_targets",
    ),
}  # fmt: skip

#: Opening sentence per type: what is disclosed and under which rule.
_RULE = "根据扶贫资金项目公告公示制度要求，现将{county}{year}年度东西部协作财政援助资金"
INTRO = {
    NoticeType.ANNUAL_PLAN: _RULE + "项目计划予以公告。",
    NoticeType.ARRANGEMENT: _RULE + "项目安排情况予以公告。",
    NoticeType.ALLOCATION: _RULE + "分配结果予以公告。",
    NoticeType.COMPLETION: _RULE + "项目实施结果予以公告。",
}


def _period(start, finish) -> str:
    if start is None:
        return ""
    return f"{start} 至 {finish}" if finish else f"{start} 起"


def project_row(project, funds: dict) -> dict:
    """The disclosed fields of one project, from its record and its fund totals {source: (计划, 到位, 拨付)}."""
    place = "".join(u.name for u in (project.county, project.township, project.village) if u is not None)
    planned = sum(v[0] for v in funds.values())
    arrived = sum(v[1] for v in funds.values())
    disbursed = sum(v[2] for v in funds.values())
    east = funds.get(FundSource.EAST_FISCAL, (0, 0, 0))
    return {
        "name": project.name,
        "place": place,
        "category": project.category.label,
        "implementing_unit": project.implementing_unit,
        "period": _period(project.planned_start, project.planned_finish),
        "sources": "、".join(s.label for s in FundSource if s in funds and any(funds[s])),
        "planned_total": planned,
        "east_planned": east[0],
        "arrived_total": arrived,
        "disbursed_total": disbursed,
        "east_disbursed": east[2],
        "status": project.status.label,
        "actual_period": _period(project.actual_start, project.actual_finish),
        "beneficiaries": project.beneficiaries,
        "beneficiaries_lifted": project.beneficiaries_lifted,
        "farmer_benefit": project.farmer_benefit,
        "performance_targets": project.performance_targets,
    }


def snapshot(
    *, notice_type: NoticeType, title, county, prefecture, year, issuing_unit, phones, window, published_on, rows
) -> dict:
    """The frozen notice (JSON): the header and, per row, only the columns its type discloses."""
    columns = COLUMNS[notice_type]
    kept = [{key: row[key] for key in columns} for row in rows]
    totals = {key: sum(r[key] for r in kept) for key in columns if FIELDS[key][1] in ("money", "count")}
    return {
        "type": notice_type.value,
        "title": title,
        "county": county,
        "prefecture": prefecture,
        "year": year,
        "issuing_unit": issuing_unit,
        "phones": list(phones),
        "window_start": window[0].isoformat(),
        "window_end": window[1].isoformat(),
        "published_on": published_on.isoformat(),
        "intro": INTRO[notice_type].format(county=county, year=year),
        "columns": list(columns),
        "rows": kept,
        "totals": totals,
    }


def search_text(snap: dict) -> str:
    """What the public search looks in: title, county, issuing unit, project names and places."""
    parts = [snap["title"], snap["county"], snap["issuing_unit"]]
    parts += [f"{row.get('name', '')} {row.get('place', '')}" for row in snap["rows"]]
    return "\n".join(parts)


def _cell(key: str, value) -> str:
    kind = FIELDS[key][1]
    if kind == "money":
        return money.money(value)
    if kind == "count":
        return money.count(value)
    return value or "—"


def table(snap: dict) -> dict:
    """The notice's table as printed text: headings, rows and the total row, only FIELDS of the snapshot's type."""
    columns = [key for key in COLUMNS[NoticeType(snap["type"])] if key in snap["columns"]]
    numeric = {key for key in columns if FIELDS[key][1] in ("money", "count")}
    rows = [[_cell(key, row.get(key)) for key in columns] for row in snap["rows"]]
    totals = None
    if numeric:
        totals = [_cell(key, snap["totals"].get(key)) if key in numeric else "" for key in columns]
        totals[0] = "合计"
    return {
        "keys": columns,
        "headings": [FIELDS[key][0] for key in columns],
        "numeric": [key in numeric for key in columns],
        "wide": [key in ("farmer_benefit", "performance_targets") for key in columns],
        "rows": rows,
        "totals": totals,
    }


def header(snap: dict) -> dict:
    """The notice's printed header fields (dates as dates, the window's length)."""
    start, end = date.fromisoformat(snap["window_start"]), date.fromisoformat(snap["window_end"])
    return {
        "title": snap["title"],
        "county": snap["county"],
        "prefecture": snap["prefecture"],
        "year": snap["year"],
        "type_label": NoticeType(snap["type"]).label,
        "issuing_unit": snap["issuing_unit"],
        "phones": snap["phones"],
        "window_start": start,
        "window_end": end,
        "window_days": (end - start).days + 1,
        "published_on": date.fromisoformat(snap["published_on"]),
        "intro": snap["intro"],
    }


def notice_html(snap: dict) -> str:
    """The PDF's HTML (the public page renders the same parts in the site's layout)."""
    return render_template(
        "disclosure/notice_pdf.html", h=header(snap), t=table(snap), org_name=current_app.config["ORG_NAME"]
    )


def notice_pdf(snap: dict) -> bytes:
    """The A4 PDF of a notice, through the reports' WeasyPrint pipeline and its static-only fetcher."""
    return render_pdf(notice_html(snap))
