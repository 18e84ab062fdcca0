"""What each role's home page shows first (the question every office asks: which counties are behind?).

County and prefecture offices: the current report's card (narrative written or not, links to the dashboard and the
PDF), the year's 完成率 against 序时进度, and what needs doing. East liaisons: their counties' ranking. The province
office, readers and administrators: the headline figures of their scope and the ranking. Everything is plain data
built from ``agreements.ranking`` and the reports' own queries; the view only renders it.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.agreements import ranking
from registry.agreements.models import Agreement
from registry.agreements.services import agreements_for
from registry.auth.models import Role, User
from registry.closing import services as closing
from registry.closing.models import ReportState
from registry.counties.models import CATEGORY_LABELS, SICHUAN_CODE, Side, Unit, UnitKind
from registry.kernel.audit.models import AuditEvent
from registry.kernel.audit.queries import to_rows
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter, overlaps
from registry.pairings.models import Pairing, Programme
from registry.permissions import can, pairing_filter, programme_filter, scope_of, unit_filter
from registry.reports.queries import narrative_of
from registry.reports.services import latest_quarter


@dataclass(frozen=True)
class ReportCard:
    """The quarterly report a county or prefecture office works on now: the last quarter that has ended."""

    unit_id: int
    unit_name: str
    quarter: Quarter
    narrative_written: bool
    narrative_by: str = ""
    narrative_at: datetime | None = None
    #: May the user write the narrative (Sichuan office staff within scope)?
    may_narrate: bool = False
    #: Where the report stands in the quarter close (草稿 … 省已审定), its due date and whether it is overdue.
    state: ReportState = ReportState.DRAFT
    due: date | None = None
    overdue: bool = False


@dataclass(frozen=True)
class Attention:
    """Something the home page's 需要关注 card points at (not a step: those are to-dos, registry/kernel/todos.py)."""

    text: str
    #: Where to look: "ranking:<agreement id>", "county" or "" (nothing to open).
    target: str = ""


@dataclass(frozen=True)
class Home:
    kind: str  # "office" (county, prefecture), "liaison", "overview" (province, readers, administrators)
    year: int
    cutoff: date
    unit: Unit | None
    card: ReportCard | None = None
    #: The unit's own figures per agreement of the year (one-row rankings).
    paces: tuple = ()
    #: The counties' rankings per agreement of the year, within the user's scope.
    rankings: tuple = ()
    attention: tuple[Attention, ...] = field(default=())


def sichuan() -> Unit | None:
    return db.session.scalar(sa.select(Unit).where(Unit.code == SICHUAN_CODE))


def _visible_agreements(user, year: int) -> list[Agreement]:
    return ranking.year_agreements(year, programme_filter(user, Agreement.programme_id))


def build(user, today: date | None = None) -> Home:
    """The home page of ``user`` for the current year, figures up to ``today``."""
    today = today or date.today()
    year = today.year
    scope = scope_of(user)
    unit = user.scope_unit if not scope.is_all else None
    if user.role in (Role.COUNTY, Role.PREFECTURE) and unit is not None:
        return _office(user, unit, year, today)
    if user.role is Role.LIAISON:
        rankings = _rankings(user, _visible_agreements(user, year), today) or _last_rankings(user, year)
        return Home(kind="liaison", year=year, cutoff=today, unit=unit, rankings=rankings)
    headline = unit if unit is not None and unit.side is Side.WEST else sichuan()
    agreements = _visible_agreements(user, year)
    if headline is not None and headline.kind is not UnitKind.PROVINCE:
        agreements = [a for a in agreements if a.id in {x.id for x in agreements_for(headline, year)}]
    if headline is None:
        paces, rankings = (), _rankings(user, agreements, today)
    else:
        paces, rankings = _paces_and_rankings(user, headline, agreements, today)
    return Home(kind="overview", year=year, cutoff=today, unit=headline, paces=paces, rankings=rankings)


def _paces_and_rankings(user, unit: Unit, agreements, today: date) -> tuple[tuple, tuple]:
    """The unit's own figures per agreement and the user's county rankings, each agreement's from one pass over
    its records (``ranking.with_unit``); rankings with no county in the user's scope are left out."""
    pairs = [ranking.with_unit(a, unit, user, today) for a in agreements]
    return tuple(own for own, _ in pairs), tuple(r for _, r in pairs if r.rows)


def _rankings(user, agreements, today: date) -> tuple:
    """The user's county rankings of these agreements, leaving out those with no county in the user's scope."""
    return tuple(r for r in (ranking.for_user(a, user, today) for a in agreements) if r.rows)


