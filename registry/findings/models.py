"""A proposal (核查线索): a problem a check found in the records, for staff to accept into the ledger or dismiss.

``(rule, key)`` is unique: re-running a check finds the same proposal again instead of adding a second one, and a
dismissed proposal stays dismissed.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import TimestampMixin, UTCDateTime, VersionedMixin, enum_column, utcnow
from registry.extensions import db
from registry.labels import LabelledEnum
from registry.scoping import RecordScope


class ProposalState(LabelledEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


ProposalState.LABELS = {
    ProposalState.PROPOSED: "待处理",
    ProposalState.ACCEPTED: "已纳入台账",
    ProposalState.DISMISSED: "已排除",
}


class Proposal(TimestampMixin, VersionedMixin, db.Model):
    __scope__ = RecordScope(county="unit_id", write="problems.edit", noun="核查线索")

    __tablename__ = "problem_proposals"
    __table_args__ = (
        sa.UniqueConstraint("rule", "key", name="uq_problem_proposals_rule_key"),
        sa.CheckConstraint("state IN ('proposed', 'accepted', 'dismissed')", name="state_known"),
        sa.CheckConstraint("state <> 'dismissed' OR reason <> ''", name="dismissed_has_reason"),
        sa.CheckConstraint("state <> 'accepted' OR problem_id IS NOT NULL", name="accepted_has_problem"),
        sa.CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        sa.Index("ix_problem_proposals_unit_state", "unit_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The check that found it (``findings.rules.RULES``).
    rule: Mapped[str] = mapped_column(sa.String(40))
    #: What it is about, stable between runs (e.g. "project:12").
    key: Mapped[str] = mapped_column(sa.String(200))
    #: The Sichuan county (or prefecture) the records lie in.
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    title: Mapped[str] = mapped_column(sa.String(500))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: The records that triggered it: [[table, id], …].
    records: Mapped[list] = mapped_column(sa.JSON, default=list)
    state: Mapped[ProposalState] = mapped_column(enum_column(ProposalState, 20), default=ProposalState.PROPOSED)
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    problem_id: Mapped[int | None] = mapped_column(sa.ForeignKey("problems.id"))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The last run that still found it (a proposal no longer found is shown as such).
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    unit: Mapped["Unit"] = relationship()  # noqa: F821
    decided_by: Mapped["User | None"] = relationship()  # noqa: F821

    AUDIT_LABELS = {"state": "状态", "reason": "排除理由", "problem_id": "整改问题"}
