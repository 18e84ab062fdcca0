"""People exchanged: the sending and receiving units are registry units on the sides the direction requires
(East→West an East sender and a Sichuan receiver, West→East the opposite), checked by the service for the form,
the import and the demo alike; 到岗率 of each direction against its own target."""

import io
from datetime import date

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from registry import create_app
from registry.agreements.models import Indicator
from registry.agreements.services import progress, set_targets
from registry.counties.models import UnitKind
from registry.exchanges.models import Direction, Exchange, Field, PersonType
from registry.exchanges.services import check_sides, update_exchange
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from tests.conftest import login, make_test_config
from tests.factories import make_division, make_exchange, make_local, make_pairing, make_programme

W2E = Direction.WEST_TO_EAST


@pytest.fixture
def w(world_records):
    return world_records


def _count():
    return db.session.scalar(sa.select(sa.func.count(Exchange.id)))


# ---- the service ---------------------------------------------------------------------------------------------------


def test_the_issues_case_is_refused_naming_the_field(w):
    """四川选派到东部 with 派出 余姚市人民政府 and 接收 昭觉县人民政府: the sender is East, so it is refused."""
    before = _count()
    with pytest.raises(ServiceError) as info:
        make_exchange(w.zhaojue, direction=W2E)  # the factory's default units are East → Sichuan
    assert info.value.field == "sending_unit_id"
    assert str(info.value) == "方向为“四川选派到东部”时，派出单位应为四川单位；“宁波市余姚市”是东部单位。"
    assert _count() == before


@pytest.mark.parametrize(
    ("direction", "sending", "receiving", "field", "message"),
    [
        (Direction.EAST_TO_WEST, "zhaojue", "zhaojue", "sending_unit_id", "派出单位应为东部单位"),
        (Direction.EAST_TO_WEST, "yuyao", "yuyao", "receiving_unit_id", "接收单位应为四川单位"),
        (W2E, "zhaojue", "zhaojue", "receiving_unit_id", "接收单位应为东部单位"),
        (Direction.EAST_TO_WEST, "yuyao", "butuo", "receiving_unit_id", "不在所涉县\\(市、区\\)昭觉县内"),
        (W2E, "cangxi", "yuyao", "sending_unit_id", "派出单位“广元市苍溪县”不在所涉县\\(市、区\\)昭觉县内"),
    ],
)
def test_sides_follow_the_direction(w, direction, sending, receiving, field, message):
    with pytest.raises(ServiceError, match=message) as info:
        make_exchange(w.zhaojue, direction=direction, sending_unit_id=getattr(w, sending).id,
                      receiving_unit_id=getattr(w, receiving).id)  # fmt: skip
    assert info.value.field == field


def test_both_directions_with_units_and_organisations(w):
    to_east = make_exchange(w.zhaojue, direction=W2E, sending_unit_id=w.zhaojue_school.id, sending_unit="",
                            receiving_unit_id=w.yuyao_school.id, receiving_unit="余姚中学（跟岗）")  # fmt: skip
    assert (to_east.sending_unit_id, to_east.receiving_unit_id) == (w.zhaojue_school.id, w.yuyao_school.id)
    assert to_east.sending_unit == w.zhaojue_school.display_name  # the unit's name when none is given
    assert to_east.receiving_unit == "余姚中学（跟岗）"
    # The county follows from the Sichuan end when it is not given; a prefecture may receive for its county.
    derived = make_exchange(w.zhaojue, county_id=None, receiving_unit_id=w.zhaojue_school.id)
    assert derived.county_id == w.zhaojue.id
    by_prefecture = make_exchange(w.zhaojue, receiving_unit_id=w.liangshan.id, receiving_unit="凉山州委组织部")
    assert by_prefecture.receiving_unit_id == w.liangshan.id
    check_sides(Direction.EAST_TO_WEST, w.yuyao, w.zhaojue)  # raises nothing


def test_free_text_must_name_a_unit(w):
    with pytest.raises(ServiceError, match="派出单位“某某研究院”不是登记的单位") as info:
        make_exchange(w.zhaojue, sending_unit="某某研究院")
    assert info.value.field == "sending_unit_id"
    make_local(w.cixi, "第一中学")
    make_local(w.yuyao, "第一中学")
    with pytest.raises(ServiceError, match="派出单位：“第一中学”对应多个登记单位") as info:
        make_exchange(w.zhaojue, sending_unit="第一中学")
    exchange = make_exchange(w.zhaojue, sending_unit="浙江省宁波市余姚市第一中学")
    assert exchange.sending.name == "第一中学" and exchange.sending.parent_id == w.yuyao.id


