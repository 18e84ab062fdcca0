"""Record and change purchases; the same evidence may not be counted twice, across channels."""

from datetime import date

import sqlalchemy as sa

from registry.audit.services import apply_changes, record, snapshot
from registry.counties.models import Side, Unit, UnitKind
from registry.extensions import db
from registry.money import wan
from registry.pairings.services import county_pairing_on
from registry.purchases.models import Channel, Purchase
from registry.services import ServiceError, check_version

FIELDS = (
    "purchased_on", "buyer_name", "buyer_kind", "buyer_province", "buyer_city", "seller_name", "seller_kind",
    "seller_county_id", "product", "product_category", "amount_fen", "channel_id", "counting_type", "evidence_no",
    "note",
)  # fmt: skip
TEXTS = ("buyer_province", "buyer_city", "note")


def evidence_key(text: str) -> str:
    """Invoice and contract numbers compare without spaces, dashes' width or letter case."""
    return "".join((text or "").split()).replace("－", "-").upper()


def _check(data: dict, purchase_id: int | None = None) -> None:
    for key in TEXTS:
        data[key] = data.get(key) or ""
    if data.get("purchased_on") is None:
        raise ServiceError("请填写日期。", "purchased_on")
    if data["purchased_on"] > date.today():
        raise ServiceError("日期不能晚于今天。", "purchased_on")
    county = db.session.get(Unit, data.get("seller_county_id") or 0)
    if county is None or county.kind is not UnitKind.COUNTY or county.side is not Side.WEST:
        raise ServiceError("请选择销售方所在的四川县(市、区)。", "seller_county_id")
    if db.session.get(Channel, data.get("channel_id") or 0) is None:
        raise ServiceError("请选择渠道。", "channel_id")
    if not data.get("amount_fen") or data["amount_fen"] <= 0:
        raise ServiceError("金额须大于 0。", "amount_fen")
    for key, label in (("buyer_name", "购买方"), ("seller_name", "销售方"), ("product", "产品")):
        if not data.get(key):
            raise ServiceError(f"请填写{label}。", key)
    key = evidence_key(data.get("evidence_no", ""))
    if not key:
        raise ServiceError("请填写发票号或合同号：同一凭证不能重复计入。", "evidence_no")
    clash = db.session.scalar(
        sa.select(Purchase).where(Purchase.evidence_key == key, Purchase.id != (purchase_id or 0))
    )
    if clash is not None:
        raise ServiceError(
            f"凭证号 {data['evidence_no']} 已于 {clash.purchased_on.isoformat()} 在“{clash.channel.name}”计入"
            f"（{clash.seller_name}，{wan(clash.amount_fen, 4)} 万元），同一凭证不能重复计入。",
            "evidence_no",
        )
    data["evidence_key"] = key
    pairing = county_pairing_on(county.id, data["purchased_on"])
    data["pairing_id"] = pairing.id if pairing else None


def create_purchase(data: dict, *, actor) -> Purchase:
    data = {k: data.get(k) for k in FIELDS}
    _check(data)
    purchase = Purchase(**data)
    db.session.add(purchase)
    db.session.flush()
    record("create", purchase, actor=actor, changes=snapshot(purchase, FIELDS),
           summary=f"登记消费帮扶 {purchase.seller_name} {wan(purchase.amount_fen, 4)} 万元")  # fmt: skip
    return purchase


def update_purchase(purchase: Purchase, data: dict, *, actor, version=None) -> dict:
    check_version(purchase, version)
    merged = {k: data.get(k, getattr(purchase, k)) for k in FIELDS}
    _check(merged, purchase.id)
    changes = apply_changes(purchase, merged, (*FIELDS, "evidence_key", "pairing_id"))
    changes.pop("evidence_key", None)
    if changes:
        record("update", purchase, actor=actor, summary=f"修改消费帮扶 {purchase.seller_name}", changes=changes)
    return changes


def create_channel(data: dict, *, actor) -> Channel:
    """An administrator adds a sales channel."""
    name = (data.get("name") or "").strip()
    if not name:
        raise ServiceError("请填写渠道名称。", "name")
    if db.session.scalar(sa.select(Channel.id).where(Channel.name == name)):
        raise ServiceError(f"已有渠道“{name}”。", "name")
    channel = Channel(name=name, sort_order=data.get("sort_order") or 100, is_active=bool(data.get("is_active", True)))
    db.session.add(channel)
    db.session.flush()
    record("create", channel, actor=actor, summary=f"新增渠道 {channel.name}", changes=snapshot(channel, ("name",)))
    return channel
