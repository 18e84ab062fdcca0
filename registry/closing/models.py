"""A unit's quarterly report as a piece of office work: its state, the steps taken, the East side's confirmations,
unlock requests and the stored versions of record (figures and signed PDF, never changed once written)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.counties.models import UnitKind
from registry.kernel.database import TimestampMixin, UTCDateTime, VersionedMixin, enum_column, utcnow
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.periods import Quarter
from registry.kernel.workflow import Opinion, Transition, Workflow, states_check
from registry.permissions import (
    OutOfScope,
    can_answer_dispute,
    can_approve_report,
    can_request_unlock,
    can_review_report,
    can_submit_report,
)


class ReportState(LabelledEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    RETURNED = "returned"
    UNLOCKED = "unlocked"


ReportState.LABELS = {
    ReportState.DRAFT: "草稿",
    ReportState.SUBMITTED: "已提交",
    ReportState.REVIEWED: "州已审核",
    ReportState.APPROVED: "省已审定",
    ReportState.RETURNED: "已退回",
    ReportState.UNLOCKED: "已解锁",
}
#: States in which the unit is still filling in (填报) its figures, and may submit them.
OPEN_STATES = frozenset({ReportState.DRAFT, ReportState.RETURNED, ReportState.UNLOCKED})


class StepAction(LabelledEnum):
    SUBMIT = "submit"
    REVIEW = "review"
    APPROVE = "approve"
    RETURN = "return"
    CONFIRM = "confirm"
    DISPUTE = "dispute"
    ANSWER = "answer"
    REQUEST_UNLOCK = "request_unlock"
    GRANT_UNLOCK = "grant_unlock"
    REFUSE_UNLOCK = "refuse_unlock"
    NEEDS_REVIEW = "needs_review"


StepAction.LABELS = {
    StepAction.SUBMIT: "提交",
    StepAction.REVIEW: "审核通过",
    StepAction.APPROVE: "审定",
    StepAction.RETURN: "退回",
    StepAction.CONFIRM: "东部确认",
    StepAction.DISPUTE: "东部提出异议",
    StepAction.ANSWER: "答复异议",
    StepAction.REQUEST_UNLOCK: "申请解锁",
    StepAction.GRANT_UNLOCK: "同意解锁",
    StepAction.REFUSE_UNLOCK: "不同意解锁",
    StepAction.NEEDS_REVIEW: "下级解锁，需重新审核",
}


def actor_name(actor) -> str:
    return (getattr(actor, "display_name", "") or getattr(actor, "username", "")) if actor is not None else "系统"


def actor_office(actor) -> str:
    unit = getattr(actor, "scope_unit", None)
    role = getattr(actor, "role", None)
    if unit is not None:
        return f"{unit.name}（{role.label}）" if role is not None else unit.name
    return role.label if role is not None else ""


def _step_row(report, transition, before, actor, comment: str, at) -> "ReportStep":
    step = ReportStep(
        report=report, action=transition.action, from_state=before, to_state=report.state, comment=comment,
        actor_id=getattr(actor, "id", None), actor_name=actor_name(actor), actor_office=actor_office(actor),
    )  # fmt: skip
    if at is not None:
        step.at = at
    db.session.add(step)
    return step


def awaiting_approval(unit) -> frozenset:
    """The state a report is approved from: a county's after the prefecture's review, the others' on submission."""
    return frozenset({ReportState.REVIEWED if unit.kind is UnitKind.COUNTY else ReportState.SUBMITTED})


def _describe(report, text: str) -> str:
    return f"{report.unit.name} {Quarter.of(report.year, report.quarter).label}报表：{text}"


