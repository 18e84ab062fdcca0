"""Project assets: the register's rules (shares, income, uniqueness, also as database constraints), the
验收 → register → 移交 path a project must take, state changes with disposal, yearly checks and their reminders,
ledgers whose totals equal their records, the spreadsheet round trip, scope, the legacy path and the report."""

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from registry.assets import queries, services
from registry.assets.models import Asset, AssetClass, AssetSource, AssetState, Condition, OwnerLevel
from registry.assets.services import (
    add_check,
    assets_handed_over,
    change_state,
    confirm_asset,
    create_asset,
    next_number,
    parse_sources,
    update_asset,
)
from registry.assets.transfer import HEADERS, import_assets
from registry.auth.models import User
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import STATUS_GUARDS, ServiceError
from registry.kernel.transfer.reader import read_table
from registry.permissions import OutOfScope
from registry.projects.models import Project, ProjectStatus
from registry.projects.services import change_status
from registry.tasks.models import Notification
from registry.tasks.reminders import notify
from tests.factories import make_asset, make_project, make_transaction

S = ProjectStatus


@pytest.fixture
def w(world_records):
    return world_records


def accepted(w, **kw):
    project = make_project(w.zhaojue, w.a, year=2023, status=S.COMPLETED, **kw)
    change_status(project, S.ACCEPTED, date(2023, 4, 1), actor=None)
    return project


# ---- the register ------------------------------------------------------------------------------------------------


def test_an_asset_takes_place_pairing_and_value_from_its_source_projects(w):
    other = make_project(w.zhaojue, w.a, year=2022, status=S.COMPLETED)
    asset = make_asset(w.done_a, sources=[(w.done_a.code, 50_000_00, 10_000_00), (other.code, 30_000_00, 0)])
    assert (asset.county_id, asset.pairing_id, asset.programme_id) == (w.zhaojue.id, w.a.id, w.zc.id)
    assert (asset.east_fen, asset.other_fen, asset.original_value_fen) == (80_000_00, 10_000_00, 90_000_00)
    assert {s.project_id for s in asset.sources} == {w.done_a.id, other.id}
    assert asset.state_changes[0].to_state is AssetState.NORMAL
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity_type == "assets",
                                                          AuditEvent.entity_id == asset.id))  # fmt: skip
    assert event.action == "create" and event.changes["sources"][0][0] == w.done_a.code


