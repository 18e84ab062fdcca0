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
import itertools
import os
import re
import zipfile
from datetime import date, datetime, timedelta
from xml.etree import ElementTree as etree

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


#: Unpacked bytes of a workbook's first sheet and its shared strings above which the sheet is streamed row by row
#: (``_stream_xlsx``) instead of read whole by calamine. Calamine holds every cell of the sheet until the last row
#: is read: a 200,000-row purchases sheet (234 MB of XML) took 400 MB for calamine's read alone and 433 MB for the
#: import, against the 300 MB an import may take; streamed, the read holds one row (and the shared strings): 107 MB
#: for the read, 206 MB for the import (bench.import_purchases). Streaming reads ~2.5x slower than calamine (156 s
#: against 61 s for that sheet on the loaded 2-core machine), so sheets up to this size (~27,000 purchase rows,
#: ~60 MB with calamine) keep calamine's speed.
STREAM_BYTES = 32 * 1024 * 1024


def _read_xlsx(data: bytes | os.PathLike):
    on_disk = isinstance(data, os.PathLike)
    try:
        with zipfile.ZipFile(data if on_disk else io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
                raise ServiceError("文件解压后过大，请拆分后分批导入。")
            sheet = _first_sheet(archive)
            names = set(archive.namelist())
            size = sum(archive.getinfo(name).file_size for name in (sheet, _SHARED) if name in names)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, etree.ParseError) as exc:
        raise ServiceError(UNREADABLE) from exc
    if size > STREAM_BYTES:
        return _stream_xlsx(data, sheet)
    return _calamine_xlsx(data)


UNREADABLE = "无法读取该 Excel 文件，请确认是 .xlsx 格式（不是 .xls 或加密文件）。"


def _calamine_xlsx(data: bytes | os.PathLike):
    on_disk = isinstance(data, os.PathLike)
    try:
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
        raise ServiceError(UNREADABLE) from exc
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


# ---- a sheet streamed row by row ---------------------------------------------------------------------------------

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
#: Excel's built-in number formats that show a date or a time.
_DATE_FORMATS = set(range(14, 23)) | {45, 46, 47}
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _first_sheet(archive: zipfile.ZipFile) -> str:
    """The path in the archive of the workbook's first sheet (the one calamine's index 0 reads)."""
    workbook = etree.fromstring(archive.read("xl/workbook.xml"))
    first = workbook.find(f"{_MAIN}sheets/{_MAIN}sheet")
    rels = etree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    target = next(r.get("Target") for r in rels.iter(f"{_RELS}Relationship") if r.get("Id") == first.get(_R_ID))
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def _extent(archive: zipfile.ZipFile, sheet: str) -> tuple[int | None, int]:
    """(last row, last column + 1) of the sheet's used range, from its <dimension> (its first bytes) when it has
    one (last row None then, column 0, when it has none)."""
    with archive.open(sheet) as stream:
        for _, element in etree.iterparse(stream, events=("start",)):
            if element.tag == f"{_MAIN}dimension":
                column, row = _dimension(element.get("ref", ""))[1]
                return row, column + 1
            if element.tag == f"{_MAIN}sheetData":
                break
    return None, 0


#: A row's start tag and its number (any namespace prefix).
_ROW_TAG = re.compile(rb"<(?:\w+:)?row\b[^>]*?\br=\"(\d+)\"")


def _last_row(archive: zipfile.ZipFile, sheet: str) -> int | None:
    """The number of the sheet's last row, from its XML's bytes (a block at a time, never held whole): what a
    workbook without <dimension> (openpyxl's write-only mode writes none) says of its length before any row is
    read. None if its rows carry no numbers."""
    last, tail = None, b""
    with archive.open(sheet) as stream:
        while block := stream.read(1 << 20):
            data = tail + block
            # The block's last row tag (a byte search in C), then its number.
            start = max(data.rfind(b"<row "), data.rfind(b":row "))
            match = _ROW_TAG.search(data, max(start - 10, 0)) if start >= 0 else None
            if match:
                last = int(match[1])
            tail = data[-256:]
    return last


