"""Units: administrative divisions (GB/T 2260) and the schools, hospitals, villages… paired below them."""

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.database import TimestampMixin, VersionedMixin, enum_column
from registry.extensions import db

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
    """Assistance category of a Sichuan county-level unit (2021 classification)."""

    NATIONAL_KEY = "national_key"
    PROVINCIAL_KEY = "provincial_key"
    OTHER_LIFTED = "other_lifted"
    NON_POVERTY = "non_poverty"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {
    CountyCategory.NATIONAL_KEY: "国家乡村振兴重点帮扶县",
    CountyCategory.PROVINCIAL_KEY: "省级重点帮扶县",
    CountyCategory.OTHER_LIFTED: "其他脱贫县",
    CountyCategory.NON_POVERTY: "非脱贫县",
}


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
    #: Sichuan county-level units only.
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
