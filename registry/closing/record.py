"""The report of record: the figures as canonical JSON, the PDF rendered from them with the 已审定 block and a QR
code, its signature, and the cell-by-cell comparison of two versions."""

import dataclasses
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import segno
from flask import current_app, has_request_context, render_template, request, url_for
from markupsafe import Markup

from registry.reports.documents import chart_set
from registry.reports.pdf import render_pdf
from registry.reports.queries import QuarterFigures

#: Largest PDF the verification page accepts (a report of record is some hundred KB).
MAX_UPLOAD = 20 * 1024 * 1024


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in figures of record")


def canonical_json(figures: QuarterFigures) -> str:
    """The figures as JSON with sorted keys and no spaces: the same figures always give the same text (and hash)."""
    return json.dumps(dataclasses.asdict(figures), ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=_plain)  # fmt: skip


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def verify_url(token: str, figures_sha256: str = "") -> str:
    """The public address a version's QR code points to (``VERIFY_BASE_URL`` when set: the address the public
    reaches the registry at; otherwise this request's host)."""
    base = current_app.config.get("VERIFY_BASE_URL") or ""
    # The figures' hash rides along, so scanning a printed copy checks the hash printed on it.
    path = url_for("closing.verify", token=token, h=figures_sha256 or None)
    if base:
        return base.rstrip("/") + path
    if has_request_context():
        return request.host_url.rstrip("/") + path
    return "http://localhost" + path


def qr_svg(url: str) -> Markup:
    """The QR code of ``url`` as inline SVG (a full QR code, never a Micro QR that phones cannot read)."""
    # Sized by the template (CSS); the URL is ours: base URL, route, a URL-safe token and a hex hash.
    return Markup(segno.make_qr(url, error="m").svg_inline(scale=1, border=4, omitsize=True))


def record_pdf(figures: QuarterFigures, record: dict, preparer: str) -> bytes:
    """The PDF of record: the quarterly report of ``figures`` with the 已审定 block of ``record`` on its cover."""
    org_name = current_app.config["ORG_NAME"]
    html = render_template(
        "reports/report.html", f=figures, charts=chart_set(figures), org_name=org_name, preparer=preparer,
        record=record,
    )  # fmt: skip
    return render_pdf(html)


# ---- comparing two versions ------------------------------------------------------------------------------------

#: Keys that name a row in a list of rows (the first present wins), so a row is compared with the same row.
ROW_KEYS = ("code", "label", "channel", "name", "title", "east")
#: Parts of the figures that change with every rendering and say nothing about the data.
IGNORED = {"generated_at", "data_version", "cutoff"}
#: Chinese names of the parts and columns, for the comparison table.
NAMES = {
    "agreements": "协议指标", "rows": "", "target": "年度目标", "quarter": "本季度", "year_to_date": "年累计",
    "last_year": "上年同期", "funds": "资金", "funds_total": "资金合计", "planned": "计划", "arrived": "到位",
    "disbursed": "拨付", "quarter_disbursed": "本季度拨付", "projects": "项目", "destinations": "就业去向",
    "lifted_year_to_date": "其中脱贫人口年累计", "people_quarter": "本季度就业人数",
    "people_year_to_date": "年累计就业人数", "channels": "消费帮扶渠道", "records": "记录数", "postings": "人才交流",
    "in_post_quarter": "本季度在岗", "in_post_at_end": "季末在岗", "roster": "人员名单", "counties": "各县",
    "people": "就业人数", "people_lifted": "其中脱贫人口", "consumption": "消费帮扶", "narrative": "工作情况说明",
    "highlights": "亮点", "problems": "问题", "next_steps": "下步打算", "monthly_disbursed": "各月拨付",
    "partners": "结对关系", "beneficiaries": "带动人数", "beneficiaries_lifted": "其中脱贫人口", "status": "状态",
    "total": "合计", "updated_by": "填写人", "updated_at": "填写时间",
}  # fmt: skip


def _flatten(value, path: tuple, out: dict) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not path and key in IGNORED:
                continue
            _flatten(item, (*path, NAMES.get(key, key)), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            name = next((str(item[k]) for k in ROW_KEYS if isinstance(item, dict) and item.get(k)), None)
            if isinstance(item, dict) and item.get("code") and item.get("name"):  # an indicator or a project
                name = item["name"] if "is_money" in item else f"{item['code']} {item['name']}"
            if name is None and isinstance(item, list) and item:  # (月份, 金额) pairs
                name = str(item[0])
                item = item[1] if len(item) == 2 else item
            _flatten(item, (*path, name or f"第{index + 1}行"), out)
    else:
        out[" · ".join(p for p in path if p)] = value


def compare(old_json: str, new_json: str) -> list[tuple[str, object, object]]:
    """Every cell that differs between two versions' figures: (where, value in the old, value in the new), in the
    new version's order, with cells only one of them has."""
    old, new = {}, {}
    _flatten(json.loads(old_json), (), old)
    _flatten(json.loads(new_json), (), new)
    keys = list(new) + [k for k in old if k not in new]
    return [(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]
