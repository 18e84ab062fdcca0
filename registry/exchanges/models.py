"""A cadre's or professional's posting, East to Sichuan or Sichuan to East, with arrival and departure."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.counties.models import Side
from registry.evidence import attachable
from registry.kernel.database import TimestampMixin, VersionedMixin, enum_column
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.scoping import RecordScope


class Direction(LabelledEnum):
    EAST_TO_WEST = "east_to_west"
    WEST_TO_EAST = "west_to_east"

    @property
    def sides(self):
        """(sending side, receiving side) of a posting in this direction."""
        return (Side.EAST, Side.WEST) if self is Direction.EAST_TO_WEST else (Side.WEST, Side.EAST)


Direction.LABELS = {Direction.EAST_TO_WEST: "东部选派到四川", Direction.WEST_TO_EAST: "四川选派到东部"}


class PersonType(LabelledEnum):
    CADRE = "cadre"
    PROFESSIONAL = "professional"


PersonType.LABELS = {PersonType.CADRE: "党政干部", PersonType.PROFESSIONAL: "专业技术人才"}


class Field(LabelledEnum):
    EDUCATION = "education"
    HEALTH = "health"
    AGRICULTURE = "agriculture"
    OTHER = "other"


Field.LABELS = {Field.EDUCATION: "教育", Field.HEALTH: "医疗", Field.AGRICULTURE: "农技", Field.OTHER: "其他"}


@attachable
class Exchange(TimestampMixin, VersionedMixin, db.Model):
    """One person's posting; in post from arrival to departure (open while still there)."""

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "人才交流"

    __scope__ = RecordScope(
        county="county_id",
        pairing="pairing_id",
        write="exchanges.edit",
        pairing_rule="按所在县和到岗日期",
        pairing_field="arrival_date",
        noun="人才交流记录",
        date="arrival_date",
        end_date="departure_date",
    )

    __tablename__ = "exchanges"
    __table_args__ = (
        sa.CheckConstraint("departure_date IS NULL OR departure_date >= arrival_date", name="valid_period"),
        sa.Index("ix_exchanges_county_arrival", "county_id", "arrival_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_name: Mapped[str] = mapped_column(sa.String(50), index=True)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction, 20), index=True)
    person_type: Mapped[PersonType] = mapped_column(enum_column(PersonType, 20), index=True)
    #: Professionals' field; empty for cadres.
    field: Mapped[Field | None] = mapped_column(enum_column(Field, 20))
    #: The registry units that send and receive: East→West an East sender and a Sichuan receiver, West→East the
    #: opposite (``services.check_sides``). Empty only on records from before the units were structured whose
    #: text named no unit; any change to such a record must set them.
    sending_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    receiving_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    #: The organisations' own names (余姚市人民医院), finer than the registry units; the unit's name by default.
    sending_unit: Mapped[str] = mapped_column(sa.String(200))
    receiving_unit: Mapped[str] = mapped_column(sa.String(200))
    #: The Sichuan county the posting concerns (receiving county, or sending county for West→East).
    county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    position: Mapped[str] = mapped_column(sa.String(100), default="")
    arrival_date: Mapped[date]
    departure_date: Mapped[date | None]
    note: Mapped[str] = mapped_column(sa.Text, default="")

    county: Mapped["Unit"] = relationship(foreign_keys=[county_id])  # noqa: F821
    sending: Mapped["Unit | None"] = relationship(foreign_keys=[sending_unit_id])  # noqa: F821
    receiving: Mapped["Unit | None"] = relationship(foreign_keys=[receiving_unit_id])  # noqa: F821
    pairing: Mapped["Pairing | None"] = relationship()  # noqa: F821

    AUDIT_LABELS = {
        "person_name": "姓名",
        "direction": "方向",
        "person_type": "类型",
        "field": "领域",
        "sending_unit_id": "派出单位",
        "receiving_unit_id": "接收单位",
        "sending_unit": "派出单位名称",
        "receiving_unit": "接收单位名称",
        "county_id": "所在县",
        "pairing_id": "结对关系",
        "position": "挂职岗位",
        "arrival_date": "到岗日期",
        "departure_date": "离岗日期",
        "note": "备注",
    }
