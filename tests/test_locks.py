"""A quarter the province has approved is locked for its county: no stream, form, import, status step, fund
transaction or command-line import may create, change or delete a record dated in it, and later quarters stay
editable. The lock lives in the write gate, so these tests need no approval: they lock the quarter directly."""

import csv
import io
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from registry.agreements.services import create_entry, delete_entry
from registry.auth.models import Role
from registry.exchanges.services import create_exchange, update_exchange
from registry.exchanges.transfer import HEADERS as EXCHANGE_HEADERS
from registry.kernel.extensions import db
from registry.kernel.quarter_locks import QuarterLock
from registry.permissions import QuarterLockedError
from registry.placements.services import create_placement, update_placement
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.problems.transfer import HEADERS as PROBLEM_HEADERS
from registry.projects.models import FundSource, FundStage, ProjectStatus
from registry.projects.services import (
    add_transaction,
    change_status,
    delete_transaction,
    update_project,
    update_transaction,
)
from registry.purchases.models import Purchase
from registry.purchases.services import create_purchase, update_purchase
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from tests.conftest import login
from tests.factories import make_project, make_user
from tests.imports_support import csv_bytes as _csv
from tests.test_write_gate import _placement_data, _read_state

LOCKED = (
    "2024年第2季度的报表已由省协作办审定并锁定，不能新增、修改或删除该季度的记录。如需更正，请在季度报告页面申请解锁。"
)
LOCKED_Q1 = LOCKED.replace("第2季度", "第1季度")


def lock(county_id, *quarters):
    for year, number in quarters:
        db.session.add(QuarterLock(unit_id=county_id, year=year, quarter=number))
    db.session.flush()


@pytest.fixture
def w(world_records):
    world = world_records
    lock(world.zhaojue.id, (2024, 1), (2024, 2))
    return world


# ---- every stream, at its service ------------------------------------------------------------------------------


def _purchase(w, day, **extra):
    from registry.purchases.models import BuyerKind, CountingType, ProductCategory, SellerKind

    return {
        "purchased_on": day, "buyer_name": "宁波某食堂", "buyer_kind": BuyerKind.CANTEEN, "seller_name": "合作社",
        "seller_kind": SellerKind.COOPERATIVE, "seller_county_id": w.zhaojue.id, "product": "苦荞",
        "product_category": ProductCategory.TEA, "amount_fen": 1000, "channel_id": 1,
        "counting_type": CountingType.PURCHASE, "evidence_no": f"L-{day}",
    } | extra  # fmt: skip


def test_purchases_in_a_locked_quarter_are_refused_and_later_ones_accepted(w):
    for actor in (w.county, w.province, w.liaison, None):  # the system too: approved figures stay approved
        with pytest.raises(QuarterLockedError, match=LOCKED) as info:
            create_purchase(_purchase(w, date(2024, 5, 2)), actor=actor)
        assert info.value.field == "purchased_on"
    with pytest.raises(QuarterLockedError, match=LOCKED):
        update_purchase(w.purchase_a, {"amount_fen": 2000}, actor=w.county)
    with pytest.raises(QuarterLockedError, match=LOCKED):  # moving a Q3 record back into the locked quarter
        later = create_purchase(_purchase(w, date(2024, 7, 2)), actor=w.county)
        update_purchase(later, {"purchased_on": date(2024, 6, 30)}, actor=w.county)
    assert later.purchased_on == date(2024, 7, 2)
    # Another county's same quarter is not locked.
    create_purchase(_purchase(w, date(2024, 5, 2), seller_county_id=w.butuo.id, evidence_no="B-1"), actor=w.province)


