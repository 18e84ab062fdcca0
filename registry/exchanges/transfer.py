"""People exchanged to and from spreadsheets; 编号 is the stable key.

派出方 / 接收方 name the registry units (a division's code, or a unit's full name as exported); 派出单位 / 接收单位
are the organisations' own names. A blank 派出方 is read from 派出单位 when that names a unit. Which side each end
must be on is checked by the exchange services, as for the form.
"""

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Side, Unit, UnitKind
from registry.exchanges import services
from registry.exchanges.models import Direction, Exchange, Field, PersonType
from registry.kernel.database import keyset_batches
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.transfer import Batch, RowError, parse_cells, parse_date, runner
from registry.kernel.transfer.sheet import Numbered, Sheet
from registry.kernel.transfer.template import Column
from registry.permissions import visible_by_id, writable_counties

HEADERS = [
    "编号", "姓名", "方向", "类型", "领域", "派出方", "派出单位", "接收方", "接收单位", "县代码", "县", "挂职岗位",
    "到岗日期", "离岗日期", "备注",
]  # fmt: skip
#: Registry-unit columns -> the service field.
UNIT_COLUMNS = {"派出方": "sending_unit_id", "接收方": "receiving_unit_id"}
TEXTS = {"姓名": ("person_name", 50), "派出单位": ("sending_unit", 200), "接收单位": ("receiving_unit", 200),
         "挂职岗位": ("position", 100), "备注": ("note", 2000)}  # fmt: skip
#: Other names offices give the template's columns, read as that column (the import's notes say so).
SYNONYMS = {
    "挂职干部": "姓名", "人员姓名": "姓名", "交流方向": "方向", "人员类型": "类型", "交流领域": "领域",
    "岗位": "挂职岗位", "挂职职务": "挂职岗位", "到岗时间": "到岗日期", "到任日期": "到岗日期",
    "离岗时间": "离岗日期", "离任日期": "离岗日期", "区县代码": "县代码", "区划代码": "县代码",
}  # fmt: skip
ENUMS = {"方向": ("direction", Direction), "类型": ("person_type", PersonType), "领域": ("field", Field)}


def unit_cell(unit: Unit | None) -> str:
    """A unit as the import reads it back: a division's code, an organisation's full name."""
    if unit is None:
        return ""
    return unit.code or unit.full_name


def export_row(e: Exchange) -> list:
    return [e.id, e.person_name, e.direction.label, e.person_type.label, e.field.label if e.field else "",
            unit_cell(e.sending), e.sending_unit, unit_cell(e.receiving), e.receiving_unit, e.county.code,
            e.county.name, e.position, e.arrival_date, e.departure_date, e.note]  # fmt: skip


#: The column a service's refusal of a field is reported in.
FIELD_COLUMNS = {
    **{attr: header for header, (attr, _) in TEXTS.items()}, **{attr: header for header, (attr, _) in ENUMS.items()},
    **{attr: header for header, attr in UNIT_COLUMNS.items()},
    "county_id": "县代码", "arrival_date": "到岗日期", "departure_date": "离岗日期",
}  # fmt: skip


#: Rows read and written together: an import commits a chunk at a time (other users' writes get in between).
CHUNK = 2000


def import_exchanges_steps(headers, rows, *, user, filename=""):
    """Read every row and write it through the exchange services; the caller commits only if no row failed.
    A row with 编号 updates that record if the user may see and write it; blank cells never overwrite.

    Rows are read and written ``CHUNK`` at a time (``Sheet.chunked``); 编号 names records as they were before the
    import (one created by it is not one its file can name), and a record named twice is refused in any chunk."""
    sheet = Sheet(headers, rows, HEADERS, SYNONYMS, fields=FIELD_COLUMNS, default="编号")
    sichuan = sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)
    counties = {u.code: u for u in db.session.scalars(sichuan)}
    units = services.unit_index()
    batch = Batch(user, entity_type="exchanges", title="人才交流", filename=filename, chunks=True)
    batch.cache["unit_index"] = units
    numbered = Numbered(Exchange, lambda ids: visible_by_id(user, Exchange, ids))

    def parse(number, cell):
        errors, values = _parse(number, cell, counties, units)
        return errors, (number, cell["编号"], values)

    def write(chunk):
        numbered.load(no for _, no, _ in chunk)
        for number, no, values in chunk:
            with sheet.row(number, lambda column, no=no: no if column == "编号" else ""):
                current = numbered.find(number, no)
                if current is None:
                    services.create_exchange(values, actor=user, batch=batch)
                    sheet.result.created += 1
                else:
                    sheet.counted(services.update_exchange(current, values, actor=user, batch=batch))

    return (yield from sheet.chunked(parse, write, batch, size=CHUNK))