def test_parse_sources_reads_the_forms_and_the_imports_text():
    assert parse_sources("A-1:1200.50:0；B-2：3,000:12.3") == [("A-1", 120050, 0), ("B-2", 300000, 1230)]
    with pytest.raises(ServiceError, match="应写成"):
        parse_sources("A-1:100")
    with pytest.raises(ServiceError, match="“A-1:abc:0”"):
        parse_sources("A-1:abc:0")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sources": [("NOPE", 1, 0)]}, "没有项目编号为“NOPE”"),
        ({"sources": []}, "请填写来源项目"),
        ({"sources": [("X", 0, 0)]}, None),  # replaced below by the world's code
        ({"quantity": Decimal(0)}, "数量须大于 0"),
        ({"owner_name": ""}, "请填写所有权人"),
        ({"caretaker_person": " "}, "请填写管护责任人"),
        ({"handed_over_on": date(2022, 6, 1)}, "移交日期不能早于竣工日期"),
        (
            {"annual_income_fen": 100, "to_households_fen": 80, "to_collective_fen": 30, "income_year": 2023},
            "超过年收益",
        ),
        ({"annual_income_fen": 100}, "请填写收益年度"),
        ({"owner_level": OwnerLevel.HOUSEHOLD, "asset_class": AssetClass.PUBLIC}, "公益性资产不能确权到户"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(w, change, message):
    if change.get("sources") == [("X", 0, 0)]:
        change, message = {"sources": [(w.done_a.code, 0, 0)]}, "原值（各来源金额之和）须大于 0"
    before = db.session.scalar(sa.select(sa.func.count(Asset.id)))
    with pytest.raises(ServiceError, match=message):
        make_asset(w.done_a, **change)
    assert db.session.scalar(sa.select(sa.func.count(Asset.id))) == before


def test_a_project_still_in_progress_forms_no_asset_yet(w):
    with pytest.raises(ServiceError, match="当前为“实施中”：项目完工、验收后才能登记"):
        make_asset(w.project_a)


def test_asset_numbers_are_unique_in_the_service_and_in_the_database(w, monkeypatch):
    taken = w.asset_a.number
    with pytest.raises(ServiceError, match=f"资产编号 {taken} 已被使用"):
        make_asset(w.done_a, number=taken)
    # A race the service's check cannot see: the database's unique key refuses, the request goes on.
    monkeypatch.setattr(services, "_clash", lambda number, asset: None)
    with pytest.raises(ServiceError, match="已被使用"):
        make_asset(w.done_a, number=taken)
    assert db.session.scalar(sa.select(sa.func.count(Asset.id)).where(Asset.number == taken)) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE assets SET east_fen = east_fen + 1",  # shares no longer sum to the original value
        "UPDATE assets SET to_households_fen = annual_income_fen + 1",  # more distributed than earned
        "UPDATE assets SET state = 'disposed'",  # disposed without a disposal date
        "UPDATE assets SET handed_over_on = '2000-01-01'",  # handed over before completion
        "UPDATE asset_sources SET east_fen = -1",
    ],
)
def test_the_database_holds_the_money_and_state_rules(w, sql):
    with pytest.raises(sa.exc.IntegrityError):
        with db.session.begin_nested():
            db.session.execute(sa.text(sql))


# ---- 验收 → register → 移交 ------------------------------------------------------------------------------------


def test_a_project_reaches_handed_over_only_with_its_assets_registered_confirmed_and_handed_over(w):
    assert assets_handed_over in STATUS_GUARDS["project"]
    project = accepted(w)
    with pytest.raises(ServiceError, match="尚未登记形成的资产") as refused:
        change_status(project, S.HANDED_OVER, date(2023, 5, 1), actor=None)
    assert refused.value.field == "to_status"
    asset = make_asset(project, completed_on=date(2023, 3, 25), handed_over_on=None)
    with pytest.raises(ServiceError, match=f"资产 {asset.number} 尚未移交"):
        change_status(project, S.HANDED_OVER, date(2023, 5, 1), actor=None)
    asset.needs_review = True
    update_asset(asset, {"handed_over_on": date(2023, 4, 20)}, actor=None)
    with pytest.raises(ServiceError, match="待核实"):
        change_status(project, S.HANDED_OVER, date(2023, 5, 1), actor=None)
    confirm_asset(asset, actor=None)
    change_status(project, S.HANDED_OVER, date(2023, 5, 1), actor=None)
    assert project.status is S.HANDED_OVER


def _accepted_in_world(app, world) -> tuple[int, int]:
    """A committed project of Zhaojue (pairing A) at 已验收 without assets: (id, version)."""
    with app.app_context():
        done = db.session.get(Project, world.done_a)
        project = make_project(done.county, done.pairing, year=2023, status=S.COMPLETED)
        change_status(project, S.ACCEPTED, date(2023, 4, 1), actor=None)
        db.session.commit()
        return project.id, project.version_id


def test_the_status_form_is_refused_the_same_way(app, world, as_user):
    project_id, version = _accepted_in_world(app, world)
    client = as_user("county")
    page = client.get(f"/projects/{project_id}").get_data(as_text=True)
    assert "尚未登记形成的资产" in page and f"/assets/new?project={project_id}" in page
    data = {"to_status": "handed_over", "changed_on": "2023-05-01", "note": "", "version": version}
    response = client.post(f"/projects/{project_id}/status", data=data, follow_redirects=True)
    assert "尚未登记形成的资产" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Project, project_id).status is S.ACCEPTED


