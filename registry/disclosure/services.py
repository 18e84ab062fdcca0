"""Writing notices, postings and complaints: the rules, the gate (the notice's county), the audit trail.

A notice is drafted from the records (the projects its type covers are chosen then), shown as a live preview while
a draft, and frozen at publication: ``snapshot`` holds the disclosed fields of every row as they were, and the PDF
is rendered once from it. Later changes to a project or its funds never reach a published notice.
"""

import secrets
from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app

from registry.counties.models import Side, Unit, UnitKind
from registry.disclosure import documents
from registry.disclosure.models import (
    MIN_WINDOW_DAYS,
    NATIONAL_PHONE,
    WORKFLOW,
    Complaint,
    ComplaintChannel,
    Notice,
    NoticeItem,
    NoticeState,
    NoticeType,
    Posting,
)
from registry.disclosure.queries import DUE
from registry.kernel.audit.services import record
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError, check_version
from registry.permissions import authorize_write, scope_filter
from registry.projects import figures as project_figures
from registry.projects import queries as project_queries
from registry.projects.models import Project, ProjectStatus

#: Statuses of projects a year's plan and arrangements list (储备 is the project pool, 终止 was given up).
PLANNED = DUE
#: Statuses of a project whose implementation result can be disclosed.
FINISHED = frozenset({ProjectStatus.COMPLETED, ProjectStatus.ACCEPTED, ProjectStatus.HANDED_OVER})

#: Letters of a public number: no 0/o, 1/l/i, so a number read off a notice board is typed right.
_PUBLIC_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def check_window(start: date | None, end: date | None) -> None:
    """The guidance's rule: posted at least 10 days, the first and the last counted."""
    if start is None or end is None:
        raise ServiceError("请填写公示期的开始和结束日期。", "window_end")
    if (end - start).days + 1 < MIN_WINDOW_DAYS:
        raise ServiceError(
            f"公示期不得少于 {MIN_WINDOW_DAYS} 天（含首尾两日）：自 {start} 起至少到 "
            f"{start + timedelta(days=MIN_WINDOW_DAYS - 1)}。",
            "window_end",
        )


def eligible_projects(notice_type: NoticeType, county_id: int, year: int, *, where=None) -> list[Project]:
    """The projects a notice of this type would list for the county and year (``where``: the writer's scope)."""
    projects = project_queries.projects_of_year([county_id], year, where)
    if notice_type in (NoticeType.ANNUAL_PLAN, NoticeType.ARRANGEMENT):
        chosen = [p for p in projects if p.status in PLANNED]
        if notice_type is NoticeType.ARRANGEMENT:
            # A batch: the projects no earlier arrangement notice of the county and year (not withdrawn) covered.
            covered = set(
                db.session.scalars(
                    sa.select(NoticeItem.project_id)
                    .join(Notice, Notice.id == NoticeItem.notice_id)
                    .where(
                        Notice.county_id == county_id,
                        Notice.year == year,
                        Notice.type == NoticeType.ARRANGEMENT,
                        Notice.state != NoticeState.WITHDRAWN,
                    )
                )
            )
            chosen = [p for p in chosen if p.id not in covered]
        return chosen
    if notice_type is NoticeType.ALLOCATION:
        return [p for p in projects if p.arrived_fen > 0 or p.disbursed_fen > 0]
    return [p for p in projects if p.status in FINISHED]


#: What a title says after "…东西部协作财政援助资金".
TITLES = {
    NoticeType.ANNUAL_PLAN: "年度项目计划",
    NoticeType.ARRANGEMENT: "项目安排",
    NoticeType.ALLOCATION: "分配结果",
    NoticeType.COMPLETION: "项目实施结果",
}


def default_title(county: Unit, year: int, notice_type: NoticeType) -> str:
    return f"{county.name}{year}年东西部协作财政援助资金{TITLES[notice_type]}公告"


