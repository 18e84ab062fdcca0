"""A problem in the rectification ledger (整改台账), the records it concerns, its progress and its steps.

A problem lies in the unit it concerns: a Sichuan county, a prefecture or the province (``unit_id``), and may
belong to a pairing (an East–West cooperation problem the East partner reported or shares). It is closed (已销号)
only when both sides have signed it off (双销号): the responsible local office and the supervising office above
it (``permissions.can_close_locally`` / ``can_close_as_supervisor``); the database refuses a closed row without
both sign-offs.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.evidence import attachable
from registry.kernel.database import TimestampMixin, UTCDateTime, VersionedMixin, enum_column, utcnow
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.scoping import RecordScope
from registry.kernel.workflow import Opinion, Transition, Workflow
from registry.permissions import can_review_problem


class Source(LabelledEnum):
    NATIONAL = "national"
    POST_EVALUATION = "post_evaluation"
    AUDIT = "audit"
    INSPECTION = "inspection"
    SUPERVISION = "supervision"
    SELF_CHECK = "self_check"
    EAST_FEEDBACK = "east_feedback"


Source.LABELS = {
    Source.NATIONAL: "国家考核",
    Source.POST_EVALUATION: "后评估",
    Source.AUDIT: "审计",
    Source.INSPECTION: "巡视",
    Source.SUPERVISION: "督查",
    Source.SELF_CHECK: "自查",
    Source.EAST_FEEDBACK: "东部反馈",
}


class Category(LabelledEnum):
    FUNDS = "funds"
    PROJECT = "project"
    ASSET = "asset"
    DATA = "data"
    LABOUR = "labour"
    CONSUMPTION = "consumption"
    CONDUCT = "conduct"
    OTHER = "other"


Category.LABELS = {
    Category.FUNDS: "资金",
    Category.PROJECT: "项目",
    Category.ASSET: "资产",
    Category.DATA: "数据",
    Category.LABOUR: "劳务",
    Category.CONSUMPTION: "消费",
    Category.CONDUCT: "作风",
    Category.OTHER: "其他",
}


class State(LabelledEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    REQUESTED = "requested"
    CLOSED = "closed"
    RETURNED = "returned"


State.LABELS = {
    State.OPEN: "未整改",
    State.IN_PROGRESS: "整改中",
    State.REQUESTED: "申请销号",
    State.CLOSED: "已销号",
    State.RETURNED: "退回",
}
#: States in which the responsible unit is still rectifying (may add progress, may ask for closing).
WORKING = frozenset({State.OPEN, State.IN_PROGRESS, State.RETURNED})


class StepAction(LabelledEnum):
    CREATE = "create"
    PROGRESS = "progress"
    REQUEST = "request"
    SIGN_LOCAL = "sign_local"
    SIGN_SUPERVISOR = "sign_supervisor"
    CLOSE = "close"
    RETURN = "return"


StepAction.LABELS = {
    StepAction.CREATE: "登记",
    StepAction.PROGRESS: "报送进展",
    StepAction.REQUEST: "申请销号",
    StepAction.SIGN_LOCAL: "责任单位审核销号",
    StepAction.SIGN_SUPERVISOR: "主管部门审核销号",
    StepAction.CLOSE: "已销号（双销号完成）",
    StepAction.RETURN: "退回",
}


def office_of(actor) -> str:
    """The office a step was taken for, as the problem's page shows it ("昭觉县县级协作办")."""
    if actor is None:
        return "系统"
    unit = actor.scope_unit
    return f"{unit.name}{actor.role.label}" if unit is not None else actor.role.label


def _step_row(problem, transition, _before, actor, comment: str, _on) -> "ProblemStep":
    step = ProblemStep(action=transition.action, to_state=problem.state, comment=comment[:500],
                       actor_id=getattr(actor, "id", None), office=office_of(actor))  # fmt: skip
    problem.steps.append(step)
    return step


def _not_requested(doing: str):
    return lambda state: f"问题{state.label}，不在申请销号状态，不能{doing}。"