_IN_REVIEW = frozenset({ReportState.SUBMITTED})
#: The East side confirms or disputes from the county's submission, before or after approval, until its deadline
#: (``services.confirm_deadline``); a report sent back or unlocked is being changed and waits for its resubmission.
CONFIRMABLE = frozenset({ReportState.SUBMITTED, ReportState.REVIEWED, ReportState.APPROVED})
_BY_PROVINCE = "只有省协作办可以审定季度报表。"
_BY_PREFECTURE = "只有所属市(州)协作办可以审核该县的季度报表。"
_CANNOT = "该报表当前为“{state}”，不能{label}。"
#: The quarter close, as each step is taken on a unit-quarter's report (the predicates ask of the report's unit).
WORKFLOW = Workflow(
    "quarter_report", ReportState, step=_step_row, describe=_describe, wrong_state=_CANNOT, initial=ReportState.DRAFT,
    refused=OutOfScope, audit_opinion="comment", audit_opinion_limit=500,
    transitions=[
        Transition("submit", "提交", sources=OPEN_STATES, to=ReportState.SUBMITTED, action=StepAction.SUBMIT,
                   may=can_submit_report, refusal="只有本单位的协作办可以提交本单位的季度报表。"),
        Transition("review", StepAction.REVIEW.label, sources=_IN_REVIEW, to=ReportState.REVIEWED,
                   action=StepAction.REVIEW, may=can_review_report, refusal=_BY_PREFECTURE,
                   wrong_state=_CANNOT.replace("{label}", "审核"), opinion=Opinion("审核意见", required=False)),
        Transition("return_review", "退回", sources=_IN_REVIEW, to=ReportState.RETURNED, action=StepAction.RETURN,
                   may=can_review_report, refusal=_BY_PREFECTURE, wrong_state=_CANNOT.replace("{label}", "审核"),
                   opinion=Opinion("退回意见")),
        # The 意见 of an approval is the service's (with the reason for overriding a dispute).
        Transition("approve", "审定", sources=awaiting_approval, to=ReportState.APPROVED, action=StepAction.APPROVE,
                   may=can_approve_report, refusal=_BY_PROVINCE),
        Transition("return", "退回", sources=awaiting_approval, to=ReportState.RETURNED, action=StepAction.RETURN,
                   may=can_approve_report, refusal=_BY_PROVINCE, opinion=Opinion("退回意见")),
        *(Transition(action.value, action.label, sources=CONFIRMABLE, action=action,
                     wrong_state=_CANNOT.replace("{label}", "确认或提出异议（须在县提交之后、确认期限之前）"))
          for action in (StepAction.CONFIRM, StepAction.DISPUTE)),
        Transition("answer", StepAction.ANSWER.label, action=StepAction.ANSWER, may=can_answer_dispute,
                   refusal="只有该县或所属市(州)协作办可以答复异议。"),
        Transition("request_unlock", StepAction.REQUEST_UNLOCK.label, sources=frozenset({ReportState.APPROVED}),
                   action=StepAction.REQUEST_UNLOCK, may=can_request_unlock,
                   refusal="只有本单位或所属市(州)协作办可以申请解锁。", opinion=Opinion("解锁理由"),
                   wrong_state=_CANNOT.replace("{label}", "申请解锁（只有已审定的报表需要解锁）")),
        Transition("grant_unlock", StepAction.GRANT_UNLOCK.label, to=ReportState.UNLOCKED,
                   action=StepAction.GRANT_UNLOCK, may=can_approve_report, refusal="只有省协作办可以审批解锁申请。",
                   opinion=Opinion("不同意的理由", required=False)),
        Transition("refuse_unlock", StepAction.REFUSE_UNLOCK.label, action=StepAction.REFUSE_UNLOCK,
                   may=can_approve_report, refusal="只有省协作办可以审批解锁申请。", opinion=Opinion("不同意的理由")),
        # The system's step on the reports above a county unlocked after their approval.
        Transition("needs_review", StepAction.NEEDS_REVIEW.label, action=StepAction.NEEDS_REVIEW),
    ],
)  # fmt: skip


