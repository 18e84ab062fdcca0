"""People ids and the placement cells: exact counts of people for the placement list without COUNT(DISTINCT).

A person counts once however many placements they have. Counting that with COUNT(DISTINCT id_fingerprint)
over a million placements takes seconds; instead every placement carries the integer id of its ``Person``,
and ``PlacementCell`` keeps, per group of placements the list can filter on (origin county, pairing, household
type, destination class, start year, end year), the number of placements and the set of their people as a
roaring bitmap. The header of a filtered list is then the sum of the matching cells' counts and the size of
the union of their bitmaps — exact, and a few thousand small rows to read.

Every write of a placement goes through ``person_id_for`` / ``person_ids_for`` and ends with ``refresh_cells``
for the (origin county, start year) slices it touched, in the same transaction.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from pyroaring import BitMap
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from registry.kernel.database import any_of
from registry.kernel.extensions import db
from registry.kernel.locks import lock_counties
from registry.placements.models import (
    Destination,
    Household,
    Person,
    Placement,
    PlacementCell,
    PlacementMonth,
    PlacementMonthSpan,
)
from registry.placements.months import LOCK, Spanned, patch_months, refresh_months

CHUNK = 5000
#: First key of the PostgreSQL advisory locks serialising rebuilds of placement cells (see lock_counties); the
#: monthly rows' patches take the same.
CELLS_LOCK = LOCK


def person_ids_for(fingerprints: Iterable[str]) -> dict[str, int]:
    """{fingerprint: person id} for these fingerprints, adding the people not yet known."""
    wanted = sorted(set(fingerprints))
    found: dict[str, int] = {}
    # Core statements on the table: the ORM's bulk insert and its result loading took longer than the rest of
    # this function (it runs once per 2,000 rows of an import).
    people = Person.__table__
    connection = db.session.connection()
    dialect = connection.dialect.name
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        found.update(
            connection.execute(
                sa.select(people.c.fingerprint, people.c.id).where(any_of(people.c.fingerprint, chunk, dialect))
            ).all()
        )
    missing = [f for f in wanted if f not in found]
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        # ON CONFLICT DO NOTHING: a concurrent writer may add the same person between our read and this insert;
        # the ids are then read back.
        if dialect == "postgresql":
            # The fingerprints as one array parameter, and the new ids returned by the same statement.
            fingerprints = sa.select(sa.func.unnest(sa.bindparam("fingerprints", chunk, type_=ARRAY(sa.String))))
            insert = pg_insert(people).from_select(["fingerprint"], fingerprints).on_conflict_do_nothing()
            found.update(connection.execute(insert.returning(people.c.fingerprint, people.c.id)).all())
        else:
            # SQLite's driver returns nothing from an executemany.
            connection.execute(sqlite_insert(people).on_conflict_do_nothing(), [{"fingerprint": f} for f in chunk])
        rest = [f for f in chunk if f not in found]
        if rest:
            found.update(
                connection.execute(
                    sa.select(people.c.fingerprint, people.c.id).where(any_of(people.c.fingerprint, rest, dialect))
                ).all()
            )
    return found


def person_id_for(fingerprint: str) -> int:
    """The id of the person with this identity fingerprint, added if new."""
    return person_ids_for([fingerprint])[fingerprint]


def slice_of(placement) -> tuple[int, int]:
    """The (origin county, start year) slice whose cells hold this placement."""
    return placement.origin_county_id, placement.start_date.year


def refresh_cells(slices: Iterable[tuple[int, int]], months: Iterable[Spanned] | None = None) -> None:
    """Rebuild the cells of these (origin county id, start year) slices from their placements, and the monthly
    people rows: with ``months`` (the written placements as they were and as they are, ``months.spanned``) only
    the months and groups those span are patched (``months.patch_months``); without, every month of the touched
    counties from the first touched year to the span is rebuilt (an identity merge, the demo, a bulk load).

    Every cell lies in exactly one slice, so rebuilding whole slices (delete, then insert what the placements
    say) is always right, whatever moved where. A slice is one county's placements starting in one year.
    """
    db.session.flush()
    years_by_county: dict[int, set[int]] = defaultdict(set)
    for county_id, year in slices:
        years_by_county[county_id].add(year)
    lock_counties(CELLS_LOCK, years_by_county)
    for county_id, years in sorted(years_by_county.items()):
        db.session.execute(
            sa.delete(PlacementCell).where(
                PlacementCell.origin_county_id == county_id, PlacementCell.start_year.in_(sorted(years))
            )
        )
        rows = db.session.execute(
            sa.select(Placement.pairing_id, Placement.household, Placement.destination_class, Placement.start_date,
                      Placement.end_date, Placement.person_id)
            .where(Placement.origin_county_id == county_id,
                   Placement.start_date.between(date(min(years), 1, 1), date(max(years), 12, 31)))
        )  # fmt: skip
        groups: dict[tuple, list[int]] = defaultdict(list)
        for pairing_id, household, destination, start, end, person_id in rows:
            if start.year in years:
                groups[(pairing_id, household, destination, start.year, end.year if end else None)].append(person_id)
        cells = [
            {"origin_county_id": county_id, "pairing_id": key[0], "household": key[1], "destination_class": key[2],
             "start_year": key[3], "end_year": key[4], "placements": len(ids), "people": BitMap(ids).serialize()}
            for key, ids in groups.items()
        ]  # fmt: skip
        for start in range(0, len(cells), CHUNK):
            db.session.execute(sa.insert(PlacementCell), cells[start : start + CHUNK])
    # The monthly people rows the period figures read (under the same lock).
    if months is None:
        refresh_months({county_id: min(years) for county_id, years in years_by_county.items()})
    else:
        patch_months(months)


def refresh_cells_only(slices: Iterable[tuple[int, int]]) -> None:
    """``refresh_cells`` leaving the monthly rows alone (an import rebuilds the months it spanned by
    ``months.refresh_ranges``)."""
    refresh_cells(slices, months=())


def refresh_all_cells() -> None:
    """Rebuild every cell (after a bulk load that bypassed the services)."""
    db.session.flush()
    db.session.execute(sa.delete(PlacementCell))  # cells of counties that no longer have placements go too
    db.session.execute(sa.delete(PlacementMonth))
    db.session.execute(sa.delete(PlacementMonthSpan))
    year = sa.extract("year", Placement.start_date)
    slices = db.session.execute(sa.select(Placement.origin_county_id, year).group_by(Placement.origin_county_id, year))
    refresh_cells((county_id, int(y)) for county_id, y in slices)


@dataclass
class Header:
    """The list header: placements, people (each once), 脱贫 people, and people per destination class."""

    placements: int = 0
    people: int = 0
    lifted: int = 0
    by_destination: list[tuple[Destination, int]] = field(default_factory=list)


def header_from_cells(*where) -> Header:
    """The header of the placements the cells selected by ``where`` hold: counts summed, bitmaps unioned."""
    rows = db.session.execute(
        sa.select(PlacementCell.household, PlacementCell.destination_class, PlacementCell.placements,
                  PlacementCell.people).where(*where)
    )  # fmt: skip
    count = 0
    by_destination: dict[Destination, list[BitMap]] = defaultdict(list)
    lifted: list[BitMap] = []
    for household, destination, placements, people in rows:
        count += placements
        bitmap = BitMap.deserialize(people)
        by_destination[destination].append(bitmap)
        if household is Household.LIFTED:
            lifted.append(bitmap)
    unions = {d: BitMap.union(*maps) for d, maps in by_destination.items()}
    return Header(
        placements=count,
        people=len(BitMap.union(*unions.values())) if unions else 0,
        lifted=len(BitMap.union(*lifted)) if lifted else 0,
        by_destination=[(d, len(unions[d])) for d in Destination if d in unions],
    )


def header_from_placements(stmt) -> Header:
    """The same header counted over the placements of ``stmt`` (a filtered SELECT of Placement) in SQL."""
    people = sa.func.count(sa.distinct(Placement.person_id))
    lifted = sa.func.count(sa.distinct(sa.case((Placement.household == Household.LIFTED, Placement.person_id))))
    count, persons, lifted_persons = db.session.execute(
        stmt.with_only_columns(sa.func.count(Placement.id), people, lifted).order_by(None)
    ).one()
    by_destination = dict(
        db.session.execute(
            stmt.with_only_columns(Placement.destination_class, people)
            .group_by(Placement.destination_class)
            .order_by(None)
        ).all()
    )
    return Header(
        placements=count,
        people=persons,
        lifted=lifted_persons,
        by_destination=[(d, by_destination[d]) for d in Destination if d in by_destination],
    )
