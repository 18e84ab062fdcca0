"""The one write gate: nobody creates, changes, imports or moves a record outside their scope.

The world has, besides ``World``'s pairings, Guangdong's earlier pairing of Zhaojue (顺德区 ↔ 昭觉县, 2016–2020),
so a Zhaojue record dated 2019 belongs to Guangdong and one dated 2024 to Zhejiang; and a Guangdong liaison.
``WRITES`` is the write dimension of the authorization matrix: every POST endpoint that creates or changes a
scoped record is listed with a way to aim it outside the writer's scope, and an endpoint missing from it (or
from ``NOT_RECORD_WRITES``) fails ``test_every_write_endpoint_is_in_the_write_matrix``.
"""

import io
from dataclasses import dataclass, field
from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.transfer import ENTRY_HEADERS
from registry.assets.models import Asset, AssetCheck
from registry.assets.transfer import HEADERS as ASSET_HEADERS
from registry.auth.models import Role
from registry.disclosure.models import Complaint, Notice, Posting
from registry.exchanges.models import Exchange
from registry.exchanges.transfer import HEADERS as EXCHANGE_HEADERS
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.models import IndicatorEntry, Project
from registry.permissions import OutOfScope
from registry.placements.models import Placement
from registry.placements.services import create_placement, update_placement
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.problems.models import Problem, ProblemStep, ProgressEntry
from registry.problems.transfer import HEADERS as PROBLEM_HEADERS
from registry.projects.transfer import FUND_HEADERS
from registry.projects.transfer import HEADERS as PROJECT_HEADERS
from registry.purchases.models import Purchase
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from tests.conftest import Snapshot, login, record_ids
from tests.factories import ID_A, World, make_pairing, make_user
from tests.imports_support import csv_bytes

ID_C = "513431198805051231"


def _extend(world):
    world.gd_zhaojue = make_pairing(
        world.shunde, world.zhaojue, world.yc, valid_from=date(2016, 8, 1), valid_to=date(2020, 12, 31)
    )
    world.gd_liaison = make_user(Role.LIAISON, world.guangdong, username="gd_liaison")
    return world


@pytest.fixture
def w(ctx):
    world = _extend(World())
    db.session.flush()
    return world


def _build_gworld():
    world = _extend(World())
    ids = record_ids(world)
    # Assets name their source projects by code (the form's and the import's 来源项目).
    ids.done_a_code, ids.done_b_code = world.done_a.code, world.done_b.code
    return ids


@pytest.fixture(scope="session")
def gworld_snapshot(app):
    return Snapshot(app, "gworld", _build_gworld)


@pytest.fixture
def gworld(gworld_snapshot):
    """The extended world, committed; returns the ids (for requests)."""
    return gworld_snapshot.restore()


def _client(app, username):
    client = app.test_client()
    assert login(client, username).status_code in (302, 303)
    return client


def _state(app):
    """Everything a refused write must leave as it was: row counts, audit events, and the records' contents."""
    with app.app_context():
        return _read_state()


def _read_state():
    models = (Placement, Purchase, Exchange, Project, IndicatorEntry, Notice, Posting, Complaint, Asset, AssetCheck,
              Problem, ProgressEntry, ProblemStep)  # fmt: skip
    counts = {m.__name__: db.session.scalar(sa.select(sa.func.count(m.id))) for m in models}
    events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    rows = {
        m.__name__: sorted((r.id, r.version_id, r.pairing_id) for r in db.session.scalars(sa.select(m)))
        for m in (Placement, Purchase, Exchange, Project, Asset, Problem)
    }
    notices = db.session.scalars(sa.select(Notice))
    rows["Notice"] = sorted((n.id, n.version_id, n.county_id, n.state.value) for n in notices)
    db.session.remove()
    return counts, events, rows


def _placement_data(county_id, start, **extra):
    return {
        "person_name": "阿苦拉且", "id_number": ID_C, "household": "lifted", "origin_county_id": county_id,
        "destination_class": "east_partner", "start_date": str(start), "employer": "某厂", **extra,
    }  # fmt: skip


# ---- the cases of the report, at the service and on the pages ------------------------------------------------


