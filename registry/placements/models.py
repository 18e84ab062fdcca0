"""A placement: a person from a Sichuan county helped into work, where, with whom, from when to when.

Besides the placements themselves: ``Person`` (one integer id per identity fingerprint) and ``PlacementCell``,
the derived summary the list header reads its counts of people from (see ``registry.placements.cells``).
"""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.evidence import attachable
from registry.kernel.database import TimestampMixin, VersionedMixin, enum_column
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.scoping import RecordScope


class Household(LabelledEnum):
    LIFTED = "lifted"
    MONITORED = "monitored"
    ORDINARY = "ordinary"


Household.LABELS = {Household.LIFTED: "脱贫户", Household.MONITORED: "监测对象", Household.ORDINARY: "一般农户"}


class Destination(LabelledEnum):
    EAST_PARTNER = "east_partner"
    OTHER_PROVINCE = "other_province"
    IN_PROVINCE = "in_province"
    IN_COUNTY = "in_county"
    WORKSHOP = "workshop"
    PUBLIC_WELFARE = "public_welfare"


Destination.LABELS = {
    Destination.EAST_PARTNER: "到东部协作地就业",
    Destination.OTHER_PROVINCE: "其他省外",
    Destination.IN_PROVINCE: "省内县外",
    Destination.IN_COUNTY: "县内就近就地",
    Destination.WORKSHOP: "帮扶车间",
    Destination.PUBLIC_WELFARE: "公益性岗位",
}


class Person(db.Model):
    """One person, known only by the keyed fingerprint of the identity number.

    The integer id is what the summary cells keep in their bitmaps: "a person counts once" becomes a union of
    small integer sets instead of a COUNT(DISTINCT) over 64-character hashes.
    """

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64), unique=True)

    def __repr__(self):
        return f"<Person {self.id}>"


@attachable(personal=True)
class Placement(TimestampMixin, VersionedMixin, db.Model):
    """One person's placement. The pairing follows from the origin county and the start date."""

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "劳务协作"

    __scope__ = RecordScope(
        county="origin_county_id",
        pairing="pairing_id",
        write="placements.edit",
        pairing_rule="按户籍县和就业开始日期",
        pairing_field="start_date",
        noun="劳务协作记录",
        date="start_date",
        end_date="end_date",
    )

    __tablename__ = "placements"
    __table_args__ = (
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="valid_period"),
        sa.CheckConstraint("monthly_wage_fen IS NULL OR monthly_wage_fen >= 0", name="wage_not_negative"),
        # One record per person and placement: the importers match on this key, and the database holds it
        # even when two imports run at once. Its index also serves every look-up by person (and person and
        # county), so there is no second index on those columns: each index is written on every insert.
        sa.UniqueConstraint("id_fingerprint", "origin_county_id", "start_date", name="uq_placements_person_start"),
        sa.Index("ix_placements_county_start", "origin_county_id", "start_date"),
        sa.Index("ix_placements_start", "start_date", "id"),
        # The list filtered by destination, newest first: reads one page from the index, however deep (and
        # serves any look-up by destination alone).
        sa.Index("ix_placements_destination_start", "destination_class", "start_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_name: Mapped[str] = mapped_column(sa.String(50), index=True)
    #: The identity number as stored: Fernet ciphertext when ID_NUMBER_KEY is set (see idnumbers.protect).
    id_stored: Mapped[str] = mapped_column(sa.String(200))
    #: Keyed hash of the number: finds the same person across records without revealing the number.
    id_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    id_masked: Mapped[str] = mapped_column(sa.String(18))
    #: The person of ``id_fingerprint`` (cells.person_id_for); set with the fingerprint, never alone.
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id"), index=True)
    sex: Mapped[str] = mapped_column(sa.String(2))
    birth_date: Mapped[date]
    household: Mapped[Household] = mapped_column(enum_column(Household, 20), index=True)
    origin_county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    origin_township: Mapped[str] = mapped_column(sa.String(50), default="")
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    destination_class: Mapped[Destination] = mapped_column(enum_column(Destination, 20))
    destination_province: Mapped[str] = mapped_column(sa.String(20), default="")
    destination_city: Mapped[str] = mapped_column(sa.String(30), default="")
    employer: Mapped[str] = mapped_column(sa.String(200), default="")
    industry: Mapped[str] = mapped_column(sa.String(50), default="")
    organised: Mapped[bool] = mapped_column(default=False)
    training: Mapped[str] = mapped_column(sa.String(200), default="")
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    monthly_wage_fen: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str] = mapped_column(sa.Text, default="")

    origin_county: Mapped["Unit"] = relationship()  # noqa: F821
    pairing: Mapped["Pairing | None"] = relationship()  # noqa: F821

    AUDIT_LABELS = {
        "person_name": "姓名",
        "id_masked": "身份证号",
        "household": "户类型",
        "origin_county_id": "户籍县",
        "origin_township": "乡镇",
        "pairing_id": "结对关系",
        "destination_class": "就业去向",
        "destination_province": "就业省份",
        "destination_city": "就业城市",
        "employer": "就业单位",
        "industry": "行业",
        "organised": "有组织转移",
        "training": "培训情况",
        "start_date": "就业开始",
        "end_date": "就业结束",
        "monthly_wage_fen": "月工资",
        "note": "备注",
    }

    def __repr__(self):
        return f"<Placement {self.id} {self.id_masked}>"


