"""Record and change purchases; the same evidence may not be counted twice, across channels.

Every write ends with ``refresh_totals`` for the (seller's county, year) slices it touched, so the derived
``PurchaseTotals`` the list header reads always equal what the purchases say.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa

from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.audit.services import apply_changes, json_value, record, snapshot
from registry.kernel.extensions import db
from registry.kernel.locks import lock_counties
from registry.kernel.money import wan
from registry.kernel.services import ServiceError, check_version, insert_unique
from registry.kernel.transfer import Batch, written
from registry.kernel.transfer import cache_of as _cache
from registry.pairings.services import county_pairing_id
from registry.permissions import authorize_write, may_see
from registry.purchases.models import Channel, Purchase, PurchaseTotals

FIELDS = (
    "purchased_on", "buyer_name", "buyer_kind", "buyer_province", "buyer_city", "seller_name", "seller_kind",
    "seller_county_id", "product", "product_category", "amount_fen", "channel_id", "counting_type", "evidence_no",
    "note",
)  # fmt: skip
TEXTS = ("buyer_province", "buyer_city", "note")
#: First key of the PostgreSQL advisory locks serialising rebuilds of purchase totals (see lock_counties).
TOTALS_LOCK = 0x5055


def evidence_key(text: str) -> str:
    """Invoice and contract numbers compare without spaces, dashes' width or letter case."""
    return "".join((text or "").split()).replace("－", "-").upper()


def _check(data: dict, purchase_id: int | None = None, *, actor=None, batch: Batch | None = None) -> None:
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
    for key, label in (("buyer_kind", "购买方类型"), ("seller_kind", "销售方类型"), ("product_category", "产品类别"),
                       ("counting_type", "计入方式")):  # fmt: skip
        if data.get(key) is None:
            raise ServiceError(f"请选择{label}。", key)
    key = evidence_key(data.get("evidence_no", ""))
    if not key:
        raise ServiceError("请填写发票号或合同号：同一凭证不能重复计入。", "evidence_no")
    clash = _holder_of(key, batch)
    if clash is not None and clash.id != purchase_id:
        if actor is not None and not may_see(actor, clash):
            # Another office's purchase: say that the evidence is taken, nothing of where, when or how much.
            raise ServiceError(f"凭证号 {data['evidence_no']} 已被登记，同一凭证不能重复计入。", "evidence_no")
        raise ServiceError(
            f"凭证号 {data['evidence_no']} 已于 {clash.purchased_on.isoformat()} 在“{clash.channel.name}”计入"
            f"（{clash.seller_name}，{wan(clash.amount_fen, 4)} 万元），同一凭证不能重复计入。",
            "evidence_no",
        )
    data["evidence_key"] = key
    data["pairing_id"] = county_pairing_id(county.id, data["purchased_on"], _cache(batch))


def _holder_of(key: str, batch: Batch | None):
    """The purchase already counted with this evidence key; an import looks it up in what it loaded at its start
    (``prepare_import``) and the records it has written since, instead of one query per row."""
    if batch is not None and "evidence" in batch.cache:
        return batch.cache["evidence"].get(key)
    return db.session.scalar(sa.select(Purchase).where(Purchase.evidence_key == key))


def prepare_import(batch: Batch, keys) -> dict:
    """Load once the purchases an import's evidence keys already name; returns {evidence key: purchase}."""
    keys = list(keys)
    found = {}
    for start in range(0, len(keys), 5000):
        for purchase in db.session.scalars(
            sa.select(Purchase).where(Purchase.evidence_key.in_(keys[start : start + 5000]))
        ):
            found[purchase.evidence_key] = purchase
    # A dict of its own: the import's new purchases go into the cache (_holder_of), while the caller's stays what
    # was counted before the import (it names the rows another user registered meanwhile).
    batch.cache["evidence"] = dict(found)
    return found


