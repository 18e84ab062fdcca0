"""Planner statistics: an import, once committed, leaves the tables it wrote analysed (SQLite: rows in sqlite_stat1;
PostgreSQL: pg_stat_user_tables.last_analyze moves); a rolled-back import asks for nothing; a refresh never fails
its caller."""

import io

import pytest
from openpyxl import Workbook

from registry.kernel import database, idnumbers
from registry.kernel.extensions import db
from registry.kernel.transfer.reader import read_table
from registry.placements.transfer import HEADERS, import_placements


def number(region: str, n: int) -> str:
    body = f"{region}19900101{n:03d}"
    return body + idnumbers.check_digit(body)


def _workbook(rows) -> bytes:
    book = Workbook()
    book.active.append(HEADERS)
    for row in rows:
        book.active.append([row.get(h, "") for h in HEADERS])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _row(n: int, **cells) -> dict:
    return {
        "姓名": f"测试{n}", "身份证号": number("513431", 300 + n), "户类型": "脱贫户", "户籍县代码": "513431",
        "就业去向": "到东部协作地就业", "有组织转移": "是", "就业开始": "2024-05-01",
    } | cells  # fmt: skip


def _import(user, rows):
    headers, body = read_table(_workbook(rows), "t.xlsx")
    return import_placements(headers, body, user=user, filename="t.xlsx")


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def _forget_statistics() -> None:
    """No statistics for the tables an import writes, as in a database that was never analysed."""
    if _sqlite():
        with db.engine.begin() as conn:
            if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
                conn.exec_driver_sql("DELETE FROM sqlite_stat1")


def _analysed() -> dict[str, object]:
    """{table: a mark of its latest analysis}: SQLite's stat rows, PostgreSQL's last ANALYZE time."""
    with db.engine.connect() as conn:
        if _sqlite():
            if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
                return {}
            rows = conn.exec_driver_sql("SELECT tbl, count(*) FROM sqlite_stat1 GROUP BY tbl")
            return dict(rows.all())
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        rows = conn.exec_driver_sql(
            "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema()"
        )
        return {name: when for name, when in rows if when is not None}


@pytest.fixture
def w(world_records):
    db.session.flush()
    return world_records


def test_a_committed_import_leaves_the_tables_it_wrote_analysed(w):
    db.session.commit()
    _forget_statistics()
    before = _analysed()
    result = _import(w.county, [_row(n) for n in range(3)])
    assert result.errors == [] and result.created == 3
    db.session.commit()
    after = _analysed()
    for table in ("placements", "audit_events", "placement_cells", "people"):
        assert table in after and after[table] != before.get(table), table
    if _sqlite():
        # Every index of the table has its row (ANALYZE ran on the table, not only PRAGMA optimize).
        with db.engine.connect() as conn:
            indexes = conn.exec_driver_sql("SELECT count(*) FROM pragma_index_list('placements')").scalar()
        assert after["placements"] == indexes


def test_a_rolled_back_import_refreshes_nothing(w, monkeypatch):
    calls = []
    monkeypatch.setattr(database, "refresh_statistics", lambda engine, tables=None: calls.append(tables))
    result = _import(w.county, [_row(1)])
    assert result.errors == []
    db.session.rollback()
    db.session.commit()
    assert calls == []
    _import(w.county, [_row(2)])
    db.session.commit()
    assert len(calls) == 1 and {"placements", "audit_events"} <= set(calls[0])


def test_a_savepoint_released_after_the_import_is_not_its_commit(w, monkeypatch):
    """after_commit fires for a SAVEPOINT too: the refresh waits for the transaction's own commit (it would otherwise
    wait for the write lock its own transaction holds, on SQLite)."""
    calls = []
    monkeypatch.setattr(database, "refresh_statistics", lambda engine, tables=None: calls.append(tables))
    assert _import(w.county, [_row(3)]).errors == []
    db.session.begin_nested().commit()
    assert calls == []
    db.session.commit()
    assert len(calls) == 1


def test_a_failed_import_asks_for_nothing(w, monkeypatch):
    calls = []
    monkeypatch.setattr(database, "refresh_statistics", lambda engine, tables=None: calls.append(tables))
    result = _import(w.county, [_row(1), _row(2, 有组织转移="也许")])
    assert result.errors
    db.session.commit()  # what the caller does next commits, but the import wrote nothing
    assert calls == []


def test_every_table_is_analysed_by_the_nightly_refresh(w):
    db.session.commit()
    _forget_statistics()
    database.refresh_planner_statistics(db.session)
    after = _analysed()
    assert {"units", "pairings", "placements", "audit_events"} <= set(after)


def test_a_refresh_that_fails_is_logged_not_raised(app, caplog):
    with app.app_context():
        database.refresh_statistics(db.engine, ["no_such_table"])
    assert "not refreshed" in caplog.text
