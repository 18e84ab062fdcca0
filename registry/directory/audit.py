"""The administrators' audit log: filter by time, actor, action and record type."""

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from registry.audit.models import AuditEvent
from registry.audit.queries import ACTION_LABELS, field_labels_for, to_rows
from registry.permissions import requires
from registry.web import is_id, like_pattern, paginate

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

ENTITY_LABELS = {
    "users": "用户",
    "units": "单位",
    "pairings": "结对关系",
    "programmes": "协作类型",
    "projects": "帮扶项目",
    "fund_transactions": "资金记录",
    "agreements": "年度协议",
    "indicators": "协议指标",
    "indicator_entries": "指标完成登记",
    "placements": "劳务协作",
    "purchases": "消费帮扶",
    "exchanges": "人才交流",
    "channels": "消费帮扶渠道",
}


def _date_arg(name):
    try:
        return datetime.strptime(request.args.get(name, ""), "%Y-%m-%d").date()
    except ValueError:
        return None


@bp.route("/")
@requires("audit.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in ("actor", "action", "entity_type", "entity_id", "start", "end")}
    stmt = sa.select(AuditEvent)
    if args["actor"]:
        stmt = stmt.where(AuditEvent.actor_name.like(like_pattern(args["actor"])))
    if args["action"] in ACTION_LABELS:
        stmt = stmt.where(AuditEvent.action == args["action"])
    if args["entity_type"] in ENTITY_LABELS:
        stmt = stmt.where(AuditEvent.entity_type == args["entity_type"])
    if is_id(args["entity_id"]):
        stmt = stmt.where(AuditEvent.entity_id == int(args["entity_id"]))
    start, end = _date_arg("start"), _date_arg("end")
    # Dates are read as China time (UTC+8), the offices' working day.
    china = timedelta(hours=8)
    if start:
        stmt = stmt.where(AuditEvent.occurred_at >= datetime.combine(start, time(), UTC) - china)
    if end:
        stmt = stmt.where(AuditEvent.occurred_at < datetime.combine(end + timedelta(days=1), time(), UTC) - china)
    page = paginate(
        stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()),
        args=args,
        per_page=50,
    )
    # One label lookup per record type on the page, not per event.
    by_type: dict[str, list] = {}
    for event in page.items:
        by_type.setdefault(event.entity_type, []).append(event)
    converted = {row.id: row for kind, events in by_type.items() for row in to_rows(events, field_labels_for(kind))}
    rows = [converted[event.id] for event in page.items]
    return render_template(
        "audit/index.html",
        page=page,
        rows=rows,
        args=args,
        actions=ACTION_LABELS,
        entities=ENTITY_LABELS,
    )
