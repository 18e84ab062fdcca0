"""A proposal (核查线索): a problem a check found in the records, for staff to accept into the ledger or dismiss.

A proposal is a *group* (``rule``, ``key``): one county's records of one rule and period — the people two counties
both count from one month, one project's idle money, a county's year of purchases without evidence — with its
records in ``problem_proposal_records`` (one row each, read a page at a time, never a JSON list).

At most one proposal of a group is open (待处理; a partial unique index holds it): re-running the checks updates it
(records fixed since drop out, new ones join) instead of adding a second. A decided group (accepted or dismissed)
keeps its records as they were decided; a later run proposes it again only for records it did not name.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import TimestampMixin, UTCDateTime, VersionedMixin, enum_column, utcnow
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.scoping import RecordScope


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
        # One open proposal per group; decided ones stay beside it (a group with new records after a decision).
        sa.Index(
            "uq_problem_proposals_open",
            "rule",
            "key",
            unique=True,
            sqlite_where=sa.text("state = 'proposed'"),
            postgresql_where=sa.text("state = 'proposed'"),
        ),
        sa.Index("ix_problem_proposals_rule_key", "rule", "key"),
        # The list (newest first, by state) and its counts by state, for offices that see the whole province.
        sa.Index("ix_problem_proposals_state_found", "state", "found_at", "id"),
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
    #: How many records (people, purchases, transactions…) it names now: the title's N, the page's count.
    record_count: Mapped[int] = mapped_column(default=0)
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


class ProposalRecord(db.Model):
    """One record a proposal names (``record_type`` = the record's ``__tablename__``, as problem links)."""

    __tablename__ = "problem_proposal_records"
    #: Which proposals name a record: a run keeps a person in the group that first named them.
    __table_args__ = (sa.Index("ix_problem_proposal_records_record", "record_type", "record_id"),)

    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("problem_proposals.id", ondelete="CASCADE"),
                                             primary_key=True)  # fmt: skip
    record_type: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    record_id: Mapped[int] = mapped_column(primary_key=True)
