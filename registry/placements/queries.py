"""Reading placements: the list's filters, shared by the list, its header (the cells) and the export."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Unit
from registry.kernel import exports, idnumbers, search
from registry.kernel.extensions import db
from registry.kernel.web import is_id, is_year
from registry.permissions import scope_filter
from registry.placements.cells import Header
from registry.placements.models import Destination, Household, Placement, PlacementCell
from registry.placements.services import possible_duplicates

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
        # Names and employers, through the keyword index (kernel/search.py): the LIKE's results, without a scan.
        stmt = stmt.where(search.keyword(Placement, args["q"]))
    if is_year(args.get("year")):
        year = int(args["year"])
        stmt = stmt.where(Placement.start_date <= date(year, 12, 31),
                          sa.or_(Placement.end_date.is_(None), Placement.end_date >= date(year, 1, 1)))  # fmt: skip
    return stmt


def keyword_header(stmt: sa.Select) -> Header:
    """The list header of a keyword search (the cells hold no names), from one pass over its placements: each
    matching placement's person, household and destination read once and counted here (people once each)."""
    # Read as plain stored values through the connection, not as ORM rows with enum members: a one-character
    # keyword (王) matches ~12,000 placements of a province, and the ORM's per-row work was two thirds of the page.
    columns = (Placement.person_id, sa.type_coerce(Placement.household, sa.String()),
               sa.type_coerce(Placement.destination_class, sa.String()))  # fmt: skip
    rows = db.session.connection().execute(stmt.with_only_columns(*columns).order_by(None))
    people, lifted, by_destination, count = set(), set(), {}, 0
    for person, household, destination in rows:
        count += 1
        people.add(person)
        if household == Household.LIFTED.value:
            lifted.add(person)
        by_destination.setdefault(destination, set()).add(person)
    return Header(
        placements=count, people=len(people), lifted=len(lifted),
        by_destination=[(d, len(by_destination[d.value])) for d in Destination if d.value in by_destination],
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


def export_batches(stmt: sa.Select, kind: str, *, reveal: bool):
    """The export's rows (``transfer.HEADERS``) of ``stmt``'s placements in id order, in finished batches for
    ``exports.write_table``: plain column tuples read after the last id seen, converted by per-column functions
    chosen once (labels and counties from dicts, only typed text neutralised); numbers masked unless ``reveal``.
    The same cells as ``transfer.export_rows`` gave, at a fraction of the cost (issue 23: at driver speed)."""
    dialect = db.engine.dialect.name
    day = exports.date_cell(kind, dialect)
    raw = sa.String  # enums and dates read as stored: their labels and text come from here, not from the ORM
    columns = (
        Placement.id, Placement.person_name, Placement.id_stored if reveal else Placement.id_masked,
        sa.type_coerce(Placement.household, raw), Placement.origin_county_id, Placement.origin_township,
        sa.type_coerce(Placement.destination_class, raw), Placement.destination_province, Placement.destination_city,
        Placement.employer, Placement.industry, sa.type_coerce(Placement.organised, sa.Integer), Placement.training,
        sa.type_coerce(Placement.start_date, raw), sa.type_coerce(Placement.end_date, raw),
        Placement.monthly_wage_fen, Placement.note,
    )  # fmt: skip
    households = {h.value: h.label for h in Household}
    destinations = {d.value: d.label for d in Destination}
    counties = {u.id: (u.code, u.name) for u in db.session.execute(sa.select(Unit.id, Unit.code, Unit.name))}
    number = idnumbers.reveal if reveal else (lambda v: v)
    yes, wages = {True: "是", False: "否"}, {None: ""}  # SQLite gives 1 and 0, which are True and False here
    n, s = exports.neutralise, exports.SUSPECT  # typed text: neutralised only when its first character is suspect
    for batch in exports.keyset_rows(db.session, stmt.with_only_columns(*columns), (Placement.id,), lambda r: (r[0],)):
        rows = []
        for (pid, name, stored, household, county, town, destination, province, city, employer, industry, organised,
             training, start, end, fen, note) in batch:  # fmt: skip
            code, county_name = counties[county]
            wage = wages.get(fen)
            if wage is None:
                wage = wages[fen] = exports.plain_yuan(fen)
            rows.append((
                pid, n(name) if name and name[0] in s else name, number(stored), households[household], code,
                county_name, n(town) if town and town[0] in s else town, destinations[destination],
                n(province) if province and province[0] in s else province, n(city) if city and city[0] in s else city,
                n(employer) if employer and employer[0] in s else employer,
                n(industry) if industry and industry[0] in s else industry, yes[organised],
                n(training) if training and training[0] in s else training, day(start), day(end), wage,
                n(note) if note and note[0] in s else note,
            ))  # fmt: skip
        yield rows
