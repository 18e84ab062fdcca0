"""The kernel's bulk write path for imports: ``database.prepare_bulk_insert`` writes what an ORM insert writes and
numbers the rows as the database would, a refused row is SQLAlchemy's IntegrityError, ``any_of`` selects what
``IN`` selects, and the import's collector and SQLite cache settings are put back afterwards."""

import gc
import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from registry.kernel import transfer
from registry.kernel.audit.models import AuditEvent
from registry.kernel.database import any_of, prepare_bulk_insert, restore_cache, widen_cache
from registry.kernel.extensions import db
from registry.placements.models import Person

EVENT = {
    "actor_id": None, "actor_name": "系统", "action": "create", "entity_type": "placements", "summary": "导入",
    "changes": {"姓名": "沙马拉则", "start_date": "2024-05-01", "organised": True, "wage": 480000}, "ip": "",
    "context_type": None, "context_id": None, "batch_id": None,
}  # fmt: skip


def _events(n, offset=0):
    return [EVENT | {"entity_id": offset + i, "summary": f"导入 第{offset + i}行"} for i in range(n)]


def bulk_insert(connection, table, rows, *, ids=False):
    """Prepare the INSERT, then write it at once (as Batch does on SQLite)."""
    new_ids, write = prepare_bulk_insert(connection, table, rows, ids=ids)
    write()
    return new_ids


def test_rows_are_written_as_the_orm_writes_them_and_their_ids_come_back_in_order(ctx):
    db.session.add(AuditEvent(**EVENT, entity_id=0))
    db.session.flush()  # the transaction has written: on SQLite it holds the write lock, as an import's does
    before = db.session.scalar(sa.select(sa.func.max(AuditEvent.id)))
    ids = bulk_insert(db.session.connection(), AuditEvent.__table__, _events(5), ids=True)
    assert ids == sorted(ids) and len(set(ids)) == 5 and ids[0] > before
    written = {e.id: e for e in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.id.in_(ids)))}
    for n, id_ in enumerate(ids):
        event = written[id_]
        assert (event.entity_id, event.summary, event.changes) == (n, f"导入 第{n}行", EVENT["changes"])
        # The Python default (occurred_at) is filled and reads back as an aware UTC time.
        assert event.occurred_at.tzinfo is UTC and abs(event.occurred_at - datetime.now(UTC)).total_seconds() < 60
    # The table's own numbering goes on after the bulk rows (PostgreSQL's sequence was drawn from, not bypassed).
    later = AuditEvent(**EVENT, entity_id=99)
    db.session.add(later)
    db.session.flush()
    assert later.id > max(ids)


def test_without_ids_nothing_is_returned_and_the_rows_are_there(ctx):
    db.session.add(AuditEvent(**EVENT, entity_id=0))
    db.session.flush()
    assert bulk_insert(db.session.connection(), AuditEvent.__table__, _events(3, offset=10)) == []
    assert bulk_insert(db.session.connection(), AuditEvent.__table__, []) == []
    assert sorted(db.session.scalars(sa.select(AuditEvent.entity_id).where(AuditEvent.entity_id >= 10))) == [10, 11, 12]


def test_a_unique_key_refusal_is_an_integrity_error_and_the_savepoint_undoes_the_chunk(ctx):
    db.session.add(Person(fingerprint="a" * 64))
    db.session.flush()
    savepoint = db.session.begin_nested()
    with pytest.raises(sa.exc.IntegrityError):
        bulk_insert(db.session.connection(), Person.__table__, [{"fingerprint": "b" * 64}, {"fingerprint": "a" * 64}])
    savepoint.rollback()
    # The session goes on, and no row of the refused chunk stayed.
    assert db.session.scalars(sa.select(Person.fingerprint)).all() == ["a" * 64]


