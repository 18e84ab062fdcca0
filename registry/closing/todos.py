"""To-dos of the quarter close: the step each office, and each East liaison, has to take on a quarter's report.

- 待填写: the unit's own narrative (亮点、问题、下步打算) of the quarter that ended last, while its report is open, due
  ``NARRATIVE_DUE_DAYS`` after the quarter's end;
- 待提交 / 已退回 / 已解锁: the unit's own report of the quarter that ended last (from the day after it ends, due
  ``REPORT_DUE_DAYS`` later), and any earlier report of its own returned or unlocked, with the return's opinion;
- 待审核: a prefecture office, its counties' reports submitted;
- 待审定: the province office, every report awaiting approval (a county's after review, the others' on submission);
- 待审批解锁: the province office, every pending unlock request;
- 待确认: an East liaison, a submitted or reviewed county report with a pairing they speak for still unconfirmed;
- 待答复异议: the county's or its prefecture's office, a dispute not yet answered.

Who may act is the gate's answer (``permissions.can_*``), the same the workflow asks when the step is taken.
"""

from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import joinedload

from registry.closing import services
from registry.closing.models import (
    CONFIRMABLE,
    OPEN_STATES,
    Confirmation,
    ConfirmationState,
    QuarterReport,
    ReportState,
    ReportStep,
    StepAction,
    UnlockRequest,
    UnlockState,
)
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.roles import Role
from registry.kernel.todos import Todo, todo_source
from registry.permissions import (
    can,
    can_answer_dispute,
    can_approve_report,
    can_review_report,
    can_submit_report,
    confirmable_pairings,
)
from registry.reports.queries import narrative_of, paired_counties
from registry.reports.services import latest_quarter


def _url(report_or_unit_id: int, quarter: Quarter) -> str:
    return url_for("reports.dashboard", unit_id=report_or_unit_id, quarter_text=str(quarter)) + "#closing"


def _title(unit: Unit, quarter: Quarter) -> str:
    return f"{unit.name} {quarter.label}报表"


def _own_unit(user) -> Unit | None:
    """The unit whose report ``user`` submits: their county or prefecture; the province office's, Sichuan."""
    if user.role in (Role.COUNTY, Role.PREFECTURE):
        return user.scope_unit
    if user.role is Role.PROVINCE:
        return db.session.scalar(sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind == UnitKind.PROVINCE))
    return None


def _reports_to_submit(user, today: date):
    unit = _own_unit(user)
    if unit is None or not can_submit_report(user, unit):
        return
    quarter = latest_quarter(today)
    reports = {
        (r.year, r.quarter): r
        for r in db.session.scalars(
            sa.select(QuarterReport).where(
                QuarterReport.unit_id == unit.id,
                sa.or_(
                    QuarterReport.state.in_((ReportState.RETURNED, ReportState.UNLOCKED)),
                    sa.and_(QuarterReport.year == quarter.year, QuarterReport.quarter == quarter.number),
                ),
            )
        )
    }
    current = reports.get((quarter.year, quarter.number))
    reports_now = current is not None or _reports_for(unit, quarter)
    if reports_now and (current is None or current.state in OPEN_STATES) and can(user, "reports.narrate"):
        if narrative_of(unit.id, quarter).is_empty:
            due = quarter.end + timedelta(days=int(current_app.config["NARRATIVE_DUE_DAYS"]))
            url = url_for("reports.dashboard", unit_id=unit.id, quarter_text=str(quarter)) + "#narrative"
            yield Todo("待填写", f"{unit.name} {quarter.label}工作情况说明（亮点、问题、下步打算）", url, due=due)
    if current is None and reports_now:
        yield Todo("待提交", _title(unit, quarter), _url(unit.id, quarter), due=services.due_date(quarter))
    for report in sorted(reports.values(), key=lambda r: (r.year, r.quarter)):
        if report.state not in OPEN_STATES:
            continue
        period = Quarter.of(report.year, report.quarter)
        action = {ReportState.RETURNED: "已退回，待重新提交", ReportState.UNLOCKED: "已解锁，待重新提交"}.get(
            report.state, "待提交"
        )
        yield Todo(action, _title(unit, period), _url(unit.id, period), due=services.due_date(period),
                   note=_last_opinion(report))  # fmt: skip


def _reports_for(unit: Unit, quarter: Quarter) -> bool:
    """Does ``unit`` report on ``quarter``: a county paired during it, a prefecture holding one, the province."""
    if unit.kind is UnitKind.PROVINCE:
        return True
    return bool(paired_counties(unit, quarter))


def _last_opinion(report: QuarterReport) -> str:
    """The opinion of the step that sent the report back (退回意见, 解锁理由), for the person who acts next."""
    step = db.session.scalar(
        sa.select(ReportStep)
        .where(ReportStep.report_id == report.id, ReportStep.action.in_((StepAction.RETURN, StepAction.GRANT_UNLOCK)))
        .order_by(ReportStep.at.desc(), ReportStep.id.desc())
        .limit(1)
    )
    if step is None:
        return ""
    if step.action is StepAction.RETURN:
        return f"{step.actor_office or step.actor_name}退回：{step.comment}" if step.comment else ""
    unlock = db.session.scalar(
        sa.select(UnlockRequest)
        .where(UnlockRequest.report_id == report.id, UnlockRequest.state == UnlockState.GRANTED)
        .order_by(UnlockRequest.decided_at.desc(), UnlockRequest.id.desc())
        .limit(1)
    )
    return f"解锁理由：{unlock.reason}" if unlock is not None else ""


