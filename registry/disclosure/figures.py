"""Disclosure figures for other modules: the quarterly report's section (the disclosure status of the quarter's
projects) and the reminder checks (windows ending, projects of the year without a published notice).

The app registers both as it is built (``registry/__init__.py``: the report's ``SECTIONS``; ``registry/tasks``:
the reminders), so neither the reports nor the task package needs to know this package.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from flask import current_app, url_for

from registry.auth.services import county_staff
from registry.counties.models import Unit
from registry.disclosure.models import Complaint, Notice, NoticeItem, NoticeState
from registry.disclosure.queries import DUE, published_project_ids
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA, Quarter
from registry.projects import queries as project_queries
from registry.projects.models import Project, ProjectStatus, StatusChange


@dataclass(frozen=True)
class DisclosureRow:
    county: str
    projects: int
    disclosed: int
    undisclosed_names: tuple[str, ...]
    notices: int
    open_complaints: int

    @property
    def undisclosed(self) -> int:
        return self.projects - self.disclosed


@dataclass(frozen=True)
class DisclosureSection:
    """The report's section: per county, the year's projects due for disclosure and how many a published notice
    lists, as of the quarter's end."""

    template: str
    year: int
    cutoff: date
    rows: tuple[DisclosureRow, ...]
    #: The section's heading in the report and on the dashboard (numbered by the report).
    title: str = "资金项目公告公示情况"

    @property
    def projects(self) -> int:
        return sum(r.projects for r in self.rows)

    @property
    def disclosed(self) -> int:
        return sum(r.disclosed for r in self.rows)


def _pairing_clause(pairings):
    return None if pairings is None else Project.pairing_id.in_(pairings)


def _due_on(counties, year: int, pairings, day: date) -> set[int]:
    """Ids of the counties' projects of ``year`` due for disclosure on ``day``: their status then, from their dated
    steps (the last step dated by then), is neither 储备 nor 终止; a project with no step by then did not exist yet."""
    ranked = (
        sa.select(
            StatusChange.project_id,
            StatusChange.to_status,
            sa.func.row_number()
            .over(
                partition_by=StatusChange.project_id,
                order_by=(StatusChange.changed_on.desc(), StatusChange.id.desc()),
            )
            .label("n"),
        )
        .join(Project, Project.id == StatusChange.project_id)
        .where(Project.county_id.in_(counties), Project.year == year, StatusChange.changed_on <= day)
    )
    if pairings is not None:
        ranked = ranked.where(Project.pairing_id.in_(pairings))
    last = ranked.subquery()
    rows = db.session.execute(sa.select(last.c.project_id, last.c.to_status).where(last.c.n == 1))
    return {project_id for project_id, status in rows if ProjectStatus(status) in DUE}


def _public_on(until: datetime):
    """WHERE on Notice: published before ``until`` and not withdrawn by then (its state today does not matter)."""
    return sa.and_(
        Notice.published_at.is_not(None),
        Notice.published_at < until,
        sa.or_(Notice.withdrawn_at.is_(None), Notice.withdrawn_at >= until),
    )


