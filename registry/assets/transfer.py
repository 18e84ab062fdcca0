"""The register to and from spreadsheets: the export of the filtered list, its template, and the import that writes
every row through the asset services with a ``transfer.Batch`` (all rows or none). Re-importing an export changes
nothing; its read-only columns (原值, 东部财政援助, 状态…) are checked against the record, never written."""

from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.assets import services
from registry.assets.models import Asset, AssetClass, AssetState, OperationMode, OwnerLevel
from registry.assets.queries import last_check_dates
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, yuan
from registry.kernel.services import ServiceError, facts
from registry.kernel.transfer import Batch, RowError, parse_amount, parse_cells, parse_date, runner
from registry.kernel.transfer.sheet import Numbered, Sheet
from registry.kernel.transfer.template import Column
from registry.permissions import visible_by_id, writable_counties

HEADERS = [
    "编号", "资产编号", "资产名称", "资产类别", "数量", "计量单位", "来源项目", "原值(元)", "东部财政援助(元)",
    "县代码", "县", "乡镇", "村", "坐落位置", "结对关系", "协作类型", "竣工日期", "移交日期", "确权层级", "所有权人",
    "管护主体", "管护责任人", "联系电话", "运营方式", "收益年度", "年收益(元)", "分配给脱贫户(元)",
    "分配给村集体(元)", "状态", "最近检查日期", "待核实", "备注",
]  # fmt: skip
#: Columns of the export an import reads past (derived from the source projects and the checks); not in the template.
EXPORT_ONLY = ["县", "结对关系", "协作类型", "最近检查日期", "待核实"]
IMPORT_HEADERS = [h for h in HEADERS if h not in EXPORT_ONLY]
TEXTS = {
    "资产编号": ("number", 50), "资产名称": ("name", 200), "计量单位": ("quantity_unit", 20),
    "坐落位置": ("location", 200), "所有权人": ("owner_name", 500), "管护主体": ("caretaker", 200),
    "管护责任人": ("caretaker_person", 50), "联系电话": ("caretaker_phone", 30), "备注": ("note", 2000),
}  # fmt: skip
ENUMS = {"资产类别": ("asset_class", AssetClass), "确权层级": ("owner_level", OwnerLevel),
         "运营方式": ("operation_mode", OperationMode)}  # fmt: skip
MONEY = {"年收益(元)": "annual_income_fen", "分配给脱贫户(元)": "to_households_fen",
         "分配给村集体(元)": "to_collective_fen"}  # fmt: skip
SYNONYMS = {
    "资产名": "资产名称", "资产类型": "资产类别", "原值": "原值(元)", "确权对象": "所有权人", "产权人": "所有权人",
    "管护单位": "管护主体", "责任人": "管护责任人", "经营方式": "运营方式", "竣工时间": "竣工日期",
    "移交时间": "移交日期", "区县代码": "县代码", "区划代码": "县代码",
}  # fmt: skip
FIELD_COLUMNS = {
    **{attr: header for header, (attr, _) in TEXTS.items()}, **{attr: header for header, (attr, _) in ENUMS.items()},
    **{attr: header for header, attr in MONEY.items()},
    "sources": "来源项目", "quantity": "数量", "township_id": "乡镇", "village_id": "村", "completed_on": "竣工日期",
    "handed_over_on": "移交日期", "income_year": "收益年度", "county_id": "县代码", "pairing_id": "来源项目",
    "original_value_fen": "原值(元)", "east_fen": "东部财政援助(元)", "state": "状态",
}  # fmt: skip


IMPORT_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "有“编号”的行更新该条记录，没有编号的行新增记录；资产编号不能重复。",
    "“来源项目”每项写成 项目编号:东部财政援助(元):其他资金(元)，多项用“；”分隔；来源项目须已完工，且在同一县；"
    "原值为各项之和，县、结对关系和协作类型取自第一个来源项目。",
    "“原值(元)”“东部财政援助(元)”由来源项目计算，填写时须与之相符；“状态”只供核对，新增记录为“正常”，"
    "状态和管护检查在资产页面登记，导入不改变状态。",
    "导出文件中的“县”“结对关系”“协作类型”“最近检查日期”“待核实”列只供查看，导入时不读取。",
    "空白单元格不会覆盖已有内容。",
]


