"""Data versions per unit: what a cached figure was made from, so that a write invalidates only what it changes.

Every write that can move a figure bumps, in its own transaction, the version of the unit its record lies in: the
write gate (``permissions.authorize_write``) touches the county of each state a scoped record is written from or
to (forms, imports, status steps, the command line alike), and the audit trail (``audit.services.record``) touches
the county of a scoped record or of the record it belongs to (a fund transaction: its project). A write of anything
else that figures read — agreements, targets, indicators, pairings, units, programmes, channels, narratives, a
quarter's close, a load that bypassed the services — touches ``GLOBAL``. What figures never read is left out:
accounts and logins, jobs, notifications, the caches themselves.

A cached figure of a unit is keyed on ``digest`` of the versions of that unit, the units within it, the units above
it and ``GLOBAL``: a placement edited in 昭觉 changes the digest of 昭觉, 凉山州 and the province, and not that of
another prefecture or county. The versions are read before the figures are made, so a figure is never older than
the key it is stored under (a write committing meanwhile only makes the next reader recompute).

Versions are counters, one row per unit, written just before the transaction commits (``before_commit``): the row
locks are held only for the commit, and two writers of one unit both count.
"""

import hashlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.kernel.extensions import db

#: The version of everything not tied to one unit.
GLOBAL = 0
#: Tables whose writes no figure reads.
IGNORED = frozenset({"users", "login_throttles", "jobs", "notifications", "notification_settings", "report_cache",
                     "data_versions"})  # fmt: skip

_UNITS = "registry.touched_units"
_LOOSE = "registry.touched_loose"


class DataVersion(db.Model):
    """How many committed transactions have written records of one unit (``unit_id`` 0: of none in particular)."""

    __tablename__ = "data_versions"

    #: A ``units.id``, or 0 (``GLOBAL``); no foreign key, since 0 is no unit.
    unit_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)


def touch(*unit_ids: int | None, session: Session | None = None) -> None:
    """Note that this transaction writes records of these units (None is ignored: a record without a county)."""
    ids = {u for u in unit_ids if u is not None}
    if ids:
        (session or db.session).info.setdefault(_UNITS, set()).update(ids)


def touch_global(session: Session | None = None) -> None:
    touch(GLOBAL, session=session)


def touch_loose(session: Session | None = None) -> None:
    """An event about a scoped table without its record (a bulk load's or an import's summary): if no unit was
    touched by the time of the commit (a load that bypassed the gate), everything is."""
    (session or db.session).info[_LOOSE] = True


def scope_of_entity(entity):
    """The county column name of the scoped record ``entity`` is, or None."""
    scope = getattr(type(entity), "__scope__", None)
    return getattr(scope, "county", None) if scope is not None else None


def touch_for_audit(entity, entity_type: str | None, context=None) -> None:
    """What an audit event says was written: the county of a scoped record (or of the record it belongs to),
    nothing for tables figures never read, everything otherwise."""
    table = entity_type or getattr(entity, "__tablename__", None)
    if table in IGNORED:
        return
    for record in (entity, context):
        column = scope_of_entity(record) if record is not None else None
        if column:
            touch(getattr(record, column, None))
            return
    if entity is None and table in _scoped_tables():
        touch_loose()
        return
    touch_global()


def _scoped_tables() -> frozenset[str]:
    tables = getattr(_scoped_tables, "cache", None)
    if tables is None:
        tables = frozenset(
            m.class_.__tablename__
            for m in db.Model.registry.mappers
            if getattr(getattr(m.class_, "__scope__", None), "county", None)
        )
        _scoped_tables.cache = tables
    return tables


@event.listens_for(Session, "before_commit")
def _bump(session: Session) -> None:
    units = session.info.pop(_UNITS, set())
    if session.info.pop(_LOOSE, False) and not (units - {GLOBAL}):
        units.add(GLOBAL)
    if not units:
        return
    bind = session.get_bind()
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    table = DataVersion.__table__
    statement = insert(table).values([{"unit_id": u, "version": 1} for u in sorted(units)])
    session.execute(
        statement.on_conflict_do_update(index_elements=[table.c.unit_id], set_={"version": table.c.version + 1})
    )


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_UNITS, None)
    session.info.pop(_LOOSE, None)


def digest(unit_ids: Iterable[int]) -> str:
    """A short key for the versions of these units and ``GLOBAL`` as committed now."""
    ids = sorted(set(unit_ids) | {GLOBAL})
    rows = db.session.execute(
        sa.select(DataVersion.unit_id, DataVersion.version).where(DataVersion.unit_id.in_(ids))
    ).all()
    text = ",".join(f"{u}:{v}" for u, v in sorted(rows))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
