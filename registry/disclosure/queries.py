"""Reading notices: staff lists within scope, the compliance table, and the public index (published notices only)."""

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Unit
from registry.disclosure.models import MIN_WINDOW_DAYS, Complaint, Notice, NoticeItem, NoticeState, NoticeType
from registry.kernel.extensions import db
from registry.kernel.forms import has_control_characters
from registry.kernel.web import is_id, is_year, like_pattern
from registry.permissions import scope_filter
from registry.projects import queries as project_queries
from registry.projects.models import Project, ProjectStatus


def staff_notices(args: dict, user) -> sa.Select:
    """Notices ``user`` sees (their county's, prefecture's, or all), filtered by the list's arguments."""
    stmt = sa.select(Notice).options(joinedload(Notice.county)).where(scope_filter(user, Notice))
    if is_id(args.get("county")):
        stmt = stmt.where(Notice.county_id == int(args["county"]))
    if is_year(args.get("year")):
        stmt = stmt.where(Notice.year == int(args["year"]))
    if args.get("state") in NoticeState._value2member_map_:
        stmt = stmt.where(Notice.state == args["state"])
    if args.get("type") in NoticeType._value2member_map_:
        stmt = stmt.where(Notice.type == args["type"])
    if args.get("q") and not has_control_characters(args["q"]):
        stmt = stmt.where(Notice.title.like(like_pattern(args["q"][:100])))
    return stmt.order_by(Notice.year.desc(), Notice.created_at.desc(), Notice.id.desc())


def published_project_ids(county_ids, year: int) -> set[int]:
    """Projects of these counties and year that a published notice (not withdrawn) lists."""
    return set(
        db.session.scalars(
            sa.select(NoticeItem.project_id)
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .where(Notice.county_id.in_(list(county_ids)), Notice.year == year, Notice.state == NoticeState.PUBLISHED)
        )
    )


#: Project statuses that call for disclosure (a project in the pool, 储备, or given up, 终止, does not).
DUE = frozenset(ProjectStatus) - {ProjectStatus.RESERVE, ProjectStatus.TERMINATED}


@dataclass
class ComplianceRow:
    project: Project
    notices: list = field(default_factory=list)

    @property
    def due(self) -> bool:
        return self.project.status in DUE

    @property
    def disclosed(self) -> bool:
        return any(n.state is NoticeState.PUBLISHED for n in self.notices)


@dataclass
class Compliance:
    county: Unit
    year: int
    today: date
    rows: list
    running: list
    short: list
    open_complaints: list

    @property
    def due(self) -> int:
        return sum(1 for r in self.rows if r.due)

    @property
    def disclosed(self) -> int:
        return sum(1 for r in self.rows if r.due and r.disclosed)

    @property
    def undisclosed(self) -> int:
        return self.due - self.disclosed


def posted_days(notice: Notice) -> int | None:
    """Days the notice hung on its earliest recorded posting, up to its window's end (None: no posting recorded)."""
    if not notice.postings:
        return None
    first = min(p.posted_on for p in notice.postings)
    return (notice.window_end - first).days + 1


def compliance(county: Unit, year: int, user, today: date) -> Compliance:
    """A county's year: its projects with and without a published notice, notices whose window runs today, notices
    posted for fewer days than required (a late first posting, or none recorded once the window ended), complaints
    not yet answered."""
    projects = project_queries.projects_of_year([county.id], year, scope_filter(user, Project))
    notices = (
        db.session.scalars(
            sa.select(Notice)
            .options(joinedload(Notice.items), joinedload(Notice.postings))
            .where(Notice.county_id == county.id, Notice.year == year, scope_filter(user, Notice))
            .order_by(Notice.window_start, Notice.id)
        )
        .unique()
        .all()
    )
    by_project: dict[int, list] = {}
    for notice in notices:
        if notice.state is NoticeState.DRAFT:
            continue
        for item in notice.items:
            by_project.setdefault(item.project_id, []).append(notice)
    published = [n for n in notices if n.state is NoticeState.PUBLISHED]
    running = [n for n in published if n.window_start <= today <= n.window_end]
    short = []
    for n in published:
        days = posted_days(n)
        if (days is None and n.window_end < today) or (days is not None and days < MIN_WINDOW_DAYS):
            short.append((n, days))
    open_complaints = db.session.scalars(
        sa.select(Complaint)
        .options(joinedload(Complaint.notice))
        .join(Notice, Notice.id == Complaint.notice_id)
        .where(Notice.county_id == county.id, Notice.year == year, Complaint.answered_on.is_(None))
        .where(scope_filter(user, Notice))
        .order_by(Complaint.received_on, Complaint.id)
    ).all()
    rows = [ComplianceRow(p, by_project.get(p.id, [])) for p in projects]
    return Compliance(county, year, today, rows, running, short, list(open_complaints))


# ---- public pages: published notices only ----------------------------------------------------------------------


def public_notices(args: dict) -> sa.Select:
    """Published notices, newest first, filtered by county code, year and a search in their text."""
    stmt = sa.select(Notice).options(joinedload(Notice.county)).where(Notice.state == NoticeState.PUBLISHED)
    code = args.get("county") or ""
    if code.isascii() and code.isdigit() and len(code) == 6:
        stmt = stmt.where(Notice.county_id.in_(sa.select(Unit.id).where(Unit.code == code)))
    if is_year(args.get("year")):
        stmt = stmt.where(Notice.year == int(args["year"]))
    if args.get("q") and not has_control_characters(args["q"]):
        stmt = stmt.where(Notice.search_text.like(like_pattern(args["q"][:100])))
    return stmt.order_by(Notice.published_at.desc(), Notice.id.desc())


def public_counties() -> list[tuple[str, str]]:
    """(code, name) of the counties with a published notice, in code order: the index's county choices."""
    stmt = (
        sa.select(Unit.code, Unit.name)
        .where(Unit.id.in_(sa.select(Notice.county_id).where(Notice.state == NoticeState.PUBLISHED)))
        .order_by(Unit.code)
    )
    return [tuple(row) for row in db.session.execute(stmt)]


def public_years() -> list[int]:
    stmt = sa.select(Notice.year).where(Notice.state == NoticeState.PUBLISHED).distinct().order_by(Notice.year.desc())
    return list(db.session.scalars(stmt))


def public_notice(public_no: str) -> Notice | None:
    """A published or withdrawn notice by its public number (a draft has none)."""
    if not (public_no.isascii() and public_no.isalnum() and len(public_no) <= 16):
        return None
    return db.session.scalar(sa.select(Notice).where(Notice.public_no == public_no, Notice.state != NoticeState.DRAFT))
