"""Agreement targets (the province's, a prefecture's, each county's allocation) and indicator entries to and from
spreadsheets.

Targets: a row is one target, found by 年度 + 协作类型 (the agreement, which must exist), 单位代码 and 指标; it
sets that target (new or changed) through ``services.set_targets``, one audit event per agreement and unit as on the
targets page. Money targets are in 万元, counts are whole numbers. A blank 目标值 leaves the target as it is.

Indicator entries: entries have no number of their own, so a row equal to an entry already registered (same 指标,
县, 结对单位, 日期, 数值, 对象 and 佐证) is that entry and is not added again: re-importing a file adds nothing.
"""

from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.agreements import calculators, queries, services
from registry.agreements.models import Agreement, Indicator, IndicatorEntry, Measure, Target
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError
from registry.kernel.services import ServiceError
from registry.kernel.transfer import PROGRESS_EVERY, Batch, RowError, parse_amount, parse_date, runner
from registry.kernel.transfer.sheet import Sheet
from registry.kernel.transfer.template import Column
from registry.pairings.models import Pairing, Programme
from registry.permissions import WriteScope, programme_filter, scope_filter, writable_counties
from registry.projects.services import pairing_choices


def value_text(indicator: Indicator, value: int) -> str:
    """A target or entry value as the import reads it back: 万元 without trailing zeros, or the count."""
    if indicator.measure is Measure.COUNT:
        return str(value)
    text = format(Decimal(value) / 1_000_000, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_value(indicator: Indicator, text: str) -> int:
    """A value cell of ``indicator``: 万元 for money (“12.5”, “12.5万元”), a whole number for counts.

    :raise ServiceError: with the reason.
    """
    if indicator.measure is Measure.MONEY:
        try:
            return parse_amount(text, "万元")
        except MoneyError as exc:
            raise ServiceError(str(exc)) from exc
    cleaned = text.strip().replace(",", "")
    if not (cleaned.isascii() and cleaned.isdigit() and len(cleaned) <= 15):
        raise ServiceError(f"“{indicator.name}”是数量指标，数值须为整数（单位：{indicator.unit or '个'}）。")
    return int(cleaned)


def _indicators():
    return {i.name: i for i in services.active_indicators()}


# ---- targets ----------------------------------------------------------------------------------------------------

TARGET_HEADERS = ["年度", "协作类型", "单位代码", "单位", "指标", "目标值"]
TARGET_SYNONYMS = {"协议年度": "年度", "区划代码": "单位代码", "县代码": "单位代码", "单位名称": "单位",
                   "指标名称": "指标", "目标": "目标值", "任务数": "目标值", "目标任务": "目标值"}  # fmt: skip
TARGET_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "按“年度”和“协作类型”找到协议（须已在协议页面建立），按“单位代码”和“指标”找到目标：没有的新增，已有的修改。",
    "单位代码可填四川省（510000）、市(州)或县(市、区)的区划代码；留空时按“单位”名称查找。",
    "金额类指标的目标值以万元填写，数量类指标填整数；目标值留空表示不修改。",
]


