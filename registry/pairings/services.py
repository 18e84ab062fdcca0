"""Pairing rules and the one question every module asks: who were a unit's partners during a period?"""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload

from registry.counties.models import DIVISION_KINDS, Side, Unit, UnitKind
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.extensions import db
from registry.kernel.periods import Period, overlaps
from registry.kernel.services import ServiceError, check_version
from registry.kernel.web import is_id, like_pattern
from registry.pairings.models import Pairing, Programme

PAIRING_FIELDS = (
    "east_unit_id",
    "west_unit_id",
    "level",
    "programme_id",
    "valid_from",
    "valid_to",
    "source",
    "note",
)
PROGRAMME_FIELDS = (
    "name",
    "east_province_id",
    "starts_on",
    "ends_on",
    "is_active",
    "description",
)
#: Levels at which the two sides are organisations of one kind (学校↔学校, 医院↔医院).
SAME_KIND_LEVELS = {UnitKind.SCHOOL, UnitKind.HOSPITAL}


def partners_during(unit_id: int, period: Period, *, include_parents: bool = False, where=None) -> list[Pairing]:
    """Pairings of a Sichuan unit valid at any time during ``period``, oldest first.

    :param include_parents: also return pairings of the unit's prefecture and province (a county's
        市–州 pairing frames its county–county one).
    :param where: an extra filter, typically ``permissions.pairing_filter(user)``.
    """
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        return []
    ids = {unit.id}
    if include_parents:
        ids |= {i for i in (unit.prefecture_id, unit.province_id, unit.county_id) if i}
    return list(
        db.session.scalars(
            sa.select(Pairing)
            .options(
                joinedload(Pairing.east_unit),
                joinedload(Pairing.programme),
                joinedload(Pairing.west_unit),
            )
            .where(
                Pairing.west_unit_id.in_(ids),
                overlaps(Pairing.valid_from, Pairing.valid_to, period.start, period.end),
            )
            .where(where if where is not None else sa.true())
            .order_by(Pairing.valid_from, Pairing.id)
        )
    )


def county_pairing_on(county_id: int, day: date) -> Pairing | None:
    """The county-level pairing of a Sichuan county valid on ``day`` (the earliest one if several).

    Placements, purchases and postings belong to this pairing; records from a day without one have none.
    """
    pairings = [p for p in partners_during(county_id, Period(day, day)) if p.level is UnitKind.COUNTY]
    return pairings[0] if pairings else None


def county_pairing_id(county_id: int, day: date, cache: dict | None = None) -> int | None:
    """Id of ``county_pairing_on``; with ``cache`` (an import's), every county's pairings are loaded once."""
    if cache is not None:
        # Not ``setdefault``, whose argument would load every pairing again for each record.
        if "county_pairings" not in cache:
            cache["county_pairings"] = CountyPairings()
        return cache["county_pairings"].on(county_id, day)
    pairing = county_pairing_on(county_id, day)
    return pairing.id if pairing else None


class CountyPairings:
    """``county_pairing_on`` for many records at once: the county-level pairings of the counties, loaded once."""

    def __init__(self, county_ids=None):
        """Load the pairings of ``county_ids``, or of every county (a few hundred rows) when None."""
        self._by_county: dict[int, list[Pairing]] = {}
        stmt = sa.select(Pairing).where(Pairing.level == UnitKind.COUNTY).order_by(Pairing.valid_from, Pairing.id)
        if county_ids is not None:
            stmt = stmt.where(Pairing.west_unit_id.in_(list(county_ids)))
        for pairing in db.session.scalars(stmt):
            self._by_county.setdefault(pairing.west_unit_id, []).append(pairing)

    def on(self, county_id: int, day: date) -> int | None:
        """The id of the county's pairing valid on ``day`` (the earliest if several), or None."""
        for pairing in self._by_county.get(county_id, ()):
            if pairing.valid_from <= day and (pairing.valid_to is None or pairing.valid_to >= day):
                return pairing.id
        return None


@dataclass
class _Checked:
    east: Unit
    west: Unit
    programme: Programme


