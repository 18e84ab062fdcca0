"""Closing a quarter, step by step: every step checks who may take it (``permissions``), the report's state, writes
the step (the dashboard's timeline) and an audit event. Services never commit.

County:  草稿 → 提交 (county) → 审核 通过/退回 (prefecture) → 审定/退回 (province) → 省已审定 (locked)
Prefecture and province: 草稿 → 提交 → 审定/退回 (province).
An approved report may be unlocked on request (province decides): 已解锁, filled in and submitted again.
"""

import json
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from registry.closing import signing
from registry.closing.models import (
    OPEN_STATES,
    WORKFLOW,
    Confirmation,
    ConfirmationState,
    QuarterReport,
    ReportState,
    ReportVersion,
    StepAction,
    UnlockRequest,
    UnlockState,
    actor_name,
    actor_office,
)
from registry.closing.record import canonical_json, compare, qr_svg, record_pdf, sha256, verify_url
from registry.counties.models import Unit, UnitKind
from registry.kernel.audit.services import record
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter, local_datetime, overlaps
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.services import ServiceError
from registry.kernel.workflow import Opinion
from registry.pairings.models import Pairing
from registry.permissions import OutOfScope, confirmable_pairings
from registry.reports.queries import quarter_figures


def _text(value, label: str, *, required: bool) -> str:
    """A text of a step that is not its 意见 (异议数据, 答复, 越过异议的理由), checked as an 意见 is."""
    return Opinion(label, required=required).clean(value)


def report_of(unit: Unit, quarter: Quarter, *, create: bool = False) -> QuarterReport | None:
    """The report row of a unit-quarter (None, or a new 草稿 when ``create``)."""
    report = db.session.scalar(
        sa.select(QuarterReport).where(
            QuarterReport.unit_id == unit.id, QuarterReport.year == quarter.year,
            QuarterReport.quarter == quarter.number,
        )
    )  # fmt: skip
    if report is None and create:
        report = QuarterReport(unit=unit, year=quarter.year, quarter=quarter.number, state=ReportState.DRAFT)
        try:
            # In a SAVEPOINT: on PostgreSQL another request may create the same unit-quarter's row meanwhile (two
            # first submissions at once); the unique key refuses the second, which then reads the first's row and
            # answers by its state ("该报表当前为“已提交”…") instead of failing.
            with db.session.begin_nested():
                db.session.add(report)
                db.session.flush()
        except sa.exc.IntegrityError:
            report = report_of(unit, quarter)
            if report is None:
                raise ServiceError("该报表正由他人同时处理，请刷新页面后重试。") from None
    return report


def version_of_record(unit: Unit, quarter: Quarter) -> ReportVersion | None:
    """The version a quarter's report is downloaded as: the latest stored version while the report is approved;
    None before approval and while it is unlocked (its figures may then differ from every stored version)."""
    report = report_of(unit, quarter)
    if report is None or report.state is not ReportState.APPROVED or not report.versions:
        return None
    return report.versions[-1]


def state_of(unit: Unit, quarter: Quarter) -> ReportState:
    report = report_of(unit, quarter)
    return report.state if report is not None else ReportState.DRAFT


def _refuse_unless(allowed: bool, message: str) -> None:
    if not allowed:
        raise OutOfScope(message)


# ---- the path ----------------------------------------------------------------------------------------------------


def submit(unit: Unit, quarter: Quarter, *, actor) -> QuarterReport:
    """提交: the unit hands in its quarter's figures for review. The East side's confirmations of an earlier
    round are cleared: they were about figures that may have changed since."""
    WORKFLOW.check(report_of(unit, quarter), "submit", actor, subject=unit)
    report = report_of(unit, quarter, create=True)
    WORKFLOW.check(report, "submit", actor, subject=unit)  # another request may have submitted it meanwhile
    for confirmation in db.session.scalars(sa.select(Confirmation).where(Confirmation.report_id == report.id)):
        db.session.delete(confirmation)
    WORKFLOW.take(report, "submit", actor=actor, subject=unit)
    return report


