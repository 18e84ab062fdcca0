"""The steps every importer shares: the sheet opened against the template (``open_table``), each data row's cells
by column, the rows' own errors, a service's refusal turned into the row's error in the column of the refused
field, and the rows handed to the writes ``size`` at a time with the batch's checkpoint between chunks.

An importer says only what is its own: how a row's cells become values (``parse``), how a chunk of parsed rows is
matched and written through its services (``write``, which runs each row's writes in ``Sheet.row``),
and, for one keyed by a natural key, which of its new records another user registered meanwhile (``taken``).

Errors are reported in one order whatever the chunk size: every row's own (``read_errors``), then matching's
(``match_errors``), then the services' (``write_errors``), each in row order.
"""

from collections.abc import Callable
from contextlib import contextmanager

import sqlalchemy as sa

from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.transfer import PROGRESS_EVERY, Batch, ImportResult, RowError, open_table

#: Rows read, matched and written together by a chunked import (each stream may keep its own ``CHUNK``).
CHUNK = 2000


class Sheet:
    """One import's sheet and its errors.

    ``fields``: {service field: column}, the column a refusal of that field is reported in; ``default`` the
    column of a refusal that names no field (or a field not in ``fields``).
    """

    def __init__(self, headers, rows, expected, synonyms, *, ignored=(), fields=None, default: str = ""):
        self.result = ImportResult()
        table = open_table(headers, rows, expected, synonyms, self.result, ignored)
        self.index, self.rows, self.units = table.index, table.rows, table.units
        self.fields = fields or {}
        self.default = default
        self.read_errors: list[RowError] = []
        self.match_errors: list[RowError] = []
        self.write_errors: list[RowError] = []

    def cells(self):
        """(spreadsheet row number, {column: cell text}) of each data row, counted in ``result.rows``; a row
        shorter than the header reads blank cells."""
        index = self.index
        for number, cells in self.rows:
            self.result.rows += 1
            yield number, {h: (cells[i] if i < len(cells) else "") for h, i in index.items()}

    @property
    def failed(self) -> bool:
        return bool(self.read_errors or self.match_errors or self.write_errors)

    def errors(self) -> list[RowError]:
        return self.read_errors + self.match_errors + self.write_errors

    def refused(self, number: int, exc: ServiceError, shown="", default: str | None = None) -> RowError:
        """A service's refusal of row ``number`` as the row's error, in the column of the refused field. ``shown``: the
        value the error shows, a function of the column that gives it, or the row's cells (the cell of that
        column is shown); ``default``: this row's column for a refusal that names no known field, instead of the
        sheet's."""
        column = self.fields.get(exc.field, self.default if default is None else default)
        if isinstance(shown, dict):
            shown = shown.get(column, "")
        elif callable(shown):
            shown = shown(column)
        return RowError(number, column, shown, str(exc))

    def counted(self, changes) -> None:
        """Count an update of an existing record: changed (``changes`` not empty) or unchanged."""
        if changes:
            self.result.updated += 1
        else:
            self.result.unchanged += 1

    @contextmanager
    def row(self, number: int, shown="", default: str | None = None):
        """Run one row's writes; a ``ServiceError`` becomes the row's error (``refused``, in ``write_errors``) and
        the import goes on."""
        try:
            yield
        except ServiceError as exc:
            self.write_errors.append(self.refused(number, exc, shown, default))

    def chunked(self, parse: Callable, write: Callable, batch: Batch, *, size: int = CHUNK,
                taken: Callable[[], list[RowError]] | None = None):  # fmt: skip
        """Drive an import (a generator: it yields the rows read every ``PROGRESS_EVERY`` and returns the result).

        Each row's cells go through ``parse(number, cell) -> (errors, item)``; the items of the rows without error
        go ``size`` at a time to ``write(items)``, then to ``batch.checkpoint``: a chunked batch commits there (or,
        once a row has failed, rolls the chunk back: it was written only to check its rows by every rule). At the
        end the batch is closed: finished if no row failed, else abandoned.

        A unique key's refusal (another user registered one of the new records after it was matched) abandons the
        import; ``taken()`` then names the rows (an empty list: the refusal was something else and is raised).
        Anything else raised (a refusal of the whole file, a fault) abandons it too and is raised.
        """
        result = self.result
        chunk = []
        try:
            for number, cell in self.cells():
                errors, item = parse(number, cell)
                if errors:
                    self.read_errors.extend(errors)
                else:
                    chunk.append(item)
                if len(chunk) >= size:
                    write(chunk)
                    chunk = []
                    batch.checkpoint(failed=self.failed)
                if result.rows % PROGRESS_EVERY == 0:
                    yield result.rows
            write(chunk)
            result.errors = self.errors()
            return batch.close(result)
        except sa.exc.IntegrityError:
            batch.abandon(result)
            rows = taken() if taken is not None else []
            if not rows:
                raise
            result.errors = self.errors() + rows
            return result
        except BaseException:
            batch.abandon(result)
            raise


#: A 编号 that names no record the user may see; a record named by an earlier row ({row}).
MISSING = "没有这条记录，或不在您的管辖范围内。"
REPEATED = "与第 {row} 行是同一条记录。"


class Numbered:
    """The records a file's 编号 column names (the export's record ids), as they were before the import: ``load``
    each chunk's 编号 with ``visible`` (ids -> {id: record} of those the user may see: the stream's gate), ``find``
    each row's. A record the import itself created is not one its file can name, and a record named by two rows
    is refused at the second, in whichever chunks they lie."""

    def __init__(self, model, visible: Callable, missing: str = MISSING, repeated: str = REPEATED):
        self.visible, self.missing, self.repeated = visible, missing, repeated
        self.ceiling = db.session.scalar(sa.select(sa.func.max(model.id))) or 0
        self.seen: dict[int, int] = {}
        self.records: dict = {}

    def load(self, numbers) -> None:
        ids = [int(no) for no in numbers if no and int(no) <= self.ceiling]
        self.records = self.visible(ids) if ids else {}

    def find(self, number: int, no: str):
        """Row ``number``'s record (None for a row without 编号, a new record).

        :raise ServiceError: the record does not exist or is not the user's, or an earlier row named it.
        """
        if not no:
            return None
        record = self.records.get(int(no))
        if record is None:
            raise ServiceError(self.missing)
        if record.id in self.seen:
            raise ServiceError(self.repeated.format(row=self.seen[record.id]))
        self.seen[record.id] = number
        return record
