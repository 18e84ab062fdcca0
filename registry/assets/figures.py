"""The assets module's figures: the quarterly report's 资产管护 section (assets formed this year by class, value and
owner level; assets by state; checks overdue), as plain frozen data, each as of the report's cut-off.

Arguments as in ``registry.projects.figures``: county ids, ``pairings`` (a SELECT of pairing ids, or None for
all), and the period.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from registry.assets.models import Asset, AssetClass, AssetState, AssetStateChange, OwnerLevel
from registry.assets.services import last_checks, overdue_clause
from registry.kernel.database import among
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA, Period


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


def day_end(day: date) -> datetime:
    """The instant ``day`` ends in China, where the offices register: what was registered by then is "by ``day``"."""
    return datetime.combine(day + timedelta(days=1), time(), CHINA)


def state_on(day: date):
    """SQL over Asset: its state on ``day``, from its dated state changes (the last one dated by then; 正常 before its
    first), not the state it has today."""
    last = (
        sa.select(AssetStateChange.to_state)
        .where(AssetStateChange.asset_id == Asset.id, AssetStateChange.changed_on <= day)
        .order_by(AssetStateChange.changed_on.desc(), AssetStateChange.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.func.coalesce(last, AssetState.NORMAL.value)


def _grouped(column, enum, where) -> tuple[AssetRow, ...]:
    rows = sa.select(column.label("key"), Asset.id, Asset.original_value_fen, Asset.east_fen).where(where).subquery()
    stmt = sa.select(rows.c.key, sa.func.count(rows.c.id), sa.func.sum(rows.c.original_value_fen),
                     sa.func.sum(rows.c.east_fen)).group_by(rows.c.key)  # fmt: skip
    found = {enum(key): (int(n), int(v or 0), int(e or 0)) for key, n, v, e in db.session.execute(stmt)}
    return tuple(AssetRow(m.label, *found.get(m, (0, 0, 0))) for m in enum)


def _total(rows) -> AssetRow:
    return AssetRow("合计", sum(r.count for r in rows), sum(r.value for r in rows), sum(r.east for r in rows))


def report_section(counties, pairings, period: Period, cutoff: date) -> AssetsSection:
    """The 资产管护 section of a quarterly report: what lies in ``counties`` (and ``pairings``) as of ``cutoff``.

    Every figure is the register as it stood at the cut-off, so a report signed for a quarter never moves: assets
    registered (``created_at``) and completed by then, in the state their dated changes gave them by then, checks
    dated by then, hand-overs and disposals dated by then, 待核实 records not yet confirmed by then.
    """
    until = day_end(cutoff)
    existing = sa.and_(_where(counties, pairings), Asset.created_at < until, Asset.completed_on <= cutoff)
    formed = sa.and_(existing, Asset.completed_on >= date(period.end.year, 1, 1))
    by_class = _grouped(Asset.asset_class, AssetClass, formed)
    by_state = _grouped(state_on(cutoff), AssetState, existing)
    last = last_checks(cutoff)
    overdue = db.session.scalar(
        sa.select(sa.func.count(Asset.id))
        .select_from(Asset)
        .outerjoin(last, last.c.asset_id == Asset.id)
        .where(existing, overdue_clause(cutoff, last, as_of=True))
    )
    pending = sa.or_(Asset.needs_review.is_(True), Asset.confirmed_at >= until)
    review = db.session.scalar(sa.select(sa.func.count(Asset.id)).where(existing, pending))
    return AssetsSection(
        year=period.end.year, cutoff=cutoff, formed_by_class=by_class,
        formed_by_level=_grouped(Asset.owner_level, OwnerLevel, formed), formed_total=_total(by_class),
        by_state=by_state, register_total=_total(by_state), overdue_checks=int(overdue or 0),
        awaiting_review=int(review or 0),
    )  # fmt: skip
