"""Programmes (协作类型) and pairings (结对关系), both time-bounded."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.counties.models import Unit, UnitKind
from registry.kernel.database import TimestampMixin, VersionedMixin, enum_column
from registry.kernel.extensions import db


class Programme(TimestampMixin, VersionedMixin, db.Model):
    """A cooperation programme, such as 浙川东西部协作 (2021–) or 粤川东西部扶贫协作 (2010–2021)."""

    __tablename__ = "programmes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    #: East province running the programme, when there is one.
    east_province_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")

    east_province: Mapped["Unit | None"] = relationship()  # noqa: F821

    #: The column the audit trail shows for a reference to one of these (programme_id).
    __audit_name__ = "name"
    AUDIT_LABELS = {
        "name": "名称",
        "east_province_id": "东部省份",
        "starts_on": "开始日期",
        "ends_on": "结束日期",
        "is_active": "启用",
        "description": "说明",
    }

    def __repr__(self):
        return f"<Programme {self.id} {self.name}>"

    def __str__(self):
        return self.name


class Pairing(TimestampMixin, VersionedMixin, db.Model):
    """East unit ↔ Sichuan unit within a programme, valid from one date to another (open when current)."""

    @classmethod
    def audit_names(cls, ids) -> dict:
        """How the audit trail names pairings: 东部单位 ↔ 西部单位 (a pairing has no name of its own)."""
        east, west = sa.orm.aliased(Unit), sa.orm.aliased(Unit)
        rows = db.session.execute(
            sa.select(cls.id, east.name, west.name)
            .join(east, east.id == cls.east_unit_id)
            .join(west, west.id == cls.west_unit_id)
            .where(cls.id.in_(list(ids)))
        ).all()
        return {pid: f"{e} ↔ {w}" for pid, e, w in rows}

    __tablename__ = "pairings"
    __table_args__ = (
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
        sa.CheckConstraint("east_unit_id <> west_unit_id", name="distinct_units"),
        sa.Index("ix_pairings_west_period", "west_unit_id", "valid_from", "valid_to"),
        sa.Index("ix_pairings_east_period", "east_unit_id", "valid_from", "valid_to"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    east_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    west_unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    level: Mapped[UnitKind] = mapped_column(enum_column(UnitKind, 20), index=True)
    programme_id: Mapped[int] = mapped_column(sa.ForeignKey("programmes.id"), index=True)
    valid_from: Mapped[date]
    #: Last day of validity, inclusive; NULL while the pairing is current.
    valid_to: Mapped[date | None]
    #: Agreement or document establishing the pairing.
    source: Mapped[str] = mapped_column(sa.String(300), default="")
    note: Mapped[str] = mapped_column(sa.Text, default="")

    east_unit: Mapped["Unit"] = relationship(foreign_keys=[east_unit_id])  # noqa: F821
    west_unit: Mapped["Unit"] = relationship(foreign_keys=[west_unit_id])  # noqa: F821
    programme: Mapped[Programme] = relationship()

    AUDIT_LABELS = {
        "east_unit_id": "东部单位",
        "west_unit_id": "四川单位",
        "level": "结对层级",
        "programme_id": "协作类型",
        "valid_from": "起始日期",
        "valid_to": "终止日期",
        "source": "依据文件",
        "note": "备注",
    }

    def __repr__(self):
        return f"<Pairing {self.id} {self.east_unit_id}↔{self.west_unit_id} {self.valid_from}–{self.valid_to}>"

    def __str__(self):
        return f"{self.east_unit.display_name} ↔ {self.west_unit.display_name}"

    def is_current(self, on: date | None = None) -> bool:
        on = on or date.today()
        return self.valid_from <= on and (self.valid_to is None or self.valid_to >= on)

    @property
    def status_label(self) -> str:
        today = date.today()
        if self.valid_from > today:
            return "未生效"
        return "有效" if self.is_current(today) else "已终止"