def create_notice(data: dict, *, actor) -> Notice:
    """A draft notice of a county, year and type, with the projects its type covers now.

    :raise ServiceError: a window shorter than 10 days, a unit that is not a Sichuan county, nothing to disclose.
    :raise OutOfScope: a county outside the writer's scope.
    """
    authorize_write(actor, Notice, data)
    county = db.session.get(Unit, data.get("county_id")) if data.get("county_id") else None
    if county is None or county.kind is not UnitKind.COUNTY or county.side is not Side.WEST:
        raise ServiceError("请选择四川省的县(市、区)。", "county_id")
    check_window(data.get("window_start"), data.get("window_end"))
    notice_type = NoticeType(data["type"])
    where = scope_filter(actor, Project) if actor is not None else None
    projects = eligible_projects(notice_type, county.id, data["year"], where=where)
    if not projects:
        raise ServiceError(_nothing_to_disclose(notice_type, county, data["year"]), "type")
    notice = Notice(
        county_id=county.id,
        year=data["year"],
        type=notice_type,
        title=(data.get("title") or "").strip() or default_title(county, data["year"], notice_type),
        issuing_unit=data["issuing_unit"],
        local_phone=(data.get("local_phone") or "").strip() or current_app.config.get("DISCLOSURE_PHONE", ""),
        window_start=data["window_start"],
        window_end=data["window_end"],
        state=NoticeState.DRAFT,
    )
    notice.items = [NoticeItem(project_id=p.id, position=i) for i, p in enumerate(projects, start=1)]
    db.session.add(notice)
    db.session.flush()
    WORKFLOW.start(notice, "draft", actor=actor)
    record(
        "create",
        notice,
        actor=actor,
        summary=f"起草公告《{notice.title}》（{len(projects)} 个项目）",
        changes={k: [None, str(getattr(notice, k))] for k in ("type", "year", "window_start", "window_end")},
    )
    return notice


def _nothing_to_disclose(notice_type: NoticeType, county: Unit, year: int) -> str:
    what = {
        NoticeType.ANNUAL_PLAN: "已立项的项目",
        NoticeType.ARRANGEMENT: "尚未在项目安排公告中公开的已立项项目",
        NoticeType.ALLOCATION: "已到位或拨付资金的项目",
        NoticeType.COMPLETION: "已完工、已验收或已移交的项目",
    }[notice_type]
    return f"{county.name}{year}年没有{what}，无可公告的内容。"


def preview(notice: Notice) -> dict:
    """What the notice would say if it were published now (a draft's page), or what it says (published)."""
    if notice.snapshot is not None:
        return notice.snapshot
    return build_snapshot(notice, published_on=date.today())


def build_snapshot(notice: Notice, *, published_on: date) -> dict:
    """The notice's header and its rows, every field taken from the project and fund records as they are."""
    ids = [item.project_id for item in notice.items]
    projects = {p.id: p for p in project_queries.projects_of_year([notice.county_id], notice.year)}
    funds = project_figures.source_totals(ids)
    rows = [documents.project_row(projects[i], funds.get(i, {})) for i in ids if i in projects]
    county = notice.county
    return documents.snapshot(
        notice_type=notice.type,
        title=notice.title,
        county=county.name,
        prefecture=county.parent.name if county.parent is not None else "",
        year=notice.year,
        issuing_unit=notice.issuing_unit,
        phones=[NATIONAL_PHONE, *([notice.local_phone] if notice.local_phone else [])],
        window=(notice.window_start, notice.window_end),
        published_on=published_on,
        rows=rows,
    )


def _public_no() -> str:
    return "".join(secrets.choice(_PUBLIC_ALPHABET) for _ in range(10))


def publish(notice: Notice, *, actor, version=None, today: date | None = None) -> Notice:
    """Freeze the notice: snapshot, public number, PDF. Only a draft whose window has not already ended."""
    check_version(notice, version)
    WORKFLOW.check(notice, "publish", actor)
    today = today or date.today()
    check_window(notice.window_start, notice.window_end)
    if notice.window_end < today:
        raise ServiceError(f"公示期已于 {notice.window_end} 结束，请重新起草公告并确定新的公示期。")
    snapshot = build_snapshot(notice, published_on=today)
    if not snapshot["rows"]:
        raise ServiceError("公告涉及的项目已全部删除，无可公告的内容。")
    pdf = documents.notice_pdf(snapshot)
    public_no = _public_no()
    while db.session.scalar(sa.select(Notice.id).where(Notice.public_no == public_no)) is not None:
        public_no = _public_no()  # 31^10 numbers: a clash is all but impossible, and then simply drawn again
    notice.snapshot = snapshot
    notice.search_text = documents.search_text(snapshot)
    notice.pdf = pdf
    notice.public_no = public_no
    notice.published_at = utcnow()
    summary = (f"发布公告《{notice.title}》，公示期 {notice.window_start} 至 {notice.window_end}，"
               f"公告编号 {notice.public_no}")  # fmt: skip
    WORKFLOW.take(notice, "publish", actor=actor, summary=summary)
    return notice