import_exchanges = runner(import_exchanges_steps)


def _parse(number, cell, counties, units):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    for header, attr in UNIT_COLUMNS.items():
        if cell[header]:
            try:
                unit = services.find_unit(cell[header], units)
            except ServiceError as exc:
                fail(header, str(exc))
                continue
            if unit is None:
                fail(header, "不是登记的单位：请填区划代码或单位全称（与导出文件相同）。")
            else:
                values[attr] = unit.id
    if cell["编号"] and not cell["编号"].isdigit():
        fail("编号", "编号应为导出文件中的数字，新增记录请留空。")
    parse_cells(cell, TEXTS, ENUMS, values, fail)
    if cell["县代码"]:
        county = counties.get(cell["县代码"])
        if county is None:
            fail("县代码", "不是四川的县级区划代码。")
        else:
            values["county_id"] = county.id
    for header, attr in (("到岗日期", "arrival_date"), ("离岗日期", "departure_date")):
        if cell[header]:
            try:
                values[attr] = parse_date(cell[header])
            except ValueError as exc:
                fail(header, str(exc))
    return errors, values


def export_rows(stmt):
    """Rows of the export (the template's columns), in arrival order; re-importing them changes nothing."""
    order = (Exchange.arrival_date, Exchange.id)
    stmt = stmt.options(joinedload(Exchange.county))
    for batch in keyset_batches(db.session, stmt, order, lambda e: (e.arrival_date, e.id)):
        yield from (export_row(exchange) for exchange in batch)


def columns(user) -> list[Column]:
    """The template's columns, explained; 县 limited to the counties ``user`` may register in."""
    counties = writable_counties(user)

    def labels(enum):
        return tuple(m.label for m in enum)

    return [
        Column("编号", "导出文件中的记录编号；新增记录留空", "数字", "否（修改时填写）", "", text=True),
        Column("姓名", "交流人员姓名", "文本，最多50字", "是", "王明"),
        Column("方向", "交流方向", "从下拉列表选择", "是", labels(Direction)[0], labels(Direction)),
        Column("类型", "人员类型", "从下拉列表选择", "是", labels(PersonType)[0], labels(PersonType)),
        Column("领域", "专业领域（专业技术人才填写）", "从下拉列表选择", "否", "", labels(Field)),
        Column("派出方", "派出的登记单位：区划代码或单位全称（与导出文件相同）；留空时按派出单位查找", "代码或全称",
               "否", "330281", text=True),
        Column("派出单位", "派出单位名称", "文本，最多200字", "否", "余姚市人民政府"),
        Column("接收方", "接收的登记单位：区划代码或单位全称", "代码或全称", "否", "513431", text=True),
        Column("接收单位", "接收单位名称", "文本，最多200字", "否", "昭觉县人民政府"),
        Column("县代码", "挂职或服务所在县(市、区)的区划代码，限您可登记的县", "6位数字", "是", "513431",
               tuple(c.code for c in counties), text=True),
        Column("县", "县名，只供核对", "文本", "否", "昭觉县", tuple(c.name for c in counties), strict=False),
        Column("挂职岗位", "挂职或服务岗位", "文本，最多100字", "否", "副县长"),
        Column("到岗日期", "到岗日期", "日期 YYYY-MM-DD", "是", "2024-03-01"),
        Column("离岗日期", "离岗日期，仍在岗留空", "日期 YYYY-MM-DD", "否", ""),
        Column("备注", "说明", "文本，最多2000字", "否", ""),
    ]  # fmt: skip
