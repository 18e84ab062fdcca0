"""Reading postings: the list's filters (shared by the list and its export), who is in post, unit choices."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry import search
from registry.counties.models import Side, Unit
from registry.exchanges.models import Direction, Exchange, PersonType
from registry.exchanges.services import in_post
from registry.extensions import db
from registry.periods import Period
from registry.permissions import scope_filter
from registry.web import is_id

FILTER_KEYS = ("q", "county", "direction", "person_type", "on", "unit", "linked")


def filtered(args: dict, user) -> tuple[sa.Select, str | None]:
    """Scope first, then the user's filters; returns the statement and an error for an unreadable date."""
    stmt = sa.select(Exchange).where(scope_filter(user, Exchange))
    if args.get("q"):
        # Names and both units' names, through the keyword index (registry/search.py).
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
