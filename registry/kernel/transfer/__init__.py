"""The spreadsheet kit every stream's ``transfer.py`` is built from: header checks, row errors, date parsing, and
the ``Batch`` through which an import writes with the stream's own services.

Each importer is written as a generator of steps: it yields the number of rows done so far every
``PROGRESS_EVERY`` rows and returns its ImportResult, so the same code reports progress to a streamed page,
to the command line, or to nobody (``run_steps``).

An import is all or nothing: rows are written through the stream's services as they are read (so a row is
checked by exactly the rules a form is checked by, and each record gets its own audit event), and the caller
commits only when no row failed; otherwise it rolls the whole transaction back.

The imports of records (placements, purchases, exchanges, problems, assets, projects and fund transactions:
``Batch(chunks=True)``, driven by ``sheet.Sheet.chunked``; agreement targets and indicator entries are short and
write in one transaction) run by a caller that commits (a page's POST, the command line, the task:
``database.immediate_transactions``) commit chunk by chunk instead (``Batch.checkpoint``),
so that an import of 200,000 rows never holds SQLite's single write lock, or PostgreSQL's row locks, for its whole
run: a login or an edit waits at most about one chunk. All or nothing is kept by taking back what was committed
when the import fails (``undo_import``: its records' create events name them, newest first; ``import_undo`` events
hold what it changed as it was, the rows of an owned collection it replaced included), in the import's own process
or, if that died, by the sweeper (``recover_imports``). While it runs, the rows committed so far are visible and its
event says 进行中.
"""

import functools
import gc
import importlib
import itertools
import logging
import os
import re
import socket
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from registry.kernel.audit.models import AuditEvent
from registry.kernel.audit.services import event_values, json_value, record
from registry.kernel.database import (
    BUSY_TIMEOUT_MS,
    analyze_after_commit,
    immediate_transactions,
    prepare_bulk_insert,
    restore_cache,
    utcnow,
    widen_cache,
)
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, parse_wan, parse_yuan
from registry.kernel.services import ServiceError

PROGRESS_EVERY = 1000
log = logging.getLogger(__name__)
#: Audit events of an import's records are written in groups of this many (ids need a flush first).
AUDIT_EVERY = 2000


@dataclass
class RowError:
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    #: What the import read differently from the template and said so (title rows, synonyms, total rows).
    notes: list[str] = field(default_factory=list)


def run_steps(steps, progress=None):
    """Drive an importer's generator to the end, passing each progress count on; return its result."""
    with fewer_collections():
        while True:
            try:
                done = next(steps)
            except StopIteration as stop:
                return stop.value
            if progress is not None:
                progress(done)


#: The collector's first threshold while an import runs (Python's default is 700 allocations).
IMPORT_GC_THRESHOLD = 20_000
_gc_lock = threading.Lock()
_gc_imports = 0
_gc_threshold: tuple | None = None


@contextmanager
def fewer_collections():
    """Let Python's cyclic garbage collector run less often while imports run.

    An import allocates millions of short-lived rows, dicts and tuples, which reference counting frees. The
    cyclic collector nevertheless runs every 700 allocations and, every so often, traverses everything alive:
    the app's modules, SQLAlchemy's mappers and the import's own growing key sets. That was about a sixth of a
    100,000-placement import. Here what exists when the first import starts is frozen (``gc.freeze``: out of the
    collector's reach until the last import ends) and collections come every ``IMPORT_GC_THRESHOLD`` allocations
    instead; cycles are still collected. Imports in several threads share one setting, restored by the last. In a
    process serving other requests meanwhile, objects that existed when the first import started and become
    cyclic garbage during it are collected only after the last one ends (the frozen objects rejoin the oldest
    generation then); objects made meanwhile are collected as usual.
    """
    global _gc_imports, _gc_threshold
    with _gc_lock:
        if _gc_imports == 0:
            _gc_threshold = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(IMPORT_GC_THRESHOLD, *_gc_threshold[1:])
        _gc_imports += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_imports -= 1
            if _gc_imports == 0:
                gc.set_threshold(*_gc_threshold)
                gc.unfreeze()


def release_write_lock() -> None:
    """SQLite under a write lock taken at BEGIN (a page's POST, the command line, a task): end the caller's
    transaction before the file is read, so the lock is not held while a large workbook loads (a few seconds for
    200,000 rows). The callers have written nothing yet; what they read stays loaded."""
    session = db.session()
    if session.in_transaction() and session.get_bind().dialect.name == "sqlite" and immediate_transactions():
        expire, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire


def runner(steps_function):
    """``import_x(..., progress=None)`` for a generator function ``import_x_steps(...)``."""

    @functools.wraps(steps_function)
    def run(*args, progress=None, **kwargs):
        return run_steps(steps_function(*args, **kwargs), progress)

    return run


