"""The exchanges module's figures: the 选派党政干部 / 专业技术人才 indicators (到岗人数) of both directions, each
counted against its own targets, and the report's postings.

Arguments as in ``registry.projects.figures``: county ids (receiving or sending in Sichuan), a period and
``pairings``.
"""

import sqlalchemy as sa

from registry.exchanges.models import Direction, Exchange, Field, PersonType
from registry.exchanges.services import in_post
from registry.kernel.database import among, per_unit
from registry.kernel.extensions import db
from registry.kernel.periods import Period
from registry.pairings.models import Pairing

# ---- indicator calculators ---------------------------------------------------------------------------------------


def _in_post(counties, programme_id, period, person_type, pairings=None, direction=Direction.EAST_TO_WEST, units=None):
    """Postings of this type and direction in post at any time during the period (到岗人数); {unit id: count}
    with ``units`` (as in ``projects.figures.fiscal_funds``)."""
    stmt = (
        sa.select(sa.func.count(Exchange.id))
        .join(Pairing, Pairing.id == Exchange.pairing_id)
        .where(
            Exchange.county_id.in_(counties),
            Pairing.programme_id == programme_id,
            among(Exchange.pairing_id, pairings),
            Exchange.direction == direction,
            Exchange.person_type == person_type,
            in_post(period),
        )
    )
    return db.session.scalar(stmt) if units is None else per_unit(db.session, stmt, Exchange.county_id, units)


def cadres(counties, programme_id, period, pairings=None, *, units=None):
    return _in_post(counties, programme_id, period, PersonType.CADRE, pairings, units=units)


def professionals(counties, programme_id, period, pairings=None, *, units=None):
    return _in_post(counties, programme_id, period, PersonType.PROFESSIONAL, pairings, units=units)


def cadres_to_east(counties, programme_id, period, pairings=None, *, units=None):
    """四川选派到东部党政干部 in post (West→East), against the agreement's own target for them."""
    return _in_post(counties, programme_id, period, PersonType.CADRE, pairings, Direction.WEST_TO_EAST, units)


def professionals_to_east(counties, programme_id, period, pairings=None, *, units=None):
    """四川选派到东部专业技术人才 in post (West→East)."""
    return _in_post(counties, programme_id, period, PersonType.PROFESSIONAL, pairings, Direction.WEST_TO_EAST, units)


# ---- report figures ----------------------------------------------------------------------------------------------


def _postings(counties, pairings, period: Period):
    return (
        sa.select()
        .select_from(Exchange)
        .where(Exchange.county_id.in_(counties), among(Exchange.pairing_id, pairings), in_post(period))
    )


def postings_by_kind(counties, pairings, period: Period) -> dict[tuple[Direction, PersonType, Field | None], int]:
    """(direction, person type, field) -> people in post at any time during the period."""
    stmt = _postings(counties, pairings, period).add_columns(
        Exchange.direction, Exchange.person_type, Exchange.field, sa.func.count(Exchange.id)
    )
    stmt = stmt.group_by(Exchange.direction, Exchange.person_type, Exchange.field)
    return {(Direction(d), PersonType(t), Field(f) if f else None): int(n) for d, t, f, n in db.session.execute(stmt)}


def roster(counties, pairings, period: Period) -> list[Exchange]:
    """The people in post during the period, by direction, type and arrival."""
    stmt = _postings(counties, pairings, period).add_columns(Exchange)
    return list(
        db.session.scalars(stmt.order_by(Exchange.direction, Exchange.person_type, Exchange.arrival_date)).all()
    )
