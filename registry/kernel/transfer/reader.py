"""Read an uploaded XLSX or CSV into a header row and data rows of text, whatever Excel saved.

Cells come back as the exports wrote them: the apostrophe an export put before formula-like text
(registry.kernel.exports.neutralise) is taken off again, so re-importing an unchanged export changes nothing.

Workbooks are read with python-calamine (Rust), many times faster than openpyxl's read-only mode; it returns every
XLSX number as a float, so an integral float becomes its integer text. A number of 15 or more digits cannot be an
amount or a count here: it is an identity or evidence number Excel kept as a number, whose digits past the 15th are
already lost. It comes back as a ``LongNumber`` (still text) so the column can say so instead of "wrong check digit";
so does a CSV cell in the form Excel saves such a number in (5.13431E+17).
"""

import codecs
import csv
import io
import os
import re
import zipfile
from datetime import date, datetime

from python_calamine import CalamineError, CalamineWorkbook

from registry.kernel.exports import unescape
from registry.kernel.forms import TEXTAREA_ALLOWED, has_control_characters
from registry.kernel.services import ServiceError

#: Refuse workbooks that unpack beyond this (zip bombs); a 100,000-row placements sheet is about 60 MB unpacked.
MAX_UNPACKED = 400 * 1024 * 1024


class LongNumber(str):
    """The text of a cell Excel stored as a number of 15 or more digits (its last digits are lost)."""


#: What an identity number stored as a number is told (its last digits are gone; no typo to look for).
LONG_NUMBER = "该单元格被 Excel 存为数字，末尾数字已丢失，请将该列设为文本后重新填写"


def _cell_text(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        # As Excel shows it; not read as 是/否, which a column would accept without the clerk having typed it.
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if abs(value) >= 1e15:
            return LongNumber(str(int(value)) if value.is_integer() else repr(value))
        if value.is_integer():
            return str(int(value))
        # repr is the shortest text that reads back as the same float: 12.5, not 12.500000000000002.
        return repr(value)
    return _text(str(value))


def _text(text: str) -> str:
    return unescape(text.strip())


#: How Excel writes a long number into a CSV it saves (5.13431E+17): its digits were lost before it was saved.
_SCIENTIFIC = re.compile(r"\d(\.\d+)?[eE]\+\d+")


def _csv_text(cell: str) -> str:
    text = _text(cell)
    if _SCIENTIFIC.fullmatch(text) and float(text) >= 1e15:
        return LongNumber(text)
    return text


class Rows:
    """A sheet's rows below its first: iterating yields (spreadsheet row number, [cell texts]) of the non-blank
    ones. ``last`` is the number of the sheet's last row, known before any row is read (from the workbook's used
    range, or a CSV's line breaks: never fewer than there are), so an import can refuse a file that is too long
    before reading it (``transfer.open_table``); ``again()`` reads the rows once more from the start, for an exact
    count when ``last`` alone does not settle it."""

    def __init__(self, make, last: int):
        self._make = make
        self._rows = make(False)  # goes on from the header row
        self.last = last

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._rows)

    def again(self):
        return self._make(True)


def read_table(data: bytes | os.PathLike, filename: str):
    """Return (headers, rows) where rows (a ``Rows``) yields (spreadsheet row number, [cell texts]).

    ``data`` is the file's content or, for a file on disk (a background import, the command line), its path: a
    workbook is then read from the file and its bytes are never held in Python as well.

    :raise ServiceError: in Chinese when the file is not a readable XLSX or CSV, or a cell holds a control
        character (as in a form, only line breaks and tabs are text; NUL cannot even be stored).
    """
    if isinstance(data, os.PathLike):
        with open(data, "rb") as file:
            magic = file.read(4)
    else:
        magic = data[:4]
    kind = importable(magic, filename)
    if kind == "xlsx":
        headers, body, last = _read_xlsx(data)
    elif kind == "csv":
        headers, body, last = _read_csv(data)
    else:
        raise ServiceError(NOT_IMPORTABLE)
    _refuse_control_characters(1, headers)

    def rows(again: bool):
        return ((number, _refuse_control_characters(number, cells)) for number, cells in body(again))

    return headers, Rows(rows, last)


NOT_IMPORTABLE = "只能导入 .xlsx 或 .csv 文件。"


