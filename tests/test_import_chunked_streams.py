"""The exchanges, problems, assets, projects and fund-transaction importers commit in chunks like the placements
importer (``Sheet.chunked`` / ``Batch(chunks=True)``): while one is between two chunks, another user logs in and
writes; one that fails after it has committed chunks takes all of them back — records it created, records it
changed (an asset's sources included) and the derived fund totals — so it still writes all or nothing.

Each import runs as the command line and the task run it (under ``writing()``), paused deterministically at its
first chunk boundary (``transfer.CHECKPOINT_HOOKS``). Runs on SQLite and PostgreSQL alike.
"""

from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from registry.assets.models import Asset, AssetSource
from registry.assets.transfer import IMPORT_HEADERS as ASSET_IMPORT_HEADERS
from registry.assets.transfer import import_assets
from registry.auth.models import User
from registry.exchanges.models import Exchange
from registry.exchanges.transfer import HEADERS as EXCHANGE_HEADERS
from registry.exchanges.transfer import import_exchanges
from registry.kernel import transfer
from registry.kernel.audit.models import AuditEvent
from registry.kernel.database import writing
from registry.kernel.extensions import db
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.transfer.reader import read_table
from registry.problems.models import Problem
from registry.problems.transfer import IMPORT_HEADERS as PROBLEM_HEADERS
from registry.problems.transfer import import_problems
from registry.projects.models import FundTransaction, Project, ProjectFunds
from registry.projects.transfer import FUND_HEADERS, import_projects, import_transactions
from registry.projects.transfer import HEADERS as PROJECT_HEADERS
from tests.conftest import login
from tests.imports_support import WAIT, Paused, csv_bytes, in_thread

# ---- each stream's file: new records, one change to an existing record, and (``bad``) a row its service refuses


def _exchanges(world, bad):
    new = {"姓名": "导入", "方向": "东部选派到四川", "类型": "党政干部", "派出单位": "余姚市人民政府",
           "接收单位": "昭觉县人民政府", "县代码": "513431", "到岗日期": "2024-03-01"}  # fmt: skip
    rows = [new | {"姓名": f"导入{n}"} for n in range(3)]
    rows.insert(1, {"编号": str(world.exchange_a), "挂职岗位": "导入修改"})
    if bad:
        rows.append(new | {"姓名": "导入越权", "县代码": "513429"})  # 布拖: not the county user's
    return EXCHANGE_HEADERS, rows, import_exchanges


def _problems(world, bad):
    new = {"问题来源": "国家考核", "年度": "2024", "发现日期": "2024-03-15", "涉及单位代码": "513431",
           "问题类别": "资金", "问题描述": "导入"}  # fmt: skip
    rows = [new | {"问题描述": f"导入{n}"} for n in range(3)]
    rows.insert(1, {"编号": str(world.problem_a), "整改措施": "导入修改"})
    if bad:
        rows.append(new | {"问题描述": "导入越权", "涉及单位代码": "513429"})
    return PROBLEM_HEADERS, rows, import_problems


def _assets(world, bad):
    code = db.session.get(Project, world.done_a).code
    new = {"资产名称": "冷链库", "资产类别": "经营性", "数量": "1", "来源项目": f"{code}:1000:0",
           "竣工日期": "2022-08-01", "确权层级": "村集体", "所有权人": "某村", "管护主体": "某村委会",
           "管护责任人": "王建华", "运营方式": "租赁"}  # fmt: skip
    rows = [new | {"资产编号": f"IMP-{n}"} for n in range(3)]
    # Its sources replaced: an undo must put the old ones back.
    rows.insert(1, {"编号": str(world.asset_a), "来源项目": f"{code}:70000000:10000000", "管护责任人": "导入修改"})
    if bad:
        rows.append(new | {"资产编号": "IMP-9", "原值(元)": "1"})  # disagrees with its sources
    return ASSET_IMPORT_HEADERS, rows, import_assets


def _projects(world, bad):
    new = {"项目名称": "导入", "县(市、区)": "昭觉县", "年度": "2024", "项目类别": "产业发展", "实施方式": "交支票",
           "资金层级": "县级", "计划开工": "2024-03-01"}  # fmt: skip
    rows = [new | {"项目编号": f"IMP-513431-{n}"} for n in range(3)]
    rows.insert(1, {"项目编号": db.session.get(Project, world.project_a).code, "责任人": "导入修改"})
    if bad:
        rows.append(new | {"项目编号": "IMP-513429-9", "县(市、区)": "布拖县"})
    return PROJECT_HEADERS, rows, import_projects


def _funds(world, bad):
    a, done = (db.session.get(Project, i).code for i in (world.project_a, world.done_a))
    base = {"资金来源": "东部财政援助资金", "文号/凭证": "导入"}
    rows = [  # the completed project had no money before: its 拨付 needs the 到位 beside it
        base | {"项目编号": done, "环节": "到位", "日期": "2024-05-08", "金额(元)": "500"},
        base | {"项目编号": done, "环节": "拨付", "日期": "2024-05-09", "金额(元)": "500"},
        base | {"项目编号": a, "环节": "到位", "日期": "2024-05-06", "金额(元)": "1000"},
        base | {"项目编号": a, "环节": "拨付", "日期": "2024-05-07", "金额(元)": "1000"},
    ]
    return FUND_HEADERS, rows, import_transactions


