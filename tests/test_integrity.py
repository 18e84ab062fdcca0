"""Rules the database holds under concurrency: 拨付 ≤ 到位 per project ledger, one placement per person, county and
start date, and imports that end with an outcome whatever another writer does meanwhile.

The concurrent tests run real requests in threads, each with its own app context and database connection, against
the suite's database (a SQLite file, or PostgreSQL with REGISTRY_TEST_DATABASE_URL).
"""

import csv
import io
import threading
from datetime import date

import pytest
import sqlalchemy as sa

from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.placements.models import Placement
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.projects import services as project_services
from registry.projects.models import FundStage, FundTransaction, Project, ProjectFunds
from registry.projects.services import add_transaction, delete_transaction, update_transaction
from registry.purchases.models import Purchase
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from tests.conftest import TEST_DATABASE_URL, login
from tests.factories import make_placement
from tests.test_placement_cells import number

#: The world's project_a has 100,000.00 元 东部财政援助资金 arrived on 2024-04-01.
ARRIVED_FEN = 100_000_00


def _ledger(project_id: int) -> dict:
    """Stage sums of a project's 东部财政援助资金, as the transactions and as the running totals say."""
    sums = dict(
        db.session.execute(
            sa.select(FundTransaction.stage, sa.func.sum(FundTransaction.amount_fen))
            .where(FundTransaction.project_id == project_id)
            .group_by(FundTransaction.stage)
        ).all()
    )
    totals = db.session.execute(
        sa.select(ProjectFunds.arrived_fen, ProjectFunds.disbursed_fen).where(ProjectFunds.project_id == project_id)
    ).one()
    project = db.session.get(Project, project_id)
    return {
        "arrived": int(sums.get(FundStage.ARRIVED, 0)),
        "disbursed": int(sums.get(FundStage.DISBURSED, 0)),
        "totals": (int(totals[0]), int(totals[1])),
        "project": (project.arrived_fen, project.disbursed_fen),
    }


def _run_together(calls) -> list:
    """Run each call in its own thread, released at once; return their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(10)
            results[index] = call()
        except Exception as exc:  # reported by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


# ---- the fund ledger -----------------------------------------------------------------------------------------


def test_concurrent_disbursements_never_exceed_the_arrivals(app, world):
    """20 requests each paying out 15,000.00 元 of 100,000.00 元 arrived: exactly six are accepted, the others are
    refused with the rule's message, none answers 500, and the running totals equal the transactions."""
    clients = []
    for _ in range(20):
        client = app.test_client()
        login(client, "county")
        clients.append(client)
    data = {"source": "east_fiscal", "stage": "disbursed", "amount_fen": "15000.00", "occurred_on": "2024-05-01"}

    def pay(client):
        def call():
            response = client.post(f"/projects/{world.project_a}/funds", data=data)
            return response.status_code, response.get_data(as_text=True)

        return call

    results = _run_together([pay(c) for c in clients])
    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = sorted(status for status, _ in results)
    assert statuses == [302] * 6 + [422] * 14
    assert all("超过累计到位" in text for status, text in results if status == 422)
    with app.app_context():
        ledger = _ledger(world.project_a)
        assert ledger["disbursed"] == 6 * 15_000_00 <= ledger["arrived"] == ARRIVED_FEN
        assert ledger["totals"] == ledger["project"] == (ARRIVED_FEN, 6 * 15_000_00)


def test_concurrent_edits_and_deletes_keep_the_rule(app, world):
    """One request lowers the arrival while others pay out against it: whichever order the database serialises
    them in, the rule holds at the end and nobody gets a 500."""
    with app.app_context():
        arrival = db.session.scalar(sa.select(FundTransaction.id).where(FundTransaction.project_id == world.project_a))
    clients = []
    for _ in range(6):
        client = app.test_client()
        login(client, "county")
        clients.append(client)
    pay = {"source": "east_fiscal", "stage": "disbursed", "amount_fen": "30000.00", "occurred_on": "2024-05-01"}
    lower = {"source": "east_fiscal", "stage": "arrived", "amount_fen": "40000.00", "occurred_on": "2024-04-01"}

    def post(client, url, data):
        return lambda: client.post(url, data=data).status_code

    edit_url = f"/projects/{world.project_a}/funds/{arrival}/edit"
    calls = [post(clients[0], edit_url, lower)]
    calls += [post(c, f"/projects/{world.project_a}/funds", pay) for c in clients[1:]]
    results = _run_together(calls)
    assert not [r for r in results if isinstance(r, Exception)] and 500 not in results, results
    with app.app_context():
        ledger = _ledger(world.project_a)
        assert ledger["disbursed"] <= ledger["arrived"]
        assert ledger["totals"] == ledger["project"] == (ledger["arrived"], ledger["disbursed"])


