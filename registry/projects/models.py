"""Projects, their dated status changes, and fund transactions by source and stage (amounts in 分)."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.evidence import attachable
from registry.kernel.database import TimestampMixin, UTCDateTime, VersionedMixin, enum_column, utcnow
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.scoping import RecordScope


class ProjectCategory(LabelledEnum):
    INDUSTRY = "industry"
    EMPLOYMENT = "employment"
    EDUCATION = "education"
    HEALTH = "health"
    INFRASTRUCTURE = "infrastructure"
    RURAL_CONSTRUCTION = "rural_construction"
    RELOCATION = "relocation"
    CONSUMPTION = "consumption"
    TALENT = "talent"
    OTHER = "other"


ProjectCategory.LABELS = {
    ProjectCategory.INDUSTRY: "产业发展",
    ProjectCategory.EMPLOYMENT: "就业帮扶",
    ProjectCategory.EDUCATION: "教育",
    ProjectCategory.HEALTH: "医疗卫生",
    ProjectCategory.INFRASTRUCTURE: "基础设施",
    ProjectCategory.RURAL_CONSTRUCTION: "乡村建设",
    ProjectCategory.RELOCATION: "易地搬迁后续扶持",
    ProjectCategory.CONSUMPTION: "消费帮扶",
    ProjectCategory.TALENT: "人才支援",
    ProjectCategory.OTHER: "其他",
}


class DeliveryMode(LabelledEnum):
    TURNKEY = "turnkey"
    CHEQUE = "cheque"


DeliveryMode.LABELS = {DeliveryMode.TURNKEY: "交钥匙", DeliveryMode.CHEQUE: "交支票"}


class FundingLevel(LabelledEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWN_VILLAGE = "town_village"


FundingLevel.LABELS = {
    FundingLevel.PROVINCE: "省级",
    FundingLevel.CITY: "市级",
    FundingLevel.COUNTY: "县级",
    FundingLevel.TOWN_VILLAGE: "镇村结对",
}


class ProjectStatus(LabelledEnum):
    RESERVE = "reserve"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    HANDED_OVER = "handed_over"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


ProjectStatus.LABELS = {
    ProjectStatus.RESERVE: "储备",
    ProjectStatus.APPROVED: "立项",
    ProjectStatus.IN_PROGRESS: "实施中",
    ProjectStatus.COMPLETED: "已完工",
    ProjectStatus.ACCEPTED: "已验收",
    ProjectStatus.HANDED_OVER: "资产已移交",
    ProjectStatus.SUSPENDED: "暂停",
    ProjectStatus.TERMINATED: "终止",
}


class FundSource(LabelledEnum):
    EAST_FISCAL = "east_fiscal"
    SOCIAL = "social"
    LOCAL_MATCHING = "local_matching"
    OTHER = "other"


FundSource.BITS = {"east_fiscal": 1, "social": 2, "local_matching": 4, "other": 8}
FundSource.bit = property(lambda self: FundSource.BITS[self.value])
FundSource.LABELS = {
    FundSource.EAST_FISCAL: "东部财政援助资金",
    FundSource.SOCIAL: "社会帮扶资金",
    FundSource.LOCAL_MATCHING: "地方配套资金",
    FundSource.OTHER: "其他资金",
}


class FundStage(LabelledEnum):
    PLANNED = "planned"
    ARRIVED = "arrived"
    DISBURSED = "disbursed"


FundStage.LABELS = {FundStage.PLANNED: "计划", FundStage.ARRIVED: "到位", FundStage.DISBURSED: "拨付"}


@attachable
class Project(TimestampMixin, VersionedMixin, db.Model):
    """An assistance project in one Sichuan county, under one pairing (and so one programme)."""

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "帮扶项目"

    __scope__ = RecordScope(county="county_id", pairing="pairing_id", write="projects.edit", noun="项目")

    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint("beneficiaries >= 0 AND beneficiaries_lifted >= 0", name="beneficiaries_positive"),
        sa.CheckConstraint("beneficiaries_lifted <= beneficiaries", name="lifted_within_total"),
        sa.Index("ix_projects_county_year", "county_id", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Human-readable unique code, e.g. ZC-513431-2024-003.
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200), index=True)
    county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    township_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    village_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    pairing_id: Mapped[int] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    #: Always the pairing's programme; kept on the row for filtering and reporting.
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    year: Mapped[int] = mapped_column(index=True)
    category: Mapped[ProjectCategory] = mapped_column(enum_column(ProjectCategory, 30), index=True)
    delivery_mode: Mapped[DeliveryMode] = mapped_column(enum_column(DeliveryMode, 20))
    funding_level: Mapped[FundingLevel] = mapped_column(enum_column(FundingLevel, 20))
    implementing_unit: Mapped[str] = mapped_column(sa.String(200), default="")
    responsible_person: Mapped[str] = mapped_column(sa.String(50), default="")
    planned_start: Mapped[date]
    planned_finish: Mapped[date | None]
    actual_start: Mapped[date | None]
    actual_finish: Mapped[date | None]
    #: 带动人数 and 其中脱贫人口.
    beneficiaries: Mapped[int] = mapped_column(default=0)
    beneficiaries_lifted: Mapped[int] = mapped_column(default=0)
    #: 联农带农机制.
    farmer_benefit: Mapped[str] = mapped_column(sa.Text, default="")
    performance_targets: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[ProjectStatus] = mapped_column(
        enum_column(ProjectStatus, 20), default=ProjectStatus.RESERVE, index=True
    )
    #: Running totals of all sources, derived from the transactions by services.refresh_fund_totals (never typed,
    #: never part of an edit, so they do not bump the version).
    planned_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    arrived_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    disbursed_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Bit set of the fund sources the project has money from (FundSource.bit), derived like the totals.
    fund_sources: Mapped[int] = mapped_column(default=0)

    county: Mapped["Unit"] = relationship(foreign_keys=[county_id])  # noqa: F821
    township: Mapped["Unit | None"] = relationship(foreign_keys=[township_id])  # noqa: F821
    village: Mapped["Unit | None"] = relationship(foreign_keys=[village_id])  # noqa: F821
    pairing: Mapped["Pairing"] = relationship()  # noqa: F821
    programme: Mapped["Programme"] = relationship()  # noqa: F821
    status_changes: Mapped[list["StatusChange"]] = relationship(
        back_populates="project", order_by="StatusChange.id", cascade="all, delete-orphan"
    )
    transactions: Mapped[list["FundTransaction"]] = relationship(
        back_populates="project",
        order_by="(FundTransaction.occurred_on, FundTransaction.id)",
        cascade="all, delete-orphan",
    )

    AUDIT_LABELS = {
        "code": "项目编号",
        "name": "项目名称",
        "county_id": "所在县",
        "township_id": "乡镇",
        "village_id": "村",
        "pairing_id": "结对关系",
        "programme_id": "协作类型",
        "year": "年度",
        "category": "项目类别",
        "delivery_mode": "实施方式",
        "funding_level": "资金层级",
        "implementing_unit": "实施单位",
        "responsible_person": "责任人",
        "planned_start": "计划开工",
        "planned_finish": "计划完工",
        "actual_start": "实际开工",
        "actual_finish": "实际完工",
        "beneficiaries": "带动人数",
        "beneficiaries_lifted": "其中脱贫人口",
        "farmer_benefit": "联农带农机制",
        "performance_targets": "绩效目标",
        "status": "状态",
    }

    def __repr__(self):
        return f"<Project {self.id} {self.code}>"

    def __str__(self):
        return f"{self.code} {self.name}"


class StatusChange(db.Model):
    """One dated step of a project's lifecycle (append-only; the audit log has the same event)."""

    __tablename__ = "project_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[ProjectStatus | None] = mapped_column(enum_column(ProjectStatus, 20))
    to_status: Mapped[ProjectStatus] = mapped_column(enum_column(ProjectStatus, 20))
    #: The day the step happened (立项批复日, 开工日…), as entered; not the time it was recorded.
    changed_on: Mapped[date]
    note: Mapped[str] = mapped_column(sa.Text, default="")
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="status_changes")
    actor: Mapped["User | None"] = relationship()  # noqa: F821


