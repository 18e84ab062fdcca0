"""Reading postings: the list's filters (shared by the list and its export), who is in post, unit choices."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Side, Unit
from registry.exchanges.models import Direction, Exchange, Field, PersonType
from registry.exchanges.services import in_post
from registry.kernel import exports, search
from registry.kernel.extensions import db
from registry.kernel.periods import Period
from registry.kernel.web import is_id
from registry.permissions import scope_filter

FILTER_KEYS = ("q", "county", "direction", "person_type", "on", "unit", "linked")


def filtered(args: dict, user) -> tuple[sa.Select, str | None]:
    """Scope first, then the user's filters; returns the statement and an error for an unreadable date."""
    stmt = sa.select(Exchange).where(scope_filter(user, Exchange))
    if args.get("q"):
        # Names and both units' names, through the keyword index (registry/kernel/search.py).
        stmt = stmt.where(search.keyword(Exchange, args["q"]))
    if is_id(args.get("county")):
        stmt = stmt.where(Exchange.county_id == int(args["county"]))
    if is_id(args.get("unit")):
        # Either end: an office asks "who did 余姚市 send, and who did it receive".
        unit = int(args["unit"])
        stmt = stmt.where(sa.or_(Exchange.sending_unit_id == unit, Exchange.receiving_unit_id == unit))
    if args.get("linked") == "no":
        # Older records whose text named no unit: to be completed by the office.
        stmt = stmt.where(sa.or_(Exchange.sending_unit_id.is_(None), Exchange.receiving_unit_id.is_(None)))
    if args.get("direction") in Direction._value2member_map_:
        stmt = stmt.where(Exchange.direction == args["direction"])
    if args.get("person_type") in PersonType._value2member_map_:
        stmt = stmt.where(Exchange.person_type == args["person_type"])
    on_error = None
    if args.get("on"):
        try:
            day = date.fromisoformat(args["on"])
        except ValueError:
            on_error = "“在岗日期”格式应为 YYYY-MM-DD。"
        else:
            stmt = stmt.where(in_post(Period(day, day)))
    return stmt, on_error


def in_post_counts(stmt: sa.Select, day: date) -> list[tuple]:
    """(direction, person type, number) of the listed postings in post on ``day``."""
    rows = db.session.execute(
        stmt.where(in_post(Period(day, day)))
        .with_only_columns(Exchange.direction, Exchange.person_type, sa.func.count(Exchange.id))
        .group_by(Exchange.direction, Exchange.person_type)
        .order_by(None)
    )
    return [(Direction(d), PersonType(t), n) for d, t, n in rows]


def end_choices(counties) -> list[Unit]:
    """Units either end of a posting may be: any East unit, or a Sichuan unit in (or the prefecture above) one of
    ``counties`` (those the user writes in)."""
    ids = [c.id for c in counties]
    prefectures = {c.prefecture_id for c in counties if c.prefecture_id}
    west = sa.and_(Unit.side == Side.WEST, sa.or_(Unit.county_id.in_(ids), Unit.id.in_(prefectures)))
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.is_active.is_(True), sa.or_(Unit.side == Side.EAST, west))
        .order_by(Unit.side, Unit.full_name)
    )
    return db.session.scalars(stmt).all()


def export_batches(stmt: sa.Select, kind: str):
    """The export's rows (``transfer.HEADERS``) of ``stmt``'s postings in arrival order, in finished batches for
    ``exports.write_table``: plain column tuples, per-column converters chosen once (see the placements')."""
    text, day, raw = exports.text_cell, exports.date_cell(kind, db.engine.dialect.name), sa.String
    n, s = exports.neutralise, exports.SUSPECT  # typed text: neutralised only when its first character is suspect
    columns = (
        sa.type_coerce(Exchange.arrival_date, raw), Exchange.id, Exchange.person_name,
        sa.type_coerce(Exchange.direction, raw), sa.type_coerce(Exchange.person_type, raw),
        sa.type_coerce(Exchange.field, raw), Exchange.sending_unit_id, Exchange.sending_unit,
        Exchange.receiving_unit_id, Exchange.receiving_unit, Exchange.county_id, Exchange.position,
        sa.type_coerce(Exchange.departure_date, raw), Exchange.note,
    )  # fmt: skip
    directions = {m.value: m.label for m in Direction}
    types = {m.value: m.label for m in PersonType}
    fields = {m.value: m.label for m in Field} | {None: ""}
    # A unit as the import reads it back (transfer.unit_cell): a division's code, an organisation's full name.
    units = {
        u.id: (u.code, u.name, text(u.code or u.full_name))
        for u in db.session.execute(sa.select(Unit.id, Unit.code, Unit.name, Unit.full_name))
    }
    units[None] = ("", "", "")
    order = (sa.type_coerce(Exchange.arrival_date, raw), Exchange.id)
    selected = stmt.with_only_columns(*columns)
    for batch in exports.keyset_rows(db.session, selected, order, lambda r: (r[0], r[1])):
        rows = []
        for (arrival, eid, name, direction, person_type, field, sending_id, sending, receiving_id, receiving, county,
             position, departure, note) in batch:  # fmt: skip
            code, county_name, _ = units[county]
            rows.append((
                eid, n(name) if name and name[0] in s else name, directions[direction], types[person_type],
                fields[field], units[sending_id][2], n(sending) if sending and sending[0] in s else sending,
                units[receiving_id][2], n(receiving) if receiving and receiving[0] in s else receiving, code,
                county_name, n(position) if position and position[0] in s else position, day(arrival),
                day(departure), n(note) if note and note[0] in s else note,
            ))  # fmt: skip
        yield rows