def report_section(unit: Unit, quarter: Quarter, counties: list[int], pairings=None) -> DisclosureSection:
    """Per paired county of the report: the quarter's year's projects due for disclosure (by the quarter's end),
    those a notice published by then lists, the undisclosed ones by name, and complaints still open.

    Everything is as it stood at the cut-off (the end of the quarter's last day in China), so the signed report never
    moves: a project's status from its dated steps, notices by their publication and withdrawal, complaints by the
    days they were received and answered."""
    cutoff = min(quarter.end, date.today())
    until = datetime.combine(cutoff + timedelta(days=1), time(), CHINA)
    rows = []
    units = {u.id: u for u in db.session.scalars(sa.select(Unit).where(Unit.id.in_(counties)))}
    projects = project_queries.projects_of_year(counties, quarter.year, _pairing_clause(pairings))
    due_ids = _due_on(counties, quarter.year, pairings, cutoff)
    by_county: dict[int, list[Project]] = {}
    for p in projects:
        if p.id in due_ids:
            by_county.setdefault(p.county_id, []).append(p)
    published = db.session.execute(
        sa.select(NoticeItem.project_id, Notice.id)
        .join(Notice, Notice.id == NoticeItem.notice_id)
        .where(Notice.county_id.in_(counties), Notice.year == quarter.year, _public_on(until))
    ).all()
    disclosed_ids = {project_id for project_id, _ in published}
    open_by_county = dict(
        db.session.execute(
            sa.select(Notice.county_id, sa.func.count(Complaint.id))
            .join(Notice, Notice.id == Complaint.notice_id)
            .where(
                Notice.county_id.in_(counties),
                Notice.year == quarter.year,
                Complaint.received_on <= cutoff,
                sa.or_(Complaint.answered_on.is_(None), Complaint.answered_on > cutoff),
            )
            .group_by(Notice.county_id)
        ).all()
    )
    notice_counts = dict(
        db.session.execute(
            sa.select(Notice.county_id, sa.func.count(Notice.id))
            .where(Notice.county_id.in_(counties), Notice.year == quarter.year, _public_on(until))
            .group_by(Notice.county_id)
        ).all()
    )
    for county_id in sorted(set(by_county) | set(notice_counts), key=lambda i: units[i].code):
        due = by_county.get(county_id, [])
        rows.append(
            DisclosureRow(
                county=units[county_id].name,
                projects=len(due),
                disclosed=sum(1 for p in due if p.id in disclosed_ids),
                undisclosed_names=tuple(p.name for p in due if p.id not in disclosed_ids),
                notices=notice_counts.get(county_id, 0),
                open_complaints=open_by_county.get(county_id, 0),
            )
        )
    return DisclosureSection("reports/_disclosure.html", quarter.year, cutoff, tuple(rows))


# ---- reminders -------------------------------------------------------------------------------------------------


def windows_ending(today: date) -> Iterable[tuple[int, str, str, str]]:
    """(user id, key, title, link) for each published notice whose window ends within DISCLOSURE_REMIND_DAYS, to
    its county office: record where it was posted (or see that it was) before the window closes."""
    days = int(current_app.config["DISCLOSURE_REMIND_DAYS"])
    notices = db.session.scalars(
        sa.select(Notice).where(
            Notice.state == NoticeState.PUBLISHED,
            Notice.window_end >= today,
            Notice.window_end <= today + timedelta(days=days),
        )
    ).all()
    staff = county_staff()
    for notice in notices:
        with current_app.test_request_context():
            link = url_for("disclosure.detail", notice_id=notice.id) + "#postings"
        posted = "已登记张贴 " + str(len(notice.postings)) + " 处" if notice.postings else "尚未登记张贴情况"
        title = f"公告《{notice.title}》的公示期将于 {notice.window_end} 结束（{posted}）。"
        for user_id in staff.get(notice.county_id, []):
            yield user_id, f"disclosure:window:{notice.id}", title, link


def undisclosed_projects(today: date) -> Iterable[tuple[int, str, str, str]]:
    """(user id, key, title, link) per county office whose county has projects of this year, 立项 or later, that
    no published notice lists yet (one reminder per county and number of such projects)."""
    staff = county_staff()
    if not staff:
        return
    projects = project_queries.projects_of_year(list(staff), today.year)
    disclosed = published_project_ids(list(staff), today.year)
    waiting: dict[int, int] = {}
    for p in projects:
        if p.status in DUE and p.id not in disclosed:
            waiting[p.county_id] = waiting.get(p.county_id, 0) + 1
    for county_id, count in waiting.items():
        with current_app.test_request_context():
            link = url_for("disclosure.compliance", county=county_id, year=today.year)
        title = f"本县 {today.year} 年有 {count} 个已立项的东西部协作项目尚未公告公示。"
        for user_id in staff[county_id]:
            yield user_id, f"disclosure:undisclosed:{county_id}:{today.year}:{count}", title, link
