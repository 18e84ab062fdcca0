"""The ledger to and from spreadsheets, in the columns offices send upward; 编号 is the stable key.

An import registers a batch of problems (or changes listed ones) through the problem services with a
``transfer.Batch``: all rows or none. 状态, 整改到位资金 and 销号日期 are exported as they stand and never read:
they change only through progress entries and the steps of 销号.
"""

import functools
import io
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import DIVISION_KINDS, Side, Unit
from registry.kernel.exports import neutralise
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError
from registry.kernel.transfer import Batch, RowError, parse_amount, parse_cells, parse_date, runner
from registry.kernel.transfer.sheet import Numbered, Sheet
from registry.kernel.transfer.template import Column
from registry.permissions import WriteScope, unit_filter, visible_by_id
from registry.problems import services
from registry.problems.models import Category, Problem, Source, State

HEADERS = [
    "编号", "问题来源", "年度", "批次", "发现日期", "涉及单位代码", "涉及单位", "问题类别", "问题描述", "涉及金额(元)",
    "牵头单位", "责任单位", "责任人", "整改措施", "整改时限", "状态", "是否超期", "整改到位资金(元)", "销号日期",
]  # fmt: skip
#: Columns of the export an import reads past: they change only through progress entries and 销号.
EXPORT_ONLY = ["状态", "是否超期", "整改到位资金(元)", "销号日期"]
IMPORT_HEADERS = [h for h in HEADERS if h not in EXPORT_ONLY]
TEXTS = {
    "批次": ("batch", 100), "问题描述": ("description", 4000), "牵头单位": ("lead_unit", 200),
    "责任单位": ("responsible_unit", 200), "责任人": ("responsible_person", 50), "整改措施": ("measures", 4000),
}  # fmt: skip
ENUMS = {"问题来源": ("source", Source), "问题类别": ("category", Category)}
SYNONYMS = {
    "序号": "编号", "来源": "问题来源", "发现时间": "发现日期", "区划代码": "涉及单位代码", "县代码": "涉及单位代码",
    "类别": "问题类别", "问题表现": "问题描述", "具体问题": "问题描述", "整改时间": "整改时限", "完成时限": "整改时限",
    "牵头领导": "责任人", "责任领导": "责任人",
}  # fmt: skip
FIELD_COLUMNS = {
    **{attr: header for header, (attr, _) in TEXTS.items()}, **{attr: header for header, (attr, _) in ENUMS.items()},
    "year": "年度", "found_on": "发现日期", "unit_id": "涉及单位代码", "amount_fen": "涉及金额(元)",
    "deadline": "整改时限",
}  # fmt: skip


IMPORT_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "有“编号”的行修改该问题，没有编号的行登记新问题（未整改）。",
    "“涉及单位代码”填您可登记的县(市、区)、市(州)或省的区划代码；“涉及单位”只供核对，以代码为准。",
    "“"
    + "”“".join(EXPORT_ONLY)
    + "”只导出、不导入：它们随整改进展和销号审核变化（状态有："
    + "、".join(m.label for m in State)
    + "）。",
    "导出的台账表头上方有标题行，可直接导入；空白单元格不会覆盖已有内容。",
]


def writable_units(user) -> list[Unit]:
    """The Sichuan counties, prefectures and the province ``user`` may register problems in, in code order."""
    ws = WriteScope(user)
    stmt = (
        sa.select(Unit).options(joinedload(Unit.parent))
        .where(Unit.side == Side.WEST, Unit.kind.in_(DIVISION_KINDS), unit_filter(user))
        .order_by(Unit.code)
    )  # fmt: skip
    return [u for u in db.session.scalars(stmt) if ws.allows(u.id, None)]


def columns(user) -> list[Column]:
    """The template's columns, explained; 涉及单位 limited to the units ``user`` may register problems in."""
    units = [u for u in writable_units(user) if u.code]
    return [
        Column("编号", "导出文件中的问题编号；新增问题留空", "数字", "否（修改时填写）", "", text=True),
        Column("问题来源", "发现问题的途径", "从下拉列表选择", "是", "国家考核", _labels(Source)),
        Column("年度", "问题所属年度", "4位整数（2000–2100）", "是", "2024", text=True),
        Column("批次", "问题的批次（如考核或检查的名称）", "文本，最多100字", "否", "2023年度国家考核反馈"),
        Column("发现日期", "发现问题的日期", "日期 YYYY-MM-DD", "是", "2024-03-15"),
        Column("涉及单位代码", "问题涉及的县(市、区)、市(州)或省的区划代码，限您可登记的单位", "6位数字", "是",
               "513431", tuple(u.code for u in units), text=True),
        Column("涉及单位", "单位名称，只供核对（以单位代码为准）", "文本", "否", "昭觉县",
               tuple(u.name for u in units), strict=False),
        Column("问题类别", "问题所属类别", "从下拉列表选择", "是", "资金", _labels(Category)),
        Column("问题描述", "问题的具体表现", "文本，最多4000字", "是", "部分协作资金拨付滞后"),
        Column("涉及金额(元)", "问题涉及的金额；表头写“涉及金额(万元)”时按万元读取", "不小于0的数字，最多两位小数",
               "否", "500000"),
        Column("牵头单位", "牵头整改的单位", "文本，最多200字", "否", "昭觉县乡村振兴局"),
        Column("责任单位", "负责整改的单位", "文本，最多200字", "否", "昭觉县财政局"),
        Column("责任人", "整改责任人", "文本，最多50字", "否", "张三"),
        Column("整改措施", "计划采取的整改措施", "文本，最多4000字", "否", "建立资金拨付台账，按月调度"),
        Column("整改时限", "完成整改的期限，不早于发现日期", "日期 YYYY-MM-DD", "否", "2024-06-30"),
    ]  # fmt: skip