def _last_rankings(user, year: int) -> tuple:
    """A liaison whose programme has no agreement this year (粤川 ended in 2021) sees the latest year that had one
    with their counties, as at that year's end."""
    years = db.session.scalars(
        sa.select(Agreement.year)
        .where(Agreement.year < year, programme_filter(user, Agreement.programme_id))
        .distinct()
        .order_by(Agreement.year.desc())
    )
    for earlier in years:
        rankings = _rankings(user, _visible_agreements(user, earlier), date(earlier, 12, 31))
        if rankings:
            return rankings
    return ()


def _office(user, unit: Unit, year: int, today: date) -> Home:
    quarter = latest_quarter(today)
    narrative = narrative_of(unit.id, quarter)
    state = closing.state_of(unit, quarter)
    card = ReportCard(
        unit_id=unit.id, unit_name=unit.name, quarter=quarter, narrative_written=not narrative.is_empty,
        narrative_by=narrative.updated_by, narrative_at=narrative.updated_at,
        may_narrate=can(user, "reports.narrate"), state=state, due=closing.due_date(quarter),
        overdue=closing.is_overdue(state, quarter, today),
    )  # fmt: skip
    agreements = agreements_for(unit, year)
    if unit.kind is UnitKind.PREFECTURE:
        paces, rankings = _paces_and_rankings(user, unit, agreements, today)
    else:
        paces, rankings = tuple(ranking.for_unit(a, unit, today) for a in agreements), ()
    return Home(
        kind="office", year=year, cutoff=today, unit=unit, card=card, paces=paces, rankings=rankings,
        attention=tuple(_attention(paces, rankings)),
    )  # fmt: skip


def _attention(paces, rankings) -> list[Attention]:
    """What needs attention beyond the steps (those are the to-dos of registry/kernel/todos.py, listed first on the
    page): indicators behind their pace, targets not set, counties behind."""
    found = []
    for pace in paces:
        row = pace.rows[0] if pace.rows else None
        if row is None:
            continue
        behind = [c.name for c, cell in zip(pace.columns, row.cells, strict=True) if cell.behind]
        if behind:
            text = f"{pace.title}：{len(behind)} 项指标低于序时进度 {pace.elapsed}%（见右表）"
            found.append(Attention(text, "county"))
        unset = [c.name for c, cell in zip(pace.columns, row.cells, strict=True) if cell.target is None]
        if unset:
            found.append(Attention(f"{pace.title}：{'、'.join(unset)} 尚无年度目标（由省协作办设定）"))
    for r in rankings:
        if r.behind_rows:
            found.append(Attention(f"{r.title}：{r.behind_rows} 个县有指标低于序时进度", f"ranking:{r.agreement_id}"))
    return found


@dataclass(frozen=True)
class PairingSummary:
    """The scope's current pairings by programme and level, county categories, and administrators' counts."""

    by_programme: list
    paired_counties: int
    categories: list
    my_pairings: list
    stats: dict


def pairing_summary(user, today: date) -> PairingSummary:
    current = sa.and_(pairing_filter(user), overlaps(Pairing.valid_from, Pairing.valid_to, today, today))
    by_programme = db.session.execute(
        sa.select(Programme.name, Pairing.level, sa.func.count(Pairing.id))
        .join(Pairing.programme)
        .where(current)
        .group_by(Programme.name, Pairing.level)
        .order_by(Programme.name, Pairing.level)
    ).all()
    paired_counties = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Pairing.west_unit_id))).where(current, Pairing.level == UnitKind.COUNTY)
    )
    categories = db.session.execute(
        sa.select(Unit.category, sa.func.count(Unit.id))
        .where(unit_filter(user), Unit.side == Side.WEST, Unit.kind == UnitKind.COUNTY)
        .group_by(Unit.category)
    ).all()
    my_pairings = []
    if not scope_of(user).is_all:
        my_pairings = db.session.scalars(
            sa.select(Pairing)
            .options(joinedload(Pairing.east_unit), joinedload(Pairing.west_unit), joinedload(Pairing.programme))
            .where(current, Pairing.level.in_((UnitKind.PREFECTURE, UnitKind.COUNTY)))
            .order_by(Pairing.level, Pairing.valid_from)
            .limit(50)
        ).all()
    stats = {}
    if user.role is Role.ADMIN:
        stats = {
            "users": db.session.scalar(sa.select(sa.func.count(User.id)).where(User.is_active.is_(True))),
            "units": db.session.scalar(sa.select(sa.func.count(Unit.id))),
            "pairings": db.session.scalar(sa.select(sa.func.count(Pairing.id))),
        }
    return PairingSummary(
        by_programme=by_programme,
        paired_counties=paired_counties,
        categories=[(CATEGORY_LABELS.get(c, "未分类"), n) for c, n in categories],
        my_pairings=my_pairings,
        stats=stats,
    )


def recent_changes(user) -> list:
    """The last ten audit events, for those who may read the audit log."""
    if not can(user, "audit.view"):
        return []
    return to_rows(db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(10)).all())