@pytest.mark.parametrize(
    "statement",
    [
        # a disbursement beyond the arrivals
        "INSERT INTO fund_transactions (project_id, source, stage, amount_fen, occurred_on, document_no, note, "
        "created_at, updated_at, version_id) VALUES (:p, 'east_fiscal', 'disbursed', 8000000, '2024-05-02', '', '', "
        "'2024-05-02 00:00:00', '2024-05-02 00:00:00', 1)",
        # the arrival lowered under what was paid out
        "UPDATE fund_transactions SET amount_fen = 100 WHERE project_id = :p AND stage = 'arrived'",
        # the arrival moved after the payment
        "UPDATE fund_transactions SET occurred_on = '2024-06-01' WHERE project_id = :p AND stage = 'arrived'",
        # the arrival deleted
        "DELETE FROM fund_transactions WHERE project_id = :p AND stage = 'arrived'",
    ],
)
def test_the_database_refuses_a_ledger_that_breaks_the_rule(app, world, statement):
    """Raw SQL, past every service: the database itself refuses (at the statement on SQLite, at commit on
    PostgreSQL, where the check is deferred so a transaction may pass through a broken state)."""
    with app.app_context():
        project = db.session.get(Project, world.project_a)
        add_transaction(project, _pay(60_000_00, date(2024, 5, 1)), actor=None)
        db.session.commit()
        with db.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError, match="fund_ledger_rule"):
            conn.execute(sa.text(statement), {"p": world.project_a})
            conn.commit()
        db.session.expire_all()
        ledger = _ledger(world.project_a)
        assert (ledger["arrived"], ledger["disbursed"]) == (ARRIVED_FEN, 60_000_00)


def test_the_database_allows_what_the_rule_allows(app, world):
    """Arrivals of a day count before that day's payments; a ledger emptied payments first is fine; so is a
    project deleted with its whole ledger."""
    with app.app_context(), db.engine.connect() as conn:
        insert = sa.text(
            "INSERT INTO fund_transactions (project_id, source, stage, amount_fen, occurred_on, document_no, note, "
            "created_at, updated_at, version_id) VALUES (:p, 'east_fiscal', :stage, :amount, '2024-07-01', '', '', "
            "'2024-07-01 00:00:00', '2024-07-01 00:00:00', 1)"
        )
        conn.execute(insert, {"p": world.project_a, "stage": "arrived", "amount": 50_00})
        conn.execute(insert, {"p": world.project_a, "stage": "disbursed", "amount": ARRIVED_FEN + 50_00})
        conn.commit()
        conn.execute(sa.text("DELETE FROM fund_transactions WHERE project_id = :p AND stage = 'disbursed'"),
                     {"p": world.project_a})  # fmt: skip
        conn.execute(sa.text("DELETE FROM fund_transactions WHERE project_id = :p"), {"p": world.project_a})
        conn.commit()
        conn.execute(insert, {"p": world.project_a, "stage": "arrived", "amount": 50_00})
        conn.execute(insert, {"p": world.project_a, "stage": "disbursed", "amount": 50_00})
        conn.commit()
        conn.execute(sa.text("DELETE FROM project_status_changes WHERE project_id = :p"), {"p": world.project_a})
        conn.execute(sa.text("DELETE FROM project_fund_totals WHERE project_id = :p"), {"p": world.project_a})
        conn.execute(sa.text("DELETE FROM projects WHERE id = :p"), {"p": world.project_a})
        conn.commit()
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM fund_transactions WHERE project_id = :p"),
                           {"p": world.project_a}) == 0  # fmt: skip


