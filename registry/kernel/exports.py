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

import sqlalchemy as sa
from flask import Response, current_app

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


#: First characters of text ``neutralise`` may change (the formula prefixes and the apostrophe before them): a
#: large export's row loop writes ``neutralise(t) if t and t[0] in SUSPECT else t`` for each typed text, deciding
#: the common case with one set look-up and no call.
SUSPECT = frozenset("".join(FORMULA_PREFIXES) + "'")


def text_cell(value):
    """``neutralise`` for a column of free text (str or None), the common case decided by one set look-up."""
    if value and value[0] in SUSPECT and _formula_like(value):
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


# ---- large exports at driver speed: rows as tuples, converted per column ---------------------------------------
#
# The list exports read plain column tuples (no ORM objects) in keyset batches, and each stream converts a row with
# per-column converters decided once (labels from a dict, counties from a dict, money and dates formatted, only the
# typed text columns neutralised). A batch is a list of finished rows: CSV writes it with one ``writerows`` (the
# csv module's C loop), XLSX appends its rows to openpyxl's write-only sheet. ``bench``: /tmp/h6/bench_exports.py.

#: Rows read per keyset batch of an export.
EXPORT_BATCH = 5000


def keyset_rows(session, stmt, order: tuple, key, size: int = EXPORT_BATCH):
    """``stmt``'s rows (a Core SELECT of columns) in ``order`` (columns ending with a unique one), ``size`` at a
    time after the last key seen (``key(row)`` gives a row's values of ``order``), never at an OFFSET.

    The rows are the driver's own tuples: the statements are built once (the next batch's with bound keys, so
    SQLAlchemy compiles it once) and executed on the session's connection, and each batch is fetched from the
    DBAPI cursor, without SQLAlchemy's result rows or the ORM's loading. Columns that need a result processor
    must be read through ``type_coerce`` (dates and enums as stored: see ``date_cell``)."""
    ordered = stmt.order_by(None).order_by(*order).limit(size)
    names = [f"keyset_{n}" for n in range(len(order))]
    # Keys bound untyped: a date read as stored is ISO text on SQLite and a date on PostgreSQL, and either driver
    # binds it as the column compares it (a String-typed key would be cast to VARCHAR: date > varchar fails).
    keys = sa.tuple_(*(sa.bindparam(n, type_=sa.types.NullType()) for n in names))
    after = ordered.where(sa.tuple_(*order) > keys)
    connection = session.connection()
    params: dict = {}
    page = ordered
    while True:
        result = connection.execute(page, params)
        try:
            batch = result.cursor.fetchall()
        finally:
            result.close()
        if not batch:
            return
        yield batch
        page, params = after, dict(zip(names, key(batch[-1]), strict=True))


def date_cell(kind: str, dialect: str):
    """The converter of a date column read with ``type_coerce(column, String)`` (SQLite then gives the stored ISO
    text, PostgreSQL a date): ISO text in a CSV, a date in an XLSX (a date cell, as before)."""
    if kind == "csv":
        return (lambda v: v) if dialect == "sqlite" else (lambda v: v and v.isoformat())
    return (lambda v: v and date.fromisoformat(v)) if dialect == "sqlite" else (lambda v: v)


def plain_yuan(fen):
    """``money.yuan`` without thousands separators (how exports write 元, and imports read them back)."""
    if fen is None:
        return ""
    if fen < 0:
        return "-" + plain_yuan(-fen)
    return f"{fen // 100}.{fen % 100:02d}"


def write_csv(path, headers: list[str], batches, on_batch=None) -> int:
    """Write a CSV (UTF-8 with BOM, CRLF) of finished batches to ``path``; returns the rows written."""
    count = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(headers)
        for batch in batches:
            writer.writerows(batch)
            count += len(batch)
            if on_batch:
                on_batch(count)
    return count


def write_xlsx(path, headers: list[str], batches, *, title: str, widths=None, on_batch=None) -> int:
    """Write an XLSX of finished batches (``_write_xlsx``'s sheet) to ``path``; returns the rows written."""
    count = 0

    def rows():
        nonlocal count
        for batch in batches:
            yield from batch
            count += len(batch)
            if on_batch:
                on_batch(count)

    with open(path, "wb") as handle:
        _write_xlsx(handle, headers, rows(), title=title, widths=widths, ready=True)
    return count


def write_table(path, kind: str, headers: list[str], batches, *, title: str, widths=None, on_batch=None) -> int:
    if kind == "csv":
        return write_csv(path, headers, batches, on_batch)
    return write_xlsx(path, headers, batches, title=title, widths=widths, on_batch=on_batch)


def stream_batches(kind: str, headers: list[str], batches, filename: str, *, title: str, widths=None) -> Response:
    """A list's export from finished batches, written to a temporary file and sent from it in blocks."""
    handle = tempfile.NamedTemporaryFile(suffix=f".{kind}", delete=False)
    handle.close()
    try:
        write_table(handle.name, kind, headers, batches, title=title, widths=widths)
    except BaseException:
        _remove(handle.name)
        raise
    return _file_response(handle.name, filename, kind)


def background_export(stream: str, kind: str, args: dict, stmt, *, user, full: bool = False):
    """A large export handed to a background job (``registry/tasks/exports.py``, registered by the app as the
    extension ``registry.background_export``): the job page's redirect, or None to export in the request (a list
    under the threshold, no task queue)."""
    hook = current_app.extensions.get("registry.background_export")
    return hook(stream, kind, args, stmt, user=user, full=full) if hook else None


def xlsx_bytes(headers: list[str], rows, *, title: str, widths: list[int] | None = None) -> bytes:
    """A one-sheet workbook in write-only mode, header row bold and frozen, in memory (small files only)."""
    buffer = io.BytesIO()
    _write_xlsx(buffer, headers, rows, title=title, widths=widths)
    return buffer.getvalue()


def _write_xlsx(target, headers: list[str], rows, *, title: str, widths: list[int] | None = None, ready=False) -> None:
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
    if ready:  # finished rows (``write_xlsx``): their text is already neutralised
        for row in rows:
            sheet.append(row)
    else:
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
