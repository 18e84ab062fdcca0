"""Purchases to and from spreadsheets. The evidence number is the stable key: re-importing an export updates."""

from datetime import date

import sqlalchemy as sa

from registry.audit.services import record
from registry.counties.models import Side, Unit, UnitKind
from registry.database import utcnow
from registry.extensions import db
from registry.money import MoneyError, parse_yuan
from registry.pairings.services import CountyPairings
from registry.permissions import county_writable, purchase_filter
from registry.purchases.models import BuyerKind, Channel, CountingType, ProductCategory, Purchase, SellerKind
from registry.purchases.services import evidence_key, refresh_totals, slice_of
from registry.transfer import PROGRESS_EVERY, column_index, runner
from registry.transfer.placements import ImportResult, RowError, parse_date

#: The export's columns, in order (registry/purchases/views.EXPORT_HEADERS is this list).
HEADERS = [
    "日期", "购买方", "购买方类型", "购买方省份", "购买方城市", "销售方", "销售方类型", "销售方所在县代码",
    "销售方所在县", "产品", "产品类别", "金额(元)", "渠道", "计入方式", "发票号/合同号", "备注",
]  # fmt: skip
TEXTS = {"购买方": ("buyer_name", 200), "购买方省份": ("buyer_province", 20), "购买方城市": ("buyer_city", 30),
         "销售方": ("seller_name", 200), "产品": ("product", 200), "备注": ("note", 2000)}  # fmt: skip
ENUMS = {"购买方类型": ("buyer_kind", BuyerKind), "销售方类型": ("seller_kind", SellerKind),
         "产品类别": ("product_category", ProductCategory), "计入方式": ("counting_type", CountingType)}  # fmt: skip
REQUIRED_FOR_NEW = (
    "日期",
    "购买方",
    "购买方类型",
    "销售方",
    "销售方类型",
    "产品",
    "产品类别",
    "金额(元)",
    "渠道",
    "计入方式",
)