def validate_pairing(data: dict, *, pairing_id: int | None = None) -> _Checked:
    """Check units, sides, level, period and overlap; raise ServiceError naming the field."""
    east = db.session.get(Unit, data["east_unit_id"]) if data.get("east_unit_id") else None
    west = db.session.get(Unit, data["west_unit_id"]) if data.get("west_unit_id") else None
    programme = db.session.get(Programme, data["programme_id"]) if data.get("programme_id") else None
    if east is None:
        raise ServiceError("请选择存在的东部单位。", "east_unit_id")
    if west is None:
        raise ServiceError("请选择存在的四川单位。", "west_unit_id")
    if programme is None:
        raise ServiceError("请选择协作类型。", "programme_id")
    if east.side is not Side.EAST:
        raise ServiceError(f"“{east.full_name}”不是东部单位。", "east_unit_id")
    if west.side is not Side.WEST:
        raise ServiceError(f"“{west.full_name}”不是四川单位。", "west_unit_id")
    level = UnitKind(data["level"])
    if level in DIVISION_KINDS or level in (UnitKind.TOWNSHIP, UnitKind.VILLAGE):
        if west.kind is not level:
            raise ServiceError(
                f"{level.label}级结对的四川单位须为{level.label}，所选为{west.kind.label}。",
                "west_unit_id",
            )
    if level in SAME_KIND_LEVELS and (east.kind is not level or west.kind is not level):
        raise ServiceError(f"{level.label}结对的双方都须为{level.label}。", "level")
    if level in (UnitKind.ENTERPRISE, UnitKind.SOCIAL_ORG) and east.kind is not level:
        raise ServiceError(f"{level.label}结对的东部单位须为{level.label}。", "east_unit_id")
    valid_from, valid_to = data["valid_from"], data.get("valid_to")
    if valid_from is None:
        raise ServiceError("请填写起始日期。", "valid_from")
    if valid_to is not None and valid_to < valid_from:
        raise ServiceError(f"终止日期 {valid_to} 早于起始日期 {valid_from}。", "valid_to")
    clash = db.session.scalar(
        sa.select(Pairing)
        .where(
            Pairing.east_unit_id == east.id,
            Pairing.west_unit_id == west.id,
            Pairing.programme_id == programme.id,
            Pairing.id != (pairing_id or 0),
            overlaps(Pairing.valid_from, Pairing.valid_to, valid_from, valid_to or date.max),
        )
        .limit(1)
    )
    if clash is not None:
        until = clash.valid_to.isoformat() if clash.valid_to else "至今"
        raise ServiceError(
            f"{east.name}与{west.name}在“{programme.name}”下已有结对（{clash.valid_from.isoformat()} 至 {until}），"
            "时间段不能重叠。",
            "valid_from",
        )
    return _Checked(east, west, programme)


def create_pairing(data: dict, *, actor) -> Pairing:
    checked = validate_pairing(data)
    pairing = Pairing(**{name: data.get(name) for name in PAIRING_FIELDS})
    pairing.source = pairing.source or ""
    pairing.note = pairing.note or ""
    db.session.add(pairing)
    db.session.flush()
    record(
        "create",
        pairing,
        actor=actor,
        summary=f"新建结对 {checked.east.full_name} ↔ {checked.west.full_name}",
        changes=snapshot(pairing, PAIRING_FIELDS),
    )
    return pairing


def update_pairing(pairing: Pairing, data: dict, *, actor, version=None) -> dict:
    check_version(pairing, version)
    merged = {name: data.get(name, getattr(pairing, name)) for name in PAIRING_FIELDS}
    validate_pairing(merged, pairing_id=pairing.id)
    changes = apply_changes(pairing, merged, PAIRING_FIELDS)
    if changes:
        record(
            "update",
            pairing,
            actor=actor,
            summary=f"修改结对 {pairing}",
            changes=changes,
        )
    return changes


def end_pairing(pairing: Pairing, valid_to: date, *, actor, version=None) -> dict:
    """End a current pairing on ``valid_to`` (its last valid day)."""
    check_version(pairing, version)
    if pairing.valid_to is not None:
        raise ServiceError(f"该结对已于 {pairing.valid_to.isoformat()} 终止。", "valid_to")
    if valid_to < pairing.valid_from:
        raise ServiceError(f"终止日期 {valid_to} 早于起始日期 {pairing.valid_from}。", "valid_to")
    changes = apply_changes(pairing, {"valid_to": valid_to}, ("valid_to",))
    record("end", pairing, actor=actor, summary=f"终止结对 {pairing}", changes=changes)
    return changes