def _dimension(ref: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """((first column, first row), (last column, last row)), 0-based columns, of a range like A1:P200001."""
    corners = [_CELL_REF.fullmatch(part) for part in ref.split(":")]
    if not all(corners):
        raise ValueError(f"dimension {ref!r}")
    first, last = corners[0], corners[-1]
    return (_column(first[1]), int(first[2])), (_column(last[1]), int(last[2]))


_COLUMNS: dict[str, int] = {}


def _column(letters: str) -> int:
    """0-based column of a cell reference's letters (A is 0, AA is 26)."""
    index = _COLUMNS.get(letters)
    if index is None:
        index = 0
        for letter in letters:
            index = index * 26 + ord(letter) - 64
        index = _COLUMNS[letters] = index - 1
    return index


def _date_styles(archive: zipfile.ZipFile) -> set[int]:
    """The cell styles (indexes into cellXfs) whose number format shows a date or time."""
    try:
        styles = etree.fromstring(archive.read("xl/styles.xml"))
    except KeyError:
        return set()
    custom = {}
    for fmt in styles.iter(f"{_MAIN}numFmt"):
        # Quoted text, [colours] / [conditions] and escaped characters are not date codes.
        code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", fmt.get("formatCode", "")).lower()
        custom[int(fmt.get("numFmtId", "0"))] = bool(re.search(r"[ymdhs]", code))
    cell_styles = styles.find(f"{_MAIN}cellXfs")
    dates = set()
    for index, style in enumerate(cell_styles if cell_styles is not None else ()):
        number_format = int(style.get("numFmtId", "0"))
        if number_format in _DATE_FORMATS or custom.get(number_format):
            dates.add(index)
    return dates


_SHARED = "xl/sharedStrings.xml"


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    try:
        stream = archive.open(_SHARED)
    except KeyError:
        return []
    strings = []
    with stream:
        for item in _parsed(stream, f"{_MAIN}si"):
            strings.append(_rich_text(item))
            item.clear()
    return strings


def _rich_text(item) -> str:
    """The text of a string item (<si>, <is>): its <t>, or its runs' (<r><t>); phonetic hints (<rPh>) are not."""
    runs = item.findall(f"{_MAIN}t") or item.findall(f"{_MAIN}r/{_MAIN}t")
    return "".join(t.text or "" for t in runs)


def _parsed(stream, tag: str):
    """Each ``tag`` element of an XML stream as soon as it is parsed; the caller clears it once read, so only empty
    elements stay behind, never the document (the standard library's iterparse is C: faster here than lxml's)."""
    for _, element in etree.iterparse(stream, events=("end",)):
        if element.tag == tag:
            yield element


def _stream_xlsx(data: bytes | os.PathLike, sheet: str):
    """A large workbook's first sheet read as it is parsed (``_parsed``), one row at a time: the values as
    calamine gives them (numbers as float, date-formatted numbers as datetimes, booleans, text), then the same text
    cells. The shared strings are held; the rows are not."""
    on_disk = isinstance(data, os.PathLike)

    def archive():
        return zipfile.ZipFile(data if on_disk else io.BytesIO(data))

    try:
        with archive() as opened:
            strings = _shared_strings(opened)
            dates = _date_styles(opened)
            base = datetime(1904, 1, 1) if b'date1904="1"' in opened.read("xl/workbook.xml") else datetime(1899, 12, 30)
            # Rows as wide as the used range, as calamine gives them.
            last, width = _extent(opened, sheet)
            if last is None:
                last = _last_row(opened, sheet)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, etree.ParseError) as exc:
        raise ServiceError(UNREADABLE) from exc

    inline_text, number_text = f"{_MAIN}t", f"{_MAIN}v"

    def values(cell):
        kind = cell.get("t")
        if kind == "inlineStr":
            return "".join(t.text or "" for t in cell.iter(inline_text))
        value = cell.findtext(number_text)
        if value is None or value == "":
            return None
        if kind == "s":
            return strings[int(value)]
        if kind in ("str", "e"):
            return value
        if kind == "b":
            return value == "1"
        number = float(value)
        style = cell.get("s")
        if style is not None and int(style) in dates:
            return base + timedelta(milliseconds=round(number * 86_400_000))
        return number

    def rows():
        """(row number, [values]) of every row the sheet holds, in order; the archive closed at the end."""
        with archive() as opened, opened.open(sheet) as stream:
            expected = 0
            for row in _parsed(stream, f"{_MAIN}row"):
                number = int(row.get("r") or expected + 1)
                expected = number
                cells = []
                for cell in row:
                    reference = cell.get("r")
                    if reference is not None:
                        column = _column(reference.rstrip("0123456789"))
                        if column > len(cells):
                            cells.extend([None] * (column - len(cells)))
                    cells.append(values(cell))
                if len(cells) < width:
                    cells.extend([None] * (width - len(cells)))
                row.clear()
                yield number, cells

    try:
        source = rows()
        first = next(source, None)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, etree.ParseError) as exc:
        raise ServiceError(UNREADABLE) from exc
    if first is None:
        raise ServiceError("文件是空的。")
    headers = [_cell_text(v) for v in first[1]] if first[0] == 1 else []
    pending = [] if first[0] == 1 else [first]

    def body(again: bool):
        stream = rows() if again else itertools.chain(pending, source)
        try:
            for number, row in stream:
                if number < 2:
                    continue
                cells = [_text(v) if type(v) is str and v else _cell_text(v) for v in row]
                if any(cells):
                    yield number, cells
        except (zipfile.BadZipFile, OSError, etree.ParseError) as exc:
            raise ServiceError(UNREADABLE) from exc

    return headers, body, last


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