def test_placements_exchanges_and_entries_in_a_locked_quarter_are_refused(w):
    from registry.placements.models import Destination, Household

    placement = _placement_data(w.zhaojue.id, date(2024, 4, 2)) | {
        "household": Household.LIFTED, "destination_class": Destination.EAST_PARTNER, "start_date": date(2024, 4, 2)
    }  # fmt: skip
    with pytest.raises(QuarterLockedError, match=LOCKED):
        create_placement(placement, actor=w.county)
    with pytest.raises(QuarterLockedError, match=LOCKED_Q1):
        update_placement(w.placement_a, {"employer": "改"}, actor=w.county)
    assert create_placement(placement | {"start_date": date(2024, 7, 1)}, actor=w.county).id

    with pytest.raises(QuarterLockedError, match=LOCKED_Q1):
        update_exchange(w.exchange_a, {"position": "副县长"}, actor=w.county)
    exchange = {"person_name": "李四", "direction": w.exchange_a.direction, "person_type": w.exchange_a.person_type,
                "sending_unit_id": w.yuyao.id, "receiving_unit_id": w.zhaojue.id, "county_id": w.zhaojue.id,
                "arrival_date": date(2024, 6, 1)}  # fmt: skip
    with pytest.raises(QuarterLockedError, match=LOCKED):
        create_exchange(exchange, actor=w.county)
    assert create_exchange(exchange | {"arrival_date": date(2024, 7, 1)}, actor=w.county).id

    entry = {"indicator_id": w.entry_a.indicator_id, "county_id": w.zhaojue.id, "pairing_id": w.a.id,
             "occurred_on": date(2024, 6, 1), "value": 1, "subject": "某企业"}  # fmt: skip
    with pytest.raises(QuarterLockedError, match=LOCKED):
        create_entry(entry, actor=w.county)
    with pytest.raises(QuarterLockedError, match=LOCKED):
        delete_entry(w.entry_a, actor=w.county)
    assert create_entry(entry | {"occurred_on": date(2024, 7, 2)}, actor=w.county).id


def test_an_end_date_may_not_fall_in_a_locked_quarter(w):
    """Ending a placement or a posting inside a locked quarter changes its "in work" / "in post" figures."""
    from registry.placements.models import Destination, Household

    placement = _placement_data(w.zhaojue.id, date(2023, 11, 2)) | {
        "household": Household.LIFTED, "destination_class": Destination.EAST_PARTNER, "start_date": date(2023, 11, 2)
    }  # fmt: skip
    created = create_placement(placement, actor=w.county)  # 2023Q4 is open
    with pytest.raises(QuarterLockedError, match=LOCKED) as info:
        update_placement(created, {"end_date": date(2024, 5, 31)}, actor=w.county)
    assert info.value.field == "end_date"
    assert update_placement(created, {"end_date": date(2024, 8, 31)}, actor=w.county)  # Q3 is open
    exchange = {"person_name": "王五", "direction": w.exchange_a.direction, "person_type": w.exchange_a.person_type,
                "sending_unit_id": w.yuyao.id, "receiving_unit_id": w.zhaojue.id, "county_id": w.zhaojue.id,
                "arrival_date": date(2023, 10, 9)}  # fmt: skip
    with pytest.raises(QuarterLockedError, match=LOCKED_Q1):
        create_exchange(exchange | {"departure_date": date(2024, 2, 1)}, actor=w.county)


def test_the_narrative_of_a_locked_county_quarter_is_refused_and_a_later_one_accepted(w):
    from registry.kernel.periods import Quarter
    from registry.reports.services import save_narrative

    with pytest.raises(QuarterLockedError, match=LOCKED):
        save_narrative(w.zhaojue, Quarter.of(2024, 2), {"highlights": "改写已审定季度的亮点"}, actor=w.county)
    assert save_narrative(w.zhaojue, Quarter.of(2024, 3), {"highlights": "第三季度亮点"}, actor=w.county)


def test_project_status_steps_and_fund_transactions_in_a_locked_quarter_are_refused(w):
    project = w.project_a
    with pytest.raises(QuarterLockedError, match=LOCKED):
        add_transaction(project, {"source": FundSource.EAST_FISCAL, "stage": FundStage.DISBURSED,
                                  "amount_fen": 100, "occurred_on": date(2024, 5, 5)}, actor=w.county)  # fmt: skip
    with pytest.raises(QuarterLockedError, match=LOCKED):
        update_transaction(w.txn_a, {"amount_fen": 5}, actor=w.county)
    with pytest.raises(QuarterLockedError, match=LOCKED):  # moving a transaction out of the locked quarter
        update_transaction(w.txn_a, {"occurred_on": date(2024, 7, 1)}, actor=w.county)
    with pytest.raises(QuarterLockedError, match=LOCKED):
        delete_transaction(w.txn_a, actor=w.county)
    # The project's figures are dated by its steps and transactions: renaming it changes approved reports.
    with pytest.raises(QuarterLockedError):
        update_project(project, {"beneficiaries": 99}, actor=w.county)
    # What no report shows stays editable.
    assert update_project(project, {"responsible_person": "新负责人"}, actor=w.county)
    later = make_project(w.zhaojue, w.a, year=2024, planned_start=date(2024, 7, 1))
    with pytest.raises(QuarterLockedError, match=LOCKED):
        change_status(later, ProjectStatus.APPROVED, date(2024, 6, 30), actor=w.county)
    change_status(later, ProjectStatus.APPROVED, date(2024, 7, 1), actor=w.county)
    assert add_transaction(later, {"source": FundSource.EAST_FISCAL, "stage": FundStage.ARRIVED,
                                   "amount_fen": 100, "occurred_on": date(2024, 7, 2)}, actor=w.county).id  # fmt: skip