def test_a_liaison_cannot_create_on_the_other_provinces_pairing_and_is_told_which(w):
    data = {
        "person_name": "阿苦拉且", "id_number": ID_C, "household": "lifted", "origin_county_id": w.zhaojue.id,
        "destination_class": "east_partner", "start_date": date(2019, 5, 1),
    }  # fmt: skip
    from registry.placements.models import Destination, Household

    data |= {"household": Household.LIFTED, "destination_class": Destination.EAST_PARTNER}
    with pytest.raises(OutOfScope) as info:
        create_placement(data, actor=w.liaison)
    assert "按户籍县和就业开始日期归入 佛山市顺德区 ↔ 昭觉县 的结对，不在您的管辖范围" in str(info.value)
    assert info.value.field == "start_date"
    # The same placement in 2024 is Zhejiang's own: allowed.
    assert create_placement(data | {"start_date": date(2024, 5, 1)}, actor=w.liaison).pairing_id == w.a.id


def test_a_liaison_cannot_move_its_own_record_into_the_other_province_by_its_date(w):
    placement = w.placement_a
    with pytest.raises(OutOfScope):
        update_placement(placement, {"start_date": date(2019, 3, 1)}, actor=w.liaison)
    db.session.refresh(placement)
    assert placement.start_date == date(2024, 3, 1) and placement.pairing_id == w.a.id


def test_a_county_office_cannot_write_into_another_county(w):
    from registry.placements.models import Destination, Household

    data = {"person_name": "王五", "id_number": "510824199203041239", "household": Household.LIFTED,
            "origin_county_id": w.cangxi.id, "destination_class": Destination.IN_COUNTY,
            "start_date": date(2024, 5, 1)}  # fmt: skip
    with pytest.raises(OutOfScope, match="苍溪县不在您的管辖范围内"):
        create_placement(data, actor=w.county)
    with pytest.raises(OutOfScope):
        update_placement(w.placement_a, {"origin_county_id": w.cangxi.id}, actor=w.county)


def test_readers_write_nothing_even_through_a_service(w):
    from registry.purchases.services import update_purchase

    with pytest.raises(OutOfScope, match="不能登记或修改"):
        update_purchase(w.purchase_a, {"buyer_name": "改"}, actor=w.reader)


