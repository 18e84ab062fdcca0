"""Projects: lifecycle rules, money rules with their messages, derived figures, pages, exports and scope."""

import csv
import io
from datetime import date

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, parse_wan, parse_yuan, rate, wan, yi, yuan
from registry.kernel.services import ServiceError
from registry.projects.models import FundSource, FundStage, FundTransaction, Project, ProjectStatus
from registry.projects.services import (
    add_transaction,
    allowed_transitions,
    change_status,
    delete_transaction,
    totals_for,
    update_transaction,
)
from tests.conftest import login
from tests.factories import make_asset, make_project, make_transaction

S = ProjectStatus


@pytest.fixture
def w(world_records):
    return world_records


# ---- money ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [("1,234.56", 123456), ("１２３４.5", 123450), ("0.01", 1), ("1250000", 125000000), (" 8 元", 800)],
)
def test_parse_yuan(text, fen):
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.234", "最多保留两位小数"),
        ("abc", "不是有效的金额"),
        ("-5", "不能为负数"),
        ("", "请填写金额"),
        ("1e5", "不是有效"),
    ],
)
def test_bad_amounts(text, message):
    with pytest.raises(MoneyError, match=message):
        parse_yuan(text)


def test_display_units_are_exact():
    assert wan(123456789) == "123.46" and wan(123456789, 4) == "123.4568"
    assert yi(3_310_000_000_00) == "33.10" and yuan(123456789) == "1,234,567.89"
    assert parse_wan("3900") == 3900 * 10000 * 100 and parse_wan("5187.5") == 51875000 * 100
    assert str(rate(2405_4000_00, 3244_0000_00)) == "74.15" and rate(1, 0) is None


# ---- lifecycle -------------------------------------------------------------------------------------------------


def test_only_legal_transitions_are_offered_and_accepted(w):
    project = make_project(w.zhaojue, w.a)
    assert allowed_transitions(project) == [S.APPROVED, S.TERMINATED]
    with pytest.raises(ServiceError, match="不能变更为“已完工”。可选：立项、终止"):
        change_status(project, S.COMPLETED, date(2024, 3, 1), actor=None)
    change_status(project, S.APPROVED, date(2024, 3, 1), actor=None)
    change_status(project, S.IN_PROGRESS, date(2024, 3, 10), actor=None)
    assert project.actual_start == date(2024, 3, 10)
    change_status(project, S.SUSPENDED, date(2024, 6, 1), actor=None)
    assert allowed_transitions(project) == [S.IN_PROGRESS, S.TERMINATED]  # resumes where it stopped
    change_status(project, S.IN_PROGRESS, date(2024, 7, 1), actor=None)
    for step, day in ((S.COMPLETED, 1), (S.ACCEPTED, 2), (S.HANDED_OVER, 3)):
        if step is S.HANDED_OVER:  # its assets registered and handed over first (tests/test_assets.py)
            make_asset(project, completed_on=date(2024, 10, 1), handed_over_on=date(2024, 10, 2))
        change_status(project, step, date(2024, 10, day), actor=None)
    assert project.actual_finish == date(2024, 10, 1) and allowed_transitions(project) == []
    assert [c.to_status for c in project.status_changes][-3:] == [S.COMPLETED, S.ACCEPTED, S.HANDED_OVER]


def test_status_dates_must_move_forward_and_not_into_the_future(w):
    project = make_project(w.zhaojue, w.a, status=S.APPROVED)
    with pytest.raises(ServiceError, match="不能早于上一次状态变更日期 2024-03-15"):
        change_status(project, S.IN_PROGRESS, date(2024, 3, 1), actor=None)
    with pytest.raises(ServiceError, match="不能晚于今天"):
        change_status(project, S.IN_PROGRESS, date(2999, 1, 1), actor=None)


def test_terminated_is_final(w):
    project = make_project(w.zhaojue, w.a, status=S.APPROVED)
    change_status(project, S.TERMINATED, date(2024, 4, 1), actor=None)
    assert allowed_transitions(project) == []


def test_pairing_must_be_valid_at_the_planned_start(w):
    with pytest.raises(ServiceError, match="不是昭觉县的有效结对"):
        make_project(w.zhaojue, w.a, year=2020, planned_start=date(2020, 3, 1))  # 浙川 starts 2021-04-01
    with pytest.raises(ServiceError, match="不是苍溪县的有效结对"):
        make_project(w.cangxi, w.a)  # another county's pairing
    with pytest.raises(ServiceError, match="其中脱贫人口（5）不能大于带动人数（3）"):
        make_project(w.zhaojue, w.a, beneficiaries=3, beneficiaries_lifted=5)
    project = make_project(w.zhaojue, w.a)
    assert project.programme_id == w.zc.id  # always the pairing's programme