def _problem(w, day, **extra):
    from registry.problems.models import Category, Source

    return {"source": Source.INSPECTION, "year": 2024, "found_on": day, "description": "资金拨付滞后",
            "category": Category.FUNDS, "amount_fen": 100_000_00, "unit_id": w.zhaojue.id} | extra  # fmt: skip


def test_the_problems_ledger_answers_to_the_lock_and_work_goes_on_in_later_quarters(w):
    """A problem is dated by the day it was found, a progress entry by its own day (#24 item 1): the locked
    quarter's 问题整改 figures stay as approved, and a problem found then is still worked on and closed later."""
    from registry.problems import services as problems
    from registry.problems.figures import report_section
    from registry.problems.models import State

    problem = w.problem_a  # found 2024-03-20, in the locked first quarter
    problem.steps[0].at = datetime(2024, 3, 20, 2, tzinfo=UTC)
    db.session.flush()
    q2 = report_section(w.zhaojue, date(2024, 4, 1), date(2024, 6, 30))
    assert q2.total == 1 and q2.rectified_fen == 0
    for actor in (w.county, w.province, None):  # the system too
        with pytest.raises(QuarterLockedError, match=LOCKED) as info:
            problems.create_problem(_problem(w, date(2024, 5, 2)), actor=actor)
        assert info.value.field == "found_on"
    with pytest.raises(QuarterLockedError, match=LOCKED_Q1):
        problems.update_problem(problem, {"amount_fen": 1}, actor=w.county)
    later = problems.create_problem(_problem(w, date(2024, 7, 2)), actor=w.county)  # Q3 is open
    with pytest.raises(QuarterLockedError, match=LOCKED):  # moved back into the locked quarter
        problems.update_problem(later, {"found_on": date(2024, 6, 30)}, actor=w.county)
    with pytest.raises(QuarterLockedError, match=LOCKED) as info:  # 整改到位资金 dated in the locked quarter
        problems.add_progress(problem, {"entry_on": date(2024, 5, 15), "text": "追回资金", "rectified_fen": 5_000_00},
                              actor=w.county)  # fmt: skip
    assert info.value.field == "entry_on"
    # Nothing half-written: no entry, no step, no money, no state.
    assert (problem.progress, len(problem.steps), problem.rectified_fen, problem.state) == ([], 1, 0, State.OPEN)
    assert later.found_on == date(2024, 7, 2)
    assert problems.update_problem(problem, {"amount_fen": problem.amount_fen}, actor=w.county) == {}  # no change
    assert report_section(w.zhaojue, date(2024, 4, 1), date(2024, 6, 30)) == q2
    # Work on it goes on in open quarters: progress dated in August, 申请销号, 双销号, links.
    problems.add_progress(problem, {"entry_on": date(2024, 8, 15), "text": "追回资金", "rectified_fen": 5_000_00},
                          actor=w.county)  # fmt: skip
    problems.remove_link(problem, w.link_a.id, actor=w.county)
    problems.request_close(problem, actor=w.county)
    problems.sign_off(problem, actor=make_user(Role.COUNTY, w.zhaojue, username="county_head"))  # not the requester
    problems.sign_off(problem, actor=w.prefecture)
    assert problem.state is State.CLOSED and problem.rectified_fen == 5_000_00
    assert report_section(w.zhaojue, date(2024, 4, 1), date(2024, 6, 30)) == q2


def test_a_step_taken_on_a_day_of_a_locked_quarter_is_refused(w, monkeypatch):
    """Steps are dated by the day they are taken (the report reads the state from them): if today lies in a locked
    quarter, no step is taken."""
    from registry.problems import services as problems

    monkeypatch.setattr(problems, "_today", lambda: date(2024, 6, 1))
    with pytest.raises(QuarterLockedError, match=LOCKED):
        problems.add_progress(w.problem_a, {"entry_on": date(2024, 8, 1), "text": "进展"}, actor=w.county)
    assert w.problem_a.progress == []