def create_purchase(data: dict, *, actor, batch: Batch | None = None) -> Purchase | None:
    """Register a purchase; the write gate checks the seller's county and the pairing its date puts it in."""
    data = {k: data.get(k) for k in FIELDS}
    _check(data, actor=actor, batch=batch)
    authorize_write(actor, Purchase, data, cache=_cache(batch))
    summary = f"登记消费帮扶 {data['seller_name']} {wan(data['amount_fen'], 4)} 万元"
    if batch is not None:
        # An import: the checked row is written with many others (Batch.insert), no instance is kept; the
        # importer has already matched its evidence key (the unique key still refuses one counted meanwhile).
        batch.insert(Purchase, data, summary=summary, changes={k: json_value(data[k]) for k in FIELDS})
        batch.touch(refresh_totals, [(data["seller_county_id"], data["purchased_on"].year)])
        return None
    purchase = Purchase(**data)
    # The same evidence may have been counted by another request since the check.
    insert_unique(purchase, f"凭证号 {data['evidence_no']} 已被登记，同一凭证不能重复计入。", "evidence_no")
    refresh_totals([slice_of(purchase)])
    written("create", purchase, actor=actor, changes=snapshot(purchase, FIELDS), summary=summary)
    return purchase


def update_purchase(purchase: Purchase, data: dict, *, actor, version=None, batch: Batch | None = None) -> dict:
    """Change a purchase, as it was and as it will be within the writer's scope."""
    check_version(purchase, version)
    merged = {k: data.get(k, getattr(purchase, k)) for k in FIELDS}
    _check(merged, purchase.id, actor=actor, batch=batch)
    authorize_write(actor, Purchase, merged, before=purchase, cache=_cache(batch))
    before = slice_of(purchase)
    changes = apply_changes(purchase, merged, (*FIELDS, "evidence_key", "pairing_id"))
    changes.pop("evidence_key", None)
    if batch is None:
        refresh_totals({before, slice_of(purchase)})
    elif changes:
        batch.touch(refresh_totals, {before, slice_of(purchase)})
    if changes:
        written("update", purchase, actor=actor, batch=batch, summary=f"修改消费帮扶 {purchase.seller_name}",
                changes=changes)  # fmt: skip
    return changes


def slice_of(purchase) -> tuple[int, int]:
    """The (seller's county, year) slice whose totals hold this purchase."""
    return purchase.seller_county_id, purchase.purchased_on.year


def refresh_totals(slices: Iterable[tuple[int, int]] | None = None) -> None:
    """Rebuild the PurchaseTotals rows of these (seller's county id, year) slices from their purchases (every
    slice when None). Each row lies in one slice, so deleting a slice and regrouping its purchases is exact."""
    db.session.flush()
    year = sa.extract("year", Purchase.purchased_on)
    columns = ("seller_county_id", "pairing_id", "channel_id", "counting_type", "product_category", "year")

    def regroup(*where):
        select = (
            sa.select(Purchase.seller_county_id, Purchase.pairing_id, Purchase.channel_id, Purchase.counting_type,
                      Purchase.product_category, sa.cast(year, sa.Integer), sa.func.count(Purchase.id),
                      sa.func.sum(Purchase.amount_fen))
            .where(*where)
            .group_by(Purchase.seller_county_id, Purchase.pairing_id, Purchase.channel_id, Purchase.counting_type,
                      Purchase.product_category, year)
        )  # fmt: skip
        db.session.execute(sa.insert(PurchaseTotals).from_select([*columns, "purchases", "amount_fen"], select))

    if slices is None:
        db.session.execute(sa.delete(PurchaseTotals))
        regroup()
        return
    years_by_county: dict[int, set[int]] = defaultdict(set)
    for county_id, y in slices:
        years_by_county[county_id].add(y)
    lock_counties(TOTALS_LOCK, years_by_county)
    for county_id, years in sorted(years_by_county.items()):
        years = sorted(years)
        in_slice = (PurchaseTotals.seller_county_id == county_id, PurchaseTotals.year.in_(years))
        db.session.execute(sa.delete(PurchaseTotals).where(*in_slice))
        # The date range lets the (county, date) index find the slice; the year list skips the years between.
        dates = Purchase.purchased_on.between(date(years[0], 1, 1), date(years[-1], 12, 31))
        regroup(Purchase.seller_county_id == county_id, dates, year.in_(years))


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
