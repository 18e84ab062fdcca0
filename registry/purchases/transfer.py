"""Purchases to and from spreadsheets. The evidence number is the stable key: re-importing an export updates."""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.database import keyset_batches
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, yuan
from registry.kernel.services import ServiceError
from registry.kernel.transfer import Batch, RowError, parse_amount, parse_cells, parse_date, runner
from registry.kernel.transfer.reader import LONG_NUMBER, LongNumber
from registry.kernel.transfer.sheet import Sheet
from registry.kernel.transfer.template import Column
from registry.permissions import visible_by_id, writable_counties
from registry.purchases import services
from registry.purchases.models import BuyerKind, Channel, CountingType, ProductCategory, Purchase, SellerKind
from registry.purchases.services import evidence_key

#: The export's columns, in order (registry/purchases/views.EXPORT_HEADERS is this list).
HEADERS = [
    "日期", "购买方", "购买方类型", "购买方省份", "购买方城市", "销售方", "销售方类型", "销售方所在县代码",
    "销售方所在县", "产品", "产品类别", "金额(元)", "渠道", "计入方式", "发票号/合同号", "备注",
]  # fmt: skip
TEXTS = {"购买方": ("buyer_name", 200), "购买方省份": ("buyer_province", 20), "购买方城市": ("buyer_city", 30),
         "销售方": ("seller_name", 200), "产品": ("product", 200), "备注": ("note", 2000)}  # fmt: skip
ENUMS = {"购买方类型": ("buyer_kind", BuyerKind), "销售方类型": ("seller_kind", SellerKind),
         "产品类别": ("product_category", ProductCategory), "计入方式": ("counting_type", CountingType)}  # fmt: skip
#: Other names offices give the template's columns, read as that column (the import's notes say so). Full-width
#: brackets and spaces need no entry, and “金额(万元)” is read as 金额(元) in 万元.
SYNONYMS = {
    "凭证号": "发票号/合同号", "发票号": "发票号/合同号", "合同号": "发票号/合同号", "发票号码": "发票号/合同号",
    "合同编号": "发票号/合同号", "凭证编号": "发票号/合同号",
    "金额": "金额(元)", "采购金额": "金额(元)", "采购金额(元)": "金额(元)", "销售金额(元)": "金额(元)",
    "购买日期": "日期", "采购日期": "日期", "销售日期": "日期", "产品名称": "产品", "商品名称": "产品",
    "采购单位": "购买方", "购买单位": "购买方", "销售单位": "销售方", "销售企业": "销售方",
    "销售方县代码": "销售方所在县代码", "销售方所在县区划代码": "销售方所在县代码", "销售渠道": "渠道",
}  # fmt: skip
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


#: The column a service's refusal of a field is reported in.
FIELD_COLUMNS = {
    **{attr: header for header, (attr, _) in TEXTS.items()}, **{attr: header for header, (attr, _) in ENUMS.items()},
    "purchased_on": "日期", "seller_county_id": "销售方所在县代码", "amount_fen": "金额(元)", "channel_id": "渠道",
    "evidence_no": "发票号/合同号",
}  # fmt: skip


#: Rows read, matched and written together: an import holds one chunk of rows at a time, never the whole file.
CHUNK = 2000


def import_purchases_steps(headers, rows, *, user, filename=""):
    """Read every row and write it through the purchase services; the caller commits only if no row failed.

    The evidence number is the key: a row naming a purchase already counted updates it, if the user may see and
    write it; one counted by another office is refused without a word about it. Blank cells never overwrite.

    Rows are read, matched and written ``CHUNK`` at a time, like placements: new purchases go to the batch as rows
    of values (``Batch.insert``), so memory stays flat however long the file. A key is matched against the
    purchases counted before the import (a repeat within the file is refused by the rows seen so far), so every
    chunk is matched as the whole file would have been. Errors come in that order: the rows' own, then the
    services'.
    """
    sheet = Sheet(headers, rows, HEADERS, SYNONYMS, fields=FIELD_COLUMNS, default="发票号/合同号")
    sichuan_counties = sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)
    counties = {u.code: u for u in db.session.scalars(sichuan_counties)}
    channels = {c.name: c for c in db.session.scalars(sa.select(Channel))}
    batch = Batch(user, entity_type="purchases", title="消费帮扶", filename=filename, chunks=True)
    #: {evidence key: the row that has it}, and the keys that named a purchase counted before (the rest are new).
    seen: dict[str, int] = {}
    existing: set[str] = set()

    def parse(number, cell):
        errors, values = _parse(number, cell, counties, channels, sheet.units)
        key = evidence_key(cell["发票号/合同号"])
        if isinstance(cell["发票号/合同号"], LongNumber):
            errors.append(RowError(number, "发票号/合同号", cell["发票号/合同号"], LONG_NUMBER))
        elif not key:
            errors.append(
                RowError(number, "发票号/合同号", "", "必须填写：它是每条记录的唯一标识，同一凭证只能计入一次。")
            )
        elif key in seen:
            errors.append(RowError(number, "发票号/合同号", cell["发票号/合同号"], f"与第 {seen[key]} 行重复。"))
        else:
            seen[key] = number
        values["evidence_no"] = cell["发票号/合同号"]
        return errors, (number, key, values)

    def taken():
        # Another import (or form) counted one of our new evidence numbers after we looked them up: name the
        # rows, which a second import will then match and update.
        keys, found = [key for key in seen if key not in existing], set()
        for start in range(0, len(keys), 5000):
            part = keys[start : start + 5000]
            found.update(db.session.scalars(sa.select(Purchase.evidence_key).where(Purchase.evidence_key.in_(part))))
        return [RowError(seen[key], "发票号/合同号", key, TAKEN) for key in sorted(found, key=seen.__getitem__)]

    return (yield from sheet.chunked(parse, lambda chunk: _write_chunk(chunk, user, batch, existing, sheet), batch,
                                     size=CHUNK, taken=taken))  # fmt: skip


