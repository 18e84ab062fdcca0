"""People in work during a period, counted from monthly bitmaps instead of COUNT(DISTINCT) over the placements.

Every quarterly figure, agreement indicator and ranking asks "how many people (each once) from these counties
were in work at some time between two days" — for a province, over hundreds of thousands of placements, several
times per page. ``PlacementMonth`` rows hold, per (origin county, month, pairing, destination class), the
``Person`` ids in work during that month as roaring bitmaps (all, and 脱贫户). A period is then answered exactly:

- the months it touches are read (a few thousand small rows for the province's year) and their bitmaps unioned;
- a period that starts or ends inside a month (a running quarter cut off today) over-counts only people whose
  placements in that month all lie outside the period: those are the people of placements *starting after* the
  period's end or *ending before* its start within those edge months — few, found by the placements' own index —
  and they are taken out and counted again from their placements in the period;
- placements still in work (no end date) are built into every month up to the county's span
  (``PlacementMonthSpan``: the end of the year the rows were last built in); a period reaching past a county's
  span is counted from the placements themselves, exactly and slower, until the nightly task moves the spans on.

The rows are kept true after every write, in the same transaction, touching only the months the write spans:

- a form's create or edit (``services``) passes the placement as it was and as it is (``spanned``: county, person,
  pairing, destination, first and last month, an open end meaning up to the span) to ``patch_months`` through
  ``cells.refresh_cells``: in those months and groups only, the person's bit is set or cleared from that person's
  own placements (a person may have several), so a county of 50,000 placements is patched in milliseconds;
- an import touches the same months as ranges per county and year (``ranges_of``), rebuilt at its end by
  ``refresh_ranges`` from the placements of those months (``_rebuild``, what every path builds rows with);
- an identity merge, the demo and a bulk load call ``refresh_months`` (through ``cells.refresh_cells`` without
  months): the county's months from the first touched year to the span.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import sqlalchemy as sa
from pyroaring import BitMap
from sqlalchemy import event
from sqlalchemy.orm import Session

from registry.kernel.database import any_of
from registry.kernel.extensions import db
from registry.kernel.locks import lock_counties
from registry.kernel.periods import Period
from registry.pairings.models import Pairing
from registry.placements.models import Destination, Household, Placement, PlacementMonth, PlacementMonthSpan

CHUNK = 5000
#: First key of the PostgreSQL advisory locks serialising rebuilds of a county's placement cells and months (see
#: ``locks.lock_counties``; ``cells.refresh_cells`` takes the same).
LOCK = 0x504C
#: Placements of one county patched bit by bit in one write; more are rebuilt by ranges of months.
PATCH_LIMIT = 50


def month_of(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_start(month: int) -> date:
    return date(month // 12, month % 12 + 1, 1)


def month_end(month: int) -> date:
    following = month + 1
    return date.fromordinal(month_start(following).toordinal() - 1)


def span_for(today: date | None = None) -> int:
    """The last month rows are built to when built today: December of this year."""
    return (today or date.today()).year * 12 + 11


# ---- building ----------------------------------------------------------------------------------------------------


def refresh_months(first_year_by_county: dict[int, int], *, today: date | None = None) -> None:
    """Rebuild each county's rows from January of the given year to its span (moved on to this year's end when it
    lies before it), from its placements. Call inside the writing transaction, after the placements are flushed;
    the caller serialises rebuilds of a county (``cells.refresh_cells`` holds its lock)."""
    if not first_year_by_county:
        return
    target = span_for(today)
    spans = dict(
        db.session.execute(
            sa.select(PlacementMonthSpan.origin_county_id, PlacementMonthSpan.last_month).where(
                PlacementMonthSpan.origin_county_id.in_(list(first_year_by_county))
            )
        ).all()
    )
    for county_id, year in sorted(first_year_by_county.items()):
        old = spans.get(county_id)
        first = year * 12
        if old is None:  # never built: from the county's first placement on
            earliest = db.session.scalar(
                sa.select(sa.func.min(Placement.start_date)).where(Placement.origin_county_id == county_id)
            )
            first = min(first, month_of(earliest)) if earliest is not None else first
        elif old < target:
            first = min(first, old + 1)  # the months between the old span and the new one are new
        last = max(target, old or 0)
        _rebuild(county_id, first, last)
        if old is None:
            db.session.add(PlacementMonthSpan(origin_county_id=county_id, last_month=last))
        elif old != last:
            db.session.execute(
                sa.update(PlacementMonthSpan)
                .where(PlacementMonthSpan.origin_county_id == county_id)
                .values(last_month=last)
            )


class Spanned(NamedTuple):
    """Where one placement (as it was, or as it is) lies in the monthly rows: its groups and months."""

    county_id: int
    person_id: int
    pairing_id: int | None
    destination: Destination
    first: int
    #: The last month it is in work; None: still in work (every month up to the county's span).
    last: int | None


def spanned(placement) -> Spanned:
    """The months and groups of ``placement`` (a Placement, or a dict of its columns' values) as it now is: take
    it before and after a change."""
    get = placement.get if isinstance(placement, dict) else placement.__getattribute__
    end = get("end_date")
    return Spanned(get("origin_county_id"), get("person_id"), get("pairing_id"), Destination(get("destination_class")),
                   month_of(get("start_date")), None if end is None else month_of(end))  # fmt: skip


def _spans(county_ids) -> dict[int, int]:
    return dict(
        db.session.execute(
            sa.select(PlacementMonthSpan.origin_county_id, PlacementMonthSpan.last_month).where(
                PlacementMonthSpan.origin_county_id.in_(list(county_ids))
            )
        ).all()
    )


def patch_months(states: Iterable[Spanned], *, today: date | None = None) -> None:
    """Bring the rows up to date after a write of a few placements, given each as it was and as it is (a new one:
    as it is; a deleted one: as it was). Only the months and groups those states span are read and written, and
    only the bits of their people change: each such person's membership of a month row is recomputed from that
    person's placements (another placement of theirs may still cover the month). A county never built, or whose
    span is behind this year, is built as ``refresh_months`` does; many placements of one county are rebuilt by
    ranges of months. Call inside the writing transaction, after the placements are flushed."""
    by_county: dict[int, list[Spanned]] = defaultdict(list)
    for state in states:
        by_county[state.county_id].append(state)
    if not by_county:
        return
    lock_counties(LOCK, by_county)
    target = span_for(today)
    spans = _spans(by_county)
    for county_id, county_states in sorted(by_county.items()):
        span = spans.get(county_id)
        if span is None or span < target:
            refresh_months({county_id: min(s.first for s in county_states) // 12}, today=today)
        elif len(county_states) > PATCH_LIMIT:
            for first, last in _merged((s.first, span if s.last is None else s.last) for s in county_states):
                _rebuild(county_id, first, min(last, span))
        else:
            _patch(county_id, county_states, span)


def _patch(county_id: int, states: list[Spanned], span: int) -> None:
    """Set or clear the bits of these states' people in the rows of the months and groups the states span."""
    cells: set[tuple[int, int | None, Destination]] = set()  # (month, pairing, destination)
    for state in states:
        for month in range(state.first, min(span, span if state.last is None else state.last) + 1):
            cells.add((month, state.pairing_id, state.destination))
    if not cells:
        return
    people = BitMap(s.person_id for s in states)
    low, high = min(c[0] for c in cells), max(c[0] for c in cells)
    # Where those people are in work, from all their placements in the county that reach these months.
    present: dict[tuple, BitMap] = defaultdict(BitMap)
    lifted_present: dict[tuple, BitMap] = defaultdict(BitMap)
    for pairing_id, destination, household, begin, finish, person_id in db.session.execute(
        sa.select(Placement.pairing_id, Placement.destination_class, Placement.household, Placement.start_date,
                  Placement.end_date, Placement.person_id)
        .where(Placement.person_id.in_(list(people)), Placement.origin_county_id == county_id,
               Placement.start_date <= month_end(high),
               sa.or_(Placement.end_date.is_(None), Placement.end_date >= month_start(low)))
    ):  # fmt: skip
        top = span if finish is None else min(span, month_of(finish))
        for month in range(max(low, month_of(begin)), min(high, top) + 1):
            key = (month, pairing_id, Destination(destination))
            if key in cells:
                present[key].add(person_id)
                if household == Household.LIFTED:
                    lifted_present[key].add(person_id)
    pairings = {c[1] for c in cells}
    known = [p for p in pairings if p is not None]
    pairing_filter = [PlacementMonth.pairing_id.in_(known)] if known else []
    if None in pairings:
        pairing_filter.append(PlacementMonth.pairing_id.is_(None))
    existing = {
        (month, pairing_id, Destination(destination)): (row_id, stored_people, stored_lifted)
        for row_id, month, pairing_id, destination, stored_people, stored_lifted in db.session.execute(
            sa.select(PlacementMonth.id, PlacementMonth.month, PlacementMonth.pairing_id,
                      PlacementMonth.destination_class, PlacementMonth.people, PlacementMonth.lifted)
            .where(PlacementMonth.origin_county_id == county_id, PlacementMonth.month.between(low, high),
                   PlacementMonth.destination_class.in_(sorted({c[2] for c in cells})), sa.or_(*pairing_filter))
        )
    }  # fmt: skip
    inserts, updates, deletes = [], [], []
    for key in sorted(cells, key=lambda c: (c[0], c[1] or 0, c[2].value)):
        row = existing.get(key)
        old_people = BitMap.deserialize(row[1]) if row else BitMap()
        old_lifted = BitMap.deserialize(row[2]) if row else BitMap()
        new_people = (old_people - people) | present.get(key, BitMap())
        new_lifted = (old_lifted - people) | lifted_present.get(key, BitMap())
        if row is not None and new_people == old_people and new_lifted == old_lifted:
            continue
        if not new_people:  # a rebuild makes no empty rows
            if row is not None:
                deletes.append(row[0])
            continue
        for bitmap in (new_people, new_lifted):  # stored as a rebuild stores them
            bitmap.run_optimize()
            bitmap.shrink_to_fit()
        values = {"people": new_people.serialize(), "lifted": new_lifted.serialize()}
        if row is None:
            inserts.append({"origin_county_id": county_id, "month": key[0], "pairing_id": key[1],
                            "destination_class": key[2], **values})  # fmt: skip
        else:
            updates.append({"row_id": row[0], **values})
    table = PlacementMonth.__table__
    if deletes:
        db.session.execute(sa.delete(table).where(table.c.id.in_(deletes)))
    if updates:
        db.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(people=sa.bindparam("people"), lifted=sa.bindparam("lifted")),
            updates,
        )
    if inserts:
        db.session.execute(sa.insert(PlacementMonth), inserts)


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Month ranges joined where they overlap or touch."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first, last) for first, last in merged]