def validate_programme(data: dict, *, programme_id=None):
    clash = db.session.scalar(sa.select(Programme.id).where(Programme.name == data["name"]))
    if clash is not None and clash != programme_id:
        raise ServiceError(f"已有名为“{data['name']}”的协作类型。", "name")
    if data.get("ends_on") and data.get("starts_on") and data["ends_on"] < data["starts_on"]:
        raise ServiceError("结束日期早于开始日期。", "ends_on")
    if data.get("east_province_id"):
        unit = db.session.get(Unit, data["east_province_id"])
        if unit is None or unit.kind is not UnitKind.PROVINCE or unit.side is not Side.EAST:
            raise ServiceError("请选择东部省份。", "east_province_id")


def create_programme(data: dict, *, actor) -> Programme:
    validate_programme(data)
    programme = Programme(**{name: data.get(name) for name in PROGRAMME_FIELDS})
    programme.description = programme.description or ""
    programme.is_active = True if programme.is_active is None else programme.is_active
    db.session.add(programme)
    db.session.flush()
    record(
        "create",
        programme,
        actor=actor,
        summary=f"新建协作类型 {programme.name}",
        changes=snapshot(programme, PROGRAMME_FIELDS),
    )
    return programme


def update_programme(programme: Programme, data: dict, *, actor, version=None) -> dict:
    check_version(programme, version)
    validate_programme(
        {**{n: getattr(programme, n) for n in PROGRAMME_FIELDS}, **data},
        programme_id=programme.id,
    )
    changes = apply_changes(programme, data, PROGRAMME_FIELDS)
    if changes:
        record(
            "update",
            programme,
            actor=actor,
            summary=f"修改协作类型 {programme.name}",
            changes=changes,
        )
    return changes


def filtered_pairings(args: dict, scope) -> tuple[sa.Select, dict, str | None]:
    """The pairing list: ``scope`` (the reader's WHERE clause) and the filters; returns the statement (units and
    programme loaded), the sort columns it offers, and a message for an unreadable date."""
    east, west = aliased(Unit), aliased(Unit)
    stmt = (
        sa.select(Pairing)
        .join(east, Pairing.east_unit_id == east.id)
        .join(west, Pairing.west_unit_id == west.id)
        .where(scope)
        .options(joinedload(Pairing.east_unit), joinedload(Pairing.west_unit), joinedload(Pairing.programme))
    )
    if args.get("q"):
        pattern = like_pattern(args["q"])
        stmt = stmt.where(
            sa.or_(east.full_name.like(pattern), west.full_name.like(pattern), Pairing.source.like(pattern))
        )
    if is_id(args.get("programme")):
        stmt = stmt.where(Pairing.programme_id == int(args["programme"]))
    if args.get("level") in UnitKind._value2member_map_:
        stmt = stmt.where(Pairing.level == args["level"])
    if is_id(args.get("east_province")):
        stmt = stmt.where(east.province_id == int(args["east_province"]))
    if is_id(args.get("west_prefecture")):
        stmt = stmt.where(west.prefecture_id == int(args["west_prefecture"]))
    today = date.today()
    if args.get("status") == "current":
        stmt = stmt.where(overlaps(Pairing.valid_from, Pairing.valid_to, today, today))
    elif args.get("status") == "ended":
        stmt = stmt.where(Pairing.valid_to < today)
    elif args.get("status") == "future":
        stmt = stmt.where(Pairing.valid_from > today)
    on_error = None
    if args.get("on"):
        try:
            on = date.fromisoformat(args["on"])
        except ValueError:
            on_error = "“有效日期”格式应为 YYYY-MM-DD。"
        else:
            stmt = stmt.where(overlaps(Pairing.valid_from, Pairing.valid_to, on, on))
    columns = {
        "from": (Pairing.valid_from, Pairing.id),
        "west": (west.code, west.full_name, Pairing.id),
        "east": (east.code, east.full_name, Pairing.id),
        "level": (Pairing.level, Pairing.id),
    }
    return stmt, columns, on_error


def programmes() -> list:
    return db.session.scalars(sa.select(Programme).order_by(Programme.name)).all()