class PlacementCell(db.Model):
    """Placements grouped by everything the list filters on but the keyword: derived data, never typed.

    One row per (origin county, pairing, household type, destination class, start year, end year — NULL while
    in work) holding the number of placements and the set of their people as a serialized roaring bitmap of
    ``Person`` ids. ``registry.placements.cells.refresh_cells`` rebuilds the cells of an (origin county, start
    year) slice from its placements after every change, in the same transaction; the list header unions the
    bitmaps of the cells its filters select, so a person counts once however many placements and cells.
    """

    __scope__ = RecordScope(county="origin_county_id", pairing="pairing_id")

    __tablename__ = "placement_cells"
    __table_args__ = (
        sa.CheckConstraint("end_year IS NULL OR end_year >= start_year", name="valid_years"),
        sa.Index("ix_placement_cells_slice", "origin_county_id", "start_year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    origin_county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    household: Mapped[Household] = mapped_column(enum_column(Household, 20))
    destination_class: Mapped[Destination] = mapped_column(enum_column(Destination, 20))
    start_year: Mapped[int]
    end_year: Mapped[int | None]
    placements: Mapped[int]
    #: pyroaring.BitMap.serialize() of the Person ids of these placements.
    people: Mapped[bytes] = mapped_column(sa.LargeBinary)

    def __repr__(self):
        return f"<PlacementCell {self.origin_county_id} {self.start_year}-{self.end_year} {self.placements}>"


class PlacementMonth(db.Model):
    """People in work per month: derived data, never typed (``registry.placements.months``).

    One row per (origin county, month, pairing, destination class) holding, as serialized roaring bitmaps of
    ``Person`` ids, the people with a placement of that group in work at any time during the month, and those of
    them from 脱贫户 households. Every figure that counts people in work during a period (the dashboards, the PDFs,
    the agreements' progress, the ranking, the home pages) unions the bitmaps of the period's months instead of
    counting distinct identity numbers over the placements. ``month`` is ``year * 12 + month - 1``.
    """

    __scope__ = RecordScope(county="origin_county_id", pairing="pairing_id")

    __tablename__ = "placement_months"
    __table_args__ = (sa.Index("ix_placement_months_county_month", "origin_county_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    origin_county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    month: Mapped[int]
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    destination_class: Mapped[Destination] = mapped_column(enum_column(Destination, 20))
    #: pyroaring.BitMap.serialize() of the Person ids in work during the month.
    people: Mapped[bytes] = mapped_column(sa.LargeBinary)
    #: The same for people of 脱贫户 households.
    lifted: Mapped[bytes] = mapped_column(sa.LargeBinary)


class PlacementMonthSpan(db.Model):
    """Up to which month a county's ``PlacementMonth`` rows are built: placements still in work (no end date) are
    counted in every month up to here. A period ending later is counted from the placements themselves until the
    nightly task has moved the span on (``registry.placements.months.extend_spans``)."""

    __scope__ = RecordScope(county="origin_county_id")

    __tablename__ = "placement_month_spans"

    origin_county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"), primary_key=True)
    last_month: Mapped[int]
