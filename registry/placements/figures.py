"""The placements module's figures: the labour indicators and the report's people-in-work counts.

Arguments as in ``registry.projects.figures``: county ids, a period and ``pairings`` (a SELECT of pairing ids to
count, or None for every record). A person counts once (by person id: one per identity number) however many
placements; people in work during a period are counted from the monthly bitmaps (``registry.placements.months``).
"""

import sqlalchemy as sa
from pyroaring import BitMap

from registry.kernel.database import among
from registry.kernel.extensions import db
from registry.kernel.periods import Period
from registry.pairings.models import Pairing
from registry.placements import months
from registry.placements.models import Destination, Household, Placement

# ---- indicator calculators ---------------------------------------------------------------------------------------


def _people_placed(counties, programme_id, period, pairings=None, *, lifted_only: bool, units=None):
    """People in work through a placement of the programme during the period, each counted once however many
    placements (from the monthly bitmaps, ``registry.placements.months``). With ``units`` ({unit id: its county
    ids}): {unit id: people}, each person once per unit — the union of its counties' people, not their sum."""
    people = months.people_in_work(counties, period, pairings=pairings, programme_id=programme_id)
    if units is None:
        return len(people.lifted if lifted_only else people.all)
    index = 1 if lifted_only else 0
    empty = BitMap()
    return {
        unit: len(BitMap.union(empty, *(people.by_county[c][index] for c in ids if c in people.by_county)))
        for unit, ids in units.items()
    }


def labour_total(counties, programme_id, period, pairings=None, *, units=None):
    """帮助农村劳动力就业人数: distinct people with a placement in work during the period."""
    return _people_placed(counties, programme_id, period, pairings, lifted_only=False, units=units)


def labour_lifted(counties, programme_id, period, pairings=None, *, units=None):
    """其中脱贫劳动力: the same, for people of 脱贫户 households."""
    return _people_placed(counties, programme_id, period, pairings, lifted_only=True, units=units)


# ---- report figures ----------------------------------------------------------------------------------------------


def people_in_work(counties, pairings, period: Period) -> tuple[int, int]:
    """Distinct people in work during the period, and of them people of 脱贫户 households."""
    people = months.people_in_work(counties, period, pairings=pairings)
    return len(people.all), len(people.lifted)


def people_by_destination(counties, pairings, period: Period, *, lifted_only: bool = False) -> dict[Destination, int]:
    """Destination class -> distinct people in work there during the period."""
    people = months.people_in_work(counties, period, pairings=pairings)
    index = 1 if lifted_only else 0
    return {d: len(maps[index]) for d, maps in people.by_destination.items() if len(maps[index])}


def people_by_county(ids, pairings, period: Period) -> dict[int, tuple[int, int]]:
    """County id -> (distinct people in work during the period, of them 脱贫户)."""
    people = months.people_in_work(ids, period, pairings=pairings)
    return {county: (len(all_), len(lifted)) for county, (all_, lifted) in people.by_county.items()}


# ---- the same counted over the placements (tests compare the two) ------------------------------------------------


def _in_work(counties, pairings, period: Period):
    """Placements of people from the counties in work during the period (records without a pairing included
    unless the figures are limited to some pairings)."""
    return (
        sa.select()
        .select_from(Placement)
        .where(
            Placement.origin_county_id.in_(counties),
            among(Placement.pairing_id, pairings),
            Placement.start_date <= period.end,
            sa.or_(Placement.end_date.is_(None), Placement.end_date >= period.start),
        )
    )


def counted_in_sql(counties, pairings, period: Period, programme_id=None) -> dict:
    """{"all", "lifted", ("destination", d), ("county", c)...}: the figures above by COUNT(DISTINCT) over the
    placements, the definition the monthly bitmaps must equal."""
    stmt = _in_work(counties, pairings, period)
    if programme_id is not None:
        stmt = stmt.join(Pairing, Pairing.id == Placement.pairing_id).where(Pairing.programme_id == programme_id)
    people = sa.func.count(sa.distinct(Placement.person_id))
    lifted = sa.func.count(sa.distinct(sa.case((Placement.household == Household.LIFTED, Placement.person_id))))
    result = dict(zip(("all", "lifted"), db.session.execute(stmt.add_columns(people, lifted)).one(), strict=True))
    for d, n, m in db.session.execute(stmt.add_columns(Placement.destination_class, people, lifted)
                                      .group_by(Placement.destination_class)):  # fmt: skip
        result[("destination", Destination(d))] = (n, m)
    for c, n, m in db.session.execute(stmt.add_columns(Placement.origin_county_id, people, lifted)
                                      .group_by(Placement.origin_county_id)):  # fmt: skip
        result[("county", c)] = (n, m)
    return result
