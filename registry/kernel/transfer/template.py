"""Import templates that guide: every stream's template is built here from its list of ``Column``.

The workbook has the data sheet (the stream's columns, header frozen, widths that fit the headers, text format on
codes and identity numbers so Excel keeps their digits, a drop-down list on every coded column), a 填表说明 sheet
(列名, 含义, 格式, 是否必填, 示例 for each column, and the import's rules) and, when a list is too long for a
validation formula, a hidden 选项 sheet the drop-down refers to.
"""

import io
import unicodedata
from dataclasses import dataclass

#: Rows of the data sheet the drop-downs cover (a template is filled by hand or pasted into); the text format covers
#: whole columns.
TEMPLATE_ROWS = 2000
#: Excel refuses a list validation whose comma-joined choices exceed 255 characters: longer lists go to 选项.
INLINE_LIMIT = 255
INSTRUCTIONS = "填表说明"
CHOICES_SHEET = "选项"
TEXT_FORMAT = "@"


@dataclass(frozen=True)
class Column:
    """One column of an import template, as the 填表说明 sheet explains it."""

    header: str
    meaning: str
    format: str = "文本"
    required: str = "否"
    example: str = ""
    #: The values the drop-down offers (and the import accepts); empty for free text.
    choices: tuple[str, ...] = ()
    #: Kept as text in Excel (codes, identity numbers, voucher numbers): long digits are not rounded.
    text: bool = False
    #: A drop-down that only suggests (the import also accepts other values, e.g. a unit's full name).
    strict: bool = True


def display_width(text: str) -> int:
    """Columns a text takes in Excel: a CJK character is about two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in str(text))


def template_workbook(columns: list[Column], *, title: str, rules: list[str] = ()) -> bytes:
    """The import template of a stream: see the module's docstring. A bare header is a column without notes."""
    # Imported here: every stream's transfer module imports this one, and the import worker, which never writes a
    # workbook, should not carry openpyxl and lxml (~18 MB; issue 14: an import's peak under 300 MB).
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    columns = [c if isinstance(c, Column) else Column(c, "") for c in columns]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    options = None
    for position, column in enumerate(columns, start=1):
        letter = get_column_letter(position)
        cell = sheet.cell(row=1, column=position, value=column.header)
        cell.font, cell.fill = bold, fill
        width = max(display_width(column.header), display_width(column.example), 6) + 2
        sheet.column_dimensions[letter].width = min(width, 40)
        if column.text:
            # The whole column's style, as Excel's own 设置单元格格式 of a column writes it (<col style>): every row
            # typed or pasted into is text, not only the first rows, and the file holds no empty formatted cells
            # (a cell each of 2,000 rows cost ~0.1 s a download and as much again in Excel opening it).
            sheet.column_dimensions[letter].number_format = TEXT_FORMAT
        if column.choices:
            inline = ",".join(column.choices)
            if len(inline) + 2 <= INLINE_LIMIT and '"' not in inline and "," not in "".join(column.choices):
                formula = f'"{inline}"'
            else:
                if options is None:
                    options = workbook.create_sheet(CHOICES_SHEET)
                    options.sheet_state = "hidden"
                holder = options.max_column + 1 if options.max_row > 1 or options["A1"].value else 1
                options.cell(row=1, column=holder, value=column.header)
                for index, choice in enumerate(column.choices, start=2):
                    options.cell(row=index, column=holder, value=choice).number_format = TEXT_FORMAT
                held = get_column_letter(holder)
                formula = f"'{CHOICES_SHEET}'!${held}$2:${held}${len(column.choices) + 1}"
            validation = DataValidation(
                type="list",
                formula1=formula,
                allow_blank=True,
                showDropDown=False,
                showErrorMessage=column.strict,
                errorTitle=column.header,
                error=f"请从下拉列表中选择{column.header}。",
                promptTitle=column.header,
                prompt=column.meaning[:255],
                showInputMessage=True,
            )
            sheet.add_data_validation(validation)
            validation.add(f"{letter}2:{letter}{TEMPLATE_ROWS + 1}")
    sheet.freeze_panes = "A2"
    _instructions(workbook.create_sheet(INSTRUCTIONS, 1), columns, rules, bold, fill)
    workbook.active = 0
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _instructions(sheet, columns: list[Column], rules, bold, fill) -> None:
    headings = ["列名", "含义", "格式", "是否必填", "示例"]
    for position, heading in enumerate(headings, start=1):
        cell = sheet.cell(row=1, column=position, value=heading)
        cell.font, cell.fill = bold, fill
    from openpyxl.styles import Alignment  # loaded already by template_workbook, the only caller

    wrap = Alignment(wrap_text=True, vertical="top")
    for row, column in enumerate(columns, start=2):
        fmt = column.format
        if column.choices:
            shown = "、".join(column.choices[:12]) + ("等（见下拉列表）" if len(column.choices) > 12 else "")
            fmt = f"{fmt}；可选：{shown}"
        values = [column.header, column.meaning, fmt, column.required, column.example]
        for position, value in enumerate(values, start=1):
            cell = sheet.cell(row=row, column=position, value=value)
            cell.alignment = wrap
            cell.number_format = TEXT_FORMAT
    for letter, width in zip("ABCDE", (18, 48, 40, 14, 24), strict=True):
        sheet.column_dimensions[letter].width = width
    if rules:
        start = len(columns) + 3
        sheet.cell(row=start, column=1, value="导入规则").font = bold
        for offset, rule in enumerate(rules, start=1):
            sheet.cell(row=start + offset, column=1, value=f"{offset}. {rule}")
    sheet.freeze_panes = "A2"
