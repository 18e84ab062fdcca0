"""Units: administrative divisions (GB/T 2260) and the schools, hospitals, villages… paired below them."""

from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import TimestampMixin, VersionedMixin, enum_column
from registry.kernel.extensions import db

SICHUAN_CODE = "510000"


class UnitKind(StrEnum):
    """What a unit is; the same values name the level of a pairing."""

    PROVINCE = "province"
    PREFECTURE = "prefecture"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    SCHOOL = "school"
    HOSPITAL = "hospital"
    ENTERPRISE = "enterprise"
    SOCIAL_ORG = "social_org"

    @property
    def label(self) -> str:
        return UNIT_KIND_LABELS[self]


UNIT_KIND_LABELS = {
    UnitKind.PROVINCE: "省",
    UnitKind.PREFECTURE: "市(州)",
    UnitKind.COUNTY: "县(市、区)",
    UnitKind.TOWNSHIP: "乡镇(街道)",
    UnitKind.VILLAGE: "村(社区)",
    UnitKind.SCHOOL: "学校",
    UnitKind.HOSPITAL: "医院",
    UnitKind.ENTERPRISE: "企业",
    UnitKind.SOCIAL_ORG: "社会组织",
}

#: Administrative divisions, loaded from the reference data; never created by hand.
DIVISION_KINDS = (UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY)
#: Units that office staff add below a county.
LOCAL_KINDS = tuple(k for k in UnitKind if k not in DIVISION_KINDS)


class CountyCategory(StrEnum):
    """Assistance category of a Sichuan county-level unit.

    The first four are the classification of the 过渡期 (Sichuan notice of 2021-08-10); the others are the
    categories of the 脱贫攻坚 years before it. Which one applies on a day is in ``unit_categories``.
    """

    NATIONAL_KEY = "national_key"
    PROVINCIAL_KEY = "provincial_key"
    OTHER_LIFTED = "other_lifted"
    NON_POVERTY = "non_poverty"
    NATIONAL_POOR = "national_poor"
    PROVINCIAL_POOR = "provincial_poor"
    #: A poverty county whose level (国家级 or 省级) no source at hand states.
    POOR = "poor"
    EXITED = "exited"
    NON_POOR = "non_poor"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {
    CountyCategory.NATIONAL_KEY: "国家乡村振兴重点帮扶县",
    CountyCategory.PROVINCIAL_KEY: "省级重点帮扶县",
    CountyCategory.OTHER_LIFTED: "其他脱贫县",
    CountyCategory.NON_POVERTY: "非脱贫县",
    CountyCategory.NATIONAL_POOR: "国家级贫困县",
    CountyCategory.PROVINCIAL_POOR: "省级贫困县",
    CountyCategory.POOR: "贫困县",
    CountyCategory.EXITED: "已脱贫摘帽",
    CountyCategory.NON_POOR: "非贫困县",
}
#: The day the 2021 classification (国家/省级乡村振兴重点帮扶县, 其他脱贫县, 非脱贫县) took effect in Sichuan:
#: 四川省委农村工作领导小组《关于印发国家和省乡村振兴重点帮扶名单的通知》, 2021-08-10.
CLASSIFICATION_2021 = date(2021, 8, 10)
CATEGORIES_2021 = (
    CountyCategory.NATIONAL_KEY,
    CountyCategory.PROVINCIAL_KEY,
    CountyCategory.OTHER_LIFTED,
    CountyCategory.NON_POVERTY,
)


class Side(StrEnum):
    """East (assisting) or West (Sichuan, assisted)."""

    EAST = "east"
    WEST = "west"

    @property
    def label(self) -> str:
        return "东部" if self is Side.EAST else "四川"


class Unit(TimestampMixin, VersionedMixin, db.Model):
    """A province, prefecture, county, or an organisation located in a county.

    The ancestor ids (``province_id``, ``prefecture_id``, ``county_id``) include the unit itself at its own level,
    so that scope rules are a single equality test on one column.
    """

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: GB/T 2260 code for administrative divisions; empty for organisations.
    code: Mapped[str | None] = mapped_column(sa.String(12), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    #: Name with its ancestors, e.g. 四川省凉山彝族自治州昭觉县; used for search and display.
    full_name: Mapped[str] = mapped_column(sa.String(300), index=True)
    kind: Mapped[UnitKind] = mapped_column(enum_column(UnitKind, 20), index=True)
    side: Mapped[Side] = mapped_column(enum_column(Side, 10), index=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    province_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    prefecture_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    county_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    #: Sichuan county-level units only: the current category, i.e. that of the open ``unit_categories`` row. Kept
    #: here (in step, by the services that write the history) because lists filter, sort and count by it.
    category: Mapped[CountyCategory | None] = mapped_column(enum_column(CountyCategory, 20))
    is_active: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str] = mapped_column(sa.Text, default="")

    parent: Mapped["Unit | None"] = relationship(remote_side=[id], foreign_keys=[parent_id])
    province: Mapped["Unit | None"] = relationship(remote_side=[id], foreign_keys=[province_id])
    prefecture: Mapped["Unit | None"] = relationship(remote_side=[id], foreign_keys=[prefecture_id])
    county: Mapped["Unit | None"] = relationship(remote_side=[id], foreign_keys=[county_id])

    #: The column the audit trail shows for a reference to one of these (e.g. a project's county_id).
    __audit_name__ = "full_name"
    AUDIT_LABELS = {
        "name": "名称",
        "kind": "类型",
        "parent_id": "上级单位",
        "category": "帮扶类别",
        "category_from": "类别生效日期",
        "is_active": "启用",
        "note": "备注",
    }

    def __repr__(self):
        return f"<Unit {self.id} {self.code or ''} {self.name}>"

    def __str__(self):
        return self.name

    @property
    def is_division(self) -> bool:
        return self.kind in DIVISION_KINDS

    @property
    def display_name(self) -> str:
        """Name qualified by its parent where the bare name is ambiguous (市辖区 names, schools…)."""
        if self.kind is UnitKind.PROVINCE or self.parent is None or self.name.startswith(self.parent.name):
            return self.name
        return f"{self.parent.name}{self.name}"

    def ancestor_column_for_self(self):
        """The ancestor column that equals this unit's id for all units within it."""
        return {
            UnitKind.PROVINCE: Unit.province_id,
            UnitKind.PREFECTURE: Unit.prefecture_id,
            UnitKind.COUNTY: Unit.county_id,
        }.get(self.kind)


class UnitCategory(TimestampMixin, db.Model):
    """One period of a county's assistance category: ``category`` applied from ``valid_from`` to ``valid_to``.

    An empty ``valid_from`` means "since before the registry's records" (贫困县 before their exit); an empty
    ``valid_to`` marks the current category. Rows of one unit never overlap (the services keep it so).
    """

    __tablename__ = "unit_categories"
    __table_args__ = (
        sa.UniqueConstraint("unit_id", "valid_from", name="uq_unit_categories_unit_from"),
        sa.CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from", name="valid_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"), index=True)
    category: Mapped[CountyCategory] = mapped_column(enum_column(CountyCategory, 20))
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]
    #: Where it comes from: the reference file and document, or "管理员" with the administrator's note.
    source: Mapped[str] = mapped_column(sa.String(300), default="")
    #: True for rows from the reference data (or the migration's backfill); False for an administrator's entry.
    is_reference: Mapped[bool] = mapped_column(default=True)

    unit: Mapped[Unit] = relationship()

    def __repr__(self):
        return f"<UnitCategory {self.unit_id} {self.category} {self.valid_from}..{self.valid_to}>"
