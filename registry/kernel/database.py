"""Declarative base, UTC timestamps, shared column mixins and SQLite connection pragmas."""

import itertools
import logging
import sqlite3
from collections.abc import Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model; the naming convention lets batch migrations drop constraints by name."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Return an aware UTC timestamp (a callable for column defaults, never a value)."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """Store aware datetimes as UTC; SQLite drops tzinfo, so it is re-attached on the way out."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def enum_column(enum_cls, length: int = 20) -> sa.Enum:
    """A VARCHAR holding the enum's values (not its member names), portable across SQLite and PostgreSQL.

    The type keeps the class as ``enum_class``, so code that only sees the column (the audit trail's labels) can
    reach the members and their ``label``.
    """
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def per_unit(session, stmt, county_column, units: dict[int, list[int]]) -> dict[int, int]:
    """An indicator's SUM/COUNT ``stmt`` (one aggregate column, filtered to every county of ``units``) for many
    units in one query: grouped by ``county_column``, then each unit's counties added up. Only for additive figures
    (each record lies in one county); people counted once across counties are not (``placements.months``)."""
    by_county = {county: int(value or 0) for value, county in
                 session.execute(stmt.add_columns(county_column).group_by(county_column))}  # fmt: skip
    return {unit: sum(by_county.get(c, 0) for c in counties) for unit, counties in units.items()}


def among(column, ids):
    """WHERE clause limiting rows to ``column IN ids`` (a SELECT of ids, e.g. an East liaison's pairings), or
    nothing when ``ids`` is None."""
    return sa.true() if ids is None else column.in_(ids)


def any_of(column, values, dialect_name: str):
    """``column IN values`` for a long list (an import's chunk of keys): on PostgreSQL one array parameter
    (``column = ANY(:values)``), since psycopg rewrites a statement of thousands of placeholders every time it is
    sent; elsewhere the IN list."""
    if dialect_name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


class TimestampMixin:
    """Creation and last-change times."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class VersionedMixin:
    """Optimistic locking: a stale UPDATE matches no row and raises StaleDataError (shown as 409)."""

    version_id: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)

    @sa.orm.declared_attr.directive
    def __mapper_args__(cls):  # noqa: N805 - SQLAlchemy declared_attr signature
        return {"version_id_col": cls.version_id}


#: How long a SQLite connection waits for another's write lock before "database is locked".
BUSY_TIMEOUT_MS = 5000

#: Set (``writing()``) around work outside a request that writes: its SQLite transactions begin IMMEDIATE.
_WRITING: ContextVar[bool] = ContextVar("registry_writing", default=False)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@contextmanager
def writing():
    """Run a command-line or background write with SQLite transactions that take the write lock at BEGIN."""
    token = _WRITING.set(True)
    try:
        yield
    finally:
        _WRITING.reset(token)


#: Set (``reading()``) around a long read inside a request that may write: its SQLite transactions begin deferred.
_READING: ContextVar[bool] = ContextVar("registry_reading", default=False)


@contextmanager
def reading():
    """A long read within a writing request (an approval's render and signature): SQLite transactions begun here
    are deferred, so they hold no write lock and other writers go on. The caller ends that transaction (it has
    written nothing) before it writes."""
    token = _READING.set(True)
    try:
        yield
    finally:
        _READING.reset(token)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """Foreign keys on, WAL and a busy timeout for every SQLite connection (no effect on PostgreSQL).

    The driver's own transaction handling is switched off (``isolation_level = None``) and SQLAlchemy's
    ``begin`` event issues BEGIN itself (``_sqlite_begin``), as SQLAlchemy's documentation recommends for
    pysqlite: SAVEPOINTs then work (an import rolls back its own writes), and a writing request can take the
    write lock at its start.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "foreign_keys=ON",
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


@sa.event.listens_for(sa.engine.Engine, "begin")
def _sqlite_begin(connection):
    """BEGIN IMMEDIATE for requests that may write (POST…) and for ``writing()`` work, BEGIN otherwise.

    A deferred SQLite transaction that reads and then writes cannot wait for another writer to finish: it
    fails at once with "database is locked" (its snapshot would be stale), and rules checked on what it read,
    such as 拨付 ≤ 到位, could be broken by a writer in between. Taking the write lock at BEGIN makes writers
    queue (up to the busy timeout) and see each other's committed rows; readers are never blocked (WAL).
    """
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate_transactions() else "BEGIN")


def immediate_transactions() -> bool:
    """Whether SQLite transactions begin IMMEDIATE here: in a request that may write and in ``writing()`` work."""
    if _READING.get():
        return False
    return _WRITING.get() or (has_request_context() and request.method not in _SAFE_METHODS)


#: Rows SQLite's ANALYZE reads per index (``PRAGMA analysis_limit``): enough for the planner's estimates, and a
#: 200,000-row table is analysed in about 10 ms instead of half a second.
ANALYSIS_LIMIT = 1000
_log = logging.getLogger(__name__)


def refresh_statistics(engine, tables: Iterable[str] | None = None) -> None:
    """Refresh the query planner's statistics of ``tables`` (names; every table when None) after a bulk write, on a
    connection and in a short transaction of their own, so never inside the write's transaction.

    Without them the planner guesses: SQLite has no statistics at all until ANALYZE runs (with them one data check
    went from 116 s to 2.2 s and the province home page from 28 s to 9.6 s), and PostgreSQL takes freshly loaded
    tables for empty until autovacuum comes round.

    - SQLite: ``ANALYZE`` of each table with ``PRAGMA analysis_limit`` (ANALYSIS_LIMIT rows per index, a few
      milliseconds each), then ``PRAGMA optimize``. ``PRAGMA optimize`` alone is not enough: it looks only at tables
      this connection has queried and skips a table that has never been analysed. ANALYZE takes the write lock for
      those milliseconds (waiting like any writer).
    - PostgreSQL: ``VACUUM (ANALYZE) t1, t2, …`` (or the whole database): the statistics, and the visibility map
      that lets index-only scans skip the table; its lock blocks neither reads nor writes, only another ANALYZE or
      VACUUM of the same table.

    Statistics are an optimisation: a failure (the database busy beyond its timeout) is logged, never raised, so
    it cannot fail the import or job that asked for it.
    """
    names = None if tables is None else sorted(set(tables))
    if names == []:
        return
    try:
        connection = engine.raw_connection()
    except Exception:  # noqa: BLE001 - statistics never fail their caller
        _log.warning("planner statistics not refreshed: no connection", exc_info=True)
        return
    try:
        quote = engine.dialect.identifier_preparer.quote
        if engine.dialect.name == "sqlite":
            # The driver runs each statement in its own transaction (isolation_level None, see _sqlite_pragmas).
            driver = connection.driver_connection
            previous = driver.execute("PRAGMA analysis_limit").fetchone()[0]
            driver.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
            try:
                for name in names if names is not None else [None]:
                    driver.execute("ANALYZE" if name is None else f"ANALYZE {quote(name)}")
                driver.execute("PRAGMA optimize")
            finally:
                driver.execute(f"PRAGMA analysis_limit = {int(previous)}")
        else:
            # VACUUM (ANALYZE), not ANALYZE alone: rows just written are not yet marked visible to every
            # transaction, so an index-only scan reads the table for each of them (a deep page of 200,000 freshly
            # imported purchases: 100,000 heap fetches, ~0.5 s) until autovacuum comes round. VACUUM runs outside a
            # transaction block, so this connection autocommits for it.
            driver = connection.driver_connection
            driver.autocommit = True
            try:
                tables = "" if names is None else " " + ", ".join(quote(n) for n in names)
                driver.execute("VACUUM (ANALYZE)" + tables)
            finally:
                driver.autocommit = False
    except Exception:  # noqa: BLE001 - statistics never fail their caller
        _log.warning("planner statistics of %s not refreshed", names or "every table", exc_info=True)
        try:
            connection.rollback()
        except Exception:  # noqa: BLE001
            pass
    finally:
        connection.close()


def refresh_planner_statistics(session, tables: Iterable[str] | None = None) -> None:
    """``refresh_statistics`` of the session's database after a bulk job (the demo's load, the nightly checks) has
    committed: every table, or ``tables``."""
    refresh_statistics(session.get_bind(), tables)


#: session.info key: tables whose statistics are refreshed when the session's transaction commits.
_ANALYZE_KEY = "registry.analyze_after_commit"


def analyze_after_commit(session, tables: Iterable[str]) -> None:
    """Refresh ``tables``' statistics once ``session``'s transaction commits (an import: its caller commits, be it
    the page, the command line or the task); nothing if it is rolled back instead."""
    session.info.setdefault(_ANALYZE_KEY, set()).update(tables)


@sa.event.listens_for(sa.orm.Session, "after_commit")
def _analyze_committed(session) -> None:
    if session.in_nested_transaction():
        # A SAVEPOINT released (after_commit fires for those too): the transaction, and its write lock, goes on.
        return
    tables = session.info.pop(_ANALYZE_KEY, None)
    if tables:
        refresh_statistics(session.get_bind(), tables)


@sa.event.listens_for(sa.orm.Session, "after_soft_rollback")
def _forget_analyze(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a SAVEPOINT within it
        session.info.pop(_ANALYZE_KEY, None)


def reset_id_sequences(session) -> None:
    """Move every PostgreSQL id sequence past the largest id in its table.

    Bulk loads that insert explicit ids (the demo's projects) leave the sequence behind them, and the next
    ordinary insert would then collide with an existing id. SQLite needs nothing: it takes max(id) + 1.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    # One statement for every table (is_called = false: the next nextval() returns exactly max(id) + 1, or 1 for
    # an empty table); a round trip per table cost more than the work itself.
    calls = [
        f"setval(pg_get_serial_sequence('{table.name}', 'id'), "
        f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
        for table in Base.metadata.sorted_tables
        if (column := table.c.get("id")) is not None and column.primary_key and isinstance(column.type, sa.Integer)
    ]
    if calls:
        session.execute(sa.text("SELECT " + ", ".join(calls)))


def keyset_batches(session, stmt, order: tuple, key, size: int = 2000):
    """Yield ``stmt``'s records in ``order`` (columns whose last one is unique), ``size`` at a time: each batch is
    read after the last key seen (``key(record)`` gives that record's values of ``order``) rather than at an
    OFFSET, so a 100,000-row export reads each row once and holds one batch, never the whole result."""
    last = None
    while True:
        page = stmt.order_by(None).order_by(*order)
        if last is not None:
            page = page.where(sa.tuple_(*order) > sa.tuple_(*last))
        batch = session.scalars(page.limit(size)).all()
        if not batch:
            return
        yield batch
        last = key(batch[-1])


def prepare_bulk_insert(connection, table: sa.Table, rows: Iterable[dict], *, ids: bool = False):
    """Prepare an INSERT of ``rows`` (dicts with the same keys) into ``table`` at driver speed: returns the new rows'
    ids in the order of ``rows`` (with ``ids``, ``rows`` then a list; else []) and a function that writes them.

    An import's bulk path (``transfer.Batch``): it writes 100,000 placements and as many audit events. SQLAlchemy's
    own executemany builds a parameter dictionary per row through its compiled statement (about a third of such an
    import's time on SQLite), and on PostgreSQL sends each row as a statement of its own or as one long multi-row
    INSERT whose text psycopg rewrites placeholder by placeholder (over half of the import). Here each value goes
    through its column type's bind processor only, and a column's Python default fills what the rows leave out, as
    SQLAlchemy would do, except that a callable default is taken once per call, not per row (the rows of one chunk
    share their created_at to the microsecond). The rows are written

    - on PostgreSQL by ``COPY … FROM STDIN``, its fastest way in, with ids drawn here from the table's sequence in
      one query (a sequence never gives the same id twice, whoever else is inserting);
    - on SQLite by the driver's executemany of one prepared INSERT. SQLite's driver drops what an executemany
      returns, so the ids are given: the transaction has already written (a batch's own audit event comes first),
      so it holds SQLite's single write lock and nobody else can insert until it ends; the rows take the ids after
      the largest, as SQLite itself would number them (these tables have no AUTOINCREMENT). The caller must hold
      that write lock.

    Everything that needs SQLAlchemy (the ids, the columns) is done here; the write uses only the driver's
    connection, turning each row into the driver's values as the driver takes it (a COPY's rows are built while
    the server is still writing the ones before). So the write may run in another thread, as long as nothing else
    uses the connection meanwhile (``transfer.Batch`` sees to that). Constraints hold as for any INSERT: a unique
    key's refusal is raised by the write as SQLAlchemy's IntegrityError.
    """
    if ids:
        rows = list(rows)  # counted first: an id is drawn for each
        first = rows[0] if rows else None
    else:
        rows = iter(rows)
        first = next(rows, None)
        rows = itertools.chain([first], rows)
    if first is None:
        return [], lambda: None
    dialect = connection.dialect
    postgresql = dialect.name == "postgresql"
    given = first.keys()
    new_ids: list[int] = []
    if ids:
        if postgresql:
            drawn = connection.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
                {"table": table.name, "count": len(rows)},
            )
            new_ids = sorted(drawn.scalars())
        else:
            start = (connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1
            new_ids = list(range(start, start + len(rows)))
    columns = [c for c in table.columns if c.name in given or (c.default is not None and not c.primary_key)]
    # (name of the row's value or None, its bind processor, the value every row shares): defaults are processed
    # once, not per row.
    slots = []
    for column in columns:
        process = column.type._cached_bind_processor(dialect)
        if column.name in given:
            slots.append((column.name, process, None))
        else:
            value = _default_value(column)
            slots.append((None, None, process(value) if process is not None else value))

    def values(row) -> list:
        return [shared if name is None else row[name] if process is None else process(row[name])
                for name, process, shared in slots]  # fmt: skip

    if ids:
        columns.insert(0, table.c.id)
        params = ((id_, *values(row)) for id_, row in zip(new_ids, rows, strict=True))
    else:
        params = (tuple(values(row)) for row in rows)
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in columns)
    if postgresql:
        sql = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    else:
        sql = f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({', '.join(['?'] * len(columns))})"
    # The same DBAPI connection, so the same transaction (and the import's SAVEPOINT) as the session's.
    driver = connection.connection.driver_connection

    def write() -> None:
        cursor = driver.cursor()
        try:
            if postgresql:
                with cursor.copy(sql) as copy:
                    for row in params:
                        copy.write_row(row)
            else:
                cursor.executemany(sql, params)
        except dialect.loaded_dbapi.Error as exc:
            # As SQLAlchemy would raise it (a unique key's refusal is an IntegrityError the importer handles).
            raise sa.exc.DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()

    return new_ids, write


#: SQLite's page cache while an import writes, in KiB (its default is 2,000). The unique key of placements and
#: the people's fingerprints are indexes of random 64-character keys: with the default cache nearly every insert
#: reads an index page back from the file. 16 MiB took a 100,000-placement import from 17.8 s to 15.7 s.
BULK_CACHE_KIB = 16_384


def widen_cache(connection) -> int | None:
    """Give this SQLite connection ``BULK_CACHE_KIB`` of page cache for a bulk write; returns the setting to put
    back with ``restore_cache`` (None on PostgreSQL, whose server keeps its own cache)."""
    if connection.dialect.name != "sqlite":
        return None
    driver = connection.connection.driver_connection
    previous = driver.execute("PRAGMA cache_size").fetchone()[0]
    driver.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    return previous


def restore_cache(connection, previous: int | None) -> None:
    """Put back what ``widen_cache`` changed (SQLite then frees the pages beyond it)."""
    if previous is not None:
        connection.connection.driver_connection.execute(f"PRAGMA cache_size = {int(previous)}")


def _default_value(column: sa.Column):
    default = column.default
    if default.is_callable:
        # SQLAlchemy wraps a default taking no argument so that it takes the execution context; none is needed.
        return default.arg(None)
    return default.arg