@attachable(follows="project", date="occurred_on", noun="资金记录")
class FundTransaction(TimestampMixin, VersionedMixin, db.Model):
    """Money of one source at one stage on one day: 计划 (planned), 到位 (arrived) or 拨付 (disbursed)."""

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "资金往来"

    __tablename__ = "fund_transactions"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.Index("ix_fund_transactions_project_source", "project_id", "source", "occurred_on"),
        sa.Index("ix_fund_transactions_stage_date", "stage", "occurred_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    source: Mapped[FundSource] = mapped_column(enum_column(FundSource, 20))
    stage: Mapped[FundStage] = mapped_column(enum_column(FundStage, 20))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    occurred_on: Mapped[date]
    #: 文号, voucher or bank reference.
    document_no: Mapped[str] = mapped_column(sa.String(100), default="")
    note: Mapped[str] = mapped_column(sa.String(500), default="")

    project: Mapped[Project] = relationship(back_populates="transactions")

    AUDIT_LABELS = {
        "source": "资金来源",
        "stage": "环节",
        "amount_fen": "金额",
        "occurred_on": "日期",
        "document_no": "文号/凭证",
        "note": "备注",
    }

    def __repr__(self):
        return f"<FundTransaction {self.id} {self.source} {self.stage} {self.amount_fen}>"


class ProjectFunds(db.Model):
    """Running totals of a project's transactions per source (计划/到位/拨付), kept by the fund services.

    Derived data, never typed: ``services.refresh_fund_totals`` rebuilds a project's rows from its
    transactions after every change, in the same transaction. Lists filter and total on this table so they
    need not scan every transaction.
    """

    __tablename__ = "project_fund_totals"

    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[FundSource] = mapped_column(enum_column(FundSource, 20), primary_key=True)
    planned_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    arrived_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    disbursed_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
