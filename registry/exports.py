"""Spreadsheet exports (XLSX and CSV) that cannot smuggle formulas into Excel."""

import csv
import io
from datetime import date, datetime
from urllib.parse import quote

from flask import Response
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

#: A cell starting with one of these is read as a formula by spreadsheet programs (OWASP ASVS 1.2.10).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")


def _formula_like(text: str) -> bool:
    """Text a spreadsheet would run as a formula, behind any number of apostrophes (see ``neutralise``)."""
    return text.lstrip("'").startswith(FORMULA_PREFIXES)


def neutralise(value):
    """Prefix text that a spreadsheet would run as a formula with an apostrophe; leave numbers alone.

    Text that already starts with apostrophes before such a formula (``'=1``) gets one more, so that
    ``unescape`` can tell the escape from the text: the import of an unchanged export changes nothing.
    """
    if isinstance(value, str) and _formula_like(value):
        return "'" + value
    return value


def unescape(text: str) -> str:
    """Undo ``neutralise``: the one apostrophe it put before formula-like text; any other text is left as is."""
    if text.startswith("'") and _formula_like(text[1:]):
        return text[1:]
    return text


def csv_bytes(headers: list[str], rows) -> bytes:
    """UTF-8 with BOM, so Excel on Chinese Windows opens it without mojibake."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([neutralise(_csv_text(v)) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def _csv_text(value):
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value) if not isinstance(value, str) else value


def xlsx_bytes(headers: list[str], rows, *, title: str, widths: list[int] | None = None) -> bytes:
    """A one-sheet workbook in write-only mode (constant memory), header row bold and frozen."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    for index, width in enumerate(widths or [], start=1):
        sheet.column_dimensions[_column_letter(index)].width = width
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=header)
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append([_xlsx_value(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value):
    # Text is stored as text, never as a formula: openpyxl would otherwise turn "=…" into a formula cell.
    return neutralise(value) if isinstance(value, str) else value


def _column_letter(index: int) -> str:
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def download(data: bytes, filename: str, kind: str, *, inline: bool = False) -> Response:
    """A file response; the Chinese file name travels RFC 5987-encoded with an ASCII fallback.

    ``inline`` lets the browser show it (a PDF report) instead of saving it.
    """
    mimetypes = {
        "csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pdf": "application/pdf",
        "zip": "application/zip",
    }
    response = Response(data, mimetype=mimetypes[kind])
    ascii_name = filename.encode("ascii", "ignore").decode() or "export"
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename=\"{ascii_name}.{kind}\"; filename*=UTF-8''{quote(filename)}.{kind}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
