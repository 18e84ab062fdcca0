"""Reading agreements, targets, indicators and indicator entries for their pages (the views only call these)."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.agreements.models import Agreement, Indicator, IndicatorEntry, Target
from registry.counties.models import SICHUAN_CODE, Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.pairings.models import Pairing
from registry.permissions import programme_filter, scope_filter, unit_filter


def sichuan() -> Unit | None:
    return db.session.scalar(sa.select(Unit).where(Unit.code == SICHUAN_CODE))


def visible_agreements(user, year: int | None = None) -> sa.Select:
    """Agreements of the programmes ``user`` sees, newest year first (one year, or all)."""
    stmt = (
        sa.select(Agreement)
        .options(joinedload(Agreement.programme))
        .where(programme_filter(user, Agreement.programme_id))
        .order_by(Agreement.year.desc(), Agreement.id)
    )
    return stmt if year is None else stmt.where(Agreement.year == year)


def allocation_counts(agreement_ids) -> dict[int, int]:
    """{agreement id: number of units with targets}."""
    rows = db.session.execute(
        sa.select(Target.agreement_id, sa.func.count(sa.distinct(Target.unit_id)))
        .where(Target.agreement_id.in_(list(agreement_ids)))
        .group_by(Target.agreement_id)
    )
    return dict(rows.all())


def allocation_units(unit_ids, province: Unit, user) -> list[Unit]:
    """The units (other than the province) with targets, within what ``user`` sees, in code order."""
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.id.in_(list(unit_ids)), Unit.id != province.id, unit_filter(user))
        .order_by(Unit.code)
    )
    return db.session.scalars(stmt).all()


def target_units() -> list[Unit]:
    """The units targets are set for: Sichuan's counties and the province."""
    stmt = (
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.side == Side.WEST, Unit.kind.in_((UnitKind.COUNTY, UnitKind.PROVINCE)))
        .order_by(Unit.code)
    )
    return db.session.scalars(stmt).all()


def indicators() -> list[Indicator]:
    return db.session.scalars(sa.select(Indicator).order_by(Indicator.sort_order, Indicator.id)).all()


def top_indicators() -> list[Indicator]:
    """Indicators without a parent (what another indicator may be a part of)."""
    stmt = sa.select(Indicator).where(Indicator.parent_id.is_(None)).order_by(Indicator.sort_order)
    return db.session.scalars(stmt).all()


def visible_entries(user) -> sa.Select:
    """Indicator entries ``user`` sees, newest first."""
    return (
        sa.select(IndicatorEntry)
        .options(
            joinedload(IndicatorEntry.indicator),
            joinedload(IndicatorEntry.county),
            joinedload(IndicatorEntry.pairing).joinedload(Pairing.east_unit),
        )
        .where(scope_filter(user, IndicatorEntry))
        .order_by(IndicatorEntry.occurred_on.desc(), IndicatorEntry.id.desc())
    )