def column_index(headers: list[str], expected: list[str], ignored=()) -> dict[str, int]:
    """{column: position} of a file whose header row must hold exactly the template's columns (any order).
    ``ignored`` columns (figures an export shows but an import does not write) may be there or not; they are not
    in the index.

    :raise ServiceError: naming the missing, unknown and repeated columns.
    """
    missing = [h for h in expected if h not in headers]
    unknown = [h for h in headers if h and h not in expected and h not in ignored]
    repeated = sorted({h for h in headers if h and headers.count(h) > 1})
    problems = [
        label + "、".join(names)
        for label, names in (("缺少列：", missing), ("无法识别的列：", unknown), ("重复的列：", repeated))
        if names
    ]
    if problems:
        raise ServiceError("表头与模板不一致（" + "；".join(problems) + "）。请下载模板后按模板填写。")
    return {h: headers.index(h) for h in expected}


#: The most data rows one import takes (below the header; total rows not counted): a longer file is refused before
#: its rows are read (``open_table``).
MAX_ROWS = 200_000


def too_many_rows() -> ServiceError:
    return ServiceError(f"一次最多导入 {MAX_ROWS} 行，请拆分文件。")


#: Rows searched for the header row: county sheets put a title (and a date line) above it.
HEADER_SEARCH = 10
#: A row whose first filled cell is one of these sums the rows above it; it is not a record.
TOTAL_LABELS = {"合计", "小计", "总计"}


def _header_key(text: str) -> str:
    """A header as compared: full-width brackets and spaces folded (“金额（元）” is “金额(元)”), blanks removed."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))


@dataclass
class Table:
    """A sheet as an importer reads it: where each template column is, the rows, and each amount column's unit."""

    index: dict[str, int]
    rows: object
    units: dict[str, str]


def open_table(
    headers: list[str], rows, expected: list[str], synonyms: dict[str, str], result: ImportResult, ignored=()
) -> Table:
    """Find the header row among the first ``HEADER_SEARCH`` rows, read its columns (template names, the
    stream's documented synonyms, and 万元 in place of 元), and skip 合计/小计/总计 rows; each of these is said in
    ``result.notes``. Anything else that does not fit the template stays the error ``column_index`` names.
    ``ignored``: columns of the export the import reads past (see ``column_index``).

    More than ``MAX_ROWS`` data rows are refused here, before any is read, when ``rows`` says where the sheet ends
    (``reader.Rows.last``: the rows are counted, without checking them, only if the sheet may be too long); rows
    of any other kind are counted as they are read and refused at the first one too many.

    :raise ServiceError: as ``column_index``, or that the file has too many rows.
    """
    keys = {_header_key(k): v for k, v in synonyms.items()} | {_header_key(h): h for h in [*expected, *ignored]}
    rows = iter(rows)
    peeked = _peek(rows, HEADER_SEARCH)
    head = [(1, headers)] + [(n, c) for n, c in peeked if n <= HEADER_SEARCH]
    # Rows read ahead that are not the header row go back in front of the rest.
    buffered = peeked
    header_row = 1

    def score(cells):
        return len({_column_of(c, keys, expected)[0] for c in cells if c} & set(expected))

    best = max(range(len(head)), key=lambda i: (score(head[i][1]), -i))
    if best and score(head[best][1]) > score(headers):
        number, headers = head[best]
        header_row = number
        result.notes.append(f"已忽略表头上方的 {number - 1} 行标题（表头在第 {number} 行）。")
        buffered = [(n, c) for n, c in peeked if n > number]
    names, units = [], {}
    for header in headers:
        column, unit = _column_of(header, keys, expected)
        if column in expected and _header_key(column) != _header_key(header):
            result.notes.append(f"表头“{header}”按“{column}”列读取" + ("（单位：万元）。" if unit else "。"))
        if unit:
            units[column] = unit
        names.append(column)
    index = column_index(names, expected, ignored)
    last = getattr(rows, "last", None)
    if last is not None and last - header_row > MAX_ROWS:
        # The sheet may be too long (blank, title and total rows count in ``last``): count its data rows.
        count = sum(1 for n, _ in _without_totals(rows.again(), None) if n > header_row)
        if count > MAX_ROWS:
            raise too_many_rows()
    return Table(index, _limited(_without_totals(itertools.chain(buffered, rows), result)), units)


def _limited(rows):
    for count, row in enumerate(rows, start=1):
        if count > MAX_ROWS:
            raise too_many_rows()
        yield row


def _peek(rows, count):
    """The next rows while they lie within the first ``count`` rows of the sheet (the rest stay in ``rows``)."""
    taken = []
    for number, cells in rows:
        taken.append((number, cells))
        if number >= count:
            break
    return taken


def _column_of(header: str, keys: dict[str, str], expected: list[str]) -> tuple[str, str]:
    """(template column, "万元" or "") a header names; an unknown header is returned as it is."""
    key = _header_key(header)
    if key in keys:
        return keys[key], ""
    if "(万元)" in key or key.endswith("万元"):
        # “金额(万元)”, “月工资（万元）”: the 元 column of the same name, in 万元.
        for candidate in (key.replace("(万元)", "(元)"), key.replace("(万元)", ""), key.removesuffix("万元")):
            column = keys.get(candidate)
            if column is not None and column.endswith("(元)"):
                return column, "万元"
    return header, ""