def review(unit: Unit, quarter: Quarter, *, passed: bool, comment: str, actor) -> QuarterReport:
    """审核 by the prefecture: 通过 (to the province) or 退回 with a required 意见."""
    report = report_of(unit, quarter)  # None: a 草稿, refused by the check before anything is written
    WORKFLOW.take(report, "review" if passed else "return_review", actor=actor, opinion=comment, subject=unit)
    return report


def open_disputes(report: QuarterReport) -> list[Confirmation]:
    return list(
        db.session.scalars(
            sa.select(Confirmation).where(
                Confirmation.report_id == report.id, Confirmation.state == ConfirmationState.DISPUTED
            )
        )
    )


@dataclass
class Timings:
    """How long an approval took (seconds), for the record of what signing costs."""

    figures: float = 0.0
    render: float = 0.0
    sign: float = 0.0


@dataclass
class Prepared:
    """A report of record rendered and signed ahead of its approval (``prepare_approval``), outside the write
    transaction: ``approve`` stores it if the report and its figures are still what it was made from."""

    report_id: int
    number: int
    at: datetime
    figures_json: str
    figures_sha256: str
    token: str
    signer: str
    people: list
    pdf: bytes


def _approval_comment(unit: Unit, quarter: Quarter, report, comment: str, override: str, actor) -> str:
    """The checks of an approval (who, state, answered disputes) and its comment with the override's reason."""
    WORKFLOW.check(report, "approve", actor, subject=unit)
    comment = _text(comment, "审定意见", required=False)
    disputes = open_disputes(report)
    override = (override or "").strip()
    if disputes and not override:
        names = "、".join(d.pairing.east_unit.display_name for d in disputes)
        raise ServiceError(
            f"{names}对本季度数据提出的异议尚未答复。请待县、市(州)答复后再审定，或填写越过异议的理由后审定。",
            "override",
        )
    if disputes:
        override = _text(override, "越过异议的理由", required=True)
        comment = f"{comment}\n（越过未答复的异议审定：{override}）".strip()
    return comment


def prepare_approval(
    unit: Unit, quarter: Quarter, *, comment: str = "", override: str = "", actor, timings: Timings | None = None
) -> Prepared:
    """Read the figures, render the PDF of record and sign it (seconds) without writing anything: the caller runs
    this outside the write transaction (``database.reading()`` on SQLite, whose write lock would otherwise stop
    every other writer meanwhile) and then ``approve(..., prepared=…)`` in a short one."""
    report = report_of(unit, quarter)
    _approval_comment(unit, quarter, report, comment, override, actor)
    return _prepare(report, unit, quarter, actor, utcnow(), timings or Timings())


def approve(
    unit: Unit, quarter: Quarter, *, passed: bool = True, comment: str = "", override: str = "", actor,
    timings: Timings | None = None, prepared: Prepared | None = None,
) -> QuarterReport:  # fmt: skip
    """审定 by the province: stores version n of the report of record and locks a county's quarter; or 退回.

    An East partner's dispute that nobody has answered blocks the approval, unless the province overrides it with
    a recorded reason (``override``). With ``prepared`` (rendered and signed beforehand by ``prepare_approval``)
    the version is stored as it is if the report and its figures have not moved since; otherwise, and without
    it, the version is rendered and signed here.
    """
    report = report_of(unit, quarter)
    if not passed:
        WORKFLOW.take(report, "return", actor=actor, opinion=comment, subject=unit)
        return report
    comment = _approval_comment(unit, quarter, report, comment, override, actor)
    if prepared is not None and not _still_valid(prepared, report, unit, quarter):
        prepared = None
    if prepared is None:
        prepared = _prepare(report, unit, quarter, actor, utcnow(), timings or Timings())
    report.needs_review = False
    WORKFLOW.take(report, "approve", actor=actor, opinion=comment, on=prepared.at, subject=unit)
    _store_version(report, unit, quarter, actor, prepared)
    if unit.kind is UnitKind.COUNTY:
        db.session.add(QuarterLock(unit_id=unit.id, year=quarter.year, quarter=quarter.number,
                                   locked_by_version=prepared.number))  # fmt: skip
    db.session.flush()
    return report