def ranges_of(states: Iterable[Spanned], today: date | None = None) -> set[tuple[int, int, int]]:
    """The (county, first month, last month) ranges these states span, cut at each year's end (so that an
    import's many rows make at most a few dozen ranges per county and year); an open end runs to this year's
    December (``refresh_ranges`` carries it on to a span beyond)."""
    target = span_for(today)
    ranges = set()
    for state in states:
        last = target if state.last is None else min(state.last, target)
        for year in range(state.first // 12, last // 12 + 1):
            ranges.add((state.county_id, max(state.first, year * 12), min(last, year * 12 + 11)))
    return ranges


def refresh_ranges(ranges: Iterable[tuple[int, int, int]], *, today: date | None = None) -> None:
    """Rebuild the rows of these (county, first month, last month) ranges from the placements (an import's, at
    its end: ``ranges_of`` the rows as they were and as they are). A county never built, or whose span is behind
    this year, is built as ``refresh_months`` does."""
    by_county: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for county_id, first, last in ranges:
        by_county[county_id].append((first, last))
    if not by_county:
        return
    lock_counties(LOCK, by_county)
    target = span_for(today)
    spans = _spans(by_county)
    for county_id, county_ranges in sorted(by_county.items()):
        span = spans.get(county_id)
        if span is None or span < target:
            refresh_months({county_id: min(first for first, _ in county_ranges) // 12}, today=today)
            continue
        for first, last in _merged(county_ranges):
            _rebuild(county_id, first, span if last >= target else last)


#: Ranges rebuilt per transaction at the end of a chunked import (``transfer.Batch.finish``): a county's year holds
#: up to 78 ranges (its first and last months), merged into one rebuild.
refresh_ranges.per_transaction = 200


def _rebuild(county_id: int, first: int, last: int) -> None:
    db.session.execute(
        sa.delete(PlacementMonth).where(
            PlacementMonth.origin_county_id == county_id, PlacementMonth.month.between(first, last)
        )
    )
    start, end = month_start(first), month_end(last)
    rows = db.session.execute(
        sa.select(Placement.pairing_id, Placement.destination_class, Placement.household, Placement.start_date,
                  Placement.end_date, Placement.person_id)
        .where(Placement.origin_county_id == county_id, Placement.start_date <= end,
               sa.or_(Placement.end_date.is_(None), Placement.end_date >= start))
    )  # fmt: skip
    people: dict[tuple, list[int]] = defaultdict(list)
    lifted: dict[tuple, list[int]] = defaultdict(list)
    lifted_value = Household.LIFTED
    for pairing_id, destination, household, begin, finish, person_id in rows:
        low = max(first, begin.year * 12 + begin.month - 1)
        high = last if finish is None else min(last, finish.year * 12 + finish.month - 1)
        is_lifted = household == lifted_value
        for month in range(low, high + 1):
            key = (month, pairing_id, destination)
            people[key].append(person_id)
            if is_lifted:
                lifted[key].append(person_id)
    cells = [
        {"origin_county_id": county_id, "month": key[0], "pairing_id": key[1], "destination_class": key[2],
         "people": BitMap(ids).serialize(), "lifted": BitMap(lifted.get(key, ())).serialize()}
        for key, ids in people.items()
    ]  # fmt: skip
    for offset in range(0, len(cells), CHUNK):
        db.session.execute(sa.insert(PlacementMonth), cells[offset : offset + CHUNK])


def rebuild_all(today: date | None = None) -> int:
    """Build every county's rows from scratch (after a bulk load that bypassed the services, or a migration)."""
    db.session.flush()
    db.session.execute(sa.delete(PlacementMonth))
    db.session.execute(sa.delete(PlacementMonthSpan))
    counties = list(db.session.scalars(sa.select(Placement.origin_county_id).distinct()))
    refresh_months({c: span_for(today) // 12 for c in counties}, today=today)
    return len(counties)


def extend_spans(today: date | None = None) -> int:
    """Move every county's span on to the end of this year (the nightly task; a no-op on most nights)."""
    target = span_for(today)
    behind = list(
        db.session.scalars(sa.select(PlacementMonthSpan.origin_county_id).where(PlacementMonthSpan.last_month < target))
    )
    missing = list(
        db.session.scalars(
            sa.select(Placement.origin_county_id)
            .distinct()
            .where(~Placement.origin_county_id.in_(sa.select(PlacementMonthSpan.origin_county_id)))
        )
    )
    # From the old span on only: the months before it are unchanged.
    refresh_months(
        {c: span_for(today) // 12 for c in behind} | {c: span_for(today) // 12 for c in missing}, today=today
    )
    return len(behind) + len(missing)


# ---- counting ----------------------------------------------------------------------------------------------------


@dataclass
class People:
    """People in work during one period, as bitmaps: everyone, 脱贫户, and per destination class and per county
    (each with its 脱贫户 part). ``len()`` of a bitmap is a count of distinct people."""

    all: BitMap = field(default_factory=BitMap)
    lifted: BitMap = field(default_factory=BitMap)
    by_destination: dict[Destination, tuple[BitMap, BitMap]] = field(default_factory=dict)
    by_county: dict[int, tuple[BitMap, BitMap]] = field(default_factory=dict)


def _pairing_ids(pairings, programme_id) -> list[int] | None:
    """The pairing ids to count (None: every record, those without a pairing too)."""
    if pairings is None and programme_id is None:
        return None
    stmt = sa.select(Pairing.id)
    if programme_id is not None:
        stmt = stmt.where(Pairing.programme_id == programme_id)
    if pairings is not None:
        stmt = stmt.where(Pairing.id.in_(pairings if isinstance(pairings, sa.Select) else list(pairings)))
    return list(db.session.scalars(stmt))


#: Where ``people_in_work`` keeps its answers until the session next writes (``session.info``).
_MEMO = "registry.people_in_work"


@event.listens_for(Session, "do_orm_execute")
def _forget_on_write(execute_state) -> None:
    if not execute_state.is_select:
        execute_state.session.info.pop(_MEMO, None)


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget(session, *args) -> None:
    session.info.pop(_MEMO, None)


def people_in_work(counties, period: Period, *, pairings=None, programme_id=None) -> People:
    """The people from ``counties`` (ids, or a SELECT of them) in work at some time during ``period``, through a
    placement of one of ``pairings`` (a SELECT or list of ids; None: every record) of ``programme_id`` (None: any).

    A dashboard asks the same question several times (the year to date for 就业人数, 其中脱贫, by destination and by
    county): the answer is kept in the session until it next writes, flushes, commits or rolls back."""
    counties = list(db.session.scalars(counties)) if isinstance(counties, sa.Select) else list(counties)
    wanted = _pairing_ids(pairings, programme_id)
    memo = db.session.info.setdefault(_MEMO, {})
    key = (tuple(sorted(counties)), period.start, period.end, None if wanted is None else tuple(sorted(wanted)))
    if key not in memo:
        memo[key] = _count(counties, wanted, period)
    return memo[key]


def _count(counties, wanted, period: Period) -> People:
    result = People()
    if not counties or (wanted is not None and not wanted) or period.end < period.start:
        return result
    first, last = month_of(period.start), month_of(period.end)
    spans = dict(
        db.session.execute(
            sa.select(PlacementMonthSpan.origin_county_id, PlacementMonthSpan.last_month).where(
                PlacementMonthSpan.origin_county_id.in_(counties)
            )
        ).all()
    )
    built = [c for c in counties if spans.get(c, -1) >= last]
    unbuilt = [c for c in counties if spans.get(c, -1) < last]
    if unbuilt:
        # Most counties without rows have no placements at all (a province's list holds every county): only those
        # with placements are counted from them, or SQLite plans the IN over a hundred ids as a scan by date.
        unbuilt = list(
            db.session.scalars(
                sa.select(Placement.origin_county_id).where(Placement.origin_county_id.in_(unbuilt)).distinct()
            )
        )
    if built:
        _from_months(result, built, wanted, first, last, period)
    if unbuilt:
        _from_placements(result, unbuilt, wanted, period)
    return result


def _filters(counties, wanted):
    return [
        Placement.origin_county_id.in_(counties),
        sa.true() if wanted is None else Placement.pairing_id.in_(wanted),
    ]


def _add(result: People, person_id: int, county_id: int, destination: Destination, is_lifted: bool) -> None:
    groups = [(result.all, result.lifted)]
    groups.append(result.by_destination.setdefault(destination, (BitMap(), BitMap())))
    groups.append(result.by_county.setdefault(county_id, (BitMap(), BitMap())))
    for people, lifted in groups:
        people.add(person_id)
        if is_lifted:
            lifted.add(person_id)


def _from_placements(result: People, counties, wanted, period: Period) -> None:
    """Exact and slower: the placements themselves (counties whose rows do not reach the period's end)."""
    rows = db.session.execute(
        sa.select(Placement.person_id, Placement.origin_county_id, Placement.destination_class, Placement.household)
        .where(*_filters(counties, wanted), Placement.start_date <= period.end,
               sa.or_(Placement.end_date.is_(None), Placement.end_date >= period.start))
    )  # fmt: skip
    for person_id, county_id, destination, household in rows:
        _add(result, person_id, county_id, Destination(destination), household == Household.LIFTED)


def _binary_rows(stmt) -> list:
    """The rows of a SELECT of plain columns and bitmaps, in the session's transaction. PostgreSQL sends bytea as
    hex text unless the driver asks for binary results: the province's year of months is ~10 MB of bitmaps, read in
    550-770 ms as text against 145 ms binary (scale_pg, 1,440 rows, psycopg). Enum columns come back as their
    values."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return [tuple(getattr(v, "value", v) for v in row) for row in connection.execute(stmt)]
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    with connection.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        return cursor.fetchall()


def _from_months(result: People, counties, wanted, first: int, last: int, period: Period) -> None:
    where = [PlacementMonth.origin_county_id.in_(counties), PlacementMonth.month.between(first, last)]
    if wanted is not None:
        where.append(PlacementMonth.pairing_id.in_(wanted))
    maps: dict[tuple[int, Destination], tuple[list, list]] = defaultdict(lambda: ([], []))
    for county_id, destination, people, lifted in _binary_rows(
        sa.select(PlacementMonth.origin_county_id, PlacementMonth.destination_class, PlacementMonth.people,
                  PlacementMonth.lifted).where(*where)
    ):  # fmt: skip
        pair = maps[(county_id, Destination(destination))]
        pair[0].append(BitMap.deserialize(people))
        pair[1].append(BitMap.deserialize(lifted))
    # Edge months: people whose placements there all lie outside the period are taken out, then counted again
    # from their placements within the period.
    suspects = _edge_people(counties, wanted, first, last, period)
    exact: list = []
    if suspects:
        exact = _placements_of(suspects, counties, wanted, period)
    by_destination: dict[Destination, tuple[list, list]] = defaultdict(lambda: ([], []))
    by_county: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for (county_id, destination), (people, lifted) in maps.items():
        people_map, lifted_map = BitMap.union(*people), BitMap.union(*lifted)
        if suspects:
            people_map -= suspects
            lifted_map -= suspects
        by_destination[destination][0].append(people_map)
        by_destination[destination][1].append(lifted_map)
        by_county[county_id][0].append(people_map)
        by_county[county_id][1].append(lifted_map)
    for group, into in ((by_destination, result.by_destination), (by_county, result.by_county)):
        for key, (people, lifted) in group.items():
            old = into.get(key)
            merged = (BitMap.union(*people), BitMap.union(*lifted))
            into[key] = merged if old is None else (old[0] | merged[0], old[1] | merged[1])
    for people, lifted in list(by_county.values()):
        result.all |= BitMap.union(*people)
        result.lifted |= BitMap.union(*lifted)
    for person_id, county_id, destination, household in exact:
        _add(result, person_id, county_id, Destination(destination), household == Household.LIFTED)


def _edge_people(counties, wanted, first: int, last: int, period: Period) -> BitMap:
    """People with a placement in the first or last month that lies outside the period (starting after its end,
    or ending before its start): the month rows may count them although the period does not."""
    conditions = []
    if period.end < month_end(last):
        conditions.append(sa.and_(Placement.start_date > period.end, Placement.start_date <= month_end(last)))
    if period.start > month_start(first):
        conditions.append(sa.and_(Placement.end_date < period.start, Placement.end_date >= month_start(first)))
    if not conditions:
        return BitMap()
    return BitMap(
        db.session.scalars(
            sa.select(Placement.person_id).where(*_filters(counties, wanted), sa.or_(*conditions)).distinct()
        )
    )


def _placements_of(people: Iterable[int], counties, wanted, period: Period) -> list:
    ids = list(people)
    dialect = db.session.get_bind().dialect.name
    found = []
    for offset in range(0, len(ids), CHUNK):
        found.extend(
            db.session.execute(
                sa.select(Placement.person_id, Placement.origin_county_id, Placement.destination_class,
                          Placement.household)
                .where(any_of(Placement.person_id, ids[offset : offset + CHUNK], dialect),
                       *_filters(counties, wanted), Placement.start_date <= period.end,
                       sa.or_(Placement.end_date.is_(None), Placement.end_date >= period.start))
            ).all()
        )  # fmt: skip
    return found