def test_the_register_form_is_prefilled_from_the_project(app, world, as_user):
    client = as_user("county")
    with app.app_context():
        code = db.session.get(Project, world.done_a).code
    page = client.get(f"/assets/new?project={world.done_a}").get_data(as_text=True)
    with app.app_context():
        suggested = next_number(code)  # the project's first free asset number
    assert f'value="{suggested}"' in page and f"{code}:0.00:0.00" in page and "已按项目" in page
    # A project outside the user's scope is not there to prefill from.
    assert client.get(f"/assets/new?project={world.done_b}").status_code == 404
    data = {
        "number": f"{code}-01", "name": "光伏电站二期", "sources": f"{code}:120000:30000", "asset_class": "operating",
        "quantity": "2", "quantity_unit": "座", "completed_on": "2022-06-30", "handed_over_on": "2022-07-10",
        "owner_level": "village", "owner_name": "某村股份经济合作社", "caretaker": "某村村委会",
        "caretaker_person": "沙马拉则", "operation_mode": "lease", "income_year": "2023",
        "annual_income_fen": "9000", "to_households_fen": "6000", "to_collective_fen": "3000",
    }  # fmt: skip
    response = client.post("/assets/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    with app.app_context():
        asset = db.session.scalar(sa.select(Asset).where(Asset.number == f"{code}-01"))
        assert asset.original_value_fen == 150_000_00 and asset.to_households_fen == 6000_00
    bad = client.post("/assets/new", data=data | {"number": f"{code}-02", "to_collective_fen": "5000"})
    assert bad.status_code == 200 and "超过年收益" in bad.get_data(as_text=True)


# ---- state changes and checks ------------------------------------------------------------------------------------


def test_state_changes_are_dated_in_order_and_disposal_is_recorded_and_final(w):
    asset = w.asset_a
    with pytest.raises(ServiceError, match="请说明"):
        change_state(asset, {"to_state": AssetState.IDLE, "changed_on": date(2024, 1, 1)}, actor=None)
    change_state(asset, {"to_state": AssetState.IDLE, "changed_on": date(2024, 1, 1), "note": "退租"}, actor=None)
    with pytest.raises(ServiceError, match="不能早于上一次状态变更日期 2024-01-01"):
        change_state(asset, {"to_state": AssetState.NORMAL, "changed_on": date(2023, 12, 1), "note": "x"}, actor=None)
    with pytest.raises(ServiceError, match="处置方式"):
        change_state(asset, {"to_state": AssetState.DISPOSED, "changed_on": date(2024, 3, 1), "note": "报废"},
                     actor=None)  # fmt: skip
    change_state(
        asset, {"to_state": AssetState.DISPOSED, "changed_on": date(2024, 3, 1), "note": "报废",
                "disposal_method": "拍卖", "disposal_decision": "村民代表大会决议", "disposal_proceeds_fen": 5000_00},
        actor=None,
    )  # fmt: skip
    assert (asset.state, asset.disposed_on, asset.disposal_proceeds_fen) == (AssetState.DISPOSED, date(2024, 3, 1),
                                                                             5000_00)  # fmt: skip
    assert [c.to_state for c in asset.state_changes] == [AssetState.NORMAL, AssetState.IDLE, AssetState.DISPOSED]
    with pytest.raises(ServiceError, match="已处置，不能再变更"):
        change_state(asset, {"to_state": AssetState.NORMAL, "changed_on": date(2024, 4, 1), "note": "x"}, actor=None)
    with pytest.raises(ServiceError, match="不再进行管护检查"):
        add_check(asset, {"checked_on": date(2024, 4, 1), "condition": Condition.GOOD}, actor=None)
    db.session.flush()  # the disposal_dated CHECK holds


def test_overdue_checks_are_listed_and_reminded_to_the_county_office(app, world):
    today = date.today()
    with app.app_context():
        asset = db.session.get(Asset, world.asset_a)  # handed over in 2022, never checked: overdue
        assert asset.id in set(db.session.scalars(queries.overdue(sa.select(Asset.id), today)))
        assert notify(today) >= 1
        county_user = db.session.scalar(sa.select(User).where(User.username == "county"))
        titles = db.session.scalars(sa.select(Notification.title).where(Notification.user_id == county_user.id)).all()
        assert any(asset.number in t and "管护检查已逾期" in t for t in titles)
        add_check(asset, {"checked_on": today, "condition": Condition.FAIR, "problems": "围栏破损"}, actor=None)
        db.session.commit()
        assert asset.id not in set(db.session.scalars(queries.overdue(sa.select(Asset.id), today)))
        assert asset.id in set(db.session.scalars(queries.overdue(sa.select(Asset.id), today + timedelta(days=400))))


def test_accepted_projects_without_assets_are_reminded(app, world):
    project_id, _ = _accepted_in_world(app, world)
    with app.app_context():
        notify(date.today())
        code = db.session.get(Project, project_id).code
        titles = db.session.scalars(sa.select(Notification.title)).all()
        assert any(code in t and "已验收，请登记" in t for t in titles)


# ---- ledgers ----------------------------------------------------------------------------------------------------


def test_ledger_totals_equal_their_records(app, world, as_user):
    with app.app_context():
        done = db.session.get(Project, world.done_a)
        make_asset(done, asset_class=AssetClass.PUBLIC, owner_level=OwnerLevel.COUNTY, sources=[(done.code, 123, 45)])
        make_asset(done, asset_class=AssetClass.HOUSEHOLD, owner_level=OwnerLevel.HOUSEHOLD,
                   sources=[(done.code, 10_000_00, 0)])  # fmt: skip
        db.session.commit()
        admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
        stmt = queries.filtered({}, admin)
        totals = queries.totals(stmt)
        records = db.session.scalars(sa.select(Asset)).all()
        assert totals.total.count == len(records) == 4
        assert totals.total.value == sum(a.original_value_fen for a in records)
        assert totals.total.east == sum(a.east_fen for a in records)
        for c in AssetClass:
            assert totals.by_class.get(c).value == sum(a.original_value_fen for a in records if a.asset_class is c)
        for level in OwnerLevel:
            cell_sum = sum(totals.cell(c, level).value for c in AssetClass)
            assert cell_sum == sum(a.original_value_fen for a in records if a.owner_level is level)
        groups = queries.ledger(stmt)
        assert sum(g.subtotal.value for g in groups) == totals.total.value
        assert sum(cell.count for g in groups for _, _, cell in g.villages) == 4
    page = as_user("county").get("/assets/").get_data(as_text=True)
    assert "项目资产总账" in page and "确权到村集体" in page
    ledger = as_user("county").get("/assets/ledger").get_data(as_text=True)
    assert "合计 3 项" in ledger  # the county office sees its three, not Cangxi's


def test_the_repairing_view_shows_guangdong_assets_with_the_county_s_current_pairing(app, world, as_user):
    page = as_user("admin").get("/assets/repaired").get_data(as_text=True)
    assert "粤川东西部扶贫协作" in page and "顺德区" in page and "该县现无县级结对" in page
    with app.app_context():
        number = db.session.get(Asset, world.asset_b).number
    assert number in page
    assert number not in as_user("county").get("/assets/repaired").get_data(as_text=True)


# ---- scope -------------------------------------------------------------------------------------------------------


def test_scope_hides_other_offices_assets_and_refuses_writes_to_them(app, world, as_user):
    county = as_user("county")
    assert county.get(f"/assets/{world.asset_b}").status_code == 404
    assert county.post(f"/assets/{world.asset_b}/checks", data={"checked_on": "2024-01-01",
                                                                 "condition": "good"}).status_code == 404  # fmt: skip
    listing = county.get("/assets/").get_data(as_text=True)
    with app.app_context():
        a, b = (db.session.get(Asset, i).number for i in (world.asset_a, world.asset_b))
        liaison = db.session.scalar(sa.select(User).where(User.username == "liaison"))
        done_b = db.session.get(Project, world.done_b)
        # A Zhejiang liaison may not register an asset of a Guangdong pairing's project.
        with pytest.raises(OutOfScope):
            create_asset({"number": "X-1", "name": "n", "asset_class": AssetClass.PUBLIC, "completed_on":
                          date(2018, 6, 1), "owner_level": OwnerLevel.VILLAGE, "owner_name": "o", "caretaker": "c",
                          "caretaker_person": "p", "operation_mode": "self",
                          "sources": [(done_b.code, 100, 0)]}, actor=liaison)  # fmt: skip
        db.session.rollback()
    assert a in listing and b not in listing
    exported = county.get("/assets/export.csv").data.decode("utf-8-sig")
    assert a in exported and b not in exported


# ---- round trip --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_an_unchanged_export_imports_as_unchanged(app, world, as_user, kind):
    client = as_user("county")
    with app.app_context():
        asset = db.session.get(Asset, world.asset_a)
        update_asset(asset, {"income_year": 2023, "annual_income_fen": 1234_56, "to_households_fen": 1000_00,
                             "to_collective_fen": 200_00, "note": "=SUM(A1)"}, actor=None)  # fmt: skip
        add_check(asset, {"checked_on": date(2024, 5, 1), "condition": Condition.GOOD}, actor=None)
        db.session.commit()
        version = asset.version_id
        events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    exported = client.get(f"/assets/export.{kind}").data
    headers, rows = read_table(exported, f"x.{kind}")
    assert headers[: len(HEADERS)] == HEADERS and len(list(rows)) == 1
    response = client.post("/assets/import", data={"file": (io.BytesIO(exported), f"unchanged.{kind}")},
                           content_type="multipart/form-data")  # fmt: skip
    text = response.get_data(as_text=True)
    assert "已导入 1 行" in text and "新增 0 条，更新 0 条" in text, text[-1500:]
    with app.app_context():
        assert db.session.get(Asset, world.asset_a).version_id == version
        new = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.id > events)).all()
        assert [e.action for e in new] == ["import"]