def _write_chunk(chunk: list, user, batch: Batch, existing: set, sheet: Sheet) -> None:
    """Match a chunk of checked rows by evidence key and write them with the purchase services; note the keys
    that named a purchase counted before in ``existing``."""
    if not chunk:
        return
    batch.settle()
    holders = services.prepare_import(batch, (key for _, key, _ in chunk))
    existing.update(holders)
    visible = visible_by_id(user, Purchase, (p.id for p in holders.values()))
    result = sheet.result
    for number, key, values in chunk:
        shown = lambda column, values=values: values.get("evidence_no", "") if column == "发票号/合同号" else ""  # noqa: E731
        with sheet.row(number, shown):
            current = holders.get(key)
            if current is None:
                services.create_purchase(values, actor=user, batch=batch)
                result.created += 1
            elif current.id not in visible:
                raise ServiceError("该凭证已被登记，且不在您的管辖范围内，不能导入修改。", "evidence_no")
            elif services.update_purchase(current, values, actor=user, batch=batch):
                result.updated += 1
            else:
                result.unchanged += 1


#: A new purchase another user counted while this import ran (the database's unique key refused ours).
TAKEN = "该凭证刚被其他用户登记，请重新导入（将按更新处理）。"


import_purchases = runner(import_purchases_steps)


def _parse(number, cell, counties, channels, units):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    if cell["日期"]:
        try:
            values["purchased_on"] = parse_date(cell["日期"])
        except ValueError as exc:
            fail("日期", str(exc))
    parse_cells(cell, TEXTS, ENUMS, values, fail)
    if cell["销售方所在县代码"]:
        county = counties.get(cell["销售方所在县代码"])
        if county is None:
            fail("销售方所在县代码", "不是四川的县级区划代码。")
        else:
            values["seller_county_id"] = county.id
    if cell["金额(元)"]:
        try:
            values["amount_fen"] = parse_amount(cell["金额(元)"], units.get("金额(元)", ""))
        except MoneyError as exc:
            fail("金额(元)", str(exc))
    if cell["渠道"]:
        channel = channels.get(cell["渠道"])
        if channel is None:
            fail("渠道", "没有这个渠道：" + "、".join(channels) + "。")
        else:
            values["channel_id"] = channel.id
    return errors, values


def export_rows(stmt):
    """Rows of the export (the template's columns), in date order; re-importing them changes nothing."""
    stmt = stmt.options(joinedload(Purchase.seller_county), joinedload(Purchase.channel))
    order = (Purchase.purchased_on, Purchase.id)
    for batch in keyset_batches(db.session, stmt, order, lambda p: (p.purchased_on, p.id)):
        yield from (_export_row(p) for p in batch)


def _export_row(p: Purchase) -> list:
    return [
        p.purchased_on, p.buyer_name, p.buyer_kind.label, p.buyer_province, p.buyer_city, p.seller_name,
        p.seller_kind.label, p.seller_county.code, p.seller_county.name, p.product, p.product_category.label,
        yuan(p.amount_fen).replace(",", ""), p.channel.name, p.counting_type.label, p.evidence_no, p.note,
    ]  # fmt: skip


def columns(user) -> list[Column]:
    """The template's columns, explained; 销售方所在县 limited to the counties ``user`` may register in."""
    counties = writable_counties(user)
    channels = tuple(db.session.scalars(sa.select(Channel.name).order_by(Channel.name)))

    def labels(enum):
        return tuple(m.label for m in enum)

    return [
        Column("日期", "购买日期", "日期 YYYY-MM-DD", "是", "2024-05-20"),
        Column("购买方", "购买单位或个人", "文本，最多200字", "是", "宁波市某食堂"),
        Column("购买方类型", "购买方的类型", "从下拉列表选择", "是", labels(BuyerKind)[0], labels(BuyerKind)),
        Column("购买方省份", "购买方所在省份", "文本，最多20字", "否", "浙江省"),
        Column("购买方城市", "购买方所在城市", "文本，最多30字", "否", "宁波市"),
        Column("销售方", "销售企业或合作社", "文本，最多200字", "是", "昭觉县某农业合作社"),
        Column("销售方类型", "销售方的类型", "从下拉列表选择", "是", labels(SellerKind)[0], labels(SellerKind)),
        Column("销售方所在县代码", "销售方所在县(市、区)的区划代码，限您可登记的县", "6位数字", "是", "513431",
               tuple(c.code for c in counties), text=True),
        Column("销售方所在县", "县名，只供核对", "文本", "否", "昭觉县", tuple(c.name for c in counties), strict=False),
        Column("产品", "产品名称", "文本，最多200字", "是", "苦荞茶"),
        Column("产品类别", "产品类别", "从下拉列表选择", "是", labels(ProductCategory)[0], labels(ProductCategory)),
        Column("金额(元)", "本笔金额，单位元；表头写“金额(万元)”时按万元读取", "大于0的数字，最多两位小数", "是",
               "12800"),
        Column("渠道", "消费帮扶渠道", "从下拉列表选择", "是", channels[0] if channels else "", channels),
        Column("计入方式", "计入方式", "从下拉列表选择", "是", labels(CountingType)[0], labels(CountingType)),
        Column("发票号/合同号", "发票号或合同号：每条记录的唯一标识，同一凭证只计入一次", "文本；请保持文本格式", "是",
               "FP-2024-0101", text=True),
        Column("备注", "说明", "文本，最多2000字", "否", ""),
    ]  # fmt: skip
