"""Reading placements: the list's filters, shared by the list, its header (the cells) and the export."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Unit
from registry.extensions import db
from registry.permissions import scope_filter
from registry.placements.models import Destination, Household, Placement, PlacementCell
from registry.placements.services import possible_duplicates
from registry.web import is_id, is_year, like_pattern

FILTER_KEYS = ("q", "county", "prefecture", "household", "destination", "year")


def _by_columns(args: dict, table) -> list:
    """WHERE clauses of the filters Placement and PlacementCell share by column name (county, household,
    destination), so the list and its header cannot select different records."""
    where = []
    if is_id(args.get("county")):
        where.append(table.origin_county_id == int(args["county"]))
    if is_id(args.get("prefecture")):
        where.append(
            table.origin_county_id.in_(sa.select(Unit.id).where(Unit.prefecture_id == int(args["prefecture"])))
        )
    if args.get("household") in Household._value2member_map_:
        where.append(table.household == args["household"])
    if args.get("destination") in Destination._value2member_map_:
        where.append(table.destination_class == args["destination"])
    return where


def filtered(args: dict, user) -> sa.Select:
    """The placement SELECT of the list and its export: scope first, then the filters."""
    stmt = sa.select(Placement).where(scope_filter(user, Placement), *_by_columns(args, Placement))
    if args.get("q"):
        pattern = like_pattern(args["q"])
        stmt = stmt.where(sa.or_(Placement.person_name.like(pattern), Placement.employer.like(pattern)))
    if is_year(args.get("year")):
        year = int(args["year"])
        stmt = stmt.where(Placement.start_date <= date(year, 12, 31),
                          sa.or_(Placement.end_date.is_(None), Placement.end_date >= date(year, 1, 1)))  # fmt: skip
    return stmt


def cell_filter(args: dict, user) -> list:
    """The WHERE clauses on PlacementCell selecting the cells of exactly the placements ``filtered(args)`` lists
    (every filter but the keyword, which the cells cannot answer)."""
    where = [scope_filter(user, PlacementCell), *_by_columns(args, PlacementCell)]
    if is_year(args.get("year")):
        # In work at some time of the year: started by its end and not ended before its start.
        year = int(args["year"])
        where += [PlacementCell.start_year <= year,
                  sa.or_(PlacementCell.end_year.is_(None), PlacementCell.end_year >= year)]  # fmt: skip
    return where


def duplicate_groups(user, limit: int = 500) -> list[list[Placement]]:
    """Placements of people placed by two or more counties (the same identity number), grouped by person."""
    stmt = possible_duplicates(scope_filter(user, Placement)).options(joinedload(Placement.origin_county))
    groups: dict[str, list] = {}
    for row in db.session.scalars(stmt.limit(limit)):
        groups.setdefault(row.id_fingerprint, []).append(row)
    return list(groups.values())