def import_targets_steps(headers, rows, *, user, filename=""):
    """Read every row and set the targets through ``services.set_targets``; the caller commits only if none failed."""
    sheet = Sheet(headers, rows, TARGET_HEADERS, TARGET_SYNONYMS, default="目标值")
    result = sheet.result
    agreements = {
        (a.programme.name, a.year): a
        for a in db.session.scalars(
            sa.select(Agreement).options(joinedload(Agreement.programme))
            .where(programme_filter(user, Agreement.programme_id))
        )
    }  # fmt: skip
    units = _target_units()
    indicators = _indicators()
    groups, seen = defaultdict(dict), {}
    for number, cell in sheet.cells():
        errors = []

        def fail(column, reason, cell=cell, errors=errors, number=number):
            errors.append(RowError(number, column, cell[column], reason))

        for header in ("年度", "协作类型", "指标"):
            if not cell[header]:
                fail(header, "必须填写。")
        agreement = agreements.get((cell["协作类型"], int(cell["年度"]) if cell["年度"].isdigit() else 0))
        if cell["年度"] and cell["协作类型"] and agreement is None:
            fail("协作类型", f"没有{cell['协作类型']} {cell['年度']} 年的协议：请先在协议页面建立协议。")
        unit = units["code"].get(cell["单位代码"]) if cell["单位代码"] else None
        if cell["单位代码"] and unit is None:
            fail("单位代码", "不是四川省、市(州)或县(市、区)的区划代码。")
        elif not cell["单位代码"]:
            found = units["name"].get(cell["单位"], [])
            if len(found) == 1:
                unit = found[0]
            else:
                fail("单位", "请填写单位代码。" if not found else "有多个同名的单位：请填写单位代码。")
        indicator = indicators.get(cell["指标"])
        if cell["指标"] and indicator is None:
            fail("指标", "没有这个指标（或已停用）：请按模板下拉列表填写。")
        value = None
        if indicator is not None and cell["目标值"]:
            try:
                value = parse_value(indicator, cell["目标值"])
            except ServiceError as exc:
                fail("目标值", str(exc))
        if not errors and agreement is not None and unit is not None and indicator is not None:
            key = (agreement.id, unit.id, indicator.id)
            if key in seen:
                fail("指标", f"与第 {seen[key]} 行是同一目标。")
            else:
                seen[key] = number
                if value is not None:
                    groups[(agreement, unit)][indicator.id] = (number, value)
                else:
                    result.unchanged += 1
        result.errors.extend(errors)
        if result.rows % PROGRESS_EVERY == 0:
            yield result.rows
    if result.errors:
        return result
    batch = Batch(user, entity_type="agreements", title="协议目标", filename=filename)
    for (agreement, unit), values in groups.items():
        current = {t.indicator_id: t.value for t in agreement.targets if t.unit_id == unit.id}
        try:
            services.set_targets(agreement, unit, {i: v for i, (_, v) in values.items()}, actor=user, batch=batch)
        except ServiceError as exc:
            result.errors += [sheet.refused(number, exc) for number, _ in values.values()]
            continue
        for indicator_id, (_, value) in values.items():
            old = current.get(indicator_id)
            if old is None:
                result.created += 1
            elif old != value:
                result.updated += 1
            else:
                result.unchanged += 1
    return batch.close(result)


import_targets = runner(import_targets_steps)


def _target_units():
    stmt = sa.select(Unit).where(
        Unit.side == Side.WEST, Unit.kind.in_((UnitKind.PROVINCE, UnitKind.PREFECTURE, UnitKind.COUNTY))
    )
    by_code, by_name = {}, defaultdict(list)
    for unit in db.session.scalars(stmt):
        by_code[unit.code] = unit
        by_name[unit.name].append(unit)
    return {"code": by_code, "name": by_name}


def target_rows(user):
    """Every target of the agreements ``user`` sees, by year, programme, unit code and indicator order."""
    stmt = (
        sa.select(Target)
        .join(Agreement, Agreement.id == Target.agreement_id)
        .join(Unit, Unit.id == Target.unit_id)
        .join(Indicator, Indicator.id == Target.indicator_id)
        .options(joinedload(Target.agreement).joinedload(Agreement.programme), joinedload(Target.unit),
                 joinedload(Target.indicator))
        .where(programme_filter(user, Agreement.programme_id))
        .order_by(Agreement.year, Agreement.id, Unit.code, Indicator.sort_order, Indicator.id)
    )  # fmt: skip
    for t in db.session.scalars(stmt):
        yield [t.agreement.year, t.agreement.programme.name, t.unit.code, t.unit.name, t.indicator.name,
               value_text(t.indicator, t.value)]  # fmt: skip


def target_columns(user) -> list[Column]:
    counties = writable_counties(user)
    programmes = db.session.scalars(
        sa.select(Programme.name).where(programme_filter(user, Programme.id)).order_by(Programme.name)
    ).all()
    sichuan = queries.sichuan()
    prefectures = sorted({c.parent for c in counties if c.parent is not None}, key=lambda u: u.code)
    codes = ([sichuan.code] if sichuan else []) + [u.code for u in prefectures] + [c.code for c in counties]
    names = ([sichuan.name] if sichuan else []) + [u.name for u in prefectures] + [c.name for c in counties]
    return [
        Column("年度", "协议年度", "4位整数", "是", "2024", text=True),
        Column("协作类型", "协议所属的协作类型", "从下拉列表选择", "是", "浙川东西部协作", tuple(programmes)),
        Column("单位代码", "目标所属单位：四川省、市(州)或县(市、区)的区划代码", "6位数字", "是（或填单位）",
               "513431", tuple(codes), text=True),
        Column("单位", "单位名称，填写单位代码时只供核对", "文本", "否", "昭觉县", tuple(names), strict=False),
        Column("指标", "协议指标", "从下拉列表选择", "是", "财政援助资金", tuple(_indicators())),
        Column("目标值", "金额类指标以万元填写，数量类指标填整数", "数字", "是", "3900"),
    ]  # fmt: skip