def _without_totals(rows, result: ImportResult | None):
    for number, cells in rows:
        first = next((c for c in cells if c), "")
        # Every total's label has 计: folding each row's first cell (NFKC, blanks) only then, not for every row.
        if "计" in first and _header_key(first) in TOTAL_LABELS:
            if result is not None:
                result.notes.append(f"第 {number} 行是{_header_key(first)}行，已跳过。")
            continue
        yield number, cells


#: Dates Excel keeps as a day count (a date column saved as a number): 20000 is 1954-10-03, 80000 is 2119-01-10.
SERIAL_RANGE = (20000, 80000)


def parse_date(text: str) -> date:
    """A date as offices type it (2024-03-01, 2024/3/1, 2024.3.1, 2024年3月1日) or an Excel day number."""
    text = text.strip()
    if text.isdigit() and SERIAL_RANGE[0] <= int(text) <= SERIAL_RANGE[1]:
        # Excel counts days from 1899-12-30 (its 1900 leap-year bug is before any date here).
        return date(1899, 12, 30) + timedelta(days=int(text))
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("日期格式应为 YYYY-MM-DD，例如 2024-03-31。")


def parse_amount(text: str, unit: str = "") -> int:
    """An amount cell into 分. The header states the unit (元, or 万元 for “金额(万元)”); a cell may state its own
    (“1,200元”, “12.5万元”) when it agrees with the header or the header is in 元. A bare “万” (“12.5万”) is refused:
    it does not say 万元 and is not what the template asks for, so it is not read as either.

    :raise MoneyError: with the reason.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(" ", "")
    if cleaned.endswith("万") and not cleaned.endswith("万元"):
        raise MoneyError(f"“{text}”的单位不明确：请写成“{cleaned}元”，或换算成元后填写数字。")
    if cleaned.endswith("万元"):
        return parse_wan(cleaned)
    if unit == "万元":
        if cleaned.endswith("元"):
            raise MoneyError(f"“{text}”写的是元，而表头的单位是万元：请统一单位后重新填写。")
        return parse_wan(cleaned)
    return parse_yuan(cleaned)


class Batch:
    """The writes of one import, made by the stream's services.

    It holds the import's own audit event (written first, so every record's event can point to it and its page
    shows 经导入新增/经导入修改), defers the records' audit events until their ids exist (a flush every
    ``AUDIT_EVERY`` records, not one per row), collects the slices of derived tables (placement cells, purchase
    totals) the records touched so each is rebuilt once at the end, and keeps lookups a stream loads once per
    import (``cache``).

    A service may hand it new records as rows of column values (``insert``) instead of model instances: they are
    written ``AUDIT_EVERY`` at a time by one bulk INSERT (``database.prepare_bulk_insert``), their audit events by
    one more, and no instance is kept, so a 100,000-row import neither builds 100,000 objects nor flushes them one
    by one. The service has checked each row exactly as for a form before handing it over. On PostgreSQL those two
    INSERTs run in a thread of their own (``_Writer``) while the import reads and checks the next rows; any other
    use of the connection waits for them.

    ``chunks=True`` (an importer that calls ``checkpoint`` after each chunk of rows) under a caller that commits:
    each chunk is committed, the import's own event first says 进行中 with a time moved at every chunk, and a failed
    import is taken back (``_Undo``, ``undo_import``). SQLite's lock is then taken only by a chunk's matching and
    writing, not while its rows are read, and left free for ``YIELD_SECONDS`` after each commit.
    """

    def __init__(self, actor, *, entity_type: str, title: str, filename: str = "", chunks: bool = False):
        self.actor = actor
        self.entity_type = entity_type
        self.title = title
        self.filename = filename
        self.cache: dict = {}
        #: Ids of the records created and changed so far (ids, not instances: 100,000 instances are 100,000
        #: objects kept alive to the end).
        self.created: list[int] = []
        self.updated: list[int] = []
        self._pending: list[tuple] = []
        #: The rows ``insert`` has yet to write: (model, values, summary, changes).
        self._rows: list[tuple] = []
        self._touched: dict[Callable, set] = defaultdict(set)
        #: The tables the import writes (every INSERT, UPDATE and DELETE it sends, and its bulk inserts): their
        #: planner statistics are refreshed once the import is committed (``database.analyze_after_commit``).
        self.tables: set[str] = {AuditEvent.__tablename__}
        #: SQLite under a write lock taken at BEGIN (a page, the command line, a task): the import commits at each
        #: ``checkpoint`` so that other users' writes get in between, and undoes itself if it fails (``_Undo``).
        self._sqlite = db.session.get_bind().dialect.name == "sqlite"
        self.chunked = chunks and immediate_transactions()
        self._undo = _Undo(self) if self.chunked else None
        self._savepoint = None
        if self.chunked:
            # The import's own event first, committed: while the import runs it says so (and when it began).
            self._attach()
            running = {"state": "running", "at": utcnow().isoformat(), "worker": _worker()}
            self.event = record("import", None, actor=actor, entity_type=entity_type,
                                summary=f"导入{title} {filename}"[:490] + "（进行中）", changes=running)  # fmt: skip
            db.session.flush()
            self._detach()
            self._commit()
        else:
            # Everything the import writes lies inside this SAVEPOINT, so a failed import leaves nothing behind
            # whoever called it (page, command line, task) and whatever that caller does next.
            self._savepoint = db.session.begin_nested()
            self.event = record("import", None, actor=actor, entity_type=entity_type, summary=f"导入{title} {filename}")
            db.session.flush()
            self._attach()

    def _attach(self) -> None:
        """Watch the import's connection: the tables written, its page cache, the writer thread. A chunked import
        watches each of its transactions as it begins (``after_begin``): the write lock is then taken by the first
        statement of a chunk's matching and writing, not while the chunk's rows are read and parsed."""
        session = db.session()
        if not self.chunked:
            self._begun(session, None, db.session.connection())
            return
        self._connection = None
        self._writer = _Writer(None)
        sa.event.listen(session, "after_begin", self._begun)
        if session.in_transaction():
            self._begun(session, None, db.session.connection())

    def _begun(self, _session, _transaction, connection) -> None:
        self._connection = connection
        sa.event.listen(connection, "before_execute", self._note_table)
        self._cache = widen_cache(connection)
        self._writer = _Writer(connection)
        if self.chunked and self._sqlite:
            # The import waits for other writers like any writer, only longer: it must not fail because someone
            # else's long transaction held the lock for 5 s.
            self._driver = connection.connection.driver_connection
            self._driver.execute(f"PRAGMA busy_timeout = {int(CHUNKED_BUSY_SECONDS * 1000)}")

    def _detach(self, *, stop: bool = False) -> None:
        """Stop watching the current transaction's connection (``stop``: and the chunked import's later ones)."""
        self._writer.close()
        if self.chunked:
            if stop and sa.event.contains(db.session(), "after_begin", self._begun):
                sa.event.remove(db.session(), "after_begin", self._begun)
            if self._connection is not None:
                self._stop_noting()
                self._reset_driver()
                self._connection = None
        else:
            self._stop_noting()
            restore_cache(self._connection, self._cache)

    def _reset_driver(self) -> None:
        """Put back the chunked import's page cache and busy timeout on its SQLite connection (on the driver's
        connection itself: usable also once the transaction has failed)."""
        if not self._sqlite:
            return
        if self._cache is not None:
            self._driver.execute(f"PRAGMA cache_size = {int(self._cache)}")
        self._driver.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _note_table(self, _connection, statement, *args) -> None:
        if isinstance(statement, sa.sql.dml.UpdateBase):
            name = getattr(statement.table, "name", None)
            if name:
                self.tables.add(name)

    def _stop_noting(self) -> None:
        if self._connection is not None and sa.event.contains(self._connection, "before_execute", self._note_table):
            sa.event.remove(self._connection, "before_execute", self._note_table)

    def _commit(self) -> None:
        """Commit the session without expiring what it holds: the import's lookups (counties, channels, the write
        scope, the user) stay as they were read, not read again row by row."""
        session = db.session()
        expire, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire

    def checkpoint(self, *, failed: bool = False) -> None:
        """The end of a chunk of rows. In a chunked import, write what is pending and commit, then (SQLite) leave
        the database to other writers for ``YIELD_SECONDS`` (a login or an edit waiting for the lock gets it here,
        within about one chunk's time); elsewhere nothing is committed. ``failed``: a row of the file has already
        failed, so the import will be undone: the chunk was written only to check its rows by every rule, and is
        rolled back instead of committed (from then on nothing more is committed). ``CHECKPOINT_HOOKS`` are called
        either way (tests pause an import there)."""
        if self.chunked:
            self.flush()
            if failed:
                self._pending.clear()
                self._undo.forget()
                self._detach()
                db.session.rollback()
            else:
                self._undo.log()
                self._detach()
                self._commit()
            for hook in CHECKPOINT_HOOKS:
                hook(self)
            if self._sqlite:
                time.sleep(YIELD_SECONDS)
        else:
            for hook in CHECKPOINT_HOOKS:
                hook(self)

    def audit(self, action: str, entity, *, summary: str, changes: dict, context=None) -> None:
        """Record ``entity``'s create or update as part of this import (its event is written at the next flush)."""
        self._pending.append((action, entity, summary, changes, context))
        if len(self._pending) >= AUDIT_EVERY:
            self.flush()

    def insert(self, model, values: dict, *, summary: str, changes: dict) -> None:
        """Write a new ``model`` record of these column values, with its create event, at the next flush."""
        self._rows.append((model, values, summary, changes))
        if len(self._rows) >= AUDIT_EVERY:
            self.flush()

    def touch(self, refresh: Callable, slices) -> None:
        """Note slices of a derived table to rebuild with ``refresh(slices)`` when the import ends."""
        self._touched[refresh].update(slices)

    def flush(self) -> None:
        # The rows of the last flush are written first (and a refusal of theirs raised here, not inside the ORM's
        # flush, which would take it for its own).
        self.settle()
        db.session.flush()
        for action, entity, summary, changes, context in self._pending:
            (self.created if action == "create" else self.updated).append(entity.id)
            label = "经导入新增" if action == "create" else "经导入修改"
            record(action, entity, actor=self.actor, summary=f"{label}（{self.filename or self.title}）：{summary}",
                   changes=changes, context=context, batch=self.event)  # fmt: skip
        self._pending.clear()
        self._insert_rows()

    def settle(self) -> None:
        """Wait until the rows handed to the writer are written; raise the error that refused them, if any."""
        self._writer.settle()

    def _insert_rows(self) -> None:
        """The queued rows of ``insert``: one bulk INSERT per model, its ids in the rows' order, then one of their
        events, prepared here and written by the writer thread."""
        connection = db.session.connection()
        label = f"经导入新增（{self.filename or self.title}）："
        writes = []
        for model, group in itertools.groupby(self._rows, key=lambda row: row[0]):
            group = list(group)
            ids, write = prepare_bulk_insert(connection, model.__table__, [row[1] for row in group], ids=True)
            # The events are built here, in the request's thread: event_values reads the actor and the request.
            events = [
                event_values("create", None, actor=self.actor, entity_type=model.__tablename__, entity_id=id_,
                             summary=label + summary, changes=changes, batch=self.event)
                for id_, (_, _, summary, changes) in zip(ids, group, strict=True)
            ]  # fmt: skip
            writes += [write, prepare_bulk_insert(connection, AuditEvent.__table__, events)[1]]
            self.tables.add(model.__tablename__)
            self.created.extend(ids)
        self._rows.clear()
        if writes:
            self._writer.start(writes)

    def finish(self, result: ImportResult) -> None:
        """Write what is still pending, rebuild the derived tables once, and complete the import's own event."""
        self.flush()
        for refresh, slices in self._touched.items():
            if not self.chunked:
                refresh(slices)
                continue
            # A few slices per transaction: the write lock is released between them as between chunks.
            slices = sorted(slices)
            every = getattr(refresh, "per_transaction", REFRESH_EVERY)
            for start in range(0, len(slices), every):
                refresh(slices[start : start + every])
                self.checkpoint()
        self.event.summary = (
            f"导入{self.title} {self.filename}：{result.rows} 行，新增 {result.created}，更新 {result.updated}，"
            f"未变 {result.unchanged}"
        )[:500]
        self.event.changes = {
            "created": self.created,
            "updated": self.updated,
        }
        if self._savepoint is not None:
            self._savepoint.commit()
        self._detach(stop=True)
        if self.chunked:
            self._undo.stop()
            self.tables.update(self._undo.tables())
            # Complete: what would have undone it goes, in the same last transaction.
            events = AuditEvent.__table__
            db.session.execute(
                sa.delete(events).where(events.c.batch_id == self.event.id, events.c.action == "import_undo")
            )
        analyze_after_commit(db.session(), self.tables)
        if self.chunked:
            self._commit()  # the import's last writes and its completed event (the statistics follow)

    def abandon(self, result: ImportResult) -> None:
        """Undo every write of the import (some row failed): nothing was created, changed or left unchanged."""
        self._pending.clear()
        self._rows.clear()
        self._writer.close(raise_error=False)  # whatever it was writing is undone with the rest
        self._stop_noting()
        if self._savepoint is not None:
            self._savepoint.rollback()
            restore_cache(db.session.connection(), self._cache)
        else:
            if sa.event.contains(db.session(), "after_begin", self._begun):
                sa.event.remove(db.session(), "after_begin", self._begun)
            db.session.rollback()
            if self._connection is not None:
                self._reset_driver()
                self._connection = None
            self._undo.run()
        result.created = result.updated = result.unchanged = 0

    def close(self, result: ImportResult) -> ImportResult:
        """Finish the import if every row passed, else abandon it; returns ``result``."""
        if result.errors:
            self.abandon(result)
        else:
            self.finish(result)
        return result


def _worker() -> str:
    """The process running an import, as the job sweeper names processes ("host:pid")."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: Called with the batch at every ``Batch.checkpoint`` (after its commit, in a chunked import): a test's pause.
CHECKPOINT_HOOKS: list[Callable] = []
#: Seconds a chunked import leaves SQLite's write lock free after each commit. A writer waiting for the lock polls
#: at most every 100 ms (SQLite's busy handler), so a gap this long lets it in.
YIELD_SECONDS = 0.1
#: How long a chunked import waits for another writer's lock (others wait the usual 5 s).
CHUNKED_BUSY_SECONDS = 60
#: Slices of a derived table rebuilt per transaction at the end of a chunked import (unless its refresh function
#: says otherwise in a ``per_transaction`` attribute).
REFRESH_EVERY = 4


class _Undo:
    """What a chunked import has committed so far is written down as it is committed, so that it can be taken back
    (``undo_import``) by the import itself when it fails, or by ``recover_imports`` after its process died:

    - records it created: their create events (``batch_id`` = the import's event) name them;
    - records it changed: each one's columns as they were before its first change (taken from the ORM's history
      before every flush, autoflushes included; ``updated_at`` too), the rows of an owned collection it replaced
      (an asset's sources), and its version after the change, in an ``import_undo`` event per chunk (deleted when
      the import completes);
    - the derived slices it touched, in the import's own event (``changes["refresh"]``), with a time that says it
      is still running (``changes["at"]``, every chunk).
    """

    def __init__(self, batch: "Batch"):
        self.batch = batch
        self.changed: dict[tuple[str, int], list] = {}
        self._pending: list[list] = []
        self._session = db.session()
        sa.event.listen(self._session, "before_flush", self._before_flush)

    def stop(self) -> None:
        if sa.event.contains(self._session, "before_flush", self._before_flush):
            sa.event.remove(self._session, "before_flush", self._before_flush)

    def tables(self) -> set[str]:
        return {table for table, _ in self.changed}

    def forget(self) -> None:
        """The chunk's changes were rolled back: nothing of them to write down or to put back."""
        for entry in self._pending:
            self.changed.pop((entry[0], entry[1]), None)
        self._pending = []

    def _before_flush(self, session, _context, _instances) -> None:
        for obj in session.dirty:
            state = sa.inspect(obj)
            if state.key is None or not state.modified or isinstance(obj, AuditEvent):
                continue
            mapper = state.mapper
            if "id" not in mapper.local_table.c:
                continue  # a row of a record's collection (an asset's sources): put back with its record
            key = (mapper.local_table.name, state.identity[0])
            if key in self.changed:
                continue
            before = {}
            for prop in mapper.column_attrs:
                column = prop.columns[0]
                if column.table is not mapper.local_table:
                    continue
                history = state.attrs[prop.key].history
                if history.deleted:
                    before[column.name] = json_value(history.deleted[0])
                elif column.onupdate is not None and prop.key in state.dict:
                    # Set by the flush itself (updated_at): as it was, too.
                    before[column.name] = json_value(state.dict[prop.key])
            version = mapper.version_id_col
            if version is None:
                entry = [key[0], key[1], None, None, before]
            else:
                # The flush raises the version by one (VersionedMixin): the record is ours while it has that one.
                entry = [key[0], key[1], version.name, getattr(obj, mapper.get_property_by_column(version).key) + 1,
                         before]  # fmt: skip
            children = _replaced_children(state)
            if children:
                entry.append(children)
            self.changed[key] = entry
            self._pending.append(entry)

    def log(self) -> None:
        """Write down, in the chunk's own transaction, what it changed and which slices the import touched."""
        db.session.flush()
        batch = self.batch
        if self._pending:
            db.session.add(
                AuditEvent(
                    **event_values(
                        "import_undo",
                        None,
                        actor=batch.actor,
                        entity_type=batch.entity_type,
                        summary="导入进行中：所改记录的原值（导入完成后删除）",
                        changes={"rows": self._pending},
                        batch=batch.event,
                    )
                )  # fmt: skip
            )
            self._pending = []
        refresh = [[f"{fn.__module__}:{fn.__qualname__}", sorted(slices)] for fn, slices in batch._touched.items()]
        batch.event.changes = {"state": "running", "at": utcnow().isoformat(), "worker": _worker(),
                               "refresh": refresh}  # fmt: skip

    def run(self) -> None:
        """Take back everything the import committed (its session has just been rolled back)."""
        self.stop()
        undo_import(self.batch.event.id)


def _replaced_children(state) -> list:
    """The rows of each owned collection (one-to-many, delete-orphan: an asset's sources) that ``state``'s record
    had before the change about to be flushed, for the collections the change replaces or edits: [[table, foreign
    key columns, [row values…]], …]. An undo deletes the collection's rows and puts these back."""
    saved = []
    for rel in state.mapper.relationships:
        if rel.direction is not sa.orm.interfaces.ONETOMANY or not rel.cascade.delete_orphan:
            continue
        history = state.attrs[rel.key].history
        if not history.deleted:
            continue  # only added to: the new rows are new records (their create events name them) or theirs
        child = rel.mapper
        keys = [c.name for c in rel.remote_side]
        rows = [
            {p.columns[0].name: json_value(getattr(item, p.key)) for p in child.column_attrs
             if p.columns[0].table is child.local_table}
            for item in [*history.unchanged, *history.deleted]
        ]  # fmt: skip
        saved.append([child.local_table.name, keys, rows])
    return saved


#: Rows deleted or put back per transaction when a chunked import is undone.
UNDO_EVERY = 2000


def undo_import(event_id: int) -> None:
    """Take back a chunked import that did not complete: delete the records it created, put back the ones it
    changed (where the version is still the import's: a record another user edited since keeps that edit), delete
    its events and rebuild the derived slices it touched. Committed ``UNDO_EVERY`` rows at a time, releasing the
    write lock between them as the import did."""
    metadata = AuditEvent.metadata
    events = AuditEvent.__table__
    event = db.session.get(AuditEvent, event_id)
    if event is None:
        return
    refresh = (event.changes or {}).get("refresh", [])
    try:
        last = None
        sqlite = db.session.get_bind().dialect.name == "sqlite"
        while True:  # the records it created, named by their create events, the newest first
            newer = events.c.id < last if last is not None else sa.true()
            rows = db.session.execute(
                sa.select(events.c.id, events.c.entity_type, events.c.entity_id)
                .where(events.c.batch_id == event_id, events.c.action == "create", newer)
                .order_by(events.c.id.desc()).limit(UNDO_EVERY)
            ).all()  # fmt: skip
            if not rows:
                break
            last = rows[-1][0]
            by_table = defaultdict(list)
            for _, table_name, entity_id in rows:
                by_table[table_name].append(entity_id)
            for table_name, ids in by_table.items():
                table = metadata.tables[table_name]
                _delete_owned(table, ids)
                if sqlite:
                    # One row after the other, the newest first: SQLite checks a row's rules (the fund ledger's
                    # 拨付 ≤ 到位) as each row goes, and a 拨付 was written after the 到位 it needs.
                    db.session.execute(sa.delete(table).where(table.c.id == sa.bindparam("gone")),
                                       [{"gone": id_} for id_ in ids])  # fmt: skip
                else:
                    db.session.execute(sa.delete(table).where(table.c.id.in_(ids)))
            _undo_step()
        undo_logs = db.session.scalars(
            sa.select(events.c.changes).where(events.c.batch_id == event_id, events.c.action == "import_undo")
        ).all()
        for log_changes in undo_logs:  # the records it changed, as they were
            for table_name, id_, version, ours, before, *children in log_changes["rows"]:
                table = metadata.tables[table_name]
                values = {name: _from_json(table.c[name], value) for name, value in before.items()}
                where = [table.c.id == id_]
                if version:
                    where.append(table.c[version] == ours)
                    values[version] = ours - 1
                if values:
                    db.session.execute(sa.update(table).where(*where).values(values))
                if children and version:
                    # Still the import's (a change of the collection alone leaves the version as it was)? Else
                    # another user changed it since: their edit stays, its collections too.
                    now = db.session.scalar(sa.select(table.c[version]).where(table.c.id == id_))
                    if now not in (ours - 1, ours):
                        continue
                for child_name, keys, child_rows in children[0] if children else ():
                    child = metadata.tables[child_name]
                    db.session.execute(sa.delete(child).where(*(child.c[k] == id_ for k in keys)))
                    if child_rows:
                        db.session.execute(sa.insert(child), [
                            {name: _from_json(child.c[name], value) for name, value in row.items()}
                            for row in child_rows
                        ])  # fmt: skip
            _undo_step()
        while True:  # its events, then its own
            ids = db.session.scalars(
                sa.select(events.c.id).where(events.c.batch_id == event_id).limit(UNDO_EVERY)
            ).all()
            if not ids:
                break
            db.session.execute(sa.delete(events).where(events.c.id.in_(ids)))
            _undo_step()
        db.session.execute(sa.delete(events).where(events.c.id == event_id))
        for name, slices in refresh:  # the derived slices it touched, from the records as they now are
            module, qualname = name.split(":")
            function = importlib.import_module(module)
            for part in qualname.split("."):
                function = getattr(function, part)
            slices = [tuple(s) for s in slices]
            every = getattr(function, "per_transaction", REFRESH_EVERY)
            for start in range(0, len(slices), every):
                function(slices[start : start + every])
                _undo_step()
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception(
            "undoing the import of event %s did not finish (run it again: transfer.recover_imports)", event_id
        )
        raise


def _delete_owned(table, ids: list[int]) -> None:
    """Delete the rows of the owned collections (one-to-many, delete-orphan: an asset's sources, a project's
    steps) of the records ``ids`` of ``table`` before the records: they have no create events of their own, and the
    database's ON DELETE CASCADE is not relied on (a SQLite table rebuilt by a migration may have lost it)."""
    mapper = next((m for m in db.Model.registry.mappers if m.local_table is table), None)
    for rel in mapper.relationships if mapper is not None else ():
        if rel.direction is sa.orm.interfaces.ONETOMANY and rel.cascade.delete_orphan:
            child = rel.mapper.local_table
            for column in rel.remote_side:
                if column.table is child:
                    db.session.execute(sa.delete(child).where(column.in_(ids)))


def _undo_step() -> None:
    db.session.commit()
    if db.session.get_bind().dialect.name == "sqlite":
        time.sleep(YIELD_SECONDS)


def _from_json(column, value):
    """A value written down by ``json_value`` as the column holds it."""
    if value is None:
        return None
    kind = column.type
    enum = getattr(kind, "enum_class", None)
    if enum is not None:
        return enum(value)
    python = getattr(kind, "impl", kind)
    if isinstance(python, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(python, sa.Date):
        return date.fromisoformat(value)
    if isinstance(python, sa.Numeric) and not isinstance(python, sa.Float | sa.Integer):
        return Decimal(value)
    return value


def recover_imports(stale_seconds: float, gone: Callable[[str], bool] | None = None) -> list[int]:
    """Undo every chunked import whose process died: its event still says running and has not moved for
    ``stale_seconds``, or ``gone(worker)`` says its process ("host:pid") no longer exists. The sweeper calls
    this, so a consumer or web worker killed mid-import leaves nothing. Returns the import events undone."""
    limit = utcnow() - timedelta(seconds=stale_seconds)
    undone = []
    for event in db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "import", AuditEvent.summary.like("%（进行中）"))
    ).all():
        changes = event.changes or {}
        at = changes.get("at")
        moved = datetime.fromisoformat(at) if at else event.occurred_at
        dead = gone is not None and bool(changes.get("worker")) and gone(changes["worker"])
        if changes.get("state") != "running" or (moved > limit and not dead):
            continue
        event_id = event.id
        log.warning("undoing import event %s, left running since %s", event_id, at)
        undo_import(event_id)
        undone.append(event_id)
    return undone


