"""Report figures and PDFs kept by unit, quarter, viewer scope and data version (table ``report_cache``).

A dashboard or PDF asks ``figures(unit, quarter, user)`` / ``pdf(unit, quarter, user)``: when the data have not
changed since the same report was last made for the same scope, the stored result is returned; otherwise it is
made, stored and returned.

The data version of a unit is the digest of the versions (``registry.kernel.versions``) of the unit, the units within it
and above it, and of everything not tied to a unit: a write in 昭觉 makes 昭觉's, 凉山州's and the province's figures
out of date and leaves every other county's and prefecture's cached (``related_units``).

The scope is "all" for everyone who sees every record of the unit, or a digest of an East liaison's pairing ids
and the label on their report: a liaison's figures are never served to a county user or another liaison.
The cut-off day is part of the key too: a running quarter's figures are "to date" and change at midnight.

Stored bodies are pickles signed with the secret key, so a row written by anything but this app is not loaded.
"""

import hashlib
import hmac
import logging
import pickle
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import DBAPIError

from registry.auth.models import User
from registry.counties.models import Unit, UnitKind
from registry.kernel import versions
from registry.kernel.audit.models import AuditEvent
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.permissions import report_pairings, report_scope_label
from registry.reports.documents import preparer_of
from registry.reports.models import ReportCache
from registry.reports.queries import quarter_figures
from registry.reports.workers import render_report

log = logging.getLogger(__name__)

FIGURES = "figures"
PDF = "pdf"

#: How far back (in audit ids) a late commit still changes the version; see the module docstring.
VERSION_WINDOW = 5000

#: While storing, wait this long at most for SQLite's write lock (an import may hold it for seconds): a cache
#: write that cannot happen at once is skipped, the page is not held up for it.
SQLITE_STORE_WAIT_MS = 200


@dataclass(frozen=True)
class Scope:
    """Whose records a viewer's reports count: ``pairings`` (ids) is None for every record."""

    pairings: list[int] | None
    label: str
    key: str


def scope_for(user) -> Scope:
    pairings = report_pairings(user)
    label = report_scope_label(user)
    if pairings is None:
        return Scope(None, label, "all")
    ids = sorted(db.session.scalars(pairings))
    digest = hashlib.sha256(f"{','.join(map(str, ids))}|{label}".encode()).hexdigest()[:40]
    return Scope(ids, label, f"pairings:{digest}")


def related_units(unit) -> list[int]:
    """The units whose records a figure of ``unit`` may read: itself, those within it and those above it."""
    ids = {unit.id, unit.province_id, unit.prefecture_id} - {None}
    below = {UnitKind.PROVINCE: Unit.province_id, UnitKind.PREFECTURE: Unit.prefecture_id}.get(unit.kind)
    if below is not None:
        ids.update(db.session.scalars(sa.select(Unit.id).where(below == unit.id, Unit.id != unit.id)))
    return sorted(ids)


def unit_version(unit) -> str:
    return versions.digest(related_units(unit))


def data_version() -> str:
    """The version of the data reports are made from (see the module docstring).

    Events about users (logins above all, also password changes and account edits) are left out: no figure
    reads the users table, and a viewer's scope is part of the key already. Otherwise every login would
    throw the whole cache away.
    """
    data = AuditEvent.entity_type != User.__tablename__
    newest = sa.select(sa.func.coalesce(sa.func.max(AuditEvent.id), 0)).where(data).scalar_subquery()
    count, top = db.session.execute(
        sa.select(sa.func.count(AuditEvent.id), sa.func.coalesce(sa.func.max(AuditEvent.id), 0)).where(
            data, AuditEvent.id > newest - VERSION_WINDOW
        )
    ).one()
    return f"{top}.{count}"


def enabled() -> bool:
    return bool(current_app.config.get("REPORT_CACHE", True))


def figures(unit, quarter: Quarter, user):
    """The ``QuarterFigures`` of ``unit`` for ``quarter`` as ``user`` may see them, from the cache when current."""
    scope = scope_for(user)
    if not enabled():
        return quarter_figures(unit, quarter, scope.pairings, scope.label)
    key = _key(FIGURES, unit, quarter, scope.key)
    body = _lookup(key)
    if body is not None:
        return body
    result = quarter_figures(unit, quarter, scope.pairings, scope.label)
    _store(key, result)
    return result


#: The scope of every unrestricted viewer (offices, readers, administrators): what ``warm`` fills.
EVERYTHING = Scope(None, "", "all")