def test_an_older_record_without_units_must_get_them_at_its_next_change(w):
    """Records migrated with text that named no unit keep the text; a change must set the units."""
    exchange = w.exchange_a
    exchange.sending_unit_id = exchange.receiving_unit_id = None
    exchange.sending_unit = "宁波某协会"
    db.session.flush()
    with pytest.raises(ServiceError, match="派出单位“宁波某协会”不是登记的单位"):
        update_exchange(exchange, {"position": "副县长"}, actor=None)
    update_exchange(exchange, {"sending_unit_id": w.yuyao.id, "position": "副县长"}, actor=None)
    assert exchange.sending_unit_id == w.yuyao.id and exchange.receiving_unit_id == w.zhaojue.id
    assert exchange.sending_unit == "宁波某协会"  # the organisation's name stays
    with pytest.raises(ServiceError, match="派出单位应为四川单位"):
        update_exchange(exchange, {"direction": W2E}, actor=None)


# ---- 到岗率 for both directions --------------------------------------------------------------------------------------


def test_each_direction_is_counted_against_its_own_target(w):
    codes = ("cadres", "cadres_to_east", "professionals_to_east")
    ids = {i.code: i.id for i in db.session.scalars(sa.select(Indicator).where(Indicator.code.in_(codes)))}
    assert set(ids) == set(codes)
    set_targets(w.agreement_zc, w.zhaojue, {ids["cadres"]: 2, ids["cadres_to_east"]: 4}, actor=None)
    for name in ("阿鲁", "吉克"):
        make_exchange(w.zhaojue, person_name=name, direction=W2E, sending_unit="昭觉县人民政府",
                      receiving_unit="宁波市余姚市人民政府")  # fmt: skip
    make_exchange(w.zhaojue, direction=W2E, person_type=PersonType.PROFESSIONAL, field=Field.HEALTH,
                  sending_unit_id=w.zhaojue.id, receiving_unit_id=w.yuyao.id)  # fmt: skip
    rows = {r.code: r for r in progress(w.agreement_zc, w.zhaojue, date(2024, 12, 31))}
    assert rows["cadres"].actual == 1 and str(rows["cadres"].rate) == "50.00"  # world's exchange_a only
    assert rows["cadres_to_east"].actual == 2 and str(rows["cadres_to_east"].rate) == "50.00"
    assert rows["professionals_to_east"].actual == 1 and rows["professionals"].actual == 0


def test_the_agreement_page_shows_the_west_to_east_indicators(app, world):
    client = app.test_client()
    login(client, "province")
    page = client.get(f"/units/{world.zhaojue}?year=2024").get_data(as_text=True)
    assert "四川选派到东部党政干部" in page and "四川选派到东部专业技术人才" in page


# ---- the form and the import -------------------------------------------------------------------------------------


def _form(world, **overrides):
    return {
        "person_name": "李明", "direction": "west_to_east", "person_type": "cadre", "sending_unit_id": world.yuyao,
        "receiving_unit_id": world.zhaojue, "county_id": world.zhaojue, "arrival_date": "2024-04-01",
    } | overrides  # fmt: skip


def test_the_form_refuses_the_wrong_side_and_saves_the_right_one(app, world):
    client = app.test_client()
    login(client, "county")
    with app.app_context():
        before = _count()
    response = client.post("/exchanges/new", data=_form(world))
    assert response.status_code == 200
    assert "派出单位应为四川单位；“宁波市余姚市”是东部单位" in response.get_data(as_text=True)
    response = client.post("/exchanges/new", data=_form(world, sending_unit_id=world.zhaojue_school,
                                                         receiving_unit_id=world.yuyao_school))  # fmt: skip
    assert response.status_code in (302, 303)
    with app.app_context():
        assert _count() == before + 1
        added = db.session.scalar(sa.select(Exchange).where(Exchange.person_name == "李明"))
        assert (added.sending_unit_id, added.receiving_unit_id) == (world.zhaojue_school, world.yuyao_school)
    page = client.get(f"/exchanges/?unit={world.yuyao_school}").get_data(as_text=True)
    assert "李明" in page and "陈明" not in page


HEADER = "编号,姓名,方向,类型,领域,派出方,派出单位,接收方,接收单位,县代码,县,挂职岗位,到岗日期,离岗日期,备注\n"


def _import(client, body):
    data = {"file": (io.BytesIO((HEADER + body).encode("utf-8-sig")), "e.csv")}
    return client.post("/exchanges/import", data=data, content_type="multipart/form-data").get_data(as_text=True)