def test_an_import_creates_and_updates_through_the_services_all_or_nothing(app, world):
    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
        done = db.session.get(Project, world.done_a)
        base = dict.fromkeys(HEADERS, "")
        good = base | {"资产编号": "NEW-1", "资产名称": "冷链库", "资产类别": "经营性", "数量": "1", "计量单位": "座",
                       "来源项目": f"{done.code}:500000:100000", "竣工日期": "2022-08-01", "移交日期": "2022/9/1",
                       "确权层级": "村集体", "所有权人": "某村", "管护主体": "某村委会", "管护责任人": "王建华",
                       "运营方式": "租赁", "原值(元)": "600000"}  # fmt: skip
        bad = good | {"资产编号": "NEW-2", "原值(元)": "1"}
        result = import_assets(HEADERS, [(2, [good[h] for h in HEADERS]), (3, [bad[h] for h in HEADERS])],
                               user=admin)  # fmt: skip
        assert [(e.row, e.column) for e in result.errors] == [(3, "原值(元)")] and result.created == 0
        assert db.session.scalar(sa.select(Asset.id).where(Asset.number == "NEW-1")) is None
        result = import_assets(HEADERS, [(2, [good[h] for h in HEADERS])], user=admin)
        assert not result.errors and result.created == 1
        asset = db.session.scalar(sa.select(Asset).where(Asset.number == "NEW-1"))
        assert asset.original_value_fen == 600000_00 and asset.handed_over_on == date(2022, 9, 1)
        change = base | {"编号": str(asset.id), "管护责任人": "李明", "状态": "闲置"}
        result = import_assets(HEADERS, [(2, [change[h] for h in HEADERS])], user=admin)
        assert [e.column for e in result.errors] == ["状态"]
        change["状态"] = ""
        result = import_assets(HEADERS, [(2, [change[h] for h in HEADERS])], user=admin)
        assert result.updated == 1 and asset.caretaker_person == "李明"


