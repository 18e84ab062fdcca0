"""Read the audit trail as plain rows with human labels for fields and values."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from registry.audit.models import AuditEvent
from registry.extensions import db

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
}


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


def _enum_fields() -> dict:
    """Field name -> enum classes whose stored values it may hold (values never clash between the classes)."""
    from registry.agreements.models import Measure
    from registry.auth.models import Role
    from registry.counties.models import CountyCategory, UnitKind
    from registry.exchanges.models import Direction, Field, PersonType
    from registry.placements.models import Destination, Household
    from registry.projects.models import (
        DeliveryMode,
        FundingLevel,
        FundSource,
        FundStage,
        ProjectCategory,
        ProjectStatus,
    )

    return {
        "role": (Role,),
        "level": (UnitKind,),
        "kind": (UnitKind,),
        "category": (CountyCategory, ProjectCategory),
        "status": (ProjectStatus,),
        "source": (FundSource,),
        "stage": (FundStage,),
        "delivery_mode": (DeliveryMode,),
        "funding_level": (FundingLevel,),
        "measure": (Measure,),
        "household": (Household,),
        "destination_class": (Destination,),
        "direction": (Direction,),
        "person_type": (PersonType,),
        "field": (Field,),
        **_purchase_enums(),
    }


def _purchase_enums() -> dict:
    from registry.purchases.models import BuyerKind, CountingType, ProductCategory, SellerKind

    return {
        "buyer_kind": (BuyerKind,),
        "seller_kind": (SellerKind,),
        "counting_type": (CountingType,),
        "product_category": (ProductCategory,),
    }


def _value_labels(field: str, values: set):
    """Map raw stored values of ``field`` to display text (ids to names, enum keys to labels, 分 to 元)."""
    from registry.counties.models import Unit
    from registry.money import yuan
    from registry.pairings.models import Programme

    ids = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
    if field.endswith("unit_id") or field in (
        "parent_id",
        "east_province_id",
        "county_id",
        "township_id",
        "village_id",
    ):
        rows = db.session.execute(sa.select(Unit.id, Unit.full_name).where(Unit.id.in_(ids))) if ids else []
        return {i: n for i, n in rows}
    if field == "channel_id":
        from registry.purchases.models import Channel

        rows = db.session.execute(sa.select(Channel.id, Channel.name).where(Channel.id.in_(ids))) if ids else []
        return {i: n for i, n in rows}
    if field == "programme_id":
        rows = db.session.execute(sa.select(Programme.id, Programme.name).where(Programme.id.in_(ids))) if ids else []
        return {i: n for i, n in rows}
    if field.endswith("_fen"):
        return {v: f"{yuan(v)} 元" for v in ids}
    labels = {}
    enums = _enum_fields().get(field, ())
    for v in values:
        if isinstance(v, bool):
            labels[v] = "是" if v else "否"
            continue
        for enum in enums:
            if v in enum._value2member_map_:
                labels[v] = enum(v).label
    return labels


def _text(value, labels) -> str:
    if value is None or value == "":
        return "（空）"
    return str(labels.get(value, value)) if not isinstance(value, list | dict) else str(value)


def to_rows(events, field_labels: dict | None = None) -> list[EventRow]:
    """Turn events into display rows; one lookup per field for all id values."""
    field_labels = field_labels or {}
    values_by_field: dict[str, set] = {}
    for event in events:
        for field, change in (event.changes or {}).items():
            pair = change if isinstance(change, list) and len(change) == 2 else [None, change]
            values_by_field.setdefault(field, set()).update(v for v in pair if not isinstance(v, list | dict))
    labels = {field: _value_labels(field, values) for field, values in values_by_field.items()}
    rows = []
    for event in events:
        changes = []
        for field, change in (event.changes or {}).items():
            old, new = change if isinstance(change, list) and len(change) == 2 else (None, change)
            changes.append(
                ChangeRow(
                    field,
                    field_labels.get(field, field),
                    _text(old, labels[field]),
                    _text(new, labels[field]),
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
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        if getattr(cls, "__tablename__", None) == entity_type:
            return getattr(cls, "AUDIT_LABELS", {})
    return {}