def test_any_of_selects_what_in_selects(ctx):
    fingerprints = [f"{n:064x}" for n in range(30)]
    db.session.add_all(Person(fingerprint=f) for f in fingerprints)
    db.session.flush()
    dialect = db.session.get_bind().dialect.name
    wanted = fingerprints[::3] + ["f" * 64]
    by_any = db.session.scalars(sa.select(Person.fingerprint).where(any_of(Person.fingerprint, wanted, dialect)))
    by_in = db.session.scalars(sa.select(Person.fingerprint).where(Person.fingerprint.in_(wanted)))
    assert sorted(by_any) == sorted(by_in) == fingerprints[::3]


def test_the_sqlite_cache_is_widened_for_an_import_and_put_back(ctx):
    connection = db.session.connection()
    previous = widen_cache(connection)
    if connection.dialect.name != "sqlite":
        assert previous is None
        return
    driver = connection.connection.driver_connection
    assert driver.execute("PRAGMA cache_size").fetchone()[0] == -16_384
    restore_cache(connection, previous)
    assert driver.execute("PRAGMA cache_size").fetchone()[0] == previous


def test_the_collector_settings_come_back_after_imports_even_overlapping_ones():
    threshold = gc.get_threshold()
    started, release = threading.Event(), threading.Event()

    def other_import():
        with transfer.fewer_collections():
            started.set()
            release.wait(10)

    thread = threading.Thread(target=other_import)
    thread.start()
    started.wait(10)
    with transfer.fewer_collections():
        assert gc.get_threshold()[0] == transfer.IMPORT_GC_THRESHOLD
    # The other import still runs: its setting stays.
    assert gc.get_threshold()[0] == transfer.IMPORT_GC_THRESHOLD and gc.get_freeze_count() > 0
    release.set()
    thread.join(10)
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


def test_an_import_that_fails_still_puts_the_collector_back():
    threshold = gc.get_threshold()

    def steps():
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        transfer.run_steps(steps())
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


def _slow(monkeypatch, seconds=0.2):
    """Make each bulk write take a while, so that a statement surely arrives while it runs."""
    prepare = transfer.prepare_bulk_insert

    def slow_prepare(*args, **kwargs):
        ids, write = prepare(*args, **kwargs)

        def slow_write():
            time.sleep(seconds)
            write()

        return ids, slow_write

    monkeypatch.setattr(transfer, "prepare_bulk_insert", slow_prepare)


def test_a_statement_after_a_batch_flush_sees_the_rows_it_wrote(ctx, monkeypatch):
    """On PostgreSQL the rows go in from a thread of their own; whatever the import asks next waits for them."""
    _slow(monkeypatch)
    batch = transfer.Batch(None, entity_type="people", title="测试")
    batch.insert(Person, {"fingerprint": "c" * 64}, summary="c", changes={})
    batch.flush()
    assert db.session.scalar(sa.select(sa.func.count()).where(Person.fingerprint == "c" * 64)) == 1
    batch.finish(transfer.ImportResult(rows=1, created=1))
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.batch_id == batch.event.id)).all()
    assert [(e.entity_type, e.entity_id) for e in events] == [("people", batch.created[0])]
    connection = db.session.connection()
    assert not sa.event.contains(connection, "before_cursor_execute", batch._writer._before_use)


def test_a_refused_bulk_write_is_raised_and_the_batch_leaves_nothing(ctx, monkeypatch):
    _slow(monkeypatch)
    db.session.add(Person(fingerprint="a" * 64))
    db.session.flush()
    batch = transfer.Batch(None, entity_type="people", title="测试")
    batch.insert(Person, {"fingerprint": "b" * 64}, summary="b", changes={})
    batch.insert(Person, {"fingerprint": "a" * 64}, summary="a", changes={})
    with pytest.raises(sa.exc.IntegrityError):
        batch.flush()  # SQLite: the write refuses here
        batch.settle()  # PostgreSQL: the write's thread hands its refusal over here
    result = transfer.ImportResult(rows=2)
    batch.abandon(result)
    assert db.session.scalars(sa.select(Person.fingerprint)).all() == ["a" * 64]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0
    # The connection is the session's again: nothing waits on a writer any more.
    assert db.session.scalar(sa.select(sa.literal(1))) == 1
