"""No lock-out during a long import: while an import is between two of its chunks, another user logs in and edits a
record; an import that fails after it has committed chunks (SQLite) takes all of them back, and one that changed
records puts them back as they were. On PostgreSQL the import is one transaction that blocks neither readers nor
other writers. A writer that still meets SQLite's lock is answered in Chinese (503), never a 500.

The import is paused deterministically at a chunk boundary (``transfer.CHECKPOINT_HOOKS``), never by sleeping.
"""

import pytest
import sqlalchemy as sa

from registry.auth.models import User
from registry.kernel import database, idnumbers, transfer
from registry.kernel.audit.models import AuditEvent
from registry.kernel.database import writing
from registry.kernel.extensions import db
from registry.kernel.transfer.reader import read_table
from registry.placements import services as placement_services
from registry.placements import transfer as placements_transfer
from registry.placements.models import Placement, PlacementCell
from registry.placements.transfer import HEADERS, import_placements
from registry.purchases.models import Purchase
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from registry.purchases.transfer import import_purchases
from tests.conftest import login
from tests.imports_support import WAIT, Paused, csv_bytes, in_thread


def _number(n: int) -> str:
    body = f"51343119900202{n:03d}"
    return body + idnumbers.check_digit(body)


def _row(n: int, **cells) -> dict:
    return {
        "姓名": f"导入{n}", "身份证号": _number(n), "户类型": "脱贫户", "户籍县代码": "513431",
        "就业去向": "到东部协作地就业", "有组织转移": "是", "就业开始": "2024-05-01",
    } | cells  # fmt: skip


def _import_placements(username: str, rows):
    """The import as the command line and the task run it: under ``writing()`` (SQLite: BEGIN IMMEDIATE)."""
    with writing():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        headers, body = read_table(csv_bytes(HEADERS, rows), "t.csv")
        result = import_placements(headers, body, user=user, filename="t.csv")
        if result.errors:
            db.session.rollback()
        else:
            db.session.commit()
        return result


def _snapshot():
    """What an import could leave behind: records, their events, the import events, the derived cells."""
    key = (PlacementCell.origin_county_id, PlacementCell.pairing_id, PlacementCell.household,
           PlacementCell.destination_class, PlacementCell.start_year, PlacementCell.end_year)  # fmt: skip
    cells = db.session.execute(sa.select(*key, PlacementCell.placements).order_by(*key)).all()
    return {
        "placements": db.session.execute(
            sa.select(Placement.id, Placement.employer, Placement.version_id).order_by(Placement.id)
        ).all(),
        "purchases": db.session.scalar(sa.select(sa.func.count(Purchase.id))),
        "events": db.session.scalar(sa.select(sa.func.count(AuditEvent.id))),
        "imports": db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")),
        "cells": cells,
    }


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(placements_transfer, "CHUNK", 2)
    monkeypatch.setattr("registry.purchases.transfer.CHUNK", 2)
    monkeypatch.setattr(transfer, "YIELD_SECONDS", 0)
    monkeypatch.setattr(transfer, "UNDO_EVERY", 2)


def test_a_login_and_an_edit_succeed_while_an_import_is_between_chunks(app, world, monkeypatch, small_chunks):
    paused = Paused(monkeypatch)
    thread, outcome = in_thread(app, lambda: _import_placements("county", [_row(n) for n in range(5)]))
    assert paused.reached.wait(WAIT), outcome
    try:
        with app.app_context():
            # The first chunk is committed: SQLite's write lock is free, PostgreSQL holds no row lock of the import.
            seen = db.session.scalar(sa.select(sa.func.count(Placement.id)).where(Placement.person_name.like("导入%")))
            assert seen == 2
        client = app.test_client()
        response = login(client, "county")
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        with app.app_context(), writing():
            placement = db.session.get(Placement, world.placement_a)
            user = db.session.scalar(sa.select(User).where(User.username == "province"))
            placement_services.update_placement(placement, {"employer": "导入期间修改"}, actor=user)
            db.session.commit()
        # Pages read meanwhile.
        assert client.get("/placements/").status_code == 200
    finally:
        paused.resume()
        thread.join(WAIT)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["value"]
    assert result.errors == [] and result.created == 5
    with app.app_context():
        assert db.session.get(Placement, world.placement_a).employer == "导入期间修改"
        names = db.session.scalars(sa.select(Placement.person_name).where(Placement.person_name.like("导入%")))
        assert sorted(names) == [f"导入{n}" for n in range(5)]
        assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 1
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))
        assert "（进行中）" not in event.summary and len(event.changes["created"]) == 5


def test_an_import_that_fails_after_committed_chunks_leaves_nothing(app, world, monkeypatch, small_chunks):
    """Rows 1-4 pass (two chunks, committed on SQLite), row 5 lies in a county the user may not write."""
    with app.app_context():
        before = _snapshot()
    paused = Paused(monkeypatch)
    rows = [_row(n) for n in range(4)] + [_row(9, 户籍县代码="513429")]
    thread, outcome = in_thread(app, lambda: _import_placements("county", rows))
    assert paused.reached.wait(WAIT), outcome
    paused.resume()
    thread.join(WAIT)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["value"]
    assert [e.row for e in result.errors] == [6] and result.created == 0
    with app.app_context():
        assert _snapshot() == before