# ---- indicator entries ------------------------------------------------------------------------------------------

ENTRY_HEADERS = ["指标", "县代码", "县", "东部结对单位", "日期", "数值", "对象", "佐证", "备注"]
ENTRY_SYNONYMS = {"指标名称": "指标", "区划代码": "县代码", "县(市、区)": "县", "结对单位": "东部结对单位",
                  "登记日期": "日期", "完成日期": "日期", "完成数": "数值", "数量": "数值", "企业名称": "对象",
                  "佐证材料": "佐证"}  # fmt: skip
ENTRY_TEXTS = {"对象": ("subject", 200), "佐证": ("evidence", 200), "备注": ("note", 5000)}
ENTRY_FIELD_COLUMNS = {"indicator_id": "指标", "county_id": "县代码", "pairing_id": "东部结对单位",
                       "occurred_on": "日期", "value": "数值", "subject": "对象", "evidence": "佐证"}  # fmt: skip
ENTRY_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "只能登记没有专门业务模块的指标（由业务记录自动统计的指标不能在此登记）。",
    "与已登记记录的指标、县、结对单位、日期、数值、对象和佐证都相同的行视为同一条，不再重复登记，所以同一文件可以重复导入。",
    "金额类指标的数值以万元填写，数量类指标填整数；东部结对单位须是该县在该日期有效的结对单位，只有一个时可留空。",
]


def entry_key(e) -> tuple:
    return (e.indicator_id, e.county_id, e.pairing_id, e.occurred_on, e.value, e.subject or "", e.evidence or "")


def import_entries_steps(headers, rows, *, user, filename=""):
    """Read every row and create the new entries through ``services.create_entry`` (scope checked there)."""
    sheet = Sheet(headers, rows, ENTRY_HEADERS, ENTRY_SYNONYMS, fields=ENTRY_FIELD_COLUMNS, default="县代码")
    result = sheet.result
    indicators = {name: i for name, i in _indicators().items() if calculators.takes_entries(i)}
    sichuan = sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)
    by_code, by_name = {}, defaultdict(list)
    for unit in db.session.scalars(sichuan):
        by_code[unit.code] = unit
        by_name[unit.name].append(unit)
    parsed, scope = [], WriteScope(user)
    for number, cell in sheet.cells():
        errors, values = _parse_entry(number, cell, indicators, by_code, by_name, scope)
        result.errors.extend(errors)
        if not errors:
            parsed.append((number, cell, values))
        if result.rows % PROGRESS_EVERY == 0:
            yield result.rows
    county_ids = {v["county_id"] for _, _, v in parsed}
    existing = defaultdict(list)
    if county_ids:
        stmt = sa.select(IndicatorEntry).where(
            IndicatorEntry.county_id.in_(county_ids), scope_filter(user, IndicatorEntry)
        )
        for entry in db.session.scalars(stmt):
            existing[entry_key(entry)].append(entry)
    batch = Batch(user, entity_type="agreements", title="指标完成登记", filename=filename)
    for done, (number, cell, values) in enumerate(parsed, start=1):
        with sheet.row(number, cell):
            if same := existing.get(entry_key(SimpleNamespace(**values))):
                same.pop()
                result.unchanged += 1
            else:
                services.create_entry(values, actor=user, batch=batch)
                result.created += 1
        if done % PROGRESS_EVERY == 0:
            yield result.rows
    result.errors += sheet.write_errors
    return batch.close(result)


import_entries = runner(import_entries_steps)