def import_purchases_steps(headers, rows, *, user, filename=""):
    """Check every row, then write all of them or nothing; blank cells never overwrite stored values."""
    result = ImportResult()
    index = column_index(headers, HEADERS)
    sichuan_counties = sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)
    counties = {u.code: u for u in db.session.scalars(sichuan_counties) if county_writable(user, u)}
    channels = {c.name: c for c in db.session.scalars(sa.select(Channel))}
    pairings = CountyPairings(u.id for u in counties.values())
    parsed, seen = [], {}
    for number, cells in rows:
        result.rows += 1
        cell = {h: (cells[i] if i < len(cells) else "") for h, i in index.items()}
        errors, values = _parse(number, cell, counties, channels)
        filled = {h for h in REQUIRED_FOR_NEW if cell[h]}
        key = evidence_key(cell["发票号/合同号"])
        if not key:
            errors.append(
                RowError(number, "发票号/合同号", "", "必须填写：它是每条记录的唯一标识，同一凭证只能计入一次。")
            )
        elif key in seen:
            errors.append(RowError(number, "发票号/合同号", cell["发票号/合同号"], f"与第 {seen[key]} 行重复。"))
        else:
            seen[key] = number
        result.errors.extend(errors)
        if not errors:
            parsed.append((number, key, cell["发票号/合同号"], values, filled))
        if result.rows % PROGRESS_EVERY == 0:
            yield result.rows
    existing = {}
    keys = [row[1] for row in parsed]
    for start in range(0, len(keys), 5000):
        for purchase in db.session.scalars(
            sa.select(Purchase).where(Purchase.evidence_key.in_(keys[start : start + 5000]))
        ):
            existing[purchase.evidence_key] = purchase
    visible = set()
    if existing:
        visible = set(
            db.session.scalars(
                sa.select(Purchase.id).where(Purchase.id.in_([p.id for p in existing.values()]), purchase_filter(user))
            )
        )
    inserts = []
    now = utcnow()
    for number, key, shown, values, filled in parsed:
        current = existing.get(key)
        if current is not None:
            if current.id not in visible or current.seller_county_id not in {u.id for u in counties.values()}:
                result.errors.append(
                    RowError(number, "发票号/合同号", shown, "该凭证已由其他县或渠道计入，不能在此修改。")
                )
            continue
        missing_cells = [h for h in REQUIRED_FOR_NEW if h not in filled]
        if missing_cells or "seller_county_id" not in values:
            for header in missing_cells or ["销售方所在县代码"]:
                result.errors.append(RowError(number, header, "", "新增记录必须填写。"))
            continue
        inserts.append((number, key, shown, values))
    if result.errors:
        return result
    touched = set()
    for _, key, _, values, _ in parsed:
        current = existing.get(key)
        if current is not None:
            before = slice_of(current)
            changed = False
            for attr, value in values.items():
                if getattr(current, attr) != value:
                    setattr(current, attr, value)
                    changed = True
            if changed:
                current.pairing_id = pairings.on(current.seller_county_id, current.purchased_on)
                touched.update((before, slice_of(current)))
                result.updated += 1
            else:
                result.unchanged += 1
    rows_to_insert = [
        {**values, "evidence_no": shown, "evidence_key": key,
         "pairing_id": pairings.on(values["seller_county_id"], values["purchased_on"]),
         "buyer_province": values.get("buyer_province", ""), "buyer_city": values.get("buyer_city", ""),
         "note": values.get("note", ""), "created_at": now, "updated_at": now, "version_id": 1}
        for _, key, shown, values in inserts
    ]  # fmt: skip
    for start in range(0, len(rows_to_insert), 5000):
        db.session.execute(sa.insert(Purchase), rows_to_insert[start : start + 5000])
    result.created = len(rows_to_insert)
    touched.update((row["seller_county_id"], row["purchased_on"].year) for row in rows_to_insert)
    refresh_totals(touched)  # flushes the updates first, once for the whole import
    record("import", None, actor=user, entity_type="purchases",
           summary=f"导入消费帮扶 {filename}：{result.rows} 行，新增 {result.created}，更新 {result.updated}，"
                   f"未变 {result.unchanged}")  # fmt: skip
    return result


import_purchases = runner(import_purchases_steps)


def _parse(number, cell, counties, channels):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    if cell["日期"]:
        try:
            values["purchased_on"] = parse_date(cell["日期"])
        except ValueError as exc:
            fail("日期", str(exc))
        else:
            if values["purchased_on"] > date.today():
                fail("日期", "不能晚于今天。")
    for header, (attr, limit) in TEXTS.items():
        if cell[header]:
            if len(cell[header]) > limit:
                fail(header, f"不能超过 {limit} 个字。")
            else:
                values[attr] = cell[header]
    for header, (attr, enum) in ENUMS.items():
        if cell[header]:
            labels = {m.label: m for m in enum}
            if cell[header] in labels:
                values[attr] = labels[cell[header]]
            else:
                fail(header, "应为以下之一：" + "、".join(labels) + "。")
    if cell["销售方所在县代码"]:
        county = counties.get(cell["销售方所在县代码"])
        if county is None:
            fail("销售方所在县代码", "不是您可以登记的四川县级区划代码。")
        else:
            values["seller_county_id"] = county.id
    if cell["金额(元)"]:
        try:
            values["amount_fen"] = parse_yuan(cell["金额(元)"])
            if values["amount_fen"] == 0:
                raise MoneyError("金额须大于 0。")
        except MoneyError as exc:
            fail("金额(元)", str(exc))
    if cell["渠道"]:
        channel = channels.get(cell["渠道"])
        if channel is None:
            fail("渠道", "没有这个渠道：" + "、".join(channels) + "。")
        else:
            values["channel_id"] = channel.id
    return errors, values