STREAMS = {"exchanges": _exchanges, "problems": _problems, "assets": _assets, "projects": _projects,
           "funds": _funds}  # fmt: skip


@pytest.fixture
def small_chunks(monkeypatch):
    for module in ("exchanges", "problems", "assets", "projects"):
        monkeypatch.setattr(f"registry.{module}.transfer.CHUNK", 2)
    monkeypatch.setattr("registry.projects.transfer.FUND_PROJECTS_PER_CHUNK", 1)
    monkeypatch.setattr(transfer, "YIELD_SECONDS", 0)
    monkeypatch.setattr(transfer, "UNDO_EVERY", 2)


@contextmanager
def _paused_import(app, monkeypatch, stream, world, bad):
    """The stream's import in a thread, as the command line runs it (under ``writing()``), paused at its first
    chunk boundary while the ``with`` body runs; then resumed and waited for. Yields the outcome (["value"] the
    result once the body is done)."""

    def run():
        with writing():
            user = db.session.scalar(sa.select(User).where(User.username == "county"))
            headers, rows, importer = STREAMS[stream](world, bad)
            result = importer(*read_table(csv_bytes(headers, rows), "t.csv"), user=user, filename="t.csv")
            if result.errors:
                db.session.rollback()
            else:
                db.session.commit()
            return result

    paused = Paused(monkeypatch)
    thread, outcome = in_thread(app, run)
    assert paused.reached.wait(WAIT), outcome
    try:
        with app.app_context():
            # The first chunk is committed: SQLite's write lock is free, PostgreSQL holds no row lock of the import.
            assert _committed(stream) >= 1
        yield outcome
    finally:
        paused.resume()
        thread.join(WAIT)
    assert "error" not in outcome, outcome.get("error")


def _rows(table) -> list:
    return db.session.execute(sa.select(table).order_by(*table.primary_key.columns)).all()


def _snapshot() -> dict:
    """Every table these imports write, whole (ids, versions and times included), and the audit trail's size."""
    state = {model.__tablename__: _rows(model.__table__) for model in
             (Exchange, Problem, Asset, AssetSource, Project, FundTransaction, ProjectFunds)}  # fmt: skip
    state["events"] = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    return state


def _committed(stream) -> int:
    """Records of the import visible to another user."""
    model, column, like = {
        "exchanges": (Exchange, Exchange.person_name, "导入%"), "problems": (Problem, Problem.description, "导入%"),
        "assets": (Asset, Asset.number, "IMP-%"), "projects": (Project, Project.code, "IMP-%"),
        "funds": (FundTransaction, FundTransaction.document_no, "导入"),
    }[stream]  # fmt: skip
    return db.session.scalar(sa.select(sa.func.count(model.id)).where(column.like(like)))


@pytest.mark.parametrize("stream", list(STREAMS))
def test_others_log_in_and_write_while_an_import_is_between_chunks(app, world, monkeypatch, small_chunks, stream):
    with _paused_import(app, monkeypatch, stream, world, bad=False) as outcome:
        assert login(app.test_client(), "province").status_code == 302
        with app.app_context(), writing():
            db.session.get(Project, world.project_b).responsible_person = "导入期间修改"
            db.session.commit()
    result = outcome["value"]
    assert result.errors == [], result.errors
    with app.app_context():
        assert db.session.get(Project, world.project_b).responsible_person == "导入期间修改"
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))
        assert "（进行中）" not in event.summary and len(event.changes["created"]) == result.created > 0
        assert not db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import_undo"))


@pytest.mark.parametrize("stream", list(STREAMS))
def test_an_import_that_fails_after_committed_chunks_leaves_nothing(app, world, monkeypatch, small_chunks, stream):
    """The first chunk is committed (a change of an existing record among it), then a later row is refused by its
    service (funds: the quarter is locked meanwhile): everything is as it was, versions, sources and totals. The
    funds' undo deletes the first project's 拨付 before the 到位 it needed (SQLite checks the rule row by row)."""
    with app.app_context():
        before = _snapshot()
    with _paused_import(app, monkeypatch, stream, world, bad=True) as outcome:
        if stream == "funds":  # another user locks the quarter of the next project's rows
            with app.app_context(), writing():
                db.session.add(QuarterLock(unit_id=world.zhaojue, year=2024, quarter=2))
                db.session.commit()
    result = outcome["value"]
    assert result.errors and result.created == result.updated == 0
    with app.app_context():
        if stream == "funds":
            db.session.execute(sa.delete(QuarterLock))
            db.session.commit()
            assert {e.row for e in result.errors} == {4, 5}  # the second project's rows
        else:
            assert [e.row for e in result.errors] == [6]
        after = _snapshot()
        if stream == "funds":
            # Rebuilding a project's running totals stamps its updated_at, as every ledger write does.
            stamp = Project.__table__.c.keys().index("updated_at")
            for state in (before, after):
                state["projects"] = [row[:stamp] + row[stamp + 1 :] for row in state["projects"]]
        assert after == before