# ---- the legacy path ---------------------------------------------------------------------------------------------


def test_legacy_projects_get_draft_assets_by_a_reviewed_command(app, world, runner):
    with app.app_context():
        done = db.session.get(Project, world.done_b)
        # A legacy 粤川 project: at 资产已移交 without assets (as the demo's and old imports' are).
        db.session.execute(sa.delete(Asset).where(Asset.id == world.asset_b))
        db.session.execute(sa.update(Project).where(Project.id == done.id).values(status="handed_over"))
        make_transaction(done, on=date(2018, 4, 1))
        db.session.commit()
        code = done.code
    dry = runner.invoke(args=["assets", "from-projects"])
    assert dry.exit_code == 0 and code in dry.output and "加 --apply" in dry.output, dry.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Asset.id))) == 1  # a dry run writes nothing
    applied = runner.invoke(args=["assets", "from-projects", "--apply"])
    assert applied.exit_code == 0 and "已创建待核实资产 1 项" in applied.output, applied.output
    with app.app_context():
        asset = db.session.scalar(sa.select(Asset).join(AssetSource).where(AssetSource.project_id == world.done_b))
        assert asset.needs_review and asset.original_value_fen == 100_000_00 and "待县级协作办核实" in asset.note
        assert asset.programme.name == "粤川东西部扶贫协作"
        summaries = db.session.scalars(sa.select(AuditEvent.summary).where(AuditEvent.entity_type == "assets"))
        assert any("补录资产 1 项" in s for s in summaries)
    again = runner.invoke(args=["assets", "from-projects"])
    assert code not in again.output


