"""Record and change postings of cadres and professionals."""

import sqlalchemy as sa

from registry.audit.services import apply_changes, snapshot
from registry.counties.models import Side, Unit, UnitKind
from registry.exchanges.models import Exchange, PersonType
from registry.extensions import db
from registry.pairings.services import county_pairing_id
from registry.periods import Period
from registry.permissions import authorize_write
from registry.services import ServiceError, check_version
from registry.transfer import Batch, written
from registry.transfer import cache_of as _cache

FIELDS = (
    "person_name", "direction", "person_type", "field", "sending_unit", "receiving_unit", "county_id", "position",
    "arrival_date", "departure_date", "note",
)  # fmt: skip


def _check(data: dict, batch: Batch | None = None) -> None:
    data["position"] = data.get("position") or ""
    data["note"] = data.get("note") or ""
    for key, label in (("person_name", "姓名"), ("sending_unit", "派出单位"), ("receiving_unit", "接收单位")):
        if not data.get(key):
            raise ServiceError(f"请填写{label}。", key)
    county = db.session.get(Unit, data.get("county_id") or 0)
    if county is None or county.kind is not UnitKind.COUNTY or county.side is not Side.WEST:
        raise ServiceError("请选择涉及的四川县(市、区)。", "county_id")
    if data.get("arrival_date") is None:
        raise ServiceError("请填写到岗日期。", "arrival_date")
    if data.get("departure_date") and data["departure_date"] < data["arrival_date"]:
        raise ServiceError("离岗日期早于到岗日期。", "departure_date")
    for key, label in (("direction", "方向"), ("person_type", "类型")):
        if data.get(key) is None:
            raise ServiceError(f"请选择{label}。", key)
    if data["person_type"] is PersonType.CADRE:
        data["field"] = None
    elif data.get("field") is None:
        raise ServiceError("专业技术人才请选择领域（教育、医疗、农技或其他）。", "field")
    data["pairing_id"] = county_pairing_id(county.id, data["arrival_date"], _cache(batch))


def create_exchange(data: dict, *, actor, batch: Batch | None = None) -> Exchange:
    """Register a posting; the write gate checks the county and the pairing its arrival date puts it in."""
    data = {k: data.get(k) for k in FIELDS}
    _check(data, batch)
    authorize_write(actor, Exchange, data, cache=_cache(batch))
    exchange = Exchange(**data)
    db.session.add(exchange)
    if batch is None:
        db.session.flush()
    written("create", exchange, actor=actor, batch=batch, changes=snapshot(exchange, FIELDS),
            summary=f"登记人才交流 {exchange.person_name}（{exchange.person_type.label}）")  # fmt: skip
    return exchange


def update_exchange(exchange: Exchange, data: dict, *, actor, version=None, batch: Batch | None = None) -> dict:
    """Change a posting, as it was and as it will be within the writer's scope."""
    check_version(exchange, version)
    merged = {k: data.get(k, getattr(exchange, k)) for k in FIELDS}
    _check(merged, batch)
    authorize_write(actor, Exchange, merged, before=exchange, cache=_cache(batch))
    changes = apply_changes(exchange, merged, (*FIELDS, "pairing_id"))
    if changes:
        written("update", exchange, actor=actor, batch=batch, summary=f"修改人才交流 {exchange.person_name}",
                changes=changes)  # fmt: skip
    return changes


def in_post(period: Period):
    """SQL: the posting overlaps the period (arrived by its end, not left before its start)."""
    return sa.and_(
        Exchange.arrival_date <= period.end,
        sa.or_(Exchange.departure_date.is_(None), Exchange.departure_date >= period.start),
    )
