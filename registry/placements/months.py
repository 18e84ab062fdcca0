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

``refresh_months`` keeps the rows true after every write: ``cells.refresh_cells`` (which every placement write,
import, identity merge and bulk load already calls with the (county, start year) slices it touched) calls it, so
the months from the first touched year to the span are rebuilt in the same transaction.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from pyroaring import BitMap
from sqlalchemy import event
from sqlalchemy.orm import Session

from registry.database import any_of
from registry.extensions import db
from registry.pairings.models import Pairing
from registry.periods import Period
from registry.placements.models import Destination, Household, Placement, PlacementMonth, PlacementMonthSpan

CHUNK = 5000


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


def _from_months(result: People, counties, wanted, first: int, last: int, period: Period) -> None:
    where = [PlacementMonth.origin_county_id.in_(counties), PlacementMonth.month.between(first, last)]
    if wanted is not None:
        where.append(PlacementMonth.pairing_id.in_(wanted))
    maps: dict[tuple[int, Destination], tuple[list, list]] = defaultdict(lambda: ([], []))
    for county_id, destination, people, lifted in db.session.execute(
        sa.select(PlacementMonth.origin_county_id, PlacementMonth.destination_class, PlacementMonth.people,
                  PlacementMonth.lifted).where(*where)
    ):  # fmt: skip
        pair = maps[(county_id, destination)]
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