def test_guangdong_liaisons_import_cannot_overwrite_a_zhaojue_placement_it_cannot_see(app, gworld):
    row = {"姓名": "吉克阿呷", "身份证号": ID_A, "户类型": "脱贫户", "户籍县代码": "513431", "就业去向": "县内就近就地",
           "就业单位": "顺德某厂", "就业开始": "2024-03-01"}  # the natural key of Zhejiang's placement_a  # fmt: skip
    client = _client(app, "gd_liaison")
    before = _state(app)
    response = client.post(
        "/placements/import", data={"file": (io.BytesIO(csv_bytes(PLACEMENT_HEADERS, [row])), "p.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    page = response.get_data(as_text=True)
    assert "已被登记，且不在您的管辖范围内" in page and "宁波某服饰有限公司" not in page
    assert _state(app) == before
    with app.app_context():
        placement = db.session.get(Placement, gworld.placement_a)
        assert placement.employer == "宁波某服饰有限公司"


@pytest.mark.parametrize(
    "endpoint, data",
    [
        ("/placements/new", lambda w: _placement_data(w.zhaojue, date(2019, 5, 1))),
        ("/purchases/new", lambda w: {
            "purchased_on": "2019-05-01", "buyer_name": "宁波某公司", "buyer_kind": "enterprise",
            "seller_name": "昭觉某合作社", "seller_kind": "cooperative", "seller_county_id": w.zhaojue,
            "product": "苦荞", "product_category": "grain_oil", "amount_fen": "1000", "channel_id": 1,
            "counting_type": "purchase", "evidence_no": "NEW-2019-1"}),
        ("/exchanges/new", lambda w: {
            "person_name": "李四", "direction": "east_to_west", "person_type": "cadre", "sending_unit": "顺德区政府",
            "sending_unit_id": w.shunde, "receiving_unit": "昭觉县政府", "receiving_unit_id": w.zhaojue,
            "county_id": w.zhaojue, "arrival_date": "2019-03-01"}),
    ],
)  # fmt: skip
def test_zhejiang_liaison_cannot_create_records_on_guangdongs_2019_pairing(app, gworld, endpoint, data):
    payload = data(gworld)
    if "origin_county_id" in payload:
        payload["origin_county_id"] = gworld.zhaojue
    client = _client(app, "liaison")
    before = _state(app)
    response = client.post(endpoint, data=payload)
    assert response.status_code == 200, response.status_code  # the form again, with the refusal
    assert "顺德区 ↔ 昭觉县 的结对，不在您的管辖范围" in response.get_data(as_text=True)
    assert _state(app) == before


@pytest.mark.parametrize(
    "endpoint, record, field",
    [
        ("/placements/{}/edit", "placement_a", "start_date"),
        ("/purchases/{}/edit", "purchase_a", "purchased_on"),
        ("/exchanges/{}/edit", "exchange_a", "arrival_date"),
    ],
)
def test_zhejiang_liaison_cannot_move_its_records_to_guangdong_by_editing_dates(app, gworld, endpoint, record, field):
    client = _client(app, "liaison")
    url = endpoint.format(getattr(gworld, record))
    form = _form_values(client.get(url).get_data(as_text=True))
    form[field] = "2019-06-01"
    if field == "arrival_date":
        form["departure_date"] = ""
    before = _state(app)
    response = client.post(url, data=form)
    assert response.status_code == 200
    assert "不在您的管辖范围" in response.get_data(as_text=True)
    assert _state(app) == before


def test_evidence_clash_reveals_nothing_of_a_purchase_out_of_scope(app, gworld):
    data = {
        "purchased_on": "2024-06-01", "buyer_name": "宁波某公司", "buyer_kind": "enterprise",
        "seller_name": "昭觉某合作社", "seller_kind": "cooperative", "seller_county_id": gworld.zhaojue,
        "product": "苦荞", "product_category": "grain_oil", "amount_fen": "1000", "channel_id": 1,
        "counting_type": "purchase", "evidence_no": "FP-2019-0001",  # purchase_b: Cangxi, Guangdong, 2019
    }  # fmt: skip
    page = _client(app, "liaison").post("/purchases/new", data=data).get_data(as_text=True)
    assert "已被登记，同一凭证不能重复计入" in page
    assert "2019-05-01" not in page and "万元" not in page.split("已被登记")[0][-200:]
    # Staff who may see that purchase are told where it was counted.
    page = _client(app, "admin").post("/purchases/new", data=data).get_data(as_text=True)
    assert "已于 2019-05-01" in page


def test_unknown_side_on_the_units_list_is_not_an_error(app, gworld):
    assert _client(app, "admin").get("/units/?side=x").status_code == 200


def test_an_imported_change_is_in_the_records_history(app, gworld):
    client = _client(app, "liaison")
    row = {"编号": str(gworld.placement_a), "就业单位": "宁波新厂"}
    response = client.post(
        "/placements/import", data={"file": (io.BytesIO(csv_bytes(PLACEMENT_HEADERS, [row])), "p.csv")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert "更新 1 条" in response.get_data(as_text=True)  # the import runs as its page streams
    page = client.get(f"/placements/{gworld.placement_a}").get_data(as_text=True)
    assert "经导入修改" in page and "宁波新厂" in page
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))
        assert event.changes["updated"] == [gworld.placement_a]
        change = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.entity_type == "placements", AuditEvent.action == "update")
        )
        assert change.batch_id == event.id and change.changes["employer"] == ["宁波某服饰有限公司", "宁波新厂"]


# ---- the write matrix -----------------------------------------------------------------------------------------

#: POST endpoints that write no scoped record (their own rules are tested in the authorization matrix and the
#: tests of their module): accounts, units and pairings, agreements and targets, channels, narratives, reveals.
NOT_RECORD_WRITES = {
    "auth.login", "auth.logout", "auth.change_password", "auth.create_user", "auth.edit_user", "auth.reset_password",
    "auth.end_user_sessions", "auth.unlock_login", "counties.create", "counties.edit", "counties.set_category",
    "pairings.create", "pairings.edit", "pairings.end", "pairings.create_programme", "pairings.edit_programme",
    "agreements.create", "agreements.edit", "agreements.targets", "agreements.create_indicator",
    "agreements.edit_indicator", "purchases.channels", "reports.narrative", "placements.reveal",
    # Targets are the province's (agreements.manage), like agreements.targets.
    "agreements.import_targets",
    # Closing a quarter writes report states, steps and versions, no scoped record (tests/test_closing.py).
    "closing.submit", "closing.review", "closing.approve", "closing.confirm", "closing.answer",
    "closing.request_unlock", "closing.decide_unlock", "closing.verify",
    # Background jobs, notifications: they write no record (an import job writes through the import's services).
    "tasks.report_batch", "tasks.mark_read", "tasks.set_email",
    # A data check writes proposals for the office's own counties only (tests/test_findings.py).
    "findings.run",
}  # fmt: skip


@dataclass
class Write:
    """One write endpoint aimed outside the writer's scope."""

    url: str
    #: world -> form data (or rows for an import) placing the record outside ``user``'s scope
    data: object
    users: tuple = ("county", "prefecture", "liaison", "gd_liaison")
    headers: list = field(default_factory=list)


def _own(name):
    """Each user's own record to move (the Guangdong liaison has none in Zhaojue: it gets the Zhejiang one's 404)."""
    return name


def _project_form(w, user):
    county, pairing, start = (w.cangxi, w.b, "2019-05-01") if user in ("county", "prefecture") else (
        (w.zhaojue, w.gd_zhaojue, "2019-05-01") if user == "liaison" else (w.zhaojue, w.a, "2024-05-01"))  # fmt: skip
    return {"code": "XM-1", "name": "越界项目", "county_id": county, "pairing_id": pairing, "year": start[:4],
            "category": "industry", "delivery_mode": "turnkey", "funding_level": "county",
            "planned_start": start}  # fmt: skip


def _target(w, user):
    """A (county id, date) outside ``user``'s write scope."""
    if user in ("county", "prefecture"):
        return w.cangxi, "2024-05-01"
    if user == "liaison":
        return w.zhaojue, "2019-05-01"  # Guangdong's pairing
    return w.zhaojue, "2024-05-01"  # Zhejiang's pairing, for the Guangdong liaison


def _problem_form(w, user):
    return {"source": "national", "year": "2024", "found_on": "2024-05-01", "category": "funds",
            "unit_id": _target(w, user)[0], "description": "越界问题", "amount_fen": "10"}  # fmt: skip


def _asset_source(w, user) -> str:
    """A finished project outside ``user``'s scope, as 来源项目: Cangxi's (Guangdong) for Zhaojue's offices and the
    Zhejiang liaison, Zhaojue's (Zhejiang) for the Guangdong liaison."""
    return f"{w.done_a_code if user == 'gd_liaison' else w.done_b_code}:1000:0"


def _asset_form(w, user, **extra):
    return {"number": "Z-1", "name": "越界资产", "sources": _asset_source(w, user), "asset_class": "public",
            "quantity": "1", "completed_on": "2022-06-30", "owner_level": "village", "owner_name": "某村",
            "caretaker": "某村委会", "caretaker_person": "某人", "operation_mode": "self", **extra}  # fmt: skip


def _code(w, county_id):
    return {w.zhaojue: "513431", w.cangxi: "510824"}[county_id]


WRITES = {
    "placements.create": Write("/placements/new", lambda w, u: _placement_data(*_target(w, u))),
    "placements.edit": Write(
        "/placements/{placement_a}/edit",
        lambda w, u: _placement_data(*_target(w, u), version=2) | {"id_number": ""},
        users=("county", "prefecture", "liaison"),
    ),
    "placements.import_": Write(
        "/placements/import",
        lambda w, u: [
            {
                "姓名": "越界",
                "身份证号": ID_C,
                "户类型": "脱贫户",
                "户籍县代码": _code(w, _target(w, u)[0]),
                "就业去向": "县内就近就地",
                "就业开始": _target(w, u)[1],
            }
        ],
        headers=PLACEMENT_HEADERS,
    ),  # fmt: skip
    "purchases.create": Write(
        "/purchases/new",
        lambda w, u: {
            "purchased_on": _target(w, u)[1],
            "buyer_name": "买方",
            "buyer_kind": "enterprise",
            "seller_name": "卖方",
            "seller_kind": "cooperative",
            "seller_county_id": _target(w, u)[0],
            "product": "苦荞",
            "product_category": "grain_oil",
            "amount_fen": "1000",
            "channel_id": 1,
            "counting_type": "purchase",
            "evidence_no": "X-1",
        },
    ),  # fmt: skip
    "purchases.edit": Write(
        "/purchases/{purchase_a}/edit",
        lambda w, u: {
            "purchased_on": _target(w, u)[1],
            "buyer_name": "买方",
            "buyer_kind": "enterprise",
            "seller_name": "卖方",
            "seller_kind": "cooperative",
            "seller_county_id": _target(w, u)[0],
            "product": "苦荞",
            "product_category": "grain_oil",
            "amount_fen": "1000",
            "channel_id": 1,
            "counting_type": "purchase",
            "evidence_no": "FP-2024-0001",
            "version": 1,
        },
        users=("county", "prefecture", "liaison"),
    ),  # fmt: skip
    "purchases.import_": Write(
        "/purchases/import",
        lambda w, u: [
            {
                "日期": _target(w, u)[1],
                "购买方": "买方",
                "购买方类型": "企业",
                "销售方": "卖方",
                "销售方类型": "合作社",
                "销售方所在县代码": _code(w, _target(w, u)[0]),
                "产品": "苦荞",
                "产品类别": "粮油",
                "金额(元)": "10",
                "渠道": "政采云四川馆",
                "计入方式": "采购",
                "发票号/合同号": "X-2",
            }
        ],
        headers=PURCHASE_HEADERS,
    ),  # fmt: skip
    "exchanges.create": Write(
        "/exchanges/new",
        lambda w, u: {
            "person_name": "李四",
            "direction": "east_to_west",
            "person_type": "cadre",
            "sending_unit": "东部某单位",
            "receiving_unit": "四川某单位",
            "county_id": _target(w, u)[0],
            "arrival_date": _target(w, u)[1],
        },
    ),  # fmt: skip
    "exchanges.edit": Write(
        "/exchanges/{exchange_a}/edit",
        lambda w, u: {
            "person_name": "李四",
            "direction": "east_to_west",
            "person_type": "cadre",
            "sending_unit": "东部某单位",
            "receiving_unit": "四川某单位",
            "county_id": _target(w, u)[0],
            "arrival_date": _target(w, u)[1],
            "version": 1,
        },
        users=("county", "prefecture", "liaison"),
    ),  # fmt: skip
    "exchanges.import_": Write(
        "/exchanges/import",
        lambda w, u: [
            {
                "姓名": "李四",
                "方向": "东部选派到四川",
                "类型": "党政干部",
                "派出方": "440606",
                "接收方": _code(w, _target(w, u)[0]),
                "县代码": _code(w, _target(w, u)[0]),
                "到岗日期": _target(w, u)[1],
            }
        ],
        headers=EXCHANGE_HEADERS,
    ),  # fmt: skip
    "projects.create": Write("/projects/new", _project_form),
    "projects.edit": Write(
        "/projects/{project_a}/edit",
        lambda w, u: _project_form(w, u) | {"code": "ZC-1", "version": 1},
        users=("county", "prefecture", "liaison"),
    ),
    # Status changes and fund transactions act on a project as it is: out of scope, the project is missing (404).
    "projects.change_status": Write(
        "/projects/{project_b}/status",
        lambda w, u: {"to_status": "suspended", "changed_on": "2024-06-01", "version": 1},
    ),  # fmt: skip
    "projects.add_transaction": Write(
        "/projects/{project_b}/funds",
        lambda w, u: {"source": "east_fiscal", "stage": "disbursed", "amount_fen": "1", "occurred_on": "2020-01-01"},
    ),  # fmt: skip
    "projects.edit_transaction": Write(
        "/projects/{project_b}/funds/{txn_b}/edit",
        lambda w, u: {
            "source": "east_fiscal",
            "stage": "arrived",
            "amount_fen": "2",
            "occurred_on": "2020-01-01",
            "version": 1,
        },
    ),  # fmt: skip
    "projects.delete_transaction": Write("/projects/{project_b}/funds/{txn_b}/delete", lambda w, u: {"version": 1}),
    "agreements.create_entry": Write(
        "/agreements/indicator-entries/new",
        lambda w, u: {
            "indicator_id": w.indicator_builtin,
            "county_id": _target(w, u)[0],
            "pairing_id": {w.cangxi: w.b}.get(_target(w, u)[0], w.gd_zhaojue if u == "liaison" else w.a),
            "occurred_on": _target(w, u)[1],
            "value": "1",
            "subject": "某企业",
        },
    ),  # fmt: skip
    "agreements.delete_entry": Write("/agreements/indicator-entries/{entry_b}/delete", lambda w, u: {"version": 1}),
    # Assets lie where their source project lies: registering or moving one onto another office's project is refused.
    "assets.create": Write("/assets/new", _asset_form),
    "assets.edit": Write(
        "/assets/{asset_a}/edit", lambda w, u: _asset_form(w, u, version=1), users=("county", "prefecture", "liaison")
    ),
    "assets.import_": Write(
        "/assets/import",
        lambda w, u: [
            {
                "资产编号": "Z-2",
                "资产名称": "越界资产",
                "资产类别": "公益性",
                "来源项目": _asset_source(w, u),
                "竣工日期": "2022-06-30",
                "确权层级": "村集体",
                "所有权人": "某村",
                "管护主体": "某村委会",
                "管护责任人": "某人",
                "运营方式": "自营",
            }
        ],
        headers=ASSET_HEADERS,
    ),  # fmt: skip
    # State changes, checks and 核实 act on an asset as it is: out of scope, the asset is missing (404).
    "assets.change_state": Write(
        "/assets/{asset_b}/state",
        lambda w, u: {"to_state": "idle", "changed_on": "2024-06-01", "note": "闲置", "version": 1},
    ),
    "assets.add_check": Write(
        "/assets/{asset_b}/checks", lambda w, u: {"checked_on": "2024-06-01", "condition": "good"}
    ),
    "assets.confirm": Write("/assets/{asset_b}/confirm", lambda w, u: {"version": 1}),
    # Evidence of a record outside the scope (a fund transaction follows its project): 404, nothing stored.
    "evidence.upload": Write(
        "/evidence/fund_transactions/{txn_b}/upload",
        lambda w, u: {"file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "x.pdf")},
    ),
    "evidence.delete": Write("/evidence/projects/{project_b}/1/delete", lambda w, u: {}),
    # 整改台账: a problem placed in (or moved to) a unit outside the writer's scope; steps on Cangxi's problem B.
    "problems.create": Write("/problems/new", lambda w, u: _problem_form(w, u)),
    "problems.edit": Write(
        "/problems/{problem_a}/edit",
        lambda w, u: _problem_form(w, u) | {"version": 1},
        users=("county", "prefecture", "liaison"),
    ),
    "problems.import_": Write(
        "/problems/import",
        lambda w, u: [
            {
                "问题来源": "国家考核",
                "年度": "2024",
                "发现日期": "2024-05-01",
                "问题类别": "资金",
                "涉及单位代码": _code(w, _target(w, u)[0]),
                "问题描述": "越界问题",
            }
        ],
        users=("county", "prefecture"),
        headers=PROBLEM_HEADERS,
    ),  # fmt: skip
    "problems.progress": Write(
        "/problems/{problem_b}/progress", lambda w, u: {"entry_on": "2024-06-01", "text": "越界", "version": 1}
    ),
    "problems.request_close": Write("/problems/{problem_b}/request", lambda w, u: {"version": 1}),
    "problems.sign": Write("/problems/{problem_b}/sign", lambda w, u: {"version": 1}),
    "problems.return_": Write("/problems/{problem_b}/return", lambda w, u: {"reason": "越界", "version": 1}),
    "problems.add_link": Write(
        "/problems/{problem_b}/links", lambda w, u: {"link-record_type": "projects", "link-record_id": w.project_b}
    ),
    "problems.remove_link": Write("/problems/{problem_b}/links/{link_a}/delete", lambda w, u: {}),
    "findings.accept": Write("/problems/findings/{proposal_b}/accept", lambda w, u: {"version": 1}),
    "findings.dismiss": Write("/problems/findings/{proposal_b}/dismiss", lambda w, u: {"reason": "越界", "version": 1}),
    # Disclosure notices lie in their county: a new one in another county, or any step on Cangxi's (notice_b).
    "disclosure.create": Write(
        "/disclosure/new",
        lambda w, u: {
            "county_id": w.cangxi if u in ("county", "prefecture") else w.zhaojue,
            "year": "2019" if u in ("county", "prefecture") else "2024",
            "type": "annual_plan",
            "issuing_unit": "越界单位",
            "window_start": "2024-06-01",
            "window_end": "2024-06-20",
        },
    ),
    "disclosure.publish": Write("/disclosure/{notice_b}/publish", lambda w, u: {"version": 1}),
    "disclosure.withdraw": Write("/disclosure/{notice_b}/withdraw", lambda w, u: {"reason": "越界", "version": 1}),
    "disclosure.add_posting": Write(
        "/disclosure/{notice_b}/postings", lambda w, u: {"place": "某村公开栏", "posted_on": "2019-06-02"}
    ),
    "disclosure.add_complaint": Write(
        "/disclosure/{notice_b}/complaints",
        lambda w, u: {"received_on": "2019-06-02", "channel": "phone", "content": "越界"},
    ),
    "disclosure.answer_complaint": Write(
        "/disclosure/{notice_b}/answer",
        lambda w, u: {"complaint_id": 1, "answered_on": "2019-06-03", "answer": "越界", "version": 1},
    ),
    "agreements.import_entries": Write(
        "/indicator-entries/import",
        lambda w, u: [
            {
                "指标": "引导企业数",
                "县代码": _code(w, _target(w, u)[0]),
                "日期": _target(w, u)[1],
                "数值": "1",
                "对象": "越界企业",
            }
        ],
        headers=ENTRY_HEADERS,
    ),  # fmt: skip
    # A project out of scope: Cangxi's in 2019 (pairing b), or Zhaojue's on the other province's pairing.
    "projects.import_": Write(
        "/projects/import",
        lambda w, u: [
            {
                "项目编号": "XM-OUT-1",
                "项目名称": "越界项目",
                "县(市、区)": _code(w, _project_form(w, u)["county_id"]),
                "年度": _project_form(w, u)["year"],
                "项目类别": "产业发展",
                "实施方式": "交钥匙",
                "资金层级": "县级",
                "计划开工": _project_form(w, u)["planned_start"],
            }
        ],
        headers=PROJECT_HEADERS,
    ),  # fmt: skip
    # Money for a project out of scope (the Guangdong liaison's: Zhejiang's project a).
    "projects.import_funds": Write(
        "/projects/funds/import",
        lambda w, u: [
            {
                "项目编号": _project_code(w.project_a if u == "gd_liaison" else w.project_b),
                "资金来源": "东部财政援助资金",
                "环节": "计划",
                "日期": "2020-01-01",
                "金额(元)": "1",
            }
        ],
        headers=FUND_HEADERS,
    ),  # fmt: skip
}


def _project_code(project_id):
    return db.session.get(Project, project_id).code


#: Users whose write of a ``projects.*``/entry endpoint on record B (Cangxi, Guangdong) is outside scope.
CASES = [(endpoint, user) for endpoint, write in WRITES.items() for user in write.users]


def test_every_write_endpoint_is_in_the_write_matrix(app):
    posts = {r.endpoint for r in app.url_map.iter_rules() if "POST" in (r.methods or ())}
    missing = posts - NOT_RECORD_WRITES - WRITES.keys()
    assert not missing, f"write endpoints without a write-matrix entry: {sorted(missing)}"
    assert not (WRITES.keys() - posts), "write-matrix entries for endpoints that no longer exist"


@pytest.mark.parametrize("endpoint, user", CASES)
def test_no_write_lands_outside_the_writers_scope(app, gworld, endpoint, user):
    write = WRITES[endpoint]
    ids = dict(vars(gworld))
    if user == "gd_liaison":  # Cangxi's Guangdong records are this liaison's own: Zhejiang's are out of scope
        ids |= {"project_b": gworld.project_a, "txn_b": gworld.txn_a, "entry_b": gworld.entry_a,
                "asset_b": gworld.asset_a}  # fmt: skip
    url = write.url.format(**ids)
    client = _client(app, user)
    with app.app_context():
        payload = write.data(gworld, user)
    before = _state(app)
    if write.headers:
        data = {"file": (io.BytesIO(csv_bytes(write.headers, payload)), "rows.csv")}
        response = client.post(url, data=data, content_type="multipart/form-data")
        text = response.get_data(as_text=True)
        # Refused by the gate itself (not by a format check that would hide whether the gate holds).
        assert "导入完成" not in text and "不在您的管辖范围" in text, text[-800:]
    else:
        response = client.post(url, data=payload)
    assert response.status_code in (200, 403, 404, 409, 422), (response.status_code, response.location)
    assert _state(app) == before, f"{endpoint} as {user} wrote outside its scope"


def _form_values(html: str) -> dict:
    """The values a rendered form would submit (inputs, selected options, textareas)."""
    import re

    values = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        values[name] = value
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option value="([^"]*)"[^>]*selected', body)
        if selected:
            values[name] = selected.group(1) or selected.group(2)
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        values[name] = body.strip()
    values.pop("csrf_token", None)
    return values