# ---- money rules --------------------------------------------------------------------------------------------


def test_disbursement_may_not_exceed_arrival_per_source_with_the_excess_named(w):
    project = make_project(w.zhaojue, w.a, status=S.IN_PROGRESS)
    make_transaction(project, FundStage.ARRIVED, 1_000_000_00, date(2024, 4, 1))
    make_transaction(project, FundStage.DISBURSED, 600_000_00, date(2024, 5, 1))
    with pytest.raises(ServiceError) as info:
        make_transaction(project, FundStage.DISBURSED, 500_000_00, date(2024, 6, 1))
    assert str(info.value) == (
        "东部财政援助资金：截至 2024-06-01 累计拨付 110.0000 万元，超过累计到位 100.0000 万元，"
        "超出 10.0000 万元（100000.00 元）。"
    )
    # Another source's arrival does not cover it.
    make_transaction(project, FundStage.ARRIVED, 500_000_00, date(2024, 6, 1), source=FundSource.SOCIAL)
    with pytest.raises(ServiceError, match="东部财政援助资金"):
        make_transaction(project, FundStage.DISBURSED, 500_000_00, date(2024, 6, 2))
    # Paying out before the money arrived is refused too, even if it arrives later.
    with pytest.raises(ServiceError, match="截至 2024-03-31"):
        make_transaction(project, FundStage.DISBURSED, 1_00, date(2024, 3, 31), source=FundSource.SOCIAL)
    assert (
        db.session.scalar(sa.select(sa.func.count(FundTransaction.id)).where(FundTransaction.project_id == project.id))
        == 3
    )


def test_editing_or_deleting_an_arrival_rechecks_the_ledger(w):
    project = make_project(w.zhaojue, w.a, status=S.IN_PROGRESS)
    arrival = make_transaction(project, FundStage.ARRIVED, 1_000_000_00, date(2024, 4, 1))
    make_transaction(project, FundStage.DISBURSED, 800_000_00, date(2024, 5, 1))
    with pytest.raises(ServiceError, match="超出 30.0000 万元"):
        update_transaction(arrival, {"amount_fen": 500_000_00}, actor=None)
    assert arrival.amount_fen == 1_000_000_00
    with pytest.raises(ServiceError, match="累计拨付 80.0000 万元，超过累计到位 0.0000 万元"):
        delete_transaction(arrival, actor=None)


def test_reserve_projects_take_planned_money_only(w):
    project = make_project(w.zhaojue, w.a)
    with pytest.raises(ServiceError, match="储备项目只能登记计划资金"):
        make_transaction(project, FundStage.ARRIVED)
    make_transaction(project, FundStage.PLANNED)
    with pytest.raises(ServiceError, match="金额须大于 0"):
        add_transaction(project, {"source": FundSource.OTHER, "stage": FundStage.PLANNED, "amount_fen": 0,
                                  "occurred_on": date(2024, 1, 1)}, actor=None)  # fmt: skip


def test_totals_and_usage_are_derived(w):
    project = make_project(w.zhaojue, w.a, status=S.IN_PROGRESS)
    make_transaction(project, FundStage.PLANNED, 3244_0000_00, date(2024, 1, 10))
    make_transaction(project, FundStage.ARRIVED, 3244_0000_00, date(2024, 4, 1))
    make_transaction(project, FundStage.DISBURSED, 2405_4000_00, date(2024, 8, 1))
    totals = totals_for([project.id])
    assert (totals.planned, totals.arrived, totals.disbursed, totals.undisbursed) == (
        3244_0000_00, 3244_0000_00, 2405_4000_00, 838_6000_00,
    )  # fmt: skip
    assert str(rate(totals.disbursed, totals.arrived)) == "74.15"
    assert totals_for([project.id], until=date(2024, 6, 30)).disbursed == 0


# ---- pages, exports, scope ------------------------------------------------------------------------------------


def _form(world, **overrides):
    return {
        "name": "昭觉县蔬菜基地", "code": "", "county_id": str(world.zhaojue), "pairing_id": str(world.a),
        "year": "2024", "category": "industry", "delivery_mode": "cheque", "funding_level": "county",
        "planned_start": "2024-03-01", "implementing_unit": "昭觉县农业农村局", "beneficiaries": "120",
        "beneficiaries_lifted": "80",
    } | overrides  # fmt: skip


