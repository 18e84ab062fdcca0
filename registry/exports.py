"""Spreadsheet exports (XLSX and CSV) that cannot smuggle formulas into Excel.

``xlsx_bytes``/``csv_bytes`` build small files in memory (templates, error reports); an export of a list, which may
hold 100,000 rows, is sent with ``stream_xlsx``/``stream_csv`` instead: the file is written to a temporary file
as the rows are read (openpyxl's write-only mode keeps no rows; the CSV goes a few hundred lines at a time) and
sent from it in blocks, so the memory an export needs does not grow with its rows.
"""

import csv
import io
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

from flask import Response

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


#: CSV lines sent together by ``stream_csv``.
CSV_LINES = 500


def _csv_lines(headers: list[str], rows):
    """The CSV text, a few hundred lines at a time, in ``csv_bytes``'s encoding (BOM first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    for count, row in enumerate(rows, start=1):
        writer.writerow([neutralise(_csv_text(v)) for v in row])
        if count % CSV_LINES == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def stream_csv(headers: list[str], rows, filename: str) -> Response:
    """A CSV download: written a few hundred lines at a time to a temporary file, then sent from it in blocks."""
    with tempfile.NamedTemporaryFile(suffix=".csv", delete=False) as handle:
        try:
            for chunk in _csv_lines(headers, rows):
                handle.write(chunk)
        except BaseException:
            _remove(handle.name)
            raise
    return _file_response(handle.name, filename, "csv")


def stream_xlsx(headers: list[str], rows, filename: str, *, title: str, widths: list[int] | None = None) -> Response:
    """An XLSX download written row by row to a temporary file, then sent from that file in blocks."""
    with tempfile.NamedTemporaryFile(suffix=".xlsx", delete=False) as handle:
        try:
            _write_xlsx(handle, headers, rows, title=title, widths=widths)
        except BaseException:
            _remove(handle.name)
            raise
    return _file_response(handle.name, filename, "xlsx")


def stream_table(kind: str, headers: list[str], rows, filename: str, *, title: str, widths=None) -> Response:
    """A list's export as the ``kind`` (``csv`` or ``xlsx``) its URL asks for, streamed (see the two above)."""
    if kind == "csv":
        return stream_csv(headers, rows, filename)
    return stream_xlsx(headers, rows, filename, title=title, widths=widths)


def _file_response(path: str, filename: str, kind: str) -> Response:
    """Send a finished temporary file in blocks and delete it once sent (or when the response is closed unsent).
    The body needs no request, database or open file until it is read."""

    def blocks(size: int = 64 * 1024):
        try:
            with open(path, "rb") as handle:
                while block := handle.read(size):
                    yield block
        finally:
            _remove(path)

    response = Response(blocks(), mimetype=MIMETYPES[kind])
    response.content_length = os.path.getsize(path)
    response.call_on_close(lambda: _remove(path))
    return _attachment(response, filename, kind)


def _remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def xlsx_bytes(headers: list[str], rows, *, title: str, widths: list[int] | None = None) -> bytes:
    """A one-sheet workbook in write-only mode, header row bold and frozen, in memory (small files only)."""
    buffer = io.BytesIO()
    _write_xlsx(buffer, headers, rows, title=title, widths=widths)
    return buffer.getvalue()


def _write_xlsx(target, headers: list[str], rows, *, title: str, widths: list[int] | None = None) -> None:
    # Imported here: openpyxl (~13 MB, with lxml ~18 MB) is needed only to write a workbook, and the import worker
    # that reads one (python-calamine) and uses this module's unescape must stay light (issue 14: peak < 300 MB).
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.freeze_panes = "A2"
    for index, width in enumerate(widths or [], start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=header)
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    for row in rows:
        sheet.append([_xlsx_value(v) for v in row])
    workbook.save(target)


def _xlsx_value(value):
    # Text is stored as text, never as a formula: openpyxl would otherwise turn "=…" into a formula cell.
    return neutralise(value) if isinstance(value, str) else value


def download(data: bytes, filename: str, kind: str, *, inline: bool = False) -> Response:
    """A file response; the Chinese file name travels RFC 5987-encoded with an ASCII fallback.

    ``inline`` lets the browser show it (a PDF report) instead of saving it.
    """
    return _attachment(Response(data, mimetype=MIMETYPES[kind]), filename, kind, inline=inline)


MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "zip": "application/zip",
}


def _attachment(response: Response, filename: str, kind: str, *, inline: bool = False) -> Response:
    ascii_name = filename.encode("ascii", "ignore").decode() or "export"
    disposition = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename=\"{ascii_name}.{kind}\"; filename*=UTF-8''{quote(filename)}.{kind}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