def _still_valid(prepared: Prepared, report: QuarterReport, unit: Unit, quarter: Quarter) -> bool:
    """Whether a prepared version may be stored: the same report and version number, and the figures read again
    now (under the write lock) the same as those signed, but for the time they were read."""
    if prepared.report_id != report.id or prepared.number != len(report.versions) + 1:
        return False
    return not compare(prepared.figures_json, canonical_json(quarter_figures(unit, quarter)))


def approvers(report: QuarterReport) -> list[list[str]]:
    """Who submitted, reviewed and approved the current round: [label, name, office, time] per step."""
    steps, last = [], {}
    for step in report.steps:
        if step.action is StepAction.SUBMIT:
            last = {}
        if step.action in (StepAction.SUBMIT, StepAction.REVIEW, StepAction.APPROVE):
            last[step.action] = step
    labels = {StepAction.SUBMIT: "提交", StepAction.REVIEW: "审核", StepAction.APPROVE: "审定"}
    for action in (StepAction.SUBMIT, StepAction.REVIEW, StepAction.APPROVE):
        if action in last:
            s = last[action]
            steps.append([labels[action], s.actor_name, s.actor_office, local_datetime(s.at)])
    return steps


def _prepare(report, unit, quarter, actor, at: datetime, timings: Timings) -> Prepared:
    """Version n of the report of record as it will be approved at ``at``: the figures, the PDF rendered from
    them and signed, the people of the round (the approval itself last)."""
    started = time.perf_counter()
    figures = quarter_figures(unit, quarter)
    figures_json = canonical_json(figures)
    timings.figures = time.perf_counter() - started
    number = len(report.versions) + 1
    token = secrets.token_urlsafe(32)
    figures_sha256 = sha256(figures_json)
    url = verify_url(token, figures_sha256)
    people = [p for p in approvers(report) if p[0] != "审定"]
    people.append(["审定", actor_name(actor), actor_office(actor), local_datetime(at)])
    info = {
        "number": number, "figures_sha256": figures_sha256, "approvers": people, "verify_url": url,
        "qr": qr_svg(url), "token": token, "signer": signing.signer_name(),
    }  # fmt: skip
    started = time.perf_counter()
    unsigned = record_pdf(figures, info, preparer=unit.full_name)
    timings.render = time.perf_counter() - started
    started = time.perf_counter()
    signed = signing.sign_pdf(unsigned, reason=f"{unit.name}{quarter.label}季度报告 已审定 版本{number}",
                              location=current_app.config["ORG_NAME"])  # fmt: skip
    timings.sign = time.perf_counter() - started
    return Prepared(report_id=report.id, number=number, at=at, figures_json=figures_json,
                    figures_sha256=figures_sha256, token=token, signer=info["signer"], people=people,
                    pdf=signed)  # fmt: skip


def _store_version(report, unit, quarter, actor, prepared: Prepared) -> ReportVersion:
    """Store a prepared version of record and its audit event."""
    number = prepared.number
    version = ReportVersion(
        report=report, number=number, figures_json=prepared.figures_json, figures_sha256=prepared.figures_sha256,
        pdf=prepared.pdf, pdf_sha256=sha256(prepared.pdf), token=prepared.token, signer=prepared.signer,
        approved_by_name=actor_name(actor), approved_at=prepared.at,
        approvers_json=json.dumps(prepared.people, ensure_ascii=False),
    )  # fmt: skip
    db.session.add(version)
    db.session.flush()
    summary = f"{unit.name} {quarter.label}报告 已审定 版本{number}（SHA-256 {version.pdf_sha256[:16]}…）"
    record("create", version, actor=actor, context=report, summary=summary)
    return version