def importable(head: bytes, filename: str) -> str | None:
    """The kind ("xlsx" or "csv") of a file the importers read, judged from its first bytes and its name, else None: the
    check an upload passes before it is queued or read."""
    name = (filename or "").lower()
    if name.endswith(".xlsx") or head[:4] == b"PK\x03\x04":
        return "xlsx"
    if name.endswith(".csv") or name.endswith(".txt"):
        return "csv"
    return None


#: Every C0 and C1 control character but tab and line breaks (``has_control_characters`` with TEXTAREA_ALLOWED):
#: one search over a row finds that none is there, instead of one category lookup per character.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _refuse_control_characters(number: int, cells: list[str]) -> list[str]:
    if not _CONTROL.search("".join(cells)):
        return cells
    for column, cell in enumerate(cells, start=1):
        if has_control_characters(cell, TEXTAREA_ALLOWED):
            raise ServiceError(f"第 {number} 行第 {column} 列包含控制字符（不可见字符），请删除后重新导入。")
    return cells


def _read_xlsx(data: bytes | os.PathLike):
    on_disk = isinstance(data, os.PathLike)
    try:
        with zipfile.ZipFile(data if on_disk else io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
                raise ServiceError("文件解压后过大，请拆分后分批导入。")
        workbook = (
            CalamineWorkbook.from_path(os.fspath(data)) if on_disk else CalamineWorkbook.from_filelike(io.BytesIO(data))
        )
        sheet = workbook.get_sheet_by_index(0)
        # iter_rows yields every row from row 1 (so its position + 1 is the Excel row number) and builds each row's
        # Python values only when asked, unlike to_python; it starts at the first used column, so blank columns
        # before it are put back to keep column numbers as Excel shows them.
        values = sheet.iter_rows()
        padding = [""] * (sheet.start[1] if sheet.start else 0)
        first = next(values, None)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, CalamineError) as exc:
        raise ServiceError("无法读取该 Excel 文件，请确认是 .xlsx 格式（不是 .xls 或加密文件）。") from exc
    workbook.close()  # the sheet keeps its cells
    if first is None:
        raise ServiceError("文件是空的。")
    headers = [_cell_text(v) for v in padding + first]

    def body(again: bool):
        rows = values
        if again:  # from the first row below the header
            rows = sheet.iter_rows()
            next(rows, None)
        for number, row in enumerate(rows, start=2):
            # Text (most cells) straight to _text; numbers, dates and blanks through _cell_text.
            cells = [_text(v) if type(v) is str and v else _cell_text(v) for v in row]
            if any(cells):
                yield number, padding + cells

    # sheet.end is the last used cell (0-based): rows beyond it, however formatted, hold nothing.
    return headers, body, (sheet.end[0] + 1 if sheet.end else 1)


#: Bytes of a CSV decoded at a time: the file's text is never held whole (200,000 rows are ~60 MB of str).
CSV_BLOCK = 1 << 20


def _open_binary(data: bytes | os.PathLike):
    return open(data, "rb") if isinstance(data, os.PathLike) else io.BytesIO(data)


def _csv_encoding(data: bytes | os.PathLike) -> tuple[str, int]:
    """The encoding a CSV decodes in (UTF-8, with or without BOM, else GB18030) and its count of line breaks, in
    one pass over its bytes a block at a time."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        breaks = 0
        try:
            with _open_binary(data) as file:
                while block := file.read(CSV_BLOCK):
                    decoder.decode(block)
                    breaks += block.count(b"\n")
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding, breaks
    raise ServiceError("无法识别文件编码，请另存为“CSV UTF-8”后再导入。")


def _read_csv(data: bytes | os.PathLike):
    encoding, breaks = _csv_encoding(data)

    def records():
        text = io.TextIOWrapper(_open_binary(data), encoding=encoding, newline="")
        return text, csv.reader(text)

    file, reader = records()
    try:
        headers = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        file.close()
        raise ServiceError("文件是空的。") from exc
    except csv.Error as exc:
        file.close()
        raise ServiceError(f"CSV 格式错误：{exc}") from exc

    def body(again: bool):
        source, rows = (file, reader) if not again else records()
        if again:  # from the first record below the header
            next(rows, None)
        try:
            for number, cells in enumerate(rows, start=2):
                cells = [_csv_text(c) for c in cells]
                if any(cells):
                    yield number, cells
        except csv.Error as exc:
            raise ServiceError(f"CSV 第 {rows.line_num} 行格式错误：{exc}") from exc
        finally:
            source.close()

    # A record ends at a line break (or the end of the text): there are never more records than breaks + 1.
    return headers, body, breaks + 1