# ---- forms, imports and the command line ------------------------------------------------------------------------


@pytest.fixture
def locked_world(world, app):
    with app.app_context():
        lock(world.zhaojue, (2024, 1), (2024, 2))
        db.session.commit()
    return world


def _client(app, username="county"):
    client = app.test_client()
    assert login(client, username).status_code in (302, 303)
    return client


def _state(app):
    with app.app_context():
        return _read_state()


PURCHASE_FORM = {
    "buyer_name": "买方", "buyer_kind": "enterprise", "seller_name": "卖方", "seller_kind": "cooperative",
    "product": "苦荞", "product_category": "grain_oil", "amount_fen": "1000", "channel_id": 1,
    "counting_type": "purchase", "evidence_no": "LOCK-1",
}  # fmt: skip


@pytest.mark.parametrize(
    "url, data",
    [
        ("/placements/new", lambda w, day: _placement_data(w.zhaojue, day)),
        ("/purchases/new", lambda w, day: PURCHASE_FORM | {"purchased_on": day, "seller_county_id": w.zhaojue}),
        ("/exchanges/new", lambda w, day: {
            "person_name": "李四", "direction": "east_to_west", "person_type": "cadre", "sending_unit_id": w.yuyao,
            "receiving_unit_id": w.zhaojue, "county_id": w.zhaojue, "arrival_date": day}),
        ("/problems/new", lambda w, day: {
            "source": "inspection", "year": "2024", "found_on": day, "category": "funds", "unit_id": w.zhaojue,
            "description": "资金拨付滞后", "amount_fen": "10"}),
    ],
)  # fmt: skip
def test_forms_refuse_a_locked_quarter_with_the_message_and_accept_a_later_one(app, locked_world, url, data):
    client = _client(app)
    before = _state(app)
    response = client.post(url, data=data(locked_world, "2024-05-02"))
    assert response.status_code == 200
    assert LOCKED in response.get_data(as_text=True)
    assert _state(app) == before
    response = client.post(url, data=data(locked_world, "2024-08-02"))
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:2000]


def test_project_pages_refuse_a_transaction_a_delete_and_a_status_step_in_a_locked_quarter(app, locked_world):
    client = _client(app)
    project = locked_world.project_a
    before = _state(app)
    response = client.post(f"/projects/{project}/funds", data={
        "source": "east_fiscal", "stage": "disbursed", "amount_fen": "100", "occurred_on": "2024-05-05"})  # fmt: skip
    assert response.status_code == 422 and LOCKED in response.get_data(as_text=True)
    response = client.post(f"/projects/{project}/funds/{locked_world.txn_a}/delete", data={"version": 1})
    assert LOCKED in client.get(response.location).get_data(as_text=True)
    response = client.post(f"/projects/{project}/status", data={
        "to_status": "completed", "changed_on": "2024-06-01", "version": 3})  # fmt: skip
    assert LOCKED in client.get(response.location).get_data(as_text=True)
    assert _state(app) == before


def test_the_problem_page_refuses_progress_dated_in_a_locked_quarter(app, locked_world):
    client = _client(app)
    problem = locked_world.problem_a
    before = _state(app)
    response = client.post(f"/problems/{problem}/progress", data={
        "entry_on": "2024-06-20", "text": "追回资金", "rectified_fen": "50000", "version": 1})  # fmt: skip
    assert LOCKED in client.get(response.location).get_data(as_text=True)
    assert _state(app) == before
    response = client.post(f"/problems/{problem}/progress", data={
        "entry_on": "2024-08-15", "text": "追回资金", "rectified_fen": "50000", "version": 1})  # fmt: skip
    assert "整改进展已报送" in client.get(response.location).get_data(as_text=True)


