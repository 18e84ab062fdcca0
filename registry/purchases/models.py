"""Sales channels and purchases; one piece of evidence (invoice, contract) counts once across all channels."""

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.evidence import attachable
from registry.kernel.database import TimestampMixin, VersionedMixin, enum_column
from registry.kernel.extensions import db
from registry.kernel.labels import LabelledEnum
from registry.kernel.scoping import RecordScope


class Channel(TimestampMixin, VersionedMixin, db.Model):
    """A sales channel (政采云四川馆, 832平台…); administrators add more."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)
    is_builtin: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=100)

    #: The column the audit trail shows for a reference to one of these (channel_id).
    __audit_name__ = "name"
    AUDIT_LABELS = {"name": "名称", "is_active": "启用", "sort_order": "排序"}

    def __str__(self):
        return self.name


class BuyerKind(LabelledEnum):
    UNIT = "unit"
    ENTERPRISE = "enterprise"
    CANTEEN = "canteen"


BuyerKind.LABELS = {BuyerKind.UNIT: "东部单位", BuyerKind.ENTERPRISE: "企业", BuyerKind.CANTEEN: "食堂"}


class SellerKind(LabelledEnum):
    ENTERPRISE = "enterprise"
    COOPERATIVE = "cooperative"


SellerKind.LABELS = {SellerKind.ENTERPRISE: "企业", SellerKind.COOPERATIVE: "合作社"}


class CountingType(LabelledEnum):
    PURCHASE = "purchase"
    HELPED_SALE = "helped_sale"


CountingType.LABELS = {CountingType.PURCHASE: "采购", CountingType.HELPED_SALE: "帮助销售"}


class ProductCategory(LabelledEnum):
    GRAIN_OIL = "grain_oil"
    MEAT_EGG_MILK = "meat_egg_milk"
    FRUIT_VEG = "fruit_veg"
    TEA = "tea"
    HERBS = "herbs"
    MUSHROOM = "mushroom"
    PROCESSED = "processed"
    OTHER = "other"


ProductCategory.LABELS = {
    ProductCategory.GRAIN_OIL: "粮油",
    ProductCategory.MEAT_EGG_MILK: "肉禽蛋奶",
    ProductCategory.FRUIT_VEG: "果蔬",
    ProductCategory.TEA: "茶叶",
    ProductCategory.HERBS: "中药材",
    ProductCategory.MUSHROOM: "菌类山珍",
    ProductCategory.PROCESSED: "加工食品",
    ProductCategory.OTHER: "其他",
}


@attachable
class Purchase(TimestampMixin, VersionedMixin, db.Model):
    """A purchase or a sale helped by the East side, of a Sichuan seller's product."""

    #: What the audit trail calls a record of this type (a problem's link to it).
    __audit_label__ = "消费帮扶"

    __scope__ = RecordScope(
        county="seller_county_id",
        pairing="pairing_id",
        write="purchases.edit",
        pairing_rule="按销售方所在县和日期",
        pairing_field="purchased_on",
        noun="消费帮扶记录",
        date="purchased_on",
    )

    __tablename__ = "purchases"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        # A county set's purchases of a period, covering what the quarter's figures sum (no table row read).
        sa.Index(
            "ix_purchases_county_date",
            "seller_county_id",
            "purchased_on",
            "pairing_id",
            "channel_id",
            "counting_type",
            "amount_fen",
        ),  # fmt: skip
        # The list's default order, and its totals by channel and counting type read from an index alone (of a
        # county set and period too: the county and date are in it).
        sa.Index("ix_purchases_date", "purchased_on", "id"),
        sa.Index(
            "ix_purchases_channel_totals",
            "channel_id",
            "counting_type",
            "amount_fen",
            "seller_county_id",
            "purchased_on",
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchased_on: Mapped[date]
    buyer_name: Mapped[str] = mapped_column(sa.String(200))
    buyer_kind: Mapped[BuyerKind] = mapped_column(enum_column(BuyerKind, 20))
    buyer_province: Mapped[str] = mapped_column(sa.String(20), default="")
    buyer_city: Mapped[str] = mapped_column(sa.String(30), default="")
    seller_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    seller_kind: Mapped[SellerKind] = mapped_column(enum_column(SellerKind, 20))
    seller_county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    product: Mapped[str] = mapped_column(sa.String(200))
    product_category: Mapped[ProductCategory] = mapped_column(enum_column(ProductCategory, 20))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("channels.id"), index=True)
    counting_type: Mapped[CountingType] = mapped_column(enum_column(CountingType, 20), index=True)
    #: Invoice or contract number as typed.
    evidence_no: Mapped[str] = mapped_column(sa.String(100))
    #: The evidence number normalised (no spaces, upper case): unique, so it counts once across channels.
    evidence_key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    note: Mapped[str] = mapped_column(sa.Text, default="")

    seller_county: Mapped["Unit"] = relationship()  # noqa: F821
    pairing: Mapped["Pairing | None"] = relationship()  # noqa: F821
    channel: Mapped[Channel] = relationship()

    AUDIT_LABELS = {
        "purchased_on": "日期",
        "buyer_name": "购买方",
        "buyer_kind": "购买方类型",
        "buyer_province": "购买方省份",
        "buyer_city": "购买方城市",
        "seller_name": "销售方",
        "seller_kind": "销售方类型",
        "seller_county_id": "销售方所在县",
        "pairing_id": "结对关系",
        "product": "产品",
        "product_category": "产品类别",
        "amount_fen": "金额",
        "channel_id": "渠道",
        "counting_type": "计入方式",
        "evidence_no": "凭证号",
        "note": "备注",
    }


class PurchaseTotals(db.Model):
    """Purchases counted and summed by everything the list filters on but the keyword: derived data.

    One row per (seller's county, pairing, channel, counting type, product category, year).
    ``registry.purchases.services.refresh_totals`` rebuilds the rows of a (county, year) slice from its purchases
    after every change, in the same transaction, so the list's count and totals by channel read a few thousand
    rows instead of every purchase.
    """

    __scope__ = RecordScope(county="seller_county_id", pairing="pairing_id")

    __tablename__ = "purchase_totals"
    __table_args__ = (sa.Index("ix_purchase_totals_slice", "seller_county_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seller_county_id: Mapped[int] = mapped_column(sa.ForeignKey("units.id"))
    pairing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pairings.id"), index=True)
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("channels.id"))
    counting_type: Mapped[CountingType] = mapped_column(enum_column(CountingType, 20))
    product_category: Mapped[ProductCategory] = mapped_column(enum_column(ProductCategory, 20))
    year: Mapped[int]
    purchases: Mapped[int]
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