# ---- East-side confirmation (双台账 / 双销号) ----------------------------------------------------------------------


def confirm(unit: Unit, quarter: Quarter, pairing_id: int, *, disputed: bool, figures: str = "", reason: str = "",
            actor) -> Confirmation:  # fmt: skip
    """确认 or 提出异议 by the liaison of an East partner valid in the quarter, for the figures of their pairing."""
    pairings = {p.id: p for p in confirmable_pairings(actor, unit, quarter)}
    _refuse_unless(bool(pairings), "只有本季度与该县结对的东部协作联络员可以确认该县的数据。")
    if pairing_id not in pairings:
        raise ServiceError("请选择您所代表的结对关系。", "pairing_id")
    report = report_of(unit, quarter)
    step = StepAction.DISPUTE.value if disputed else StepAction.CONFIRM.value
    WORKFLOW.check(report, step, actor, subject=unit)
    deadline = confirm_deadline(quarter)
    if date.today() > deadline:
        raise ServiceError(
            f"东部确认期限（{deadline}）已过，不能再确认或提出异议；如数据有误，请联系县协作办申请解锁。"
        )
    if disputed:
        figures = _text(figures, "有异议的数据", required=True)
        reason = _text(reason, "异议理由", required=True)
    confirmation = db.session.scalar(
        sa.select(Confirmation).where(Confirmation.report_id == report.id, Confirmation.pairing_id == pairing_id)
    )
    if confirmation is None:
        confirmation = Confirmation(report=report, pairing_id=pairing_id)
        db.session.add(confirmation)
    confirmation.state = ConfirmationState.DISPUTED if disputed else ConfirmationState.CONFIRMED
    confirmation.disputed_figures = figures if disputed else ""
    confirmation.reason = reason if disputed else ""
    confirmation.answer, confirmation.answered_by_name = "", ""
    confirmation.by_name = actor_name(actor)
    east = pairings[pairing_id].east_unit.display_name
    text = f"{east}：有异议的数据：{figures}；理由：{reason}" if disputed else f"{east}确认本季度数据"
    WORKFLOW.take(report, step, actor=actor, opinion=text, subject=unit)
    return confirmation


def answer(unit: Unit, quarter: Quarter, confirmation_id: int, text: str, *, actor) -> Confirmation:
    """The county or its prefecture answers a dispute (the answer is shown to the East side and the province)."""
    report = report_of(unit, quarter)
    WORKFLOW.check(report, "answer", actor, subject=unit)
    confirmation = db.session.get(Confirmation, confirmation_id) if report is not None else None
    if confirmation is None or confirmation.report_id != report.id:
        raise ServiceError("该异议不存在或已随重新提交清除。")
    if confirmation.state is not ConfirmationState.DISPUTED:
        raise ServiceError("该异议已答复或已确认，无需再答复。")
    confirmation.answer = _text(text, "答复", required=True)
    confirmation.answered_by_name = actor_name(actor)
    confirmation.state = ConfirmationState.ANSWERED
    text = f"答复{confirmation.pairing.east_unit.display_name}：{confirmation.answer}"
    WORKFLOW.take(report, "answer", actor=actor, opinion=text, subject=unit)
    return confirmation


# ---- unlocking ---------------------------------------------------------------------------------------------------


