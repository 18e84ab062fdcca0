"""The assets module's figures: the quarterly report's 资产管护 section (assets formed this year by class, value and
owner level; assets by state; checks overdue), as plain frozen data.

Arguments as in ``registry.projects.figures``: county ids, ``pairings`` (a SELECT of pairing ids, or None for
all), and the period.
"""

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from registry.assets.models import Asset, AssetClass, AssetState, OwnerLevel
from registry.assets.services import last_checks, overdue_clause
from registry.database import among
from registry.extensions import db
from registry.periods import Period


@dataclass(frozen=True)
class AssetRow:
    label: str
    count: int
    value: int
    east: int


@dataclass(frozen=True)
class AssetsSection:
    year: int
    cutoff: date
    formed_by_class: tuple[AssetRow, ...]
    formed_by_level: tuple[AssetRow, ...]
    formed_total: AssetRow
    by_state: tuple[AssetRow, ...]
    register_total: AssetRow
    overdue_checks: int
    awaiting_review: int

    @property
    def amounts(self) -> tuple[int, ...]:
        """Every amount the section prints (for the choice of its money unit)."""
        rows = (*self.formed_by_class, *self.formed_by_level, self.formed_total, *self.by_state, self.register_total)
        return tuple(a for r in rows for a in (r.value, r.east))


def _where(counties, pairings):
    return sa.and_(Asset.county_id.in_(list(counties)), among(Asset.pairing_id, pairings))


def _grouped(column, enum, where) -> tuple[AssetRow, ...]:
    stmt = sa.select(column, sa.func.count(Asset.id), sa.func.sum(Asset.original_value_fen),
                     sa.func.sum(Asset.east_fen)).where(where).group_by(column)  # fmt: skip
    rows = {enum(key): (int(n), int(v or 0), int(e or 0)) for key, n, v, e in db.session.execute(stmt)}
    return tuple(AssetRow(m.label, *rows.get(m, (0, 0, 0))) for m in enum)


def _total(rows) -> AssetRow:
    return AssetRow("合计", sum(r.count for r in rows), sum(r.value for r in rows), sum(r.east for r in rows))


def report_section(counties, pairings, period: Period, cutoff: date) -> AssetsSection:
    """The 资产管护 section of a quarterly report: what lies in ``counties`` (and ``pairings``) as of ``cutoff``."""
    where = _where(counties, pairings)
    year_start = date(period.end.year, 1, 1)
    formed = sa.and_(where, Asset.completed_on >= year_start, Asset.completed_on <= cutoff)
    existing = sa.and_(where, Asset.completed_on <= cutoff)
    by_class = _grouped(Asset.asset_class, AssetClass, formed)
    by_state = _grouped(Asset.state, AssetState, existing)
    last = last_checks()
    overdue = db.session.scalar(
        sa.select(sa.func.count(Asset.id))
        .select_from(Asset)
        .outerjoin(last, last.c.asset_id == Asset.id)
        .where(existing, overdue_clause(cutoff, last))
    )
    review = db.session.scalar(sa.select(sa.func.count(Asset.id)).where(existing, Asset.needs_review.is_(True)))
    return AssetsSection(
        year=period.end.year, cutoff=cutoff, formed_by_class=by_class,
        formed_by_level=_grouped(Asset.owner_level, OwnerLevel, formed), formed_total=_total(by_class),
        by_state=by_state, register_total=_total(by_state), overdue_checks=int(overdue or 0),
        awaiting_review=int(review or 0),
    )  # fmt: skip