def withdraw(notice: Notice, reason: str, *, actor, version=None) -> Notice:
    """Take a published notice down, saying why (the public page then shows only the withdrawal and its reason)."""
    check_version(notice, version)
    WORKFLOW.check(notice, "withdraw", actor)
    reason = WORKFLOW.opinion("withdraw", reason)
    notice.withdrawn_at = utcnow()
    notice.withdrawal_reason = reason
    WORKFLOW.take(notice, "withdraw", actor=actor, opinion=reason, summary=f"撤回公告《{notice.title}》：{reason}")
    return notice


def add_posting(notice: Notice, data: dict, *, actor) -> Posting:
    """Record where and when a published notice was put up; the day lies within its window."""
    authorize_write(actor, Notice, notice, before=notice)
    if notice.state is NoticeState.DRAFT:
        raise ServiceError("公告发布后才能登记张贴情况。")
    posted_on = data.get("posted_on")
    if posted_on is None or not notice.window_start <= posted_on <= notice.window_end:
        raise ServiceError(f"张贴日期应在公示期内（{notice.window_start} 至 {notice.window_end}）。", "posted_on")
    posting = Posting(notice=notice, place=data["place"], posted_on=posted_on, note=data.get("note") or "")
    db.session.add(posting)
    db.session.flush()
    record(
        "create",
        posting,
        actor=actor,
        summary=f"登记张贴：{posting.place}（{posting.posted_on}）",
        changes={"place": [None, posting.place], "posted_on": [None, str(posting.posted_on)]},
        context=notice,
    )
    return posting


def add_complaint(notice: Notice, data: dict, *, actor) -> Complaint:
    """Record a complaint or question received about a published (or withdrawn) notice."""
    authorize_write(actor, Notice, notice, before=notice)
    if notice.state is NoticeState.DRAFT:
        raise ServiceError("公告发布后才能登记投诉和反映。")
    received_on = data.get("received_on")
    if received_on is None or received_on > date.today():
        raise ServiceError("收到日期不能晚于今天。", "received_on")
    complaint = Complaint(
        notice=notice, received_on=received_on, channel=ComplaintChannel(data["channel"]), content=data["content"]
    )
    db.session.add(complaint)
    db.session.flush()
    record(
        "create",
        complaint,
        actor=actor,
        summary=f"登记投诉反映（{complaint.channel.label}，{complaint.received_on}）",
        changes={"received_on": [None, str(received_on)], "channel": [None, complaint.channel.value]},
        context=notice,
    )
    return complaint


def answer_complaint(complaint: Complaint, data: dict, *, actor, version=None) -> Complaint:
    """Record how a complaint was answered, and when (not before it was received)."""
    check_version(complaint, version)
    notice = complaint.notice
    authorize_write(actor, Notice, notice, before=notice)
    answered_on = data.get("answered_on")
    if answered_on is None or answered_on < complaint.received_on:
        raise ServiceError(f"答复日期不能早于收到日期（{complaint.received_on}）。", "answered_on")
    if answered_on > date.today():
        raise ServiceError("答复日期不能晚于今天。", "answered_on")
    answer = (data.get("answer") or "").strip()
    if not answer:
        raise ServiceError("请填写答复内容。", "answer")
    before = [complaint.answer, str(complaint.answered_on) if complaint.answered_on else None]
    complaint.answer, complaint.answered_on = answer, answered_on
    db.session.flush()
    record(
        "update",
        complaint,
        actor=actor,
        summary=f"答复投诉反映（{answered_on}）",
        changes={"answer": [before[0], answer], "answered_on": [before[1], str(answered_on)]},
        context=notice,
    )
    return complaint