def _waiting(states, kinds, quarters: list[Quarter] | None = None) -> list[QuarterReport]:
    """Reports in ``states`` of units of ``kinds`` (of ``quarters`` only, when given)."""
    stmt = (
        sa.select(QuarterReport)
        .join(Unit, Unit.id == QuarterReport.unit_id)
        .options(joinedload(QuarterReport.unit))
        .where(QuarterReport.state.in_(states), Unit.kind.in_(kinds))
    )
    if quarters is not None:
        stmt = stmt.where(
            sa.or_(*(sa.and_(QuarterReport.year == q.year, QuarterReport.quarter == q.number) for q in quarters))
        )
    return db.session.scalars(stmt.order_by(QuarterReport.year, QuarterReport.quarter, Unit.code)).all()


def _confirmable_quarters(today: date) -> list[Quarter]:
    """The quarters whose East confirmation window is still open today (the current one and a few before it)."""
    quarters, quarter = [], Quarter.containing(today)
    while services.confirmations_open(quarter, today):
        quarters.append(quarter)
        quarter = (
            Quarter.of(quarter.year - 1, 4) if quarter.number == 1 else Quarter.of(quarter.year, quarter.number - 1)
        )
    return quarters


def _reports_to_decide(user, today: date):
    if user.role is Role.PREFECTURE:
        for report in _waiting((ReportState.SUBMITTED,), (UnitKind.COUNTY,)):
            if can_review_report(user, report.unit):
                quarter = Quarter.of(report.year, report.quarter)
                yield Todo("待审核", _title(report.unit, quarter), _url(report.unit_id, quarter))
    if user.role is Role.PROVINCE:
        waiting = [*_waiting((ReportState.REVIEWED,), (UnitKind.COUNTY,)),
                   *_waiting((ReportState.SUBMITTED,), (UnitKind.PREFECTURE, UnitKind.PROVINCE))]  # fmt: skip
        for report in waiting:
            if can_approve_report(user, report.unit):
                quarter = Quarter.of(report.year, report.quarter)
                yield Todo("待审定", _title(report.unit, quarter), _url(report.unit_id, quarter))
        requests = db.session.scalars(
            sa.select(UnlockRequest)
            .options(joinedload(UnlockRequest.report).joinedload(QuarterReport.unit))
            .where(UnlockRequest.state == UnlockState.PENDING)
            .order_by(UnlockRequest.id)
        ).all()
        for request in requests:
            report = request.report
            if can_approve_report(user, report.unit):
                quarter = Quarter.of(report.year, report.quarter)
                yield Todo("待审批解锁", _title(report.unit, quarter), _url(report.unit_id, quarter),
                           note=f"{request.requested_by_name}申请解锁：{request.reason}")  # fmt: skip


def _reports_to_confirm(user, today: date):
    if user.role is not Role.LIAISON:
        return
    # Only the quarters still open: an approved report stays approved for years, and this runs on every page.
    quarters = _confirmable_quarters(today)
    reports = _waiting(tuple(CONFIRMABLE), (UnitKind.COUNTY,), quarters) if quarters else []
    if not reports:
        return
    answered = set(
        db.session.execute(
            sa.select(Confirmation.report_id, Confirmation.pairing_id).where(
                Confirmation.report_id.in_([r.id for r in reports])
            )
        ).tuples()
    )
    for report in reports:
        quarter = Quarter.of(report.year, report.quarter)
        open_pairings = [
            p for p in confirmable_pairings(user, report.unit, quarter) if (report.id, p.id) not in answered
        ]
        if open_pairings:
            partners = "、".join(sorted({p.east_unit.name for p in open_pairings}))
            yield Todo("待确认", _title(report.unit, quarter), _url(report.unit_id, quarter),
                       due=services.confirm_deadline(quarter),
                       note=f"请以{partners}的名义确认数据或提出异议")  # fmt: skip


def _disputes_to_answer(user, today: date):
    """The county's or prefecture's office answers a dispute; one raised after approval is the province's too."""
    if user.role not in (Role.COUNTY, Role.PREFECTURE, Role.PROVINCE):
        return
    disputes = db.session.scalars(
        sa.select(Confirmation)
        .options(joinedload(Confirmation.report).joinedload(QuarterReport.unit), joinedload(Confirmation.pairing))
        .where(Confirmation.state == ConfirmationState.DISPUTED)
        .order_by(Confirmation.id)
    ).all()
    for dispute in disputes:
        report = dispute.report
        quarter = Quarter.of(report.year, report.quarter)
        if user.role is Role.PROVINCE:
            if report.state is ReportState.APPROVED and can_approve_report(user, report.unit):
                yield Todo("审定后东部提出异议", _title(report.unit, quarter), _url(report.unit_id, quarter),
                           note=f"{dispute.by_name}：{dispute.reason}")  # fmt: skip
        elif can_answer_dispute(user, report.unit):
            yield Todo("待答复异议", _title(report.unit, quarter), _url(report.unit_id, quarter),
                       note=f"{dispute.by_name}：{dispute.reason}")  # fmt: skip


@todo_source("quarter_report", "季度报表")
def report_todos(user, today: date):
    yield from _reports_to_submit(user, today)
    yield from _reports_to_decide(user, today)
    yield from _reports_to_confirm(user, today)
    yield from _disputes_to_answer(user, today)