def _labels(enum) -> tuple[str, ...]:
    return tuple(m.label for m in enum)


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def export_row(p: Problem, today: date) -> list:
    return [p.id, p.source.label, p.year, p.batch, p.found_on, p.unit.code or "", p.unit.name, p.category.label,
            p.description, _yuan(p.amount_fen), p.lead_unit, p.responsible_unit, p.responsible_person, p.measures,
            p.deadline, p.state.label, "是" if p.is_overdue(today) else "否", _yuan(p.rectified_fen),
            p.closed_on]  # fmt: skip


def export_rows(stmt, today: date | None = None):
    today = today or date.today()
    stmt = stmt.options(joinedload(Problem.unit)).order_by(Problem.year, Problem.batch, Problem.unit_id, Problem.id)
    for problem in db.session.scalars(stmt):
        yield export_row(problem, today)


#: Rows read and written together: an import commits a chunk at a time (other users' writes get in between).
CHUNK = 2000


def import_problems_steps(headers, rows, *, user, filename=""):
    """Read every row and write it through the problem services; nothing is written unless every row passes.
    A row with 编号 changes that problem if the user may see and write it; blank cells never overwrite.

    Rows are read and written ``CHUNK`` at a time (``Sheet.chunked``); 编号 names problems as they were before the
    import, and a problem named twice is refused in any chunk."""
    sheet = Sheet(headers, rows, IMPORT_HEADERS, SYNONYMS, ignored=EXPORT_ONLY, fields=FIELD_COLUMNS, default="编号")
    west = sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind.in_(DIVISION_KINDS), Unit.code.is_not(None))
    divisions = {u.code: u for u in db.session.scalars(west)}
    batch = Batch(user, entity_type="problems", title="整改问题", filename=filename, chunks=True)
    numbered = Numbered(Problem, lambda ids: visible_by_id(user, Problem, ids), "没有这个问题，或不在您的管辖范围内。",
                        "与第 {row} 行是同一个问题。")  # fmt: skip

    def parse(number, cell):
        errors, values = _parse(number, cell, divisions, sheet.units)
        return errors, (number, cell["编号"], values)

    def write(chunk):
        numbered.load(no for _, no, _ in chunk)
        for number, no, values in chunk:
            with sheet.row(number, functools.partial(_shown, no, values)):
                current = numbered.find(number, no)
                if current is None:
                    services.create_problem(values, actor=user, batch=batch)
                    sheet.result.created += 1
                else:
                    sheet.counted(services.update_problem(current, values, actor=user, batch=batch))

    return (yield from sheet.chunked(parse, write, batch, size=CHUNK))


#: The field of each column a refusal is reported in (the refused value is shown there).
COLUMN_FIELDS = {column: field for field, column in FIELD_COLUMNS.items()}


def _shown(no: str, values: dict, column: str) -> str:
    """What a refused row shows in ``column``: its 编号, or the value it gave the refused field."""
    if column == "编号":
        return no
    value = values.get(COLUMN_FIELDS.get(column))
    return "" if value is None else str(value)[:50]


import_problems = runner(import_problems_steps)


def _parse(number, cell, divisions, units_of):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    if cell["编号"] and not cell["编号"].isdigit():
        fail("编号", "编号应为导出文件中的数字，新增问题请留空。")
    parse_cells(cell, TEXTS, ENUMS, values, fail)
    if cell["年度"]:
        if cell["年度"].isdigit() and 2000 <= int(cell["年度"]) <= 2100:
            values["year"] = int(cell["年度"])
        else:
            fail("年度", "年度应为 2000 至 2100 之间的四位数字。")
    if cell["涉及单位代码"]:
        unit = divisions.get(cell["涉及单位代码"])
        if unit is None:
            fail("涉及单位代码", "不是四川的县级、市(州)级或省级区划代码。")
        else:
            values["unit_id"] = unit.id
    for header, attr in (("发现日期", "found_on"), ("整改时限", "deadline")):
        if cell[header]:
            try:
                values[attr] = parse_date(cell[header])
            except ValueError as exc:
                fail(header, str(exc))
    if cell["涉及金额(元)"]:
        try:
            values["amount_fen"] = parse_amount(cell["涉及金额(元)"], units_of.get("涉及金额(元)", ""))
        except MoneyError as exc:
            fail("涉及金额(元)", str(exc))
    return errors, values


def ledger_xlsx(rows, title: str, subtitle: str) -> bytes:
    """The ledger as offices send it upward: a title row, a line saying what it holds, then the columns."""
    # Imported here, as in registry.kernel.exports: only writing a workbook needs openpyxl.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "整改台账"
    sheet.append([title])
    sheet.append([subtitle])
    sheet.append(HEADERS)
    last = get_column_letter(len(HEADERS))
    sheet.merge_cells(f"A1:{last}1")
    sheet.merge_cells(f"A2:{last}2")
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center")
    for cell in sheet[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        sheet.append([neutralise(v) if isinstance(v, str) else v for v in row])
    widths = [7, 10, 7, 20, 12, 12, 12, 9, 48, 14, 18, 18, 10, 40, 12, 10, 9, 14, 12]
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A4"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