class QuarterReport(TimestampMixin, VersionedMixin, db.Model):
    """The report of one Sichuan county, prefecture or the province for one quarter, as it moves through the
    offices. Created on its first step; a unit-quarter without a row is a 草稿."""

    __tablename__ = "quarter_reports"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "year", "quarter", name="uq_quarter_reports_unit_quarter"),
        sa.CheckConstraint("quarter BETWEEN 1 AND 4", name="quarter_range"),
        WORKFLOW.state_check(),
        sa.Index("ix_quarter_reports_quarter_state", "year", "quarter", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    year: Mapped[int]
    quarter: Mapped[int]
    state: Mapped[ReportState] = mapped_column(enum_column(ReportState, 20), default=ReportState.DRAFT)
    #: A county below was unlocked after this report was approved: its figures may no longer be those approved.
    needs_review: Mapped[bool] = mapped_column(default=False)

    unit: Mapped["Unit"] = relationship()  # noqa: F821
    steps: Mapped[list["ReportStep"]] = relationship(
        back_populates="report", order_by="ReportStep.id", cascade="all, delete-orphan"
    )
    versions: Mapped[list["ReportVersion"]] = relationship(
        back_populates="report", order_by="ReportVersion.number", cascade="all, delete-orphan"
    )

    AUDIT_LABELS = {"state": "报表状态", "needs_review": "需重新审核"}

    def __repr__(self):
        return f"<QuarterReport {self.unit_id} {self.year}Q{self.quarter} {self.state}>"


class ReportStep(db.Model):
    """One step of a report's timeline (提交, 审核, 退回 with its 意见, 审定, confirmations, unlocks)."""

    __tablename__ = "report_steps"
    __table_args__ = (
        WORKFLOW.state_check("from_state", nullable=True),
        WORKFLOW.state_check("to_state", nullable=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("quarter_reports.id", ondelete="CASCADE"), index=True)
    action: Mapped[StepAction] = mapped_column(enum_column(StepAction, 20))
    from_state: Mapped[ReportState | None] = mapped_column(enum_column(ReportState, 20))
    to_state: Mapped[ReportState | None] = mapped_column(enum_column(ReportState, 20))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(sa.String(100), default="")
    #: The office the actor acted for ("凉山彝族自治州（市(州)协作办）"), as it was at the time.
    actor_office: Mapped[str] = mapped_column(sa.String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    report: Mapped[QuarterReport] = relationship(back_populates="steps")


class ConfirmationState(LabelledEnum):
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    ANSWERED = "answered"


ConfirmationState.LABELS = {
    ConfirmationState.CONFIRMED: "已确认",
    ConfirmationState.DISPUTED: "有异议（待答复）",
    ConfirmationState.ANSWERED: "异议已答复",
}


class Confirmation(TimestampMixin, VersionedMixin, db.Model):
    """双台账 / 双销号: an East partner's confirmation of (or dispute about) a county's figures for a quarter,
    one per pairing valid in that quarter."""

    __tablename__ = "report_confirmations"
    __table_args__ = (
        sa.UniqueConstraint("report_id", "pairing_id", name="uq_report_confirmations_pairing"),
        states_check(ConfirmationState),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("quarter_reports.id", ondelete="CASCADE"), index=True)
    pairing_id: Mapped[int] = mapped_column(sa.ForeignKey("pairings.id"))
    state: Mapped[ConfirmationState] = mapped_column(enum_column(ConfirmationState, 20))
    #: The figures the East side disputes (e.g. "消费帮扶年累计 1200 万元，我方台账为 1100 万元").
    disputed_figures: Mapped[str] = mapped_column(sa.Text, default="")
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    answer: Mapped[str] = mapped_column(sa.Text, default="")
    by_name: Mapped[str] = mapped_column(sa.String(100), default="")
    answered_by_name: Mapped[str] = mapped_column(sa.String(100), default="")

    report: Mapped[QuarterReport] = relationship()
    pairing: Mapped["Pairing"] = relationship()  # noqa: F821

    AUDIT_LABELS = {"state": "确认状态", "disputed_figures": "异议数据", "reason": "异议理由", "answer": "答复"}


class UnlockState(LabelledEnum):
    PENDING = "pending"
    GRANTED = "granted"
    REFUSED = "refused"


UnlockState.LABELS = {UnlockState.PENDING: "待审批", UnlockState.GRANTED: "已同意", UnlockState.REFUSED: "未同意"}


class UnlockRequest(TimestampMixin, VersionedMixin, db.Model):
    """申请解锁: a request, with its reason, to reopen an approved quarter; decided by the province."""

    __tablename__ = "unlock_requests"
    __table_args__ = (states_check(UnlockState),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("quarter_reports.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[UnlockState] = mapped_column(enum_column(UnlockState, 20), default=UnlockState.PENDING)
    requested_by_name: Mapped[str] = mapped_column(sa.String(100), default="")
    decided_by_name: Mapped[str] = mapped_column(sa.String(100), default="")
    decision_note: Mapped[str] = mapped_column(sa.Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    report: Mapped[QuarterReport] = relationship()

    AUDIT_LABELS = {"reason": "解锁理由", "state": "审批结果", "decision_note": "审批意见"}


class ReportVersion(db.Model):
    """Version n of a unit-quarter's report of record: the figures (canonical JSON) and the signed PDF, as approved.

    Written once at approval and never changed: a download serves ``pdf`` byte for byte, and the verification page
    compares a printed or sent copy with it.
    """

    __tablename__ = "report_versions"
    __table_args__ = (sa.UniqueConstraint("report_id", "number", name="uq_report_versions_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("quarter_reports.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    #: The figures the PDF was rendered from (reports.queries.QuarterFigures), as canonical JSON.
    figures_json: Mapped[str] = mapped_column(sa.Text)
    #: SHA-256 of ``figures_json`` (hex): printed in the PDF, so a paper copy can be checked too.
    figures_sha256: Mapped[str] = mapped_column(sa.String(64))
    pdf: Mapped[bytes] = mapped_column(sa.LargeBinary)
    #: SHA-256 of ``pdf`` (hex), the signed bytes as stored.
    pdf_sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: The random key of the public verification URL (the QR code points to it); reveals nothing by itself.
    token: Mapped[str] = mapped_column(sa.String(43), unique=True)
    signer: Mapped[str] = mapped_column(sa.String(300), default="")
    approved_by_name: Mapped[str] = mapped_column(sa.String(100), default="")
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The approvers as printed on the cover: [[step label, name, office, ISO time], …] as JSON.
    approvers_json: Mapped[str] = mapped_column(sa.Text, default="[]")

    report: Mapped[QuarterReport] = relationship(back_populates="versions")
