"""Reading projects: the list's filters, and the choices its forms offer (a view only calls these)."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.web import is_id, is_year, like_pattern
from registry.pairings.models import Pairing, Programme
from registry.permissions import pairing_filter, scope_filter
from registry.projects.models import FundSource, Project, ProjectCategory, ProjectStatus


def filtered_projects(args: dict, user) -> sa.Select:
    """The project SELECT for the list and its exports: scope first, then the user's filters (unreadable values
    filter nothing)."""
    stmt = sa.select(Project).where(scope_filter(user, Project))
    if args.get("q"):
        pattern = like_pattern(args["q"])
        stmt = stmt.where(
            sa.or_(Project.code.like(pattern), Project.name.like(pattern), Project.implementing_unit.like(pattern))
        )
    if is_id(args.get("county")):
        stmt = stmt.where(Project.county_id == int(args["county"]))
    if is_id(args.get("prefecture")):
        stmt = stmt.where(
            Project.county_id.in_(sa.select(Unit.id).where(Unit.prefecture_id == int(args["prefecture"])))
        )
    if is_id(args.get("partner")):
        stmt = stmt.where(
            Project.pairing_id.in_(sa.select(Pairing.id).where(Pairing.east_unit_id == int(args["partner"])))
        )
    if is_id(args.get("programme")):
        stmt = stmt.where(Project.programme_id == int(args["programme"]))
    if is_year(args.get("year")):
        stmt = stmt.where(Project.year == int(args["year"]))
    if args.get("status") in ProjectStatus._value2member_map_:
        stmt = stmt.where(Project.status == args["status"])
    if args.get("category") in ProjectCategory._value2member_map_:
        stmt = stmt.where(Project.category == args["category"])
    if args.get("source") in FundSource._value2member_map_:
        stmt = stmt.where(Project.fund_sources.op("&")(FundSource(args["source"]).bit) != 0)
    return stmt


def programmes() -> list:
    return db.session.scalars(sa.select(Programme).order_by(Programme.name)).all()


def places_in(county_ids) -> list:
    """Townships and villages of these counties, for a project's location."""
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.county_id.in_(list(county_ids)), Unit.kind.in_((UnitKind.TOWNSHIP, UnitKind.VILLAGE)))
        .order_by(Unit.full_name)
    )
    return db.session.scalars(stmt).all()


def attachable_pairings(user) -> list:
    """County- and prefecture-level pairings ``user`` sees: what a project may be attached to."""
    stmt = (
        sa.select(Pairing)
        .options(
            joinedload(Pairing.east_unit).joinedload(Unit.parent),
            joinedload(Pairing.west_unit),
            joinedload(Pairing.programme),
        )
        .join(Unit, Unit.id == Pairing.west_unit_id)
        .where(pairing_filter(user), Unit.kind.in_((UnitKind.COUNTY, UnitKind.PREFECTURE)))
        .order_by(Unit.code, Pairing.valid_from)
    )
    return db.session.scalars(stmt).all()


def county_year_projects(county_id: int, year: int, user) -> list[Project]:
    """A county's projects of one year that ``user`` sees, with their East partner, in code order."""
    stmt = (
        sa.select(Project)
        .options(joinedload(Project.pairing).joinedload(Pairing.east_unit))
        .where(Project.county_id == county_id, Project.year == year, scope_filter(user, Project))
        .order_by(Project.code)
    )
    return db.session.scalars(stmt).all()


def projects_of_year(county_ids, year: int, where=None) -> list[Project]:
    """The projects of these counties and year (``where``, e.g. a scope clause, narrows them), their places loaded,
    in code order: what documents listing a county's projects one by one start from."""
    stmt = (
        sa.select(Project)
        .options(joinedload(Project.county), joinedload(Project.township), joinedload(Project.village))
        .where(Project.county_id.in_(list(county_ids)), Project.year == year)
        .order_by(Project.code)
    )
    if where is not None:
        stmt = stmt.where(where)
    return list(db.session.scalars(stmt))
