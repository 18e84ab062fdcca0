"""The placements module's figures: the labour indicators and the report's people-in-work counts.

Arguments as in ``registry.projects.figures``: county ids, a period and ``pairings`` (a SELECT of pairing ids to
count, or None for every record). A person counts once (by identity fingerprint) however many placements.
"""

import sqlalchemy as sa

from registry.database import among
from registry.extensions import db
from registry.pairings.models import Pairing
from registry.periods import Period
from registry.placements.models import Destination, Household, Placement

# ---- indicator calculators ---------------------------------------------------------------------------------------


def _people_placed(counties, programme_id, period, pairings=None, *, lifted_only: bool) -> int:
    """People in work through a placement during the period, each counted once however many placements."""
    stmt = (
        sa.select(sa.func.count(sa.distinct(Placement.id_fingerprint)))
        .join(Pairing, Pairing.id == Placement.pairing_id)
        .where(
            Placement.origin_county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(Placement.pairing_id, pairings),
            Placement.start_date <= period.end,
            sa.or_(Placement.end_date.is_(None), Placement.end_date >= period.start),
        )
    )
    if lifted_only:
        stmt = stmt.where(Placement.household == Household.LIFTED)
    return db.session.scalar(stmt)


def labour_total(counties, programme_id, period, pairings=None) -> int:
    """帮助农村劳动力就业人数: distinct people with a placement in work during the period."""
    return _people_placed(counties, programme_id, period, pairings, lifted_only=False)


def labour_lifted(counties, programme_id, period, pairings=None) -> int:
    """其中脱贫劳动力: the same, for people of 脱贫户 households."""
    return _people_placed(counties, programme_id, period, pairings, lifted_only=True)


# ---- report figures ----------------------------------------------------------------------------------------------


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


def _lifted_people():
    return sa.case((Placement.household == Household.LIFTED, Placement.id_fingerprint))


def people_in_work(counties, pairings, period: Period) -> tuple[int, int]:
    """Distinct people in work during the period, and of them people of 脱贫户 households."""
    people, lifted_people = db.session.execute(
        _in_work(counties, pairings, period).add_columns(
            sa.func.count(sa.distinct(Placement.id_fingerprint)), sa.func.count(sa.distinct(_lifted_people()))
        )
    ).one()
    return int(people), int(lifted_people)


def people_by_destination(counties, pairings, period: Period, *, lifted_only: bool = False) -> dict[Destination, int]:
    """Destination class -> distinct people in work there during the period."""
    stmt = _in_work(counties, pairings, period).add_columns(
        Placement.destination_class, sa.func.count(sa.distinct(Placement.id_fingerprint))
    )
    if lifted_only:
        stmt = stmt.where(Placement.household == Household.LIFTED)
    return {Destination(d): int(n) for d, n in db.session.execute(stmt.group_by(Placement.destination_class))}


def people_by_county(ids, pairings, period: Period) -> dict[int, tuple[int, int]]:
    """County id -> (distinct people in work during the period, of them 脱贫户)."""
    return {
        county_id: (int(n), int(m))
        for county_id, n, m in db.session.execute(
            _in_work(ids, pairings, period)
            .add_columns(
                Placement.origin_county_id,
                sa.func.count(sa.distinct(Placement.id_fingerprint)),
                sa.func.count(sa.distinct(_lifted_people())),
            )
            .group_by(Placement.origin_county_id)
        )
    }