def test_create_through_the_page_generates_a_code(app, client, world):
    login(client, "county")
    response = client.post("/projects/new", data=_form(world))
    assert response.status_code in (302, 303), response.get_data(as_text=True)[-2000:]
    with app.app_context():
        project = db.session.scalar(sa.select(Project).where(Project.name == "昭觉县蔬菜基地"))
        assert project.code == "ZC-513431-2024-001" and project.status is S.RESERVE


def test_project_form_errors_are_inline(app, client, world):
    login(client, "county")
    text = client.post("/projects/new", data=_form(world, beneficiaries_lifted="500")).get_data(as_text=True)
    assert "其中脱贫人口（500）不能大于带动人数（120）" in text
    text = client.post("/projects/new", data=_form(world, planned_start="2020-01-01", year="2020")).get_data(
        as_text=True
    )
    assert "不是昭觉县的有效结对" in text
    text = client.post("/projects/new", data=_form(world, year="abc")).get_data(as_text=True)
    assert "请更正" in text


def test_fund_rule_message_on_the_page_and_nothing_written(app, client, world):
    login(client, "county")
    data = {"source": "east_fiscal", "stage": "disbursed", "amount_fen": "2,000,000.00", "occurred_on": "2024-05-01"}
    response = client.post(f"/projects/{world.project_a}/funds", data=data)
    assert response.status_code == 422
    assert "累计拨付 200.0000 万元，超过累计到位 10.0000 万元，超出 190.0000 万元" in response.get_data(as_text=True)
    data |= {"amount_fen": "1000.005"}
    assert "最多保留两位小数" in client.post(f"/projects/{world.project_a}/funds", data=data).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(FundTransaction.id))) == 2


def test_a_refused_fund_entry_says_so_at_the_top_and_the_page_keeps_the_other_forms_versions(app, client, world):
    """Issue 26 item 5: after a refused fund entry the page re-rendered from that post still carries the status
    form's version, so the next status change is not read as a conflict; a summary stands at the top."""
    import re

    login(client, "county")
    data = {"source": "east_fiscal", "stage": "disbursed", "amount_fen": "2,000,000.00", "occurred_on": "2024-05-01"}
    page = client.post(f"/projects/{world.project_a}/funds", data=data).get_data(as_text=True)
    assert page.index("资金记录未登记：请按") < page.index("累计拨付 200.0000 万元")
    status_form = page[page.index(f'action="/projects/{world.project_a}/status"') :]
    version = re.search(r'name="version" type="hidden" value="(\d+)"', status_form)
    assert version is not None, "the status form lost its version"
    change = {"to_status": "completed", "changed_on": "2024-09-30", "version": version.group(1)}
    assert client.post(f"/projects/{world.project_a}/status", data=change).status_code in (302, 303)


def test_status_change_through_the_page(app, client, world):
    def version():
        with app.app_context():
            return db.session.get(Project, world.project_a).version_id

    login(client, "province")
    data = {"to_status": "completed", "changed_on": "2024-09-30", "version": ""}
    # Without the version the page was rendered with, the change is refused as stale.
    assert client.post(f"/projects/{world.project_a}/status", data=data).status_code == 409
    response = client.post(f"/projects/{world.project_a}/status", data=data | {"version": version()})
    assert response.status_code in (302, 303)
    page = client.get(f"/projects/{world.project_a}").get_data(as_text=True)
    assert "已完工" in page and "2024-09-30" in page
    data = {"to_status": "reserve", "changed_on": "2024-10-01", "version": version()}
    client.post(f"/projects/{world.project_a}/status", data=data)
    assert "不能变更为“储备”" in client.get(f"/projects/{world.project_a}").get_data(as_text=True)


def test_list_filters_totals_and_scope(app, client, world):
    login(client, "province")
    text = client.get("/projects/").get_data(as_text=True)
    assert "昭觉县" in text and "苍溪县" in text and "20.00" in text  # 2 × 10 万元 arrived
    text = client.get(f"/projects/?programme={world.yc}").get_data(as_text=True)
    assert "苍溪县" in text and "昭觉县</td>" not in text
    text = client.get("/projects/?year=2024&status=in_progress&category=industry&source=east_fiscal").get_data(
        as_text=True
    )
    assert "昭觉县" in text and "苍溪县</td>" not in text
    text = client.get(f"/projects/?partner={world.shunde}").get_data(as_text=True)
    assert "苍溪县</td>" in text and "昭觉县</td>" not in text
    liaison = app.test_client()
    login(liaison, "liaison")
    text = liaison.get("/projects/").get_data(as_text=True)
    assert "昭觉县" in text and "苍溪县</td>" not in text and "10.00" in text
    assert liaison.get(f"/projects/{world.project_b}").status_code == 404