def test_the_ledger_reimported_with_a_row_of_a_locked_quarter_changed_writes_nothing(app, locked_world):
    """The exported ledger imports back unchanged; the same file with problem A (found in the locked first quarter)
    changed is refused whole, the other rows too."""
    client = _client(app)
    exported = client.get("/problems/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["编号"] for r in rows] == [str(locked_world.problem_a)]
    later = {"问题来源": "巡视", "年度": "2024", "发现日期": "2024-08-02", "问题类别": "资金", "涉及单位代码": "513431",
             "问题描述": "第三季度发现的问题"}  # fmt: skip

    def post(rows):
        data = {"file": (io.BytesIO(_csv(PROBLEM_HEADERS, rows)), "ledger.csv")}
        return client.post("/problems/import", data=data, content_type="multipart/form-data").get_data(as_text=True)

    before = _state(app)
    page = post([later, rows[0] | {"涉及金额(元)": "3860000.00"}])
    assert "2024年第1季度的报表已由省协作办审定并锁定" in page and "导入完成" not in page
    assert _state(app) == before
    page = post([later, rows[0]])
    assert "新增 1 条" in page, page[-3000:]


IMPORTS = [
    ("/placements/import", PLACEMENT_HEADERS, {
        "姓名": "导入", "身份证号": "513431198805051231", "户类型": "脱贫户", "户籍县代码": "513431",
        "就业去向": "县内就近就地", "就业开始": "2024-05-02"}, "就业开始"),
    ("/purchases/import", PURCHASE_HEADERS, {
        "日期": "2024-05-02", "购买方": "买方", "购买方类型": "企业", "销售方": "卖方", "销售方类型": "合作社",
        "销售方所在县代码": "513431", "产品": "苦荞", "产品类别": "粮油", "金额(元)": "10", "渠道": "政采云四川馆",
        "计入方式": "采购", "发票号/合同号": "IMP-1"}, "日期"),
    ("/exchanges/import", EXCHANGE_HEADERS, {
        "姓名": "李四", "方向": "东部选派到四川", "类型": "党政干部", "派出方": "330281", "接收方": "513431",
        "县代码": "513431", "到岗日期": "2024-05-02"}, "到岗日期"),
    ("/problems/import", PROBLEM_HEADERS, {
        "问题来源": "巡视", "年度": "2024", "发现日期": "2024-05-02", "问题类别": "资金", "涉及单位代码": "513431",
        "问题描述": "导入的问题"}, "发现日期"),
]  # fmt: skip


@pytest.mark.parametrize("url, headers, row, date_column", IMPORTS)
def test_imports_refuse_a_row_in_a_locked_quarter_and_write_nothing(app, locked_world, url, headers, row, date_column):
    client = _client(app)
    later = row | {date_column: "2024-08-02"}
    if "发票号/合同号" in later:
        later["发票号/合同号"] = "IMP-2"
    if "身份证号" in later:
        later["身份证号"] = "513431199001011239"
    before = _state(app)
    response = client.post(
        url, data={"file": (io.BytesIO(_csv(headers, [later, row])), "rows.csv")}, content_type="multipart/form-data"
    )
    page = response.get_data(as_text=True)
    assert "2024年第2季度的报表已由省协作办审定并锁定" in page and "导入完成" not in page
    assert _state(app) == before  # all or nothing: the good row is not written either
    response = client.post(
        url, data={"file": (io.BytesIO(_csv(headers, [later])), "rows.csv")}, content_type="multipart/form-data"
    )
    assert "新增 1 条" in response.get_data(as_text=True)


def test_the_command_line_import_refuses_a_locked_quarter(app, locked_world, runner, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(_csv(PLACEMENT_HEADERS, [IMPORTS[0][2]]))
    before = _state(app)
    result = runner.invoke(args=["transfer", "import-placements", str(path), "--user", "county"])
    assert result.exit_code != 0
    assert "2024年第2季度的报表已由省协作办审定并锁定" in result.output
    assert _state(app) == before


def test_the_lock_set_is_loaded_once_per_import(w):
    """An import passes a cache: the locked quarters are read once, not once per row."""
    from registry.permissions import check_locked_date

    cache = {}
    check_locked_date(w.zhaojue.id, date(2024, 7, 1), cache=cache)
    assert (w.zhaojue.id, 2024, 2) in cache["locked_quarters"]
    db.session.execute(sa.delete(QuarterLock))
    with pytest.raises(QuarterLockedError):  # the cached set still answers for the rest of the import
        check_locked_date(w.zhaojue.id, date(2024, 5, 1), cache=cache)
    check_locked_date(w.zhaojue.id, date(2024, 5, 1))  # a fresh question sees the lock gone
    assert db.session.scalar(sa.select(sa.func.count(Purchase.id))) >= 1