def test_the_import_checks_sides_with_the_same_rule(app, world):
    client = app.test_client()
    login(client, "county")
    with app.app_context():
        before = _count()
    good = ",阿鲁,四川选派到东部,党政干部,,513431,昭觉县人民政府,330281,余姚市人民政府,513431,,,2024-05-01,,\n"
    wrong = ",吉克,四川选派到东部,党政干部,,,余姚市人民政府,,昭觉县人民政府,,,,2024-05-01,,\n"
    unknown = ",沙马,东部选派到四川,党政干部,,999999,,513431,,513431,,,2024-05-01,,\n"
    page = _import(client, good + wrong + unknown)
    assert "派出方" in page and "派出单位应为四川单位；“宁波市余姚市”是东部单位" in page
    assert "不是登记的单位：请填区划代码或单位全称" in page
    with app.app_context():
        assert _count() == before  # all or nothing
    page = _import(client, good)
    assert "新增 1 条" in page
    with app.app_context():
        added = db.session.scalar(sa.select(Exchange).where(Exchange.person_name == "阿鲁"))
        assert (added.sending_unit_id, added.receiving_unit_id) == (world.zhaojue, world.yuyao)
    # The export writes the units back as the import reads them.
    exported = client.get("/exchanges/export.csv").data.decode("utf-8-sig")
    assert ",阿鲁,四川选派到东部,党政干部,,513431,昭觉县人民政府,330281,余姚市人民政府,513431," in exported


# ---- the demo and the migration ----------------------------------------------------------------------------------


def test_demo_postings_have_units_on_the_right_sides(ctx):
    from registry.demo.records import load_records

    sichuan = make_division("510000", "四川省", UnitKind.PROVINCE)
    liangshan = make_division("513400", "凉山彝族自治州", UnitKind.PREFECTURE, sichuan)
    zhaojue = make_division("513431", "昭觉县", UnitKind.COUNTY, liangshan)
    zhejiang = make_division("330000", "浙江省", UnitKind.PROVINCE)
    ningbo = make_division("330200", "宁波市", UnitKind.PREFECTURE, zhejiang)
    yuyao = make_division("330281", "余姚市", UnitKind.COUNTY, ningbo)
    make_pairing(yuyao, zhaojue, make_programme("浙川东西部协作", east_province_id=zhejiang.id))
    load_records(today=date(2024, 12, 31))
    postings = db.session.scalars(sa.select(Exchange)).all()
    assert {e.direction for e in postings} == {Direction.EAST_TO_WEST, W2E}
    for e in postings:
        check_sides(e.direction, e.sending, e.receiving)
        assert {e.sending_unit_id, e.receiving_unit_id} == {yuyao.id, zhaojue.id}


def test_migration_maps_text_to_units_on_the_right_side(empty_database):
    app = create_app(make_test_config(empty_database))
    with app.app_context():
        upgrade(revision="e68ebad083e9")
        now = "2026-01-01 00:00:00"
        units = [
            (1, "510000", "四川省", "四川省", "province", "west", None),
            (2, "513400", "凉山彝族自治州", "四川省凉山彝族自治州", "prefecture", "west", 1),
            (3, "513431", "昭觉县", "四川省凉山彝族自治州昭觉县", "county", "west", 2),
            (4, "330000", "浙江省", "浙江省", "province", "east", None),
            (5, "330200", "宁波市", "浙江省宁波市", "prefecture", "east", 4),
            (6, "330281", "余姚市", "浙江省宁波市余姚市", "county", "east", 5),
        ]
        rows = [
            (1, "east_to_west", "宁波市余姚市人民政府", "昭觉县人民政府"),  # both named
            (2, "west_to_east", "余姚市人民政府", "昭觉县人民政府"),  # the issue's case: wrong sides, not mapped
            (3, "east_to_west", "余姚市人民医院", "昭觉县"),  # an organisation not in the registry: text kept
        ]
        with db.engine.begin() as conn:
            for id_, code, name, full, kind, side, parent in units:
                conn.execute(
                    sa.text(
                        "INSERT INTO units (id, code, name, full_name, kind, side, parent_id, is_active, note, "
                        "created_at, updated_at, version_id) VALUES (:id, :code, :name, :full, :kind, :side, "
                        ":parent, true, '', :now, :now, 1)"
                    ),
                    {"id": id_, "code": code, "name": name, "full": full, "kind": kind, "side": side,
                     "parent": parent, "now": now},
                )  # fmt: skip
            for id_, direction, sending, receiving in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO exchanges (id, person_name, direction, person_type, sending_unit, "
                        "receiving_unit, county_id, position, arrival_date, note, created_at, updated_at, "
                        "version_id) VALUES (:id, '某', :direction, 'cadre', :sending, :receiving, 3, '', "
                        "'2024-01-01', '', :now, :now, 1)"
                    ),
                    {"id": id_, "direction": direction, "sending": sending, "receiving": receiving, "now": now},
                )
        upgrade()
        mapped = db.session.execute(
            sa.select(Exchange.id, Exchange.sending_unit_id, Exchange.receiving_unit_id, Exchange.sending_unit)
            .order_by(Exchange.id)
        ).all()  # fmt: skip
        assert [tuple(r) for r in mapped] == [
            (1, 6, 3, "宁波市余姚市人民政府"),
            (2, None, None, "余姚市人民政府"),
            (3, None, 3, "余姚市人民医院"),
        ]
        codes = set(db.session.scalars(sa.select(Indicator.code).where(Indicator.is_builtin.is_(True))))
        assert {"cadres_to_east", "professionals_to_east"} <= codes
        db.session.remove()
        db.engine.dispose()