def columns(user) -> list[Column]:
    """The template's columns, explained; 县代码 limited to the counties ``user`` may register in."""
    counties = writable_counties(user)
    return [
        Column("编号", "导出文件中的记录编号；新增记录留空", "数字", "否（修改时填写）", "", text=True),
        Column("资产编号", "资产的唯一编号", "文本，最多50字", "是", "ZJ-513431-2024-001", text=True),
        Column("资产名称", "资产名称", "文本，最多200字", "是", "村级光伏电站"),
        Column("资产类别", "经营性、公益性或到户类", "从下拉列表选择", "是", "经营性", _labels(AssetClass)),
        Column("数量", "资产数量", "大于0的数字", "否（默认1）", "1"),
        Column("计量单位", "数量的单位", "文本，最多20字", "否", "座"),
        Column("来源项目", "形成该资产的项目及金额：项目编号:东部财政援助(元):其他资金(元)，多项用“；”分隔",
               "文本；项目须已完工", "新增时必填", "ZC-513431-2024-001:800000:200000", text=True),
        Column("原值(元)", "各来源金额之和，由来源项目计算；填写时须与之相符", "数字，最多两位小数", "否", ""),
        Column("东部财政援助(元)", "各来源东部财政援助之和，由来源项目计算；填写时须与之相符", "数字，最多两位小数",
               "否", ""),
        Column("县代码", "资产所在县(市、区)的区划代码，须是来源项目所在县，限您可登记的县", "6位数字", "否",
               "513431", tuple(c.code for c in counties), text=True),
        Column("乡镇", "资产所在乡镇，须在该县", "乡镇名称", "否", "三岔河乡"),
        Column("村", "资产所在村，须在该县（同名时请填乡镇）", "村名称", "否", "三河村"),
        Column("坐落位置", "资产的具体位置", "文本，最多200字", "否", "三岔河乡三河村二组"),
        Column("竣工日期", "资产竣工日期，不晚于今天", "日期 YYYY-MM-DD", "新增时必填", "2024-06-30"),
        Column("移交日期", "移交给所有权人的日期，不早于竣工日期", "日期 YYYY-MM-DD", "否", "2024-07-15"),
        Column("确权层级", "资产确权到的层级；公益性资产不能确权到户", "从下拉列表选择", "是", "村集体",
               _labels(OwnerLevel)),
        Column("所有权人", "确权的单位或农户", "文本，最多500字", "是", "三河村股份经济合作社"),
        Column("管护主体", "负责管护的单位", "文本，最多200字", "是", "三河村村民委员会"),
        Column("管护责任人", "管护责任人姓名", "文本，最多50字", "是", "吉克阿呷"),
        Column("联系电话", "管护责任人的电话", "文本，最多30字", "否", "13800000000", text=True),
        Column("运营方式", "资产的运营方式", "从下拉列表选择", "是", "租赁", _labels(OperationMode)),
        Column("收益年度", "年收益所属年度；填写年收益时必填", "4位整数", "否", "2024", text=True),
        Column("年收益(元)", "该年度的资产收益", "不小于0的数字，最多两位小数", "否", "60000"),
        Column("分配给脱贫户(元)", "年收益中分配给脱贫户的部分", "不小于0的数字，最多两位小数", "否", "30000"),
        Column("分配给村集体(元)", "年收益中分配给村集体的部分；与分配给脱贫户之和不超过年收益",
               "不小于0的数字，最多两位小数", "否", "20000"),
        Column("状态", "资产的当前状态，只供核对：新增记录为“正常”，状态在资产页面变更", "从下拉列表选择", "否",
               "正常", _labels(AssetState)),
        Column("备注", "说明", "文本，最多2000字", "否", ""),
    ]  # fmt: skip


