"""Reading the directory's pages: the units list with its filters, and the units' current partners."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload

from registry.counties.models import CountyCategory, Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import overlaps
from registry.kernel.web import is_id, like_pattern
from registry.pairings.models import Pairing, Programme


def filtered_units(args: dict, scope, today: date) -> sa.Select:
    """Units within ``scope`` (the reader's WHERE clause), by side, kind, prefecture, category, keyword, and whether
    they have a partner today."""
    prefecture = aliased(Unit)
    stmt = sa.select(Unit).outerjoin(prefecture, Unit.prefecture_id == prefecture.id).where(scope)
    if args["side"] in Side._value2member_map_:
        stmt = stmt.where(Unit.side == args["side"])
    if args["kind"] in UnitKind._value2member_map_:
        stmt = stmt.where(Unit.kind == args["kind"])
    if is_id(args["prefecture"]):
        stmt = stmt.where(Unit.prefecture_id == int(args["prefecture"]))
    if args["category"] in CountyCategory._value2member_map_:
        stmt = stmt.where(Unit.category == args["category"])
    if args["q"]:
        pattern = like_pattern(args["q"])
        stmt = stmt.where(sa.or_(Unit.full_name.like(pattern), Unit.code.like(pattern)))
    current = sa.select(Pairing.id).where(
        sa.or_(Pairing.west_unit_id == Unit.id, Pairing.east_unit_id == Unit.id),
        overlaps(Pairing.valid_from, Pairing.valid_to, today, today),
    )
    if args["paired"] == "yes":
        stmt = stmt.where(current.exists())
    elif args["paired"] == "no":
        stmt = stmt.where(~current.exists())
    return stmt


def current_partners(unit_ids: list[int], today: date, scope) -> dict[int, list[Pairing]]:
    """Current pairings of the listed units, in one query (either side)."""
    if not unit_ids:
        return {}
    rows = db.session.scalars(
        sa.select(Pairing)
        .options(
            joinedload(Pairing.east_unit),
            joinedload(Pairing.west_unit),
            joinedload(Pairing.programme),
        )
        .where(
            sa.or_(Pairing.west_unit_id.in_(unit_ids), Pairing.east_unit_id.in_(unit_ids)),
            overlaps(Pairing.valid_from, Pairing.valid_to, today, today),
            scope,
        )
        .order_by(Pairing.valid_from)
    ).all()
    result: dict[int, list[Pairing]] = {}
    for pairing in rows:
        for unit_id in (pairing.west_unit_id, pairing.east_unit_id):
            if unit_id in unit_ids:
                result.setdefault(unit_id, []).append(pairing)
    return result


def pairings_of(unit_id: int, scope) -> list[Pairing]:
    """Every pairing of the unit, either side, within ``scope``, oldest first."""
    stmt = (
        sa.select(Pairing)
        .options(joinedload(Pairing.east_unit), joinedload(Pairing.west_unit), joinedload(Pairing.programme))
        .where(sa.or_(Pairing.west_unit_id == unit_id, Pairing.east_unit_id == unit_id), scope)
        .order_by(Pairing.valid_from, Pairing.id)
    )
    return db.session.scalars(stmt).all()


def children_of(unit_id: int, scope) -> list[Unit]:
    """The units directly below a unit (townships, villages, schools…), within ``scope``."""
    stmt = sa.select(Unit).where(Unit.parent_id == unit_id, scope).order_by(Unit.code, Unit.kind, Unit.name)
    return db.session.scalars(stmt).all()


def parent_candidates(scope) -> list[Unit]:
    """Counties and townships within ``scope``: where an organisation may be added."""
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.kind.in_((UnitKind.COUNTY, UnitKind.TOWNSHIP)), scope)
        .order_by(Unit.code, Unit.full_name)
    )
    return db.session.scalars(stmt).all()


def programmes_with_counts(scope) -> list[tuple]:
    """(programme, number of its pairings within ``scope``), the newest programme first."""
    stmt = (
        sa.select(Programme, sa.func.count(Pairing.id))
        .outerjoin(Pairing, sa.and_(Pairing.programme_id == Programme.id, scope))
        .group_by(Programme.id)
        .order_by(Programme.starts_on.desc().nulls_last(), Programme.name)
    )
    return db.session.execute(stmt).all()