_REVIEWER = "您不是这个问题的责任单位审核人或主管部门审核人，不能{}。"
#: The way to 销号: who takes each step (the gate's ``can_review_problem`` for both sides of 双销号; the scope and
#: the locked quarters of the steps' days are asked by the services through ``authorize_step``).
WORKFLOW = Workflow(
    "problem", State, step=_step_row, describe=lambda problem, text: f"{text}：{problem.title}",
    transitions=[
        Transition("create", StepAction.CREATE.label, to=State.OPEN, action=StepAction.CREATE),
        Transition("progress", StepAction.PROGRESS.label, sources=WORKING, to=State.IN_PROGRESS,
                   action=StepAction.PROGRESS, audit="progress",
                   wrong_state=lambda state: f"问题{state.label}，不能再报送进展。"),
        Transition("request", StepAction.REQUEST.label, sources=frozenset({State.IN_PROGRESS, State.RETURNED}),
                   to=State.REQUESTED, action=StepAction.REQUEST, audit="request_close",
                   wrong_state=lambda state: f"问题{state.label}，不能申请销号（请先报送整改进展）。"),
        *(Transition(f"sign_{side}", action.label, sources=frozenset({State.REQUESTED}), action=action,
                     may=can_review_problem, refusal=_REVIEWER.format("审核销号"), audit="sign_off",
                     wrong_state=_not_requested("审核销号"))
          for side, action in (("local", StepAction.SIGN_LOCAL), ("supervisor", StepAction.SIGN_SUPERVISOR))),
        Transition("close", StepAction.CLOSE.label, sources=frozenset({State.REQUESTED}), to=State.CLOSED,
                   action=StepAction.CLOSE, audit="sign_off"),
        Transition("return", StepAction.RETURN.label, sources=frozenset({State.REQUESTED}), to=State.RETURNED,
                   action=StepAction.RETURN, may=can_review_problem, refusal=_REVIEWER.format("退回"), audit="return",
                   wrong_state=_not_requested("退回"),
                   opinion=Opinion("退回理由", limit=500, field="reason", too_long="退回理由不能超过 500 个字。")),
    ],
)  # fmt: skip