def _labels(enum) -> tuple[str, ...]:
    return tuple(m.label for m in enum)


def _money(fen: int) -> str:
    return yuan(fen).replace(",", "")


def export_rows(stmt):
    """Rows of the export (the template's columns), by asset number; re-importing them changes nothing."""
    assets = db.session.scalars(
        stmt.options(
            joinedload(Asset.county), joinedload(Asset.township), joinedload(Asset.village),
            joinedload(Asset.pairing), joinedload(Asset.programme), joinedload(Asset.sources),
        ).order_by(Asset.number)
    ).unique().all()  # fmt: skip
    codes = {f["id"]: f["code"] for f in facts("project", ids={s.project_id for a in assets for s in a.sources})}
    last = last_check_dates([a.id for a in assets])
    for a in assets:
        sources = "；".join(f"{codes[s.project_id]}:{_money(s.east_fen)}:{_money(s.other_fen)}" for s in a.sources)
        pairing = f"{a.pairing.east_unit.display_name} ↔ {a.pairing.west_unit.name}"
        yield [
            a.id, a.number, a.name, a.asset_class.label, f"{a.quantity.normalize():f}", a.quantity_unit, sources,
            _money(a.original_value_fen), _money(a.east_fen), a.county.code, a.county.name,
            a.township.name if a.township else "", a.village.name if a.village else "", a.location, pairing,
            a.programme.name, a.completed_on, a.handed_over_on, a.owner_level.label, a.owner_name, a.caretaker,
            a.caretaker_person, a.caretaker_phone, a.operation_mode.label, a.income_year or "",
            _money(a.annual_income_fen), _money(a.to_households_fen), _money(a.to_collective_fen), a.state.label,
            last.get(a.id) or "", "是" if a.needs_review else "", a.note,
        ]  # fmt: skip


#: Rows read and written together: an import commits a chunk at a time (other users' writes get in between).
CHUNK = 2000


def import_assets_steps(headers, rows, *, user, filename=""):
    """Read every row and write it through the asset services; the caller commits only if no row failed.
    A row with 编号 updates that record if the user may see and write it; blank cells never overwrite.

    Rows are read and written ``CHUNK`` at a time (``Sheet.chunked``); 编号 names records as they were before the
    import, and a record named twice is refused in any chunk."""
    sheet = Sheet(headers, rows, IMPORT_HEADERS, SYNONYMS, ignored=EXPORT_ONLY, fields=FIELD_COLUMNS, default="编号")
    batch = Batch(user, entity_type="assets", title="项目资产", filename=filename, chunks=True)
    numbered = Numbered(Asset, lambda ids: visible_by_id(user, Asset, ids))

    def parse(number, cell):
        errors, values = _parse(number, cell)
        return errors, (number, cell, values)

    def write(chunk):
        numbered.load(cell["编号"] for _, cell, _ in chunk)
        for number, cell, values in chunk:
            with sheet.row(number, cell):
                current = numbered.find(number, cell["编号"])
                county_id = _county_of(values, current, batch)
                _places(cell, values, county_id, batch)
                if current is not None:
                    _check_read_only(cell, current, values)
                    sheet.counted(services.update_asset(current, values, actor=user, batch=batch))
                else:
                    asset = services.create_asset(values, actor=user, batch=batch)
                    _check_read_only(cell, asset, values)
                    sheet.result.created += 1

    return (yield from sheet.chunked(parse, write, batch, size=CHUNK))


import_assets = runner(import_assets_steps)