def test_once_a_row_has_failed_no_further_chunk_is_committed(app, world, monkeypatch, small_chunks):
    """Row 2 cannot be read: the first chunk is still checked by every rule, then rolled back, not committed."""
    with app.app_context():
        before = _snapshot()
    paused = Paused(monkeypatch)
    rows = [_row(1, 有组织转移="也许"), _row(2), _row(3), _row(4)]
    thread, outcome = in_thread(app, lambda: _import_placements("county", rows))
    assert paused.reached.wait(WAIT), outcome
    try:
        with app.app_context():
            seen = db.session.scalar(sa.select(sa.func.count(Placement.id)).where(Placement.person_name.like("导入%")))
            assert seen == 0
    finally:
        paused.resume()
        thread.join(WAIT)
    assert "error" not in outcome, outcome.get("error")
    assert [(e.row, e.column) for e in outcome["value"].errors] == [(2, "有组织转移")]
    with app.app_context():
        assert _snapshot() == before


def test_an_import_refused_midway_takes_back_its_changes_too(app, world, monkeypatch, small_chunks):
    """Row 2 changes an existing record (committed with the first chunk on SQLite); the file then turns out to be
    too long: the new records go and the changed one is as it was, version included."""
    monkeypatch.setattr("registry.kernel.transfer.MAX_ROWS", 4)
    with app.app_context():
        before = _snapshot()
        original = db.session.get(Placement, world.placement_a)
        existing = {"编号": str(original.id), "就业单位": "被导入修改"}
    rows = [_row(1), existing, _row(2), _row(3), _row(4)]

    def run():
        with pytest.raises(Exception, match="一次最多导入 4 行"):
            _import_placements("county", rows)

    thread, outcome = in_thread(app, run)
    thread.join(WAIT)
    assert "error" not in outcome, outcome.get("error")
    with app.app_context():
        assert _snapshot() == before


def test_a_failed_purchases_import_leaves_nothing(app, world, monkeypatch, small_chunks):
    with app.app_context():
        before = _snapshot()
    base = {
        "日期": "2024-09-01", "购买方": "宁波某超市", "购买方类型": "企业", "销售方": "昭觉某合作社",
        "销售方类型": "合作社", "销售方所在县代码": "513431", "产品": "马铃薯", "产品类别": "果蔬", "金额(元)": "12",
        "渠道": "直采", "计入方式": "帮助销售",
    }  # fmt: skip
    rows = [base | {"发票号/合同号": f"LOCK-{n}"} for n in range(4)]
    rows.append(base | {"发票号/合同号": "LOCK-9", "销售方所在县代码": "513429"})

    def run():
        with writing():
            user = db.session.scalar(sa.select(User).where(User.username == "county"))
            headers, body = read_table(csv_bytes(PURCHASE_HEADERS, rows), "t.csv")
            result = import_purchases(headers, body, user=user, filename="t.csv")
            db.session.rollback()
            return result

    thread, outcome = in_thread(app, run)
    thread.join(WAIT)
    assert "error" not in outcome, outcome.get("error")
    assert [e.row for e in outcome["value"].errors] == [6]
    with app.app_context():
        assert _snapshot() == before


def test_a_writer_that_meets_the_lock_is_told_in_chinese_not_500(app, world, monkeypatch):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's single write lock")
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 50)
    with app.app_context():
        db.engine.dispose()  # new connections take the short timeout
        holder = db.engine.raw_connection()
    try:
        holder.driver_connection.execute("BEGIN IMMEDIATE")
        client = app.test_client()
        response = client.post("/login", data={"username": "county", "password": "x"})
        assert response.status_code == 503
        assert "系统繁忙" in response.get_data(as_text=True)
        assert response.headers["Retry-After"] == "5"
    finally:
        holder.driver_connection.execute("ROLLBACK")
        holder.close()
        with app.app_context():
            monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 5000)
            db.engine.dispose()


class _Died(BaseException):
    """The import's process dies at a chunk boundary (it never runs its own undo)."""


def test_an_import_whose_process_died_is_undone_by_the_sweeper(app, world, monkeypatch, small_chunks):
    with app.app_context():
        before = _snapshot()
        original = db.session.get(Placement, world.placement_a)
        existing = {"编号": str(original.id), "就业单位": "进程退出前修改"}

    def die(batch):
        raise _Died

    monkeypatch.setattr(transfer, "CHECKPOINT_HOOKS", [die])
    monkeypatch.setattr(transfer.Batch, "abandon", lambda self, result: db.session.rollback())
    thread, outcome = in_thread(app, lambda: _import_placements("county", [_row(1), existing, _row(2)]))
    thread.join(WAIT)
    assert isinstance(outcome.get("error"), _Died)
    with app.app_context(), writing():
        # A live import (its event moved within the stale time) is left alone.
        assert transfer.recover_imports(3600) == []
        undone = transfer.recover_imports(0)
        assert len(undone) == 1
        assert _snapshot() == before
        assert db.session.get(Placement, world.placement_a).employer == original.employer