def _parse_entry(number, cell, indicators, by_code, by_name, scope):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    for header in ("指标", "日期", "数值"):
        if not cell[header]:
            fail(header, "必须填写。")
    indicator = indicators.get(cell["指标"])
    if cell["指标"] and indicator is None:
        fail("指标", "该指标不存在、已停用或由业务记录自动统计，不能在此登记。")
    county = by_code.get(cell["县代码"]) if cell["县代码"] else None
    if cell["县代码"] and county is None:
        fail("县代码", "不是四川的县级区划代码。")
    elif not cell["县代码"]:
        found = by_name.get(cell["县"], [])
        if len(found) == 1:
            county = found[0]
        else:
            fail("县代码", "请填写县代码。" if not found else "有多个同名的县：请填写县代码。")
    if cell["日期"]:
        try:
            values["occurred_on"] = parse_date(cell["日期"])
        except ValueError as exc:
            fail("日期", str(exc))
    if indicator is not None and cell["数值"]:
        try:
            values["value"] = parse_value(indicator, cell["数值"])
        except ServiceError as exc:
            fail("数值", str(exc))
    for header, (attr, limit) in ENTRY_TEXTS.items():
        if len(cell[header]) > limit:
            fail(header, f"不能超过 {limit} 个字。")
        values[attr] = cell[header]
    if county is not None and not scope.allows_county(county.id):
        # The gate's refusal first: which partners the county had is no business of this row then.
        fail("县代码", f"{county.name}不在您的管辖范围内，不能在该县登记指标完成情况。")
        county = None
    if county is not None and "occurred_on" in values:
        choices = pairing_choices(county.id, values["occurred_on"])
        text = cell["东部结对单位"]
        if text:
            found = [p for p in choices if text in (p.east_unit.display_name, p.east_unit.name, p.east_unit.code)]
        else:
            found = choices if len(choices) == 1 else []
        if len(found) == 1:
            values["pairing_id"] = found[0].id
        else:
            names = "、".join(p.east_unit.display_name for p in choices) or "无"
            day = values["occurred_on"].isoformat()
            fail("东部结对单位", f"不是{county.name}在 {day} 的结对单位（可选：{names}）。")
    if indicator is not None:
        values["indicator_id"] = indicator.id
    if county is not None:
        values["county_id"] = county.id
    return errors, values


def entry_rows(user):
    """The indicator entries ``user`` sees, in date order; re-importing them adds nothing."""
    stmt = (
        sa.select(IndicatorEntry)
        .options(joinedload(IndicatorEntry.indicator), joinedload(IndicatorEntry.county),
                 joinedload(IndicatorEntry.pairing).joinedload(Pairing.east_unit).joinedload(Unit.parent))
        .where(scope_filter(user, IndicatorEntry))
        .order_by(IndicatorEntry.occurred_on, IndicatorEntry.id)
    )  # fmt: skip
    for e in db.session.scalars(stmt):
        yield [e.indicator.name, e.county.code, e.county.name, e.pairing.east_unit.display_name, e.occurred_on,
               value_text(e.indicator, e.value), e.subject, e.evidence, e.note]  # fmt: skip


def entry_columns(user) -> list[Column]:
    counties = writable_counties(user)
    names = [name for name, i in _indicators().items() if calculators.takes_entries(i)]
    east = db.session.scalars(
        sa.select(Unit).options(joinedload(Unit.parent))
        .where(Unit.id.in_(sa.select(Pairing.east_unit_id).where(Pairing.west_unit_id.in_([c.id for c in counties]))))
    ).all() if counties else []  # fmt: skip
    return [
        Column("指标", "没有专门业务模块的协议指标", "从下拉列表选择", "是", names[0] if names else "", tuple(names)),
        Column("县代码", "所在县(市、区)的区划代码，限您可登记的县", "6位数字", "是（或填县）", "513431",
               tuple(c.code for c in counties), text=True),
        Column("县", "县名，填写县代码时只供核对", "文本", "否", "昭觉县", tuple(c.name for c in counties),
               strict=False),
        Column("东部结对单位", "该县在该日期有效的东部结对单位；只有一个时可留空", "单位名称", "否", "余姚市",
               tuple(sorted({u.display_name for u in east})), strict=False),
        Column("日期", "完成的日期", "日期 YYYY-MM-DD", "是", "2024-05-01"),
        Column("数值", "金额类指标以万元填写，数量类指标填整数", "数字", "是", "1"),
        Column("对象", "登记的对象，如企业名称", "文本，最多200字", "否", "宁波某机械公司"),
        Column("佐证", "佐证材料编号或名称", "文本，最多200字", "否", "", text=True),
        Column("备注", "说明", "文本", "否", ""),
    ]  # fmt: skip
