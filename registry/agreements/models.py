"""Indicators, annual agreements, targets per unit, and dated entries for indicators without a module of their own."""

from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import TimestampMixin, VersionedMixin, enum_column
from registry.kernel.extensions import db
from registry.kernel.scoping import RecordScope


class Measure(StrEnum):
    """How an indicator's values are stored: money in 分, everything else as a count."""

    MONEY = "money"
    COUNT = "count"

    @property
    def label(self) -> str:
        return "金额" if self is Measure.MONEY else "数量"


class Indicator(TimestampMixin, VersionedMixin, db.Model):
    """A measurable clause of the agreement, e.g. 财政援助资金 (万元) or 帮助农村劳动力就业人数 (人)."""

    __tablename__ = "indicators"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable key; built-in indicators are computed by the calculator registered under this key.
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    measure: Mapped[Measure] = mapped_column(enum_column(Measure, 10))
    #: Unit of counts (人, 个, 家, 人次); money is shown in 万元 or 亿元 by level.
    unit: Mapped[str] = mapped_column(sa.String(10), default="")
    #: Indicator this one is a part of (其中脱贫劳动力 ⊂ 帮助农村劳动力就业人数).
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("indicators.id"))
    #: Built-in indicators are computed from their module's records; others from IndicatorEntry rows.
    is_builtin: Mapped[bool] = mapped_column(default=False)
    sort_order: Mapped[int] = mapped_column(default=100)
    is_active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")

    parent: Mapped["Indicator | None"] = relationship(remote_side=[id])

    #: The column the audit trail shows for a reference to one of these (an entry's indicator_id, a parent_id).
    __audit_name__ = "name"
    AUDIT_LABELS = {
        "code": "代码",
        "name": "名称",
        "measure": "计量",
        "unit": "单位",
        "parent_id": "上级指标",
        "sort_order": "排序",
        "is_active": "启用",
        "description": "说明",
    }

    def __repr__(self):
        return f"<Indicator {self.code}>"

    def __str__(self):
        return self.name


class Agreement(TimestampMixin, VersionedMixin, db.Model):
    """The year's cooperation agreement of one programme (浙川 2024 年度东西部协作协议)."""

    __tablename__ = "agreements"
    __table_args__ = (sa.UniqueConstraint("programme_id", "year", name="uq_agreements_programme_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"))
    year: Mapped[int] = mapped_column(index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    signed_on: Mapped[date | None]
    note: Mapped[str] = mapped_column(sa.Text, default="")

    programme: Mapped["Programme"] = relationship()  # noqa: F821
    targets: Mapped[list["Target"]] = relationship(back_populates="agreement", cascade="all, delete-orphan")

    AUDIT_LABELS = {
        "programme_id": "协作类型",
        "year": "年度",
        "title": "名称",
        "signed_on": "签订日期",
        "note": "备注",
    }

    def __repr__(self):
        return f"<Agreement {self.id} {self.year}>"

    def __str__(self):
        return self.title


class Target(TimestampMixin, VersionedMixin, db.Model):
    """A target of the agreement for one unit: the province as a whole, or a county's allocation."""

    __tablename__ = "agreement_targets"
    __table_args__ = (
        sa.UniqueConstraint("agreement_id", "indicator_id", "unit_id", name="uq_agreement_targets_cell"),
        sa.CheckConstraint("value >= 0", name="value_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(sa.ForeignKey("agreements.id", ondelete="CASCADE"), index=True)
    indicator_id: Mapped[int] = mapped_column(sa.ForeignKey("indicators.id"))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"), index=True)
    #: 分 for money indicators, a count otherwise.
    value: Mapped[int] = mapped_column(sa.BigInteger)

    agreement: Mapped[Agreement] = relationship(back_populates="targets")
    indicator: Mapped[Indicator] = relationship()
    unit: Mapped["Unit"] = relationship()  # noqa: F821

    AUDIT_LABELS = {"indicator_id": "指标", "unit_id": "单位", "value": "目标值"}


class IndicatorEntry(TimestampMixin, VersionedMixin, db.Model):
    """A dated achievement of an indicator that has no record module (e.g. 引导企业 and its 到位投资).

    完成率 of such indicators is computed from these entries, never typed.
    """

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "指标登记"

    __scope__ = RecordScope(
        county="county_id", pairing="pairing_id", write="entries.manage", noun="指标完成登记", date="occurred_on"
    )

    __tablename__ = "indicator_entries"
    __table_args__ = (sa.Index("ix_indicator_entries_lookup", "indicator_id", "county_id", "occurred_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    indicator_id: Mapped[int] = mapped_column(sa.ForeignKey("indicators.id"))
    county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    pairing_id: Mapped[int] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    occurred_on: Mapped[date]
    #: 分 for money indicators, a count otherwise.
    value: Mapped[int] = mapped_column(sa.BigInteger)
    #: What the entry is about, e.g. the enterprise's name.
    subject: Mapped[str] = mapped_column(sa.String(200), default="")
    evidence: Mapped[str] = mapped_column(sa.String(200), default="")
    note: Mapped[str] = mapped_column(sa.Text, default="")

    indicator: Mapped[Indicator] = relationship()
    county: Mapped["Unit"] = relationship()  # noqa: F821
    pairing: Mapped["Pairing"] = relationship()  # noqa: F821

    AUDIT_LABELS = {
        "indicator_id": "指标",
        "county_id": "县(市、区)",
        "pairing_id": "结对关系",
        "occurred_on": "日期",
        "value": "数值",
        "subject": "对象",
        "evidence": "佐证",
        "note": "备注",
    }
