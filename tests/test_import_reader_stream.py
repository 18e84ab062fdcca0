"""A large workbook is streamed row by row (``reader._stream_xlsx``) instead of read whole by calamine: the rows an
importer gets must be the same either way, whatever Excel put in the cells (shared or inline strings, rich text,
dates and times, numbers, long numbers, booleans, formulas, blank rows and columns, title rows)."""

import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from registry.kernel.services import ServiceError
from registry.kernel.transfer import reader
from registry.kernel.transfer.reader import LongNumber, read_table


def _workbook(write_only: bool) -> bytes:
    workbook = Workbook(write_only=write_only)
    sheet = workbook.create_sheet("数据") if write_only else workbook.active
    rows = [
        [None, "劳务协作台账"],
        [],
        [None, "姓名", "身份证号", "日期", "时间", "金额", "是否", "公式", "备注"],
        [None, "沙马拉则", "513431198805051231", date(2024, 5, 1), datetime(2024, 5, 1, 8, 30, 15), 4800, True,
         "=1+2", "'=SUM(A1)"],
        [None, "阿牛", 513431198805051231, "2024/5/2", datetime(2024, 5, 2), 12.5, False, None, None],
        [],
        [None, None, None, None, None, 0.1 + 0.2, None, None, "  空格  "],
        [None, "合计", None, None, None, 4812.8],
    ]  # fmt: skip
    for row in rows:
        sheet.append(row)
    if not write_only:
        sheet["I5"] = CellRichText("粗体", TextBlock(InlineFont(b=True), "与普通"))
        sheet["E5"].number_format = "yyyy年m月d日"
        sheet["F4"].number_format = '"¥"#,##0.00'
        sheet.append([None] * 12 + ["远列"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _read(data: bytes, monkeypatch, stream: bool):
    monkeypatch.setattr(reader, "STREAM_BYTES", 0 if stream else 10**12)
    headers, rows = read_table(data, "t.xlsx")
    read = list(rows)
    return headers, read, list(rows.again()), rows.last


def _trimmed(read):
    def trim(cells):
        cells = list(cells)
        while cells and cells[-1] == "":
            cells.pop()
        return cells

    headers, rows, again, last = read
    return trim(headers), [(n, trim(c)) for n, c in rows], [(n, trim(c)) for n, c in again], last


@pytest.mark.parametrize("write_only", [False, True], ids=["shared-strings", "inline-strings"])
def test_a_streamed_sheet_reads_as_calamine_reads_it(monkeypatch, write_only):
    data = _workbook(write_only)
    whole = _read(data, monkeypatch, stream=False)
    streamed = _read(data, monkeypatch, stream=True)
    if write_only:
        # openpyxl's write-only workbook has no <dimension>: its width is not known before the rows are read, and a
        # streamed row ends at its last cell where calamine pads it to the used range (blank cells either way).
        assert streamed[3] == whole[3] == 8 and _trimmed(streamed) == _trimmed(whole)
    else:
        assert streamed == whole
    assert [type(c) for _, cells in streamed[1] for c in cells if isinstance(c, LongNumber)] == [LongNumber]
    cells = dict(streamed[1])
    assert cells[4][2:9] == ["513431198805051231", "2024-05-01", "2024-05-01 08:30:15", "4800", "TRUE", "",
                             "=SUM(A1)"]  # fmt: skip


def test_a_workbook_that_is_not_one_is_refused_in_chinese(monkeypatch):
    monkeypatch.setattr(reader, "STREAM_BYTES", 0)
    with pytest.raises(ServiceError, match="无法读取该 Excel 文件"):
        read_table(b"PK\x03\x04 not a zip", "t.xlsx")