def warm(units, quarter: Quarter) -> int:
    """Make and store the figures of ``units`` for ``quarter`` as every unrestricted viewer sees them, where the
    stored ones are out of date (after an import and at night, so the first office to open a province or
    prefecture dashboard does not wait for it); returns how many were made."""
    made = 0
    for unit in units:
        key = _key(FIGURES, unit, quarter, EVERYTHING.key)
        if _lookup(key) is None:
            _store(key, quarter_figures(unit, quarter, None, EVERYTHING.label))
            made += 1
        db.session.commit()  # each unit's reads in a transaction of their own
    return made


def pdf(unit, quarter: Quarter, user, *, not_of_record: bool = False) -> bytes:
    """The report PDF of ``unit`` for ``quarter`` as ``user`` would print it, rendered outside this process;
    ``not_of_record`` marks it 非存档版 (a live render of an approved quarter) and is cached apart."""
    preparer = preparer_of(user)
    if not enabled():
        return render_report(figures(unit, quarter, user), preparer, not_of_record=not_of_record)
    scope = scope_for(user)
    # The cover names the preparing office, so two offices with the same scope get their own PDF.
    pdf_scope = f"{scope.key}|{hashlib.sha256(preparer.encode()).hexdigest()[:16]}" + ("|live" if not_of_record else "")
    key = _key(PDF, unit, quarter, pdf_scope)
    body = _lookup(key)
    if body is not None:
        return body
    body = render_report(figures(unit, quarter, user), preparer, not_of_record=not_of_record)
    _store(key, body)
    return body


# ---- storage ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    kind: str
    unit_id: int
    quarter: str
    scope: str
    cutoff: date
    version: str


def _key(kind: str, unit, quarter: Quarter, scope: str) -> Key:
    # Read before the figures are made: they are then at least as new as the version they are stored under.
    return Key(kind, unit.id, str(quarter), scope, min(quarter.end, date.today()), unit_version(unit))


def _where(key: Key):
    return sa.and_(
        ReportCache.kind == key.kind, ReportCache.unit_id == key.unit_id, ReportCache.quarter == key.quarter,
        ReportCache.scope == key.scope, ReportCache.cutoff == key.cutoff, ReportCache.version == key.version,
    )  # fmt: skip


def _sign(payload: bytes) -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"].encode(), payload, hashlib.sha256).digest()


def _lookup(key: Key):
    body = db.session.scalar(sa.select(ReportCache.body).where(_where(key)))
    if body is None:
        return None
    body = bytes(body)
    signature, payload = body[:32], body[32:]
    if not hmac.compare_digest(signature, _sign(payload)):
        log.warning("report cache row with a bad signature ignored: %s", key)
        return None
    try:
        return pickle.loads(payload)  # noqa: S301 - signed by this app's secret key above
    except (ImportError, AttributeError, pickle.UnpicklingError) as exc:
        # Stored by an earlier release whose classes have since moved or changed: made again, as on a miss.
        log.info("report cache row of an earlier release ignored (%s): %s", exc, key)
        return None


def _store(key: Key, value) -> None:
    """Insert the entry (a concurrent identical one wins quietly), then drop other versions and the oldest rows
    beyond ``REPORT_CACHE_MAX_MB``. In its own short transaction, so a page never commits its session for it."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    body = _sign(payload) + payload
    table = ReportCache.__table__
    engine = db.engine
    limit = float(current_app.config.get("REPORT_CACHE_MAX_MB", 256)) * 1024 * 1024
    row = dict(key.__dict__, body=body, size=len(body))
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    try:
        with engine.connect() as conn:
            # On the driver's connection: SQLAlchemy would begin a transaction for a statement of its own.
            sqlite = conn.connection.driver_connection if engine.dialect.name == "sqlite" else None
            if sqlite:
                wait = sqlite.execute("PRAGMA busy_timeout").fetchone()[0]
                sqlite.execute(f"PRAGMA busy_timeout = {SQLITE_STORE_WAIT_MS}")
            try:
                with conn.begin():
                    conn.execute(insert(table).values(**row, created_at=utcnow()).on_conflict_do_nothing())
                    # The same entry made from older data (other units' entries stay: their data did not change).
                    conn.execute(table.delete().where(
                        table.c.kind == key.kind, table.c.unit_id == key.unit_id, table.c.quarter == key.quarter,
                        table.c.scope == key.scope, table.c.version != key.version,
                    ))  # fmt: skip
                    sizes = conn.execute(sa.select(table.c.id, table.c.size).order_by(table.c.id.desc())).all()
                    total, drop = 0, []
                    for row_id, size in sizes:
                        total += size
                        if total > limit:
                            drop.append(row_id)
                    if drop:
                        conn.execute(table.delete().where(table.c.id.in_(drop)))
            finally:
                if sqlite:
                    sqlite.execute(f"PRAGMA busy_timeout = {int(wait)}")
    except DBAPIError as exc:  # busy (an import holds SQLite's write lock), a lock timeout: serve without storing
        log.info("report cache not written (%s): %s", key, exc.orig)