def _pay(amount_fen: int, on: date, stage=FundStage.DISBURSED) -> dict:
    from registry.projects.models import FundSource

    return {"source": FundSource.EAST_FISCAL, "stage": stage, "amount_fen": amount_fen, "occurred_on": on}


def test_a_database_refusal_reads_like_the_services_check(app, world, monkeypatch):
    """Should the services' check ever miss (it is skipped once here), the database's refusal comes back as the
    same Chinese message, with nothing written and the session still usable."""
    real = project_services.check_money_rules
    skip = []

    def check(project, transactions):
        if skip:
            skip.pop()
        else:
            real(project, transactions)

    monkeypatch.setattr(project_services, "check_money_rules", check)
    with app.app_context():
        project = db.session.get(Project, world.project_a)
        arrival = project.transactions[0]
        skip.append(1)
        with pytest.raises(ServiceError, match="累计拨付 20.0000 万元，超过累计到位 10.0000 万元"):
            add_transaction(project, _pay(200_000_00, date(2024, 5, 1)), actor=None)
        add_transaction(project, _pay(50_000_00, date(2024, 5, 1)), actor=None)
        skip.append(1)
        with pytest.raises(ServiceError, match="超过累计到位"):
            update_transaction(arrival, {"amount_fen": 10_00}, actor=None)
        skip.append(1)
        with pytest.raises(ServiceError, match="超过累计到位"):
            delete_transaction(arrival, actor=None)
        db.session.commit()
        ledger = _ledger(world.project_a)
        assert (ledger["arrived"], ledger["disbursed"]) == (ARRIVED_FEN, 50_000_00)
        assert ledger["totals"] == ledger["project"] == (ARRIVED_FEN, 50_000_00)


# ---- one record per person and placement ---------------------------------------------------------------------


def test_the_database_refuses_a_second_record_of_a_placement(app, world):
    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM placements WHERE id = :i"), {"i": world.placement_a}).mappings().one()
        copy = {k: v for k, v in row.items() if k != "id"}
        columns = ", ".join(copy)
        values = ", ".join(f":{k}" for k in copy)
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text(f"INSERT INTO placements ({columns}) VALUES ({values})"), copy)
            conn.commit()


def test_a_form_may_not_register_a_placement_twice(app, world):
    """The form answers in Chinese, naming the field; nothing is written."""
    with app.app_context():
        from registry.counties.models import Unit

        with pytest.raises(ServiceError, match="同一人的同一次就业只登记一条") as info:
            make_placement(db.session.get(Unit, world.zhaojue), start_date=date(2024, 3, 1))
        assert info.value.field == "start_date"
        placement = make_placement(db.session.get(Unit, world.zhaojue), start_date=date(2024, 3, 2))
        from registry.placements.services import update_placement

        with pytest.raises(ServiceError, match="同一人的同一次就业只登记一条"):
            update_placement(placement, {"start_date": date(2024, 3, 1)}, actor=None)
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == 2


@pytest.mark.parametrize("kind", ["placement", "purchase"])
def test_a_duplicate_committed_by_another_request_after_the_check_is_a_message_not_a_500(app, world, monkeypatch, kind):
    """The check before the insert saw no clash (another request committed in between, simulated by making the
    check blind): the database refuses, the service says why, and the request's transaction stays usable."""
    from registry.counties.models import Unit
    from registry.placements import services as placement_services
    from registry.purchases import services as purchase_services
    from tests.factories import make_purchase

    with app.app_context():
        zhaojue = db.session.get(Unit, world.zhaojue)
        if kind == "placement":
            monkeypatch.setattr(placement_services, "_refuse_duplicate", lambda *a: None)
            with pytest.raises(ServiceError, match="只登记一条"):
                make_placement(zhaojue, start_date=date(2024, 3, 1))
        else:
            monkeypatch.setattr(purchase_services, "_holder_of", lambda key, batch: None)
            with pytest.raises(ServiceError, match="已被登记，同一凭证不能重复计入"):
                make_purchase(zhaojue, evidence_no="FP-2024-0001")
        # The transaction is still usable: the form is shown again with the message, not a 500.
        assert db.session.scalar(sa.select(sa.func.count(Purchase.id))) == 2
        assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == 2


