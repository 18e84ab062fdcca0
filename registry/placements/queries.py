"""Reading placements: the list's filters, shared by the list, its header (the cells) and the export."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry import search
from registry.counties.models import Unit
from registry.extensions import db
from registry.permissions import scope_filter
from registry.placements.cells import Header
from registry.placements.models import Destination, Household, Placement, PlacementCell
from registry.placements.services import possible_duplicates
from registry.web import is_id, is_year

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
        # Names and employers, through the keyword index (registry/search.py): the LIKE's results, without a scan.
        stmt = stmt.where(search.keyword(Placement, args["q"]))
    if is_year(args.get("year")):
        year = int(args["year"])
        stmt = stmt.where(Placement.start_date <= date(year, 12, 31),
                          sa.or_(Placement.end_date.is_(None), Placement.end_date >= date(year, 1, 1)))  # fmt: skip
    return stmt


def keyword_header(stmt: sa.Select) -> Header:
    """The list header of a keyword search (the cells hold no names), from one pass over its placements: each
    matching placement's person, household and destination read once and counted here (people once each)."""
    rows = db.session.execute(
        stmt.with_only_columns(Placement.person_id, Placement.household, Placement.destination_class).order_by(None)
    )
    people, lifted, by_destination, count = set(), set(), {}, 0
    for person, household, destination in rows:
        count += 1
        people.add(person)
        if household == Household.LIFTED:
            lifted.add(person)
        by_destination.setdefault(destination, set()).add(person)
    return Header(
        placements=count, people=len(people), lifted=len(lifted),
        by_destination=[(d, len(by_destination[d])) for d in Destination if d in by_destination],
    )  # fmt: skip


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