def _parse(number, cell):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    if cell["编号"] and not cell["编号"].isdigit():
        fail("编号", "编号应为导出文件中的数字，新增记录请留空。")
    parse_cells(cell, TEXTS, ENUMS, values, fail)
    if cell["来源项目"]:
        try:
            values["sources"] = services.parse_sources(cell["来源项目"])
        except ServiceError as exc:
            fail("来源项目", str(exc))
    if cell["数量"]:
        try:
            values["quantity"] = Decimal(cell["数量"].replace(",", ""))
        except InvalidOperation:
            fail("数量", "数量应为数字，例如 1 或 12.5。")
    for header, attr in (("竣工日期", "completed_on"), ("移交日期", "handed_over_on")):
        if cell[header]:
            try:
                values[attr] = parse_date(cell[header])
            except ValueError as exc:
                fail(header, str(exc))
    if cell["收益年度"]:
        if cell["收益年度"].isdigit():
            values["income_year"] = int(cell["收益年度"])
        else:
            fail("收益年度", "收益年度应为四位数年份。")
    for header, attr in MONEY.items():
        if cell[header]:
            try:
                values[attr] = parse_amount(cell[header], "元")
            except MoneyError as exc:
                fail(header, str(exc))
    return errors, values


def _county_of(values, current, batch) -> int:
    """The county the row's asset lies in: its first source project's (the new sources', else the record's)."""
    if values.get("sources"):
        code = values["sources"][0][0]
        found = services.project_facts_by_code([code], batch.cache)
        if code not in found:
            raise ServiceError(f"没有项目编号为“{code}”的项目。", "sources")
        return found[code]["county_id"]
    if current is None:
        raise ServiceError("请填写来源项目（项目编号及各资金来源形成资产的金额）。", "sources")
    return current.county_id


def _places(cell, values, county_id, batch) -> None:
    """乡镇 and 村 by name within the asset's county; the 县代码 given must be that county's."""
    places = batch.cache.setdefault("places", {})
    if county_id not in places:
        units = db.session.scalars(
            sa.select(Unit).where(Unit.county_id == county_id, Unit.kind.in_((UnitKind.TOWNSHIP, UnitKind.VILLAGE)))
        ).all()
        places[county_id] = units
    county = db.session.get(Unit, county_id)
    if cell["县代码"] and cell["县代码"] != county.code:
        raise ServiceError(
            f"县代码 {cell['县代码']} 与来源项目所在县 {county.name}（{county.code}）不一致。", "county_id"
        )
    if county.side is not Side.WEST:
        raise ServiceError("来源项目不在四川的县。", "county_id")
    township = None
    if cell["乡镇"]:
        matches = [u for u in places[county_id] if u.kind is UnitKind.TOWNSHIP and u.name == cell["乡镇"]]
        if len(matches) != 1:
            raise ServiceError(f"{county.name}没有名为“{cell['乡镇']}”的乡镇。", "township_id")
        township = matches[0]
        values["township_id"] = township.id
    if cell["村"]:
        matches = [u for u in places[county_id] if u.kind is UnitKind.VILLAGE and u.name == cell["村"]
                   and (township is None or u.parent_id == township.id)]  # fmt: skip
        if len(matches) != 1:
            where = township.name if township else county.name
            reason = "有多个同名的村，请填写乡镇" if len(matches) > 1 else "没有该村"
            raise ServiceError(f"{where}{reason}：“{cell['村']}”。", "village_id")
        values["village_id"] = matches[0].id


def _check_read_only(cell, asset: Asset, values) -> None:
    """The export's derived columns, when given, must agree with the record as it will be."""
    for header, attr in (("原值(元)", "original_value_fen"), ("东部财政援助(元)", "east_fen")):
        if cell[header]:
            try:
                amount = parse_amount(cell[header], "元")
            except MoneyError as exc:
                raise ServiceError(f"{header}：{exc}", attr) from exc
            if values.get("sources"):
                expected = sum(e + o if attr == "original_value_fen" else e for _, e, o in values["sources"])
            else:
                expected = getattr(asset, attr)
            if amount != expected:
                raise ServiceError(
                    f"{header} {cell[header]} 与来源项目金额之和 {_money(expected)} 不一致（原值由来源项目计算）。",
                    attr,
                )
    if cell["状态"] and cell["状态"] != asset.state.label:
        raise ServiceError(f"状态请在资产页面变更（当前为“{asset.state.label}”），导入不改变状态。", "state")