class _Writer:
    """Runs a batch's bulk INSERTs on PostgreSQL in a thread of its own while the import reads and checks the next
    rows, so that the server's work on a COPY overlaps with ours instead of being waited for (a 100,000-placement
    import: 18 s -> 16 s). On SQLite the inserts run in the import's own thread: SQLite works inside this process,
    and a second thread only traded the inserts' time for waits on the interpreter lock.

    The writes use the driver connection of the import's transaction: nothing else may use it meanwhile, so every
    statement SQLAlchemy sends on that connection, and the transaction's commit or rollback, first waits for them
    (connection events call ``settle``). A write's error (a unique key's refusal: another user registered the
    same record meanwhile) is raised by the next ``settle``, once.
    """

    EVENTS = ("before_cursor_execute", "commit", "rollback")

    def __init__(self, connection):
        """``connection`` None: a writer that writes in the import's thread (a chunked import on SQLite)."""
        self._connection = connection
        self._threaded = connection is not None and connection.dialect.name == "postgresql"
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if self._threaded:
            for name in self.EVENTS:
                sa.event.listen(connection, name, self._before_use)

    def start(self, writes: list) -> None:
        """Run ``writes`` (functions of no argument) one after the other: in a new thread on PostgreSQL, at once
        on SQLite."""
        self.settle()
        if not self._threaded:
            for write in writes:
                write()
            return

        def run():
            try:
                for write in writes:
                    write()
            except BaseException as exc:  # noqa: BLE001 - handed to the import's thread by settle
                self._error = exc

        self._thread = threading.Thread(target=run, name="import-writer", daemon=True)
        self._thread.start()

    def settle(self) -> None:
        """Wait for the running writes; raise their error, if any."""
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _before_use(self, *args, **kwargs) -> None:
        self.settle()

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for the running writes (raising their error only if ``raise_error``) and stop listening."""
        try:
            self.settle()
        except BaseException:
            if raise_error:
                raise
        finally:
            if self._threaded:
                for name in self.EVENTS:
                    sa.event.remove(self._connection, name, self._before_use)
                self._threaded = False


def cache_of(batch: Batch | None) -> dict | None:
    """The import's lookups kept between rows, or None outside an import."""
    return batch.cache if batch is not None else None


def parse_cells(cell: dict, texts: dict, enums: dict, values: dict, fail) -> None:
    """Text columns ({header: (attribute, max length)}) and labelled choices ({header: (attribute, enum)}) of one
    row into ``values``; ``fail(header, reason)`` for a text too long or a label that is not one of the enum's."""
    for header, (attr, limit) in texts.items():
        if cell[header]:
            if len(cell[header]) > limit:
                fail(header, f"不能超过 {limit} 个字。")
            else:
                values[attr] = cell[header]
    for header, (attr, enum) in enums.items():
        if cell[header]:
            labels = {m.label: m for m in enum}
            if cell[header] in labels:
                values[attr] = labels[cell[header]]
            else:
                fail(header, "应为以下之一：" + "、".join(labels) + "。")


def written(action: str, entity, *, actor, summary: str, changes: dict, batch: Batch | None = None, context=None):
    """The audit entry of a service's write: at once (forms), or as part of an import's batch."""
    if batch is not None:
        batch.audit(action, entity, summary=summary, changes=changes, context=context)
    else:
        record(action, entity, actor=actor, summary=summary, changes=changes, context=context)
