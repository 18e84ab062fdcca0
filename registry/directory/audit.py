"""The administrators' audit log: filter by time, actor, action and record type."""

from datetime import datetime

from flask import Blueprint, render_template, request

from registry.kernel.audit.models import AuditEvent
from registry.kernel.audit.queries import ACTION_LABELS, field_labels_for, filtered_events, to_rows
from registry.kernel.web import paginate
from registry.permissions import requires

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
    stmt = filtered_events(args, _date_arg("start"), _date_arg("end"), ENTITY_LABELS)
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