def request_unlock(unit: Unit, quarter: Quarter, reason: str, *, actor) -> UnlockRequest:
    """申请解锁 an approved quarter, with a reason; the province decides."""
    report = report_of(unit, quarter)
    WORKFLOW.check(report, "request_unlock", actor, subject=unit)
    pending = db.session.scalar(
        sa.select(UnlockRequest.id).where(
            UnlockRequest.report_id == report.id, UnlockRequest.state == UnlockState.PENDING
        )
    )
    if pending is not None:
        raise ServiceError("已有一份解锁申请在等待省协作办审批。")
    request = UnlockRequest(report=report, reason=WORKFLOW.opinion("request_unlock", reason),
                            requested_by_name=actor_name(actor))  # fmt: skip
    db.session.add(request)
    WORKFLOW.take(report, "request_unlock", actor=actor, opinion=request.reason, subject=unit)
    return request


def pending_unlock(report: QuarterReport | None) -> UnlockRequest | None:
    if report is None:
        return None
    return db.session.scalar(
        sa.select(UnlockRequest).where(UnlockRequest.report_id == report.id, UnlockRequest.state == UnlockState.PENDING)
    )


def decide_unlock(unit: Unit, quarter: Quarter, request_id: int, *, grant: bool, note: str = "", actor):
    """The province grants (the quarter returns to filling in, the lock is lifted, approved reports above are
    marked as needing review) or refuses (with a reason) an unlock request."""
    report = report_of(unit, quarter)
    step = "grant_unlock" if grant else "refuse_unlock"
    WORKFLOW.check(report, step, actor, subject=unit)
    request = pending_unlock(report)
    if request is None or request.id != request_id:
        raise ServiceError("该解锁申请不存在或已审批。")
    note = WORKFLOW.opinion(step, note)
    request.state = UnlockState.GRANTED if grant else UnlockState.REFUSED
    request.decided_by_name, request.decision_note = actor_name(actor), note
    request.decided_at = utcnow()
    WORKFLOW.take(report, step, actor=actor, opinion=note, subject=unit)
    if not grant:
        return request
    db.session.execute(
        sa.delete(QuarterLock).where(
            QuarterLock.unit_id == unit.id, QuarterLock.year == quarter.year, QuarterLock.quarter == quarter.number
        )
    )
    for parent in (unit.prefecture, unit.province):
        above = report_of(parent, quarter) if parent is not None and parent.id != unit.id else None
        if above is not None and above.state is ReportState.APPROVED and not above.needs_review:
            above.needs_review = True
            text = f"{unit.name}{quarter.label}报表已解锁，本报表的数据可能变化。"
            WORKFLOW.take(above, "needs_review", actor=actor, opinion=text)
    return request


# ---- deadlines ---------------------------------------------------------------------------------------------------


def due_date(quarter: Quarter) -> date:
    """The day a quarter's report is due: ``REPORT_DUE_DAYS`` (default 10) days after the quarter's end."""
    return quarter.end + timedelta(days=int(current_app.config.get("REPORT_DUE_DAYS", 10)))


def confirm_deadline(quarter: Quarter) -> date:
    """The last day the East liaisons may confirm or dispute a quarter's figures: ``CONFIRM_WINDOW_DAYS`` (default
    15) after the report's due date, whether or not the report has been approved by then."""
    return due_date(quarter) + timedelta(days=int(current_app.config.get("CONFIRM_WINDOW_DAYS", 15)))


def pairings_of(unit: Unit, quarter: Quarter) -> list[Pairing]:
    """The county's pairings valid during the quarter: the East partners that confirm its figures."""
    stmt = (
        sa.select(Pairing)
        .where(
            Pairing.west_unit_id == unit.id, overlaps(Pairing.valid_from, Pairing.valid_to, quarter.start, quarter.end)
        )
        .order_by(Pairing.valid_from, Pairing.id)
    )
    return list(db.session.scalars(stmt))


def confirmations_open(quarter: Quarter, today: date | None = None) -> bool:
    return (today or date.today()) <= confirm_deadline(quarter)


def is_overdue(state: ReportState, quarter: Quarter, today: date | None = None) -> bool:
    """Not yet submitted by the due date."""
    return state in OPEN_STATES and (today or date.today()) > due_date(quarter)
