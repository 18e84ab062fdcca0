"""Read the audit trail as plain rows with human labels for fields and values."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.money import yuan
from registry.kernel.web import is_id, like_pattern

ACTION_LABELS = {
    "create": "新建",
    "update": "修改",
    "delete": "删除",
    "end": "终止",
    "login": "登录",
    "login_failed": "登录失败",
    "login_throttled": "登录受限",
    "login_unlocked": "解除登录限制",
    "sessions_ended": "结束登录",
    "password_change": "修改密码",
    "load": "导入参考数据",
    "status": "状态变更",
    "targets": "设定目标",
    "view_id": "查看身份证号",
    "export_id": "导出身份证号",
    "rekey_ids": "身份证号重新加密",
    "import": "导入",
    # 整改台账 and its data checks
    "progress": "报送进展", "request_close": "申请销号", "sign_off": "审核销号", "return": "退回",
    "link": "关联记录", "unlink": "取消关联", "check": "数据核查", "accept": "纳入台账", "dismiss": "排除线索",
}  # fmt: skip


@dataclass
class ChangeRow:
    field: str
    label: str
    old: str
    new: str


@dataclass
class EventRow:
    id: int
    occurred_at: datetime
    actor_name: str
    action: str
    action_label: str
    entity_type: str
    entity_id: int | None
    summary: str
    ip: str
    changes: list[ChangeRow]


def _model_of(table_name: str):
    """The mapped class stored in ``table_name``, or None for a table no model maps any more."""
    for mapper in db.Model.registry.mappers:
        if mapper.local_table.name == table_name:
            return mapper.class_
    return None


def _column(entity_type: str, field: str):
    """The column behind ``field`` of the model stored in ``entity_type`` (None for keys that are no column)."""
    model = _model_of(entity_type)
    if model is None:
        return None
    return sa.inspect(model).columns.get(field)


def _names(column, ids: set) -> dict:
    """Display names of the records a foreign-key column points to, for models that declare ``__audit_name__``."""
    for key in column.foreign_keys:
        target = _model_of(key.column.table.name)
        if hasattr(target, "audit_names"):  # a record named from more than one column (a pairing: 东 ↔ 西)
            return target.audit_names(ids) if ids else {}
        name = getattr(target, "__audit_name__", None)
        if name is None:
            return {}
        pk, text = key.column, getattr(target, name)
        return dict(db.session.execute(sa.select(pk, text).where(pk.in_(ids))).all()) if ids else {}
    return {}


def _value_labels(entity_type: str, field: str, values: set) -> dict:
    """Map raw stored values of one field to display text, from what its column declares.

    A foreign key shows the referenced record's ``__audit_name__``, an amount in 分 (``*_fen``, or a column with
    ``info={"money": True}``) shows 元, an enum column shows its members' labels, and a boolean 是/否.
    """
    column = _column(entity_type, field)
    if field in RECORD_TYPE_FIELDS:  # a table's name stands for a record type: its model's label
        return {v: _model_of(v).__audit_label__ for v in values if getattr(_model_of(v), "__audit_label__", None)}
    ids = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
    if column is not None and column.foreign_keys:
        return _names(column, ids)
    if field.endswith("_fen") or (column is not None and column.info.get("money")):
        return {v: f"{yuan(v)} 元" for v in ids}
    enum = getattr(column.type, "enum_class", None) if column is not None else None
    labels = {}
    for v in values:
        if isinstance(v, bool):
            labels[v] = "是" if v else "否"
        elif enum is not None and v in enum._value2member_map_:
            labels[v] = enum(v).label
    return labels


#: Fields whose values are table names (a problem's link to 项目, 资金往来…).
RECORD_TYPE_FIELDS = frozenset({"record_type"})


def _text(value, labels, model=None, field: str = "") -> str:
    if value is None or value == "":
        return "（空）"
    if isinstance(value, list | dict):
        # A structured value (an asset's sources) as its model writes it for people; never Python's repr in 分.
        written = model.audit_text(field, value) if hasattr(model, "audit_text") else None
        if written is not None:
            return written
        if isinstance(value, list):
            return "；".join(_text(v, labels, model, field) for v in value) or "（空）"
        return "；".join(f"{k}：{_text(v, labels, model, field)}" for k, v in value.items())
    return str(labels.get(value, value))


def to_rows(events, field_labels: dict | None = None) -> list[EventRow]:
    """Turn events into display rows; one lookup per field for all id values."""
    field_labels = field_labels or {}
    values_by_field: dict[tuple[str, str], set] = {}
    for event in events:
        for field, change in (event.changes or {}).items():
            pair = change if isinstance(change, list) and len(change) == 2 else [None, change]
            values = values_by_field.setdefault((event.entity_type, field), set())
            values.update(v for v in pair if not isinstance(v, list | dict))
    labels = {key: _value_labels(*key, values) for key, values in values_by_field.items()}
    rows = []
    models = {t: _model_of(t) for t in {e.entity_type for e in events}}
    for event in events:
        changes = []
        model = models[event.entity_type]
        for field, change in (event.changes or {}).items():
            old, new = change if isinstance(change, list) and len(change) == 2 else (None, change)
            known = labels[event.entity_type, field]
            changes.append(
                ChangeRow(
                    field,
                    field_labels.get(field, field),
                    _text(old, known, model, field),
                    _text(new, known, model, field),
                )
            )
        rows.append(
            EventRow(
                id=event.id,
                occurred_at=event.occurred_at,
                actor_name=event.actor_name,
                action=event.action,
                action_label=ACTION_LABELS.get(event.action, event.action),
                entity_type=event.entity_type,
                entity_id=event.entity_id,
                summary=event.summary,
                ip=event.ip,
                changes=changes,
            )
        )
    return rows


def history_of(obj, limit: int = 200) -> list[EventRow]:
    """The 变更记录 of one record and of the records that belong to it, newest first."""
    table = obj.__tablename__
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(
            sa.or_(
                sa.and_(AuditEvent.entity_type == table, AuditEvent.entity_id == obj.id),
                sa.and_(AuditEvent.context_type == table, AuditEvent.context_id == obj.id),
            )
        )
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    labels = {}
    for event in events:
        if event.entity_type not in labels:
            labels[event.entity_type] = field_labels_for(event.entity_type)
    # Labels of the record's own fields win where names clash.
    merged = {k: v for kind, fields in labels.items() if kind != table for k, v in fields.items()}
    return to_rows(events, {**merged, **getattr(obj, "AUDIT_LABELS", {})})


def field_labels_for(entity_type: str) -> dict:
    """AUDIT_LABELS of the model stored in ``entity_type``."""
    return getattr(_model_of(entity_type), "AUDIT_LABELS", {})


def filtered_events(args: dict, start: date | None, end: date | None, entity_types) -> sa.Select:
    """The administrators' log: events by actor (name), action, record type and id, and dates read as China time
    (UTC+8), the offices' working day."""
    stmt = sa.select(AuditEvent)
    if args.get("actor"):
        stmt = stmt.where(AuditEvent.actor_name.like(like_pattern(args["actor"])))
    if args.get("action") in ACTION_LABELS:
        stmt = stmt.where(AuditEvent.action == args["action"])
    if args.get("entity_type") in entity_types:
        stmt = stmt.where(AuditEvent.entity_type == args["entity_type"])
    if is_id(args.get("entity_id")):
        stmt = stmt.where(AuditEvent.entity_id == int(args["entity_id"]))
    china = timedelta(hours=8)
    if start:
        stmt = stmt.where(AuditEvent.occurred_at >= datetime.combine(start, time(), UTC) - china)
    if end:
        stmt = stmt.where(AuditEvent.occurred_at < datetime.combine(end + timedelta(days=1), time(), UTC) - china)
    return stmt