def _placements_csv(n: int, start: str = "2024-05-01") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PLACEMENT_HEADERS)
    for k in range(n):
        row = {"姓名": f"测试{k}", "身份证号": number("513431", 1000 + k), "户类型": "脱贫户", "户籍县代码": "513431",
               "就业去向": "到东部协作地就业", "就业开始": start}  # fmt: skip
        writer.writerow([row.get(h, "") for h in PLACEMENT_HEADERS])
    return buffer.getvalue().encode("utf-8-sig")


def _purchases_csv(n: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(PURCHASE_HEADERS)
    for k in range(n):
        writer.writerow(["2024-06-01", "宁波某食堂", "食堂", "浙江省", "宁波市", "昭觉某合作社", "合作社", "513431",
                         "昭觉县", "苦荞茶", "茶叶", "100.00", "直采", "采购", f"FP-X-{k:04d}", ""])  # fmt: skip
    return buffer.getvalue().encode("utf-8-sig")


def _outcome(text: str) -> str:
    """The outcome section of an import page; the page must be complete."""
    assert text.rstrip().endswith("</html>"), text[-300:]
    assert '<section class="card" id="result">' in text, text[-1500:]
    return text.split('<section class="card" id="result">', 1)[1]


@pytest.mark.parametrize(
    ("url", "make", "model"),
    [("/placements/import", _placements_csv, Placement), ("/purchases/import", _purchases_csv, Purchase)],
    ids=["placements", "purchases"],
)
def test_overlapping_imports_never_duplicate_and_always_end_with_an_outcome(app, world, url, make, model):
    """Two users import the same 150 new records at once, five rounds: every page ends with an outcome (imported,
    or refused with the rows another user registered first), and each record exists once."""
    clients = []
    for name in ("county", "prefecture"):
        client = app.test_client()
        login(client, name)
        clients.append(client)
    data = make(150)
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count(model.id)))
    for _ in range(5):

        def upload(client):
            def call():
                response = client.post(
                    url, data={"file": (io.BytesIO(data), "same.csv")}, content_type="multipart/form-data"
                )
                return response.status_code, response.get_data(as_text=True)

            return call

        results = _run_together([upload(c) for c in clients])
        assert not [r for r in results if isinstance(r, Exception)], results
        for status, text in results:
            assert status == 200
            outcome = _outcome(text)
            assert "已导入 150 行" in outcome or "刚被其他用户登记" in outcome, outcome[:1000]
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(model.id))) == before + 150
    with app.app_context():
        if model is Placement:
            duplicates = sa.select(Placement.id_fingerprint).group_by(
                Placement.id_fingerprint, Placement.origin_county_id, Placement.start_date
            )
            assert db.session.scalar(sa.select(sa.func.count()).select_from(
                duplicates.having(sa.func.count() > 1).subquery())) == 0  # fmt: skip


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL (a second writer commits during the import)")
def test_a_record_registered_by_another_user_mid_import_becomes_a_row_error(app, world, monkeypatch):
    """Between the import's matching and its writing, another connection commits one of its new records: the
    import writes nothing and names that row; a second import then matches it and updates nothing else."""
    from registry.placements import transfer

    real_match = transfer._match

    def match_then_someone_else_registers(parsed, user, batch, result):
        real_match(parsed, user, batch, result)
        with db.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM placements WHERE id = :i"), {"i": world.placement_a})
            copy = {k: v for k, v in row.mappings().one().items() if k != "id"}
            copy |= {"id_fingerprint": transfer.idnumbers.fingerprint(number("513431", 1001)),
                     "start_date": date(2024, 5, 1)}  # fmt: skip
            columns, values = ", ".join(copy), ", ".join(f":{k}" for k in copy)
            conn.execute(sa.text(f"INSERT INTO placements ({columns}) VALUES ({values})"), copy)
            conn.commit()

    monkeypatch.setattr(transfer, "_match", match_then_someone_else_registers)
    client = app.test_client()
    login(client, "county")
    response = client.post(
        "/placements/import", data={"file": (io.BytesIO(_placements_csv(3)), "p.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    outcome = _outcome(response.get_data(as_text=True))
    assert "未导入：1 处错误" in outcome and "刚被其他用户登记" in outcome and "<td>3</td>" in outcome
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == 3  # the world's two and the other's
        assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 0


def test_an_import_that_fails_midway_still_ends_the_page_and_writes_nothing(app, world, monkeypatch):
    """A database busy beyond its timeout, or any other fault, once the page has started: the writes are undone
    and the page ends with what happened, in Chinese."""
    from registry.placements import views

    def failing_steps(headers, rows, *, user, filename=""):
        from registry.counties.models import Unit

        make_placement(db.session.get(Unit, world.zhaojue), start_date=date(2024, 8, 1))
        yield 1000
        raise sa.exc.OperationalError("INSERT …", {}, Exception("database is locked"))

    monkeypatch.setitem(views.pages.steps, "import_", failing_steps)
    client = app.test_client()
    login(client, "county")
    response = client.post(
        "/placements/import", data={"file": (io.BytesIO(_placements_csv(1)), "p.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    outcome = _outcome(response.get_data(as_text=True))
    assert "导入未完成：数据库正忙于其他用户的写入，没有写入任何记录。请稍后重新导入。" in outcome

    def broken_steps(headers, rows, *, user, filename=""):
        yield 1000
        raise KeyError("a bug")

    monkeypatch.setitem(views.pages.steps, "import_", broken_steps)
    response = client.post(
        "/placements/import", data={"file": (io.BytesIO(_placements_csv(1)), "p.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert "导入未完成：处理时发生意外错误，没有写入任何记录。" in _outcome(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == 2


# ---- the migration refuses data that already breaks the rules ------------------------------------------------


def _migration():
    import importlib.util
    from pathlib import Path

    path = next((Path(__file__).parent.parent / "migrations" / "versions").glob("*_c6c6a2cc88a6_*.py"))
    spec = importlib.util.spec_from_file_location("ledger_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_lists_duplicates_and_broken_ledgers_instead_of_deleting_them():
    migration = _migration()
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        for sql in (
            "CREATE TABLE placements (id INTEGER PRIMARY KEY, id_fingerprint TEXT, origin_county_id INT, "
            "start_date DATE, id_masked TEXT)",
            "INSERT INTO placements VALUES (1, 'f1', 7, '2024-03-01', '5134**********1239'), "
            "(2, 'f1', 7, '2024-03-01', '5134**********1239'), (3, 'f1', 7, '2024-04-01', '5134**********1239')",
            "CREATE TABLE projects (id INTEGER PRIMARY KEY, code TEXT)",
            "CREATE TABLE fund_transactions (project_id INT, source TEXT, stage TEXT, amount_fen INT, "
            "occurred_on DATE)",
            "INSERT INTO projects VALUES (1, 'ZC-513431-2024-001'), (2, 'ZC-513431-2024-002')",
            "INSERT INTO fund_transactions VALUES (1, 'east_fiscal', 'arrived', 10000, '2024-04-01'), "
            "(1, 'east_fiscal', 'disbursed', 10000, '2024-04-01'), (2, 'east_fiscal', 'arrived', 10000, '2024-04-01'), "
            "(2, 'east_fiscal', 'disbursed', 15000, '2024-05-01'), (2, 'social', 'disbursed', 100, '2024-03-01')",
        ):
            conn.exec_driver_sql(sql)
        with pytest.raises(RuntimeError) as info:
            migration._refuse_duplicates(conn)
        assert "户籍县 id 7，就业开始 2024-03-01，身份证号 5134**********1239：2 条（编号 1 … 2）" in str(info.value)
        with pytest.raises(RuntimeError) as info:
            migration._refuse_broken_ledgers(conn)
        message = str(info.value)
        assert (
            "项目 ZC-513431-2024-002，资金来源 east_fiscal：自 2024-05-01 起累计拨付超过累计到位，最多超出 50.00 元"
            in message
        )
        assert "资金来源 social：自 2024-03-01 起" in message and "ZC-513431-2024-001" not in message
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM placements").scalar() == 3
