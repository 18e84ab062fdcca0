"""Disclosure notices (公告公示), their posting places and the complaints they received.

A notice is drafted from a county's project and fund records, published (its rows frozen as a snapshot and its PDF
rendered once, so later record changes never alter what was posted) and possibly withdrawn with a reason.

The window is inclusive: a notice from 1 March to 10 March is posted for 10 days, the guidance's minimum
("原则上公开公告时间不得少于10天"), so the database requires ``window_end - window_start >= 9``.
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
from registry.permissions import write_gate

#: The guidance's minimum: at least 10 days, counting the first and the last.
MIN_WINDOW_DAYS = 10
#: The national poverty-alleviation supervision line, printed on every notice next to the local number.
NATIONAL_PHONE = "12317"


class NoticeType(LabelledEnum):
    ANNUAL_PLAN = "annual_plan"
    ARRANGEMENT = "arrangement"
    ALLOCATION = "allocation"
    COMPLETION = "completion"


NoticeType.LABELS = {
    NoticeType.ANNUAL_PLAN: "年度资金项目计划",
    NoticeType.ARRANGEMENT: "项目安排",
    NoticeType.ALLOCATION: "资金分配结果",
    NoticeType.COMPLETION: "项目实施结果",
}


class NoticeState(LabelledEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


NoticeState.LABELS = {NoticeState.DRAFT: "草稿", NoticeState.PUBLISHED: "已发布", NoticeState.WITHDRAWN: "已撤回"}
#: A notice's way: drafted, published (frozen) and perhaps withdrawn with its reason; whoever may write the notice
#: (the write gate: its county). The notice's own columns date the steps (``published_at``, ``withdrawn_at``).
WORKFLOW = Workflow(
    "notice", NoticeState, audit_opinion="withdrawal_reason",
    transitions=[
        Transition("draft", "起草", to=NoticeState.DRAFT),
        Transition("publish", "发布", sources=frozenset({NoticeState.DRAFT}), to=NoticeState.PUBLISHED,
                   may=write_gate, audit="status", wrong_state="该公告{state}，不能再发布。"),
        Transition("withdraw", "撤回", sources=frozenset({NoticeState.PUBLISHED}), to=NoticeState.WITHDRAWN,
                   may=write_gate, audit="status", wrong_state="只有已发布的公告可以撤回。",
                   opinion=Opinion("撤回原因", field="reason")),
    ],
)  # fmt: skip


class ComplaintChannel(LabelledEnum):
    PHONE = "phone"
    LETTER = "letter"
    VISIT = "visit"
    ONLINE = "online"
    OTHER = "other"


ComplaintChannel.LABELS = {
    ComplaintChannel.PHONE: "电话",
    ComplaintChannel.LETTER: "来信",
    ComplaintChannel.VISIT: "来访",
    ComplaintChannel.ONLINE: "网络留言",
    ComplaintChannel.OTHER: "其他",
}


def _window_check(dialect_sql: str, dialect: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(dialect_sql, name="window_length").ddl_if(dialect=dialect)


class Notice(TimestampMixin, VersionedMixin, db.Model):
    """One disclosure notice of one Sichuan county ("谁分配、谁使用、谁公开": the county's office issues it)."""

    __scope__ = RecordScope(county="county_id", write="disclosure.manage", noun="公告")

    __tablename__ = "disclosure_notices"
    __table_args__ = (
        WORKFLOW.state_check(),
        # Date arithmetic differs: PostgreSQL subtracts dates to days, SQLite needs julianday().
        _window_check("window_end - window_start >= 9", "postgresql"),
        _window_check("julianday(window_end) - julianday(window_start) >= 9", "sqlite"),
        sa.CheckConstraint(
            "state = 'draft' OR (snapshot IS NOT NULL AND public_no IS NOT NULL AND published_at IS NOT NULL)",
            name="published_has_snapshot",
        ),
        sa.CheckConstraint("state <> 'withdrawn' OR withdrawal_reason <> ''", name="withdrawn_has_reason"),
        sa.Index("ix_disclosure_notices_county_year", "county_id", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The notice's public number, random, assigned at publication: the only way a public URL names it.
    public_no: Mapped[str | None] = mapped_column(sa.String(16), unique=True)
    county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    year: Mapped[int]
    type: Mapped[NoticeType] = mapped_column(enum_column(NoticeType, 20))
    title: Mapped[str] = mapped_column(sa.String(200))
    issuing_unit: Mapped[str] = mapped_column(sa.String(200))
    #: The county's own supervision number (DISCLOSURE_PHONE by default); 12317 is always printed too.
    local_phone: Mapped[str] = mapped_column(sa.String(40), default="")
    window_start: Mapped[date]
    window_end: Mapped[date]
    state: Mapped[NoticeState] = mapped_column(enum_column(NoticeState, 20), default=NoticeState.DRAFT, index=True)
    #: What the notice says, frozen at publication: header fields, the disclosed columns and rows (see documents).
    snapshot: Mapped[dict | None] = mapped_column(sa.JSON)
    #: Titles, places and project names of the snapshot, for the public search.
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    #: The A4 PDF rendered from the snapshot at publication: what is posted and downloaded, byte for byte.
    pdf: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawal_reason: Mapped[str] = mapped_column(sa.Text, default="")

    county: Mapped["Unit"] = relationship()  # noqa: F821
    items: Mapped[list["NoticeItem"]] = relationship(
        back_populates="notice", cascade="all, delete-orphan", order_by="NoticeItem.position"
    )
    postings: Mapped[list["Posting"]] = relationship(
        back_populates="notice", cascade="all, delete-orphan", order_by="(Posting.posted_on, Posting.id)"
    )
    complaints: Mapped[list["Complaint"]] = relationship(
        back_populates="notice", cascade="all, delete-orphan", order_by="(Complaint.received_on, Complaint.id)"
    )

    AUDIT_LABELS = {
        "county_id": "县(市、区)",
        "year": "年度",
        "type": "公告类型",
        "title": "标题",
        "issuing_unit": "发布单位",
        "local_phone": "本地监督电话",
        "window_start": "公示开始",
        "window_end": "公示结束",
        "state": "状态",
        "withdrawal_reason": "撤回原因",
    }

    @property
    def window_days(self) -> int:
        return (self.window_end - self.window_start).days + 1

    def __repr__(self):
        return f"<Notice {self.id} {self.type} {self.state}>"

    def __str__(self):
        return self.title


class NoticeItem(db.Model):
    """A project a notice covers, chosen when it was drafted (the rows come from it until publication)."""

    __tablename__ = "disclosure_notice_items"
    __table_args__ = (sa.UniqueConstraint("notice_id", "project_id", name="uq_disclosure_notice_items_project"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(sa.ForeignKey("disclosure_notices.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)

    notice: Mapped[Notice] = relationship(back_populates="items")


# Photos of the notice on the board are evidence files of the posting, in the notice's scope (docs/architecture.md,
# "Evidence files"): staff who may write the notice upload them; the public never sees them.
@attachable(follows="notice", noun="公告张贴记录")
class Posting(db.Model):
    """Where and when a published notice was put up (村/乡镇/县 公开栏, a portal); its photos are evidence files."""

    __tablename__ = "disclosure_postings"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(sa.ForeignKey("disclosure_notices.id", ondelete="CASCADE"), index=True)
    place: Mapped[str] = mapped_column(sa.String(200))
    posted_on: Mapped[date]
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    notice: Mapped[Notice] = relationship(back_populates="postings")

    AUDIT_LABELS = {"place": "张贴地点", "posted_on": "张贴日期", "note": "说明"}


class Complaint(TimestampMixin, VersionedMixin, db.Model):
    """A complaint or question about a notice and how it was answered (staff only: never on a public page)."""

    __tablename__ = "disclosure_complaints"
    __table_args__ = (
        sa.CheckConstraint(
            "(answered_on IS NULL AND answer = '') OR (answered_on IS NOT NULL AND answer <> '')",
            name="answer_dated",
        ),
        sa.CheckConstraint("answered_on IS NULL OR answered_on >= received_on", name="answer_after_receipt"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(sa.ForeignKey("disclosure_notices.id", ondelete="CASCADE"), index=True)
    received_on: Mapped[date]
    channel: Mapped[ComplaintChannel] = mapped_column(enum_column(ComplaintChannel, 20))
    content: Mapped[str] = mapped_column(sa.Text)
    answer: Mapped[str] = mapped_column(sa.Text, default="")
    answered_on: Mapped[date | None]

    notice: Mapped[Notice] = relationship(back_populates="complaints")

    AUDIT_LABELS = {
        "received_on": "收到日期",
        "channel": "渠道",
        "content": "内容",
        "answer": "答复",
        "answered_on": "答复日期",
    }

    @property
    def is_open(self) -> bool:
        return self.answered_on is None


class PublicHit(db.Model):
    """Requests to the public pages per client address and minute (the rate limiter's counters)."""

    __tablename__ = "disclosure_public_hits"

    ip: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