class Problem(TimestampMixin, VersionedMixin, db.Model):
    """One problem of the ledger, from finding to 销号."""

    #: Dated by the day it was found: a problem found in a quarter the province has locked is neither registered,
    #: changed nor re-imported changed (its progress entries and steps are dated by their own days: services).
    __scope__ = RecordScope(county="unit_id", pairing="pairing_id", write="problems.edit", noun="整改问题",
                            date="found_on")  # fmt: skip

    __tablename__ = "problems"
    __table_args__ = (
        WORKFLOW.state_check(),
        sa.CheckConstraint(
            "state <> 'closed' OR (local_signed_at IS NOT NULL AND supervisor_signed_at IS NOT NULL "
            "AND closed_on IS NOT NULL)",
            name="closed_needs_both_signoffs",
        ),
        sa.CheckConstraint("state <> 'returned' OR return_reason <> ''", name="returned_has_reason"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        sa.CheckConstraint("rectified_fen >= 0", name="rectified_not_negative"),
        sa.CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
        sa.Index("ix_problems_unit_state", "unit_id", "state"),
        sa.Index("ix_problems_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[Source] = mapped_column(enum_column(Source, 20), index=True)
    year: Mapped[int] = mapped_column(index=True)
    #: 批次, e.g. "2023年度国家考核反馈".
    batch: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    found_on: Mapped[date]
    description: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[Category] = mapped_column(enum_column(Category, 20), index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: The Sichuan county, prefecture or province the problem concerns.
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    #: The pairing an East–West cooperation problem belongs to (its East partner's liaisons see it), if any.
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    lead_unit: Mapped[str] = mapped_column(sa.String(200), default="")
    responsible_unit: Mapped[str] = mapped_column(sa.String(200), default="")
    responsible_person: Mapped[str] = mapped_column(sa.String(50), default="")
    measures: Mapped[str] = mapped_column(sa.Text, default="")
    deadline: Mapped[date | None]
    state: Mapped[State] = mapped_column(enum_column(State, 20), default=State.OPEN)
    #: 整改到位资金: the sum of the progress entries' amounts recovered or put right.
    rectified_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    local_signed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    local_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    supervisor_signed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    supervisor_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_on: Mapped[date | None]
    return_reason: Mapped[str] = mapped_column(sa.String(500), default="")

    unit: Mapped["Unit"] = relationship(foreign_keys=[unit_id])  # noqa: F821
    pairing: Mapped["Pairing | None"] = relationship()  # noqa: F821
    local_signed_by: Mapped["User | None"] = relationship(foreign_keys=[local_signed_by_id])  # noqa: F821
    supervisor_signed_by: Mapped["User | None"] = relationship(foreign_keys=[supervisor_signed_by_id])  # noqa: F821
    links: Mapped[list["ProblemLink"]] = relationship(
        back_populates="problem", cascade="all, delete-orphan", order_by="(ProblemLink.record_type, ProblemLink.id)"
    )
    progress: Mapped[list["ProgressEntry"]] = relationship(
        back_populates="problem", cascade="all, delete-orphan", order_by="(ProgressEntry.entry_on, ProgressEntry.id)"
    )
    steps: Mapped[list["ProblemStep"]] = relationship(
        back_populates="problem", cascade="all, delete-orphan", order_by="ProblemStep.id"
    )

    AUDIT_LABELS = {
        "source": "问题来源",
        "year": "年度",
        "batch": "批次",
        "found_on": "发现日期",
        "description": "问题描述",
        "category": "类别",
        "amount_fen": "涉及金额",
        "unit_id": "涉及单位",
        "pairing_id": "结对关系",
        "lead_unit": "牵头单位",
        "responsible_unit": "责任单位",
        "responsible_person": "责任人",
        "measures": "整改措施",
        "deadline": "整改时限",
        "state": "状态",
        "rectified_fen": "整改到位资金",
        "return_reason": "退回理由",
        "closed_on": "销号日期",
        "local_signed": "责任单位审核销号",
        "supervisor_signed": "主管部门审核销号",
    }

    @property
    def title(self) -> str:
        text = " ".join(self.description.split())
        return text if len(text) <= 40 else text[:40] + "…"

    def __str__(self) -> str:
        """How pages that know only the record name it (an evidence page of a progress entry)."""
        return f"整改问题 {self.id}：{self.title}"

    def is_overdue(self, today: date | None = None) -> bool:
        return self.state is not State.CLOSED and self.deadline is not None and self.deadline < (today or date.today())


class ProblemLink(db.Model):
    """A record the problem concerns: a project, a fund transaction, a placement, a purchase, an indicator entry…
    named generically by its table and id; the gate decides who may link it and who sees it."""

    __tablename__ = "problem_links"
    __table_args__ = (
        sa.UniqueConstraint("problem_id", "record_type", "record_id", name="uq_problem_links_record"),
        sa.Index("ix_problem_links_record", "record_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(sa.ForeignKey("problems.id", ondelete="CASCADE"), index=True)
    record_type: Mapped[str] = mapped_column(sa.String(50))
    record_id: Mapped[int]

    problem: Mapped[Problem] = relationship(back_populates="links")


@attachable(follows="problem", date="entry_on", noun="整改进展")
class ProgressEntry(db.Model):
    """A dated report of what was done (整改进展), with the money recovered or put right by it; its evidence files
    (佐证材料) are attached to it (``registry.evidence``: read and written through the problem's scope)."""

    __tablename__ = "problem_progress"
    __table_args__ = (sa.CheckConstraint("rectified_fen >= 0", name="rectified_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(sa.ForeignKey("problems.id", ondelete="CASCADE"), index=True)
    entry_on: Mapped[date]
    text: Mapped[str] = mapped_column(sa.Text)
    rectified_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    problem: Mapped[Problem] = relationship(back_populates="progress")
    actor: Mapped["User | None"] = relationship()  # noqa: F821


class ProblemStep(db.Model):
    """One step of the problem's way to 销号, with who took it and why (a return's reason)."""

    __tablename__ = "problem_steps"
    __table_args__ = (WORKFLOW.state_check("to_state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    problem_id: Mapped[int] = mapped_column(sa.ForeignKey("problems.id", ondelete="CASCADE"), index=True)
    action: Mapped[StepAction] = mapped_column(enum_column(StepAction, 20))
    to_state: Mapped[State] = mapped_column(enum_column(State, 20))
    comment: Mapped[str] = mapped_column(sa.String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    office: Mapped[str] = mapped_column(sa.String(200), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    problem: Mapped[Problem] = relationship(back_populates="steps")
    actor: Mapped["User | None"] = relationship()  # noqa: F821
