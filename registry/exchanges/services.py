"""Record and change postings of cadres and professionals."""

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from registry.counties.models import Side, Unit, UnitKind
from registry.exchanges.models import Direction, Exchange, PersonType
from registry.kernel.audit.services import apply_changes, snapshot
from registry.kernel.extensions import db
from registry.kernel.periods import Period
from registry.kernel.services import ServiceError, check_version
from registry.kernel.transfer import Batch, written
from registry.kernel.transfer import cache_of as _cache
from registry.pairings.services import county_pairing_id
from registry.permissions import authorize_write

FIELDS = (
    "person_name", "direction", "person_type", "field", "sending_unit_id", "sending_unit", "receiving_unit_id",
    "receiving_unit", "county_id", "position", "arrival_date", "departure_date", "note",
)  # fmt: skip
#: (id field, organisation-name field, label) of the two ends of a posting, sender first.
ENDS = (("sending_unit_id", "sending_unit", "派出单位"), ("receiving_unit_id", "receiving_unit", "接收单位"))
#: Endings an organisation's name may add to its unit's name (昭觉县人民政府 is 昭觉县).
NAME_SUFFIXES = ("人民政府",)


def unit_index() -> dict[str, set[int]]:
    """Every unit under the names a person writes for it: its name, full name, parent's name + name, and code."""
    parent = aliased(Unit)
    rows = db.session.execute(
        sa.select(Unit.id, Unit.name, Unit.full_name, Unit.code, parent.name).outerjoin(
            parent, parent.id == Unit.parent_id
        )
    )
    index: dict[str, set[int]] = {}
    for unit_id, name, full_name, code, parent_name in rows:
        for key in {name, full_name, code, (parent_name or "") + name} - {None, ""}:
            index.setdefault(key, set()).add(unit_id)
    return index


def find_unit(text: str, index: dict[str, set[int]] | None = None) -> Unit | None:
    """The one unit ``text`` names (a code, a name, a full name, with or without 人民政府), or None if none does.

    :raise ServiceError: if it names several units.
    """
    text = (text or "").strip()
    if not text:
        return None
    index = unit_index() if index is None else index
    names = {text} | {text[: -len(s)] for s in NAME_SUFFIXES if text.endswith(s) and len(text) > len(s)}
    ids = set().union(*(index.get(n, set()) for n in names))
    if len(ids) > 1:
        raise ServiceError(f"“{text}”对应多个登记单位，请写全称（如 浙江省宁波市余姚市）。")
    return db.session.get(Unit, ids.pop()) if ids else None


def _end_unit(data: dict, key: str, text_key: str, label: str, batch: Batch | None) -> Unit:
    """The registry unit of one end: the chosen id, or else the unit its organisation name names."""
    if data.get(key):
        unit = db.session.get(Unit, data[key])
        if unit is None:
            raise ServiceError(f"所选{label}不存在。", key)
        return unit
    text = data.get(text_key) or ""
    if not text:
        raise ServiceError(f"请选择{label}。", key)
    cache = _cache(batch)
    if cache is not None and "unit_index" not in cache:
        cache["unit_index"] = unit_index()  # once per import, not per row
    index = cache["unit_index"] if cache is not None else None
    try:
        unit = find_unit(text, index)
    except ServiceError as exc:
        raise ServiceError(f"{label}：{exc}", key) from exc
    if unit is None:
        raise ServiceError(f"{label}“{text}”不是登记的单位，请选择{label}（东部或四川的登记单位）。", key)
    return unit


def check_sides(direction: Direction, sending: Unit, receiving: Unit) -> None:
    """East→West: an East sender and a Sichuan receiver; West→East the opposite. Refuses naming the field."""
    for unit, side, (key, _, label) in zip((sending, receiving), direction.sides, ENDS, strict=True):
        if unit.side is not side:
            raise ServiceError(
                f"方向为“{direction.label}”时，{label}应为{side.label}单位；“{unit.display_name}”是{unit.side.label}单位。",
                key,
            )


def _check(data: dict, batch: Batch | None = None) -> None:
    data["position"] = data.get("position") or ""
    data["note"] = data.get("note") or ""
    if not data.get("person_name"):
        raise ServiceError("请填写姓名。", "person_name")
    for key, label in (("direction", "方向"), ("person_type", "类型")):
        if data.get(key) is None:
            raise ServiceError(f"请选择{label}。", key)
    sending, receiving = (_end_unit(data, *end, batch) for end in ENDS)
    check_sides(data["direction"], sending, receiving)
    for unit, (key, text_key, _) in zip((sending, receiving), ENDS, strict=True):
        data[key] = unit.id
        data[text_key] = (data.get(text_key) or "").strip() or unit.display_name
    west, (west_key, _, west_label) = (
        (receiving, ENDS[1]) if data["direction"] is Direction.EAST_TO_WEST else (sending, ENDS[0])
    )
    if not data.get("county_id") and west.county_id:
        data["county_id"] = west.county_id  # the Sichuan end lies in one county: that is the county concerned
    county = db.session.get(Unit, data.get("county_id") or 0)
    if county is None or county.kind is not UnitKind.COUNTY or county.side is not Side.WEST:
        raise ServiceError("请选择涉及的四川县(市、区)。", "county_id")
    if west.county_id != county.id and west.id not in (county.prefecture_id, county.province_id):
        raise ServiceError(f"{west_label}“{west.display_name}”不在所涉县(市、区){county.name}内，也不是其上级。",
                           west_key)  # fmt: skip
    if data.get("arrival_date") is None:
        raise ServiceError("请填写到岗日期。", "arrival_date")
    if data.get("departure_date") and data["departure_date"] < data["arrival_date"]:
        raise ServiceError("离岗日期早于到岗日期。", "departure_date")
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