def _export(client, kind, query=""):
    response = client.get(f"/projects/export.{kind}{query}")
    assert response.status_code == 200
    assert "filename*=UTF-8''%E5%B8%AE%E6%89%B6%E9%A1%B9%E7%9B%AE" in response.headers["Content-Disposition"]
    return response.data


def test_exports_follow_the_filters_and_neutralise_formulas(app, client, world):
    with app.app_context():
        db.session.get(Project, world.project_a).implementing_unit = '=HYPERLINK("http://evil")'
        done = db.session.get(Project, world.done_a).code  # the finished project the world's asset came from
        db.session.commit()
    login(client, "prefecture")
    data = _export(client, "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if r[0] != done]
    assert rows[0][:3] == ["项目编号", "项目名称", "市(州)"] and len(rows) == 2  # the Guangyuan project is out of scope
    assert rows[1][15] == '\'=HYPERLINK("http://evil")' and rows[1][12] == "10.0000"
    workbook = load_workbook(io.BytesIO(_export(client, "xlsx")))
    sheet = workbook.active
    assert sheet["A1"].value == "项目编号" and sheet.max_row == 3  # project A and the finished one
    assert sheet["A2"].value == done  # codes in order: the finished 2022 project first, then project A
    assert sheet["P3"].value == '\'=HYPERLINK("http://evil")' and sheet["P3"].data_type == "s"
    province = app.test_client()
    login(province, "province")
    filtered = _export(province, "csv", f"?county={world.cangxi}").decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(filtered)))) == 3 and "苍溪县" in filtered  # project B, finished B


def test_liaison_edits_only_projects_of_its_pairings(app, client, world):
    login(client, "liaison")
    response = client.post("/projects/new", data=_form(world))
    assert response.status_code in (302, 303)
    response = client.post("/projects/new", data=_form(world, county_id=str(world.cangxi), pairing_id=str(world.b)))
    assert response.status_code == 200 and "不是有效的选择" in response.get_data(as_text=True)


def test_running_totals_always_equal_the_transactions(w):
    """The derived totals the lists use are rebuilt after every add, edit and delete."""
    project = make_project(w.zhaojue, w.a, status=S.IN_PROGRESS)
    db.session.flush()
    version = project.version_id
    arrival = make_transaction(project, FundStage.ARRIVED, 500_000_00, date(2024, 4, 1))
    social = make_transaction(project, FundStage.ARRIVED, 20_000_00, date(2024, 4, 2), source=FundSource.SOCIAL)
    payment = make_transaction(project, FundStage.DISBURSED, 300_000_00, date(2024, 5, 1))
    update_transaction(arrival, {"amount_fen": 600_000_00}, actor=None)
    delete_transaction(social, actor=None)
    update_transaction(payment, {"amount_fen": 350_000_00}, actor=None)
    db.session.flush()
    db.session.refresh(project)
    exact = totals_for([project.id])
    assert (project.planned_fen, project.arrived_fen, project.disbursed_fen) == (
        exact.planned, exact.arrived, exact.disbursed,
    ) == (0, 600_000_00, 350_000_00)  # fmt: skip
    from registry.projects.models import ProjectFunds

    rows = db.session.scalars(sa.select(ProjectFunds).where(ProjectFunds.project_id == project.id)).all()
    assert [(r.source, r.arrived_fen, r.disbursed_fen) for r in rows] == [
        (FundSource.EAST_FISCAL, 600_000_00, 350_000_00)
    ]
    assert project.fund_sources == FundSource.EAST_FISCAL.bit  # the social money was deleted
    assert project.version_id == version  # fund changes do not touch the project's version


def test_project_history_includes_its_fund_records(app, client, world):
    login(client, "county")
    data = {"source": "social", "stage": "arrived", "amount_fen": "12,345.60", "occurred_on": "2024-06-01"}
    assert client.post(f"/projects/{world.project_a}/funds", data=data).status_code in (302, 303)
    page = client.get(f"/projects/{world.project_a}").get_data(as_text=True)
    history = page.split("变更记录")[1]
    assert "登记社会帮扶资金到位 1.2346 万元" in history and "<b>资金来源</b>：社会帮扶资金" in history
    assert "<b>金额</b>：12,345.60 元" in history