# ---- the report --------------------------------------------------------------------------------------------------


def test_the_quarterly_report_has_an_asset_section(app, world, as_user):
    from registry.assets.figures import report_section
    from registry.kernel.periods import Quarter

    with app.app_context():
        asset = db.session.get(Asset, world.asset_a)
        # The world registers it today; the report counts what was registered by its cut-off.
        asset.created_at = datetime(2022, 7, 1, tzinfo=UTC)
        db.session.commit()
        quarter = Quarter.parse("2022Q4")
        section = report_section([world.zhaojue], None, quarter, quarter.end)
        assert section.formed_total.count == 1 and section.formed_total.value == asset.original_value_fen
        assert [r.count for r in section.formed_by_level if r.label == "村集体"] == [1]
        assert section.register_total.count == 1 and section.overdue_checks == 0
        later = Quarter.parse("2024Q2")
        section = report_section([world.zhaojue], None, later, later.end)
        assert section.formed_total.count == 0 and section.overdue_checks == 1  # no check since July 2022
    page = as_user("county").get(f"/reports/{world.zhaojue}/2024Q2").get_data(as_text=True)
    assert "项目资产管护" in page and "年度管护检查逾期" in page


def test_a_locked_quarter_takes_no_asset_check_or_state_change(w):
    from registry.kernel.quarter_locks import QuarterLock

    db.session.add(QuarterLock(unit_id=w.zhaojue.id, year=2024, quarter=2))
    db.session.flush()
    with pytest.raises(ServiceError, match="2024"):
        add_check(w.asset_a, {"checked_on": date(2024, 5, 1), "condition": Condition.GOOD}, actor=None)
    with pytest.raises(ServiceError, match="2024"):
        change_state(w.asset_a, {"to_state": AssetState.IDLE, "changed_on": date(2024, 5, 1), "note": "x"}, actor=None)
    add_check(w.asset_a, {"checked_on": date(2024, 7, 1), "condition": Condition.GOOD}, actor=None)
