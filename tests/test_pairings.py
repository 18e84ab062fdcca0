"""Pairings: the partners-during-a-period service, validation rules, pages, scope and the audit trail."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.auth.models import Role
from registry.counties.models import Unit, UnitKind
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError, StaleEdit
from registry.pairings.models import Pairing
from registry.pairings.services import create_pairing, end_pairing, partners_during, update_pairing
from tests.conftest import login
from tests.factories import make_pairing, make_user


@pytest.fixture
def w(world_records):
    return world_records


def _names(pairings):
    return [p.east_unit.name for p in pairings]


def test_partners_follow_the_2021_change_of_partner(w):
    """Liangshan's Butuo: Foshan's Shunde in 2016–2020 (粤川), Ningbo's Cixi from April 2021 (浙川)."""
    make_pairing(w.shunde, w.butuo, w.yc, valid_from=date(2016, 8, 1), valid_to=date(2021, 3, 31))
    make_pairing(w.cixi, w.butuo, w.zc, valid_from=date(2021, 4, 1))
    assert _names(partners_during(w.butuo.id, Quarter.parse("2019Q2"))) == ["顺德区"]
    assert _names(partners_during(w.butuo.id, Quarter.parse("2024Q3"))) == ["慈溪市"]
    # The quarter of the change sees both: the old one until 31 March, the new one from 1 April.
    assert _names(partners_during(w.butuo.id, Quarter.parse("2021Q1"))) == ["顺德区"]
    assert _names(partners_during(w.butuo.id, Quarter.parse("2021Q2"))) == ["慈溪市"]
    assert partners_during(w.butuo.id, Quarter.parse("2015Q4")) == []


def test_several_partners_at_once_and_parent_pairings(w):
    make_pairing(w.ningbo, w.liangshan, w.zc, valid_from=date(2021, 4, 1))
    make_pairing(w.cixi, w.zhaojue, w.zc, valid_from=date(2022, 1, 1))
    q = Quarter.parse("2023Q1")
    assert sorted(_names(partners_during(w.zhaojue.id, q))) == ["余姚市", "慈溪市"]
    assert "宁波市" in _names(partners_during(w.zhaojue.id, q, include_parents=True))


def _data(w, **overrides):
    data = {
        "east_unit_id": w.cixi.id,
        "west_unit_id": w.butuo.id,
        "level": UnitKind.COUNTY,
        "programme_id": w.zc.id,
        "valid_from": date(2021, 4, 1),
        "valid_to": None,
        "source": "",
        "note": "",
    }
    return data | overrides


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"valid_to": date(2020, 1, 1)}, "valid_to", "终止日期 2020-01-01 早于起始日期 2021-04-01"),
        ({"east_unit_id": 999999}, "east_unit_id", "请选择存在的东部单位"),
        ({"west_unit_id": None}, "west_unit_id", "请选择存在的四川单位"),
        ({"programme_id": None}, "programme_id", "请选择协作类型"),
        ("swap", "east_unit_id", "不是东部单位"),
        ({"level": UnitKind.PREFECTURE}, "west_unit_id", "市(州)级结对的四川单位须为市(州)"),
        ({"level": UnitKind.SCHOOL}, "level", "学校结对的双方都须为学校"),
    ],
)
def test_invalid_pairings_are_refused_with_a_reason(w, overrides, field, message):
    data = _data(w, east_unit_id=w.butuo.id, west_unit_id=w.cixi.id) if overrides == "swap" else _data(w, **overrides)
    with pytest.raises(ServiceError) as info:
        create_pairing(data, actor=None)
    assert message in str(info.value) and info.value.field == field
    assert db.session.scalar(sa.select(sa.func.count(Pairing.id))) == 2  # only the world's


def test_overlapping_duplicate_is_refused_but_a_later_period_is_fine(w):
    make_pairing(w.cixi, w.butuo, w.zc, valid_from=date(2021, 4, 1), valid_to=date(2022, 12, 31))
    with pytest.raises(ServiceError, match="时间段不能重叠"):
        create_pairing(_data(w, valid_from=date(2022, 6, 1)), actor=None)
    create_pairing(_data(w, valid_from=date(2023, 1, 1)), actor=None)


def test_end_and_update_write_audit_with_old_and_new_values(w, app):
    pairing = make_pairing(w.cixi, w.butuo, w.zc)
    update_pairing(pairing, {"source": "浙川协作文件"}, actor=w.admin, version=pairing.version_id)
    db.session.flush()
    end_pairing(pairing, date(2025, 12, 31), actor=w.admin, version=pairing.version_id)
    db.session.flush()
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.entity_type == "pairings", AuditEvent.entity_id == pairing.id)
        .order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["create", "update", "end"]
    assert events[1].changes == {"source": ["", "浙川协作文件"]}
    assert events[2].changes == {"valid_to": [None, "2025-12-31"]} and events[2].actor_id == w.admin.id
    with pytest.raises(ServiceError, match="已于 2025-12-31 终止"):
        end_pairing(pairing, date(2026, 1, 1), actor=None)


def test_stale_version_is_refused(w):
    pairing = make_pairing(w.cixi, w.butuo, w.zc)
    with pytest.raises(StaleEdit):
        update_pairing(pairing, {"note": "x"}, actor=None, version=pairing.version_id - 1)


# ---- pages ----------------------------------------------------------------------------------------------------


def _form(world, **overrides):
    data = {
        "east_unit_id": str(world.cixi),
        "west_unit_id": str(world.butuo),
        "level": "county",
        "programme_id": str(world.zc),
        "valid_from": "2021-04-01",
        "valid_to": "",
        "source": "浙川结对文件",
        "note": "",
    }
    return data | overrides


def test_create_edit_and_end_through_the_pages(app, client, world):
    login(client, "province")
    response = client.post("/pairings/new", data=_form(world))
    assert response.status_code in (302, 303)
    pairing_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = client.get(f"/pairings/{pairing_id}").get_data(as_text=True)
    assert "慈溪市" in page and "布拖县" in page and "变更记录" in page and "浙川结对文件" in page
    response = client.post(f"/pairings/{pairing_id}/edit", data=_form(world, note="两地党政互访", version="1"))
    assert response.status_code in (302, 303)
    response = client.post(f"/pairings/{pairing_id}/end", data={"valid_to": "2025-06-30", "version": "2"})
    assert response.status_code in (302, 303)
    page = client.get(f"/pairings/{pairing_id}").get_data(as_text=True)
    assert "已终止" in page and "两地党政互访" in page and "2025-06-30" in page


def test_form_errors_are_inline_and_nothing_is_written(app, client, world):
    login(client, "province")
    text = client.post("/pairings/new", data=_form(world, valid_to="2020-01-01")).get_data(as_text=True)
    assert "终止日期不能早于起始日期" in text
    text = client.post("/pairings/new", data=_form(world, valid_from="2021-13-40")).get_data(as_text=True)
    assert "日期格式应为 YYYY-MM-DD" in text
    text = client.post("/pairings/new", data=_form(world, west_unit_id="abc")).get_data(as_text=True)
    assert "请更正下面标出的问题" in text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Pairing.id))) == 2


def test_stale_edit_through_the_page_is_a_409(app, client, world):
    login(client, "province")
    data = _form(world, east_unit_id=str(world.yuyao), west_unit_id=str(world.zhaojue), version="1")
    assert client.post(f"/pairings/{world.a}/edit", data=data | {"note": "first"}).status_code in (302, 303)
    response = client.post(f"/pairings/{world.a}/edit", data=data | {"note": "second"})
    assert response.status_code == 409 and "已被其他人修改" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Pairing, world.a).note == "first"


def test_prefecture_cannot_create_a_pairing_outside_its_scope(app, client, world):
    login(client, "prefecture")
    text = client.post("/pairings/new", data=_form(world, west_unit_id=str(world.cangxi))).get_data(as_text=True)
    assert "不是有效的选择" in text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Pairing.id))) == 2


def test_county_office_manages_only_pairings_below_county_level(app, client, world):
    login(client, "county")
    response = client.post("/pairings/new", data=_form(world, west_unit_id=str(world.zhaojue)))
    # County level is not offered to a county office.
    assert "不是有效的选择" in response.get_data(as_text=True)
    data = _form(world, east_unit_id=str(world.yuyao_school), west_unit_id=str(world.zhaojue_school), level="school")
    assert client.post("/pairings/new", data=data).status_code in (302, 303)


def test_liaison_sees_none_of_the_other_provinces_pairings(app, world, as_user):
    liaison = as_user("liaison")
    listing = liaison.get("/pairings/").get_data(as_text=True)
    assert "余姚市" in listing and "顺德区" not in listing and "苍溪县" not in listing
    assert "顺德" not in liaison.get("/pairings/?q=顺德").get_data(as_text=True).split("<tbody>")[1]
    assert liaison.get(f"/pairings/{world.b}").status_code == 404
    assert liaison.get(f"/units/{world.cangxi}").status_code == 404
    assert liaison.get(f"/units/{world.shunde}").status_code == 404
    units = liaison.get("/units/?side=west").get_data(as_text=True)
    assert "昭觉县" in units and "苍溪县" not in units and "布拖县" not in units
    quarter = liaison.get(f"/units/{world.zhaojue}?quarter=2024Q1").get_data(as_text=True)
    assert "余姚市" in quarter and "顺德" not in quarter
    home = liaison.get("/").get_data(as_text=True)
    assert "粤川" not in home


def test_guangdong_liaison_sees_its_historic_pairings(app, client, world):
    with app.app_context():
        make_user(Role.LIAISON, db.session.get(Unit, world.guangdong), username="gdliaison")
        db.session.commit()
    login(client, "gdliaison")
    listing = client.get("/pairings/").get_data(as_text=True)
    assert "顺德区" in listing and "余姚市" not in listing
    assert client.get(f"/pairings/{world.a}").status_code == 404


def test_list_filters_sorting_and_pagination(app, client, world):
    login(client, "province")
    assert "顺德区" not in client.get("/pairings/?status=current").get_data(as_text=True)
    assert "顺德区" in client.get("/pairings/?status=ended").get_data(as_text=True)
    assert "余姚市" not in client.get(f"/pairings/?programme={world.yc}").get_data(as_text=True)
    on_2019 = client.get("/pairings/?on=2019-06-30").get_data(as_text=True)
    assert "顺德区" in on_2019 and "余姚市" not in on_2019
    assert "格式应为" in client.get("/pairings/?on=2019-99-99").get_data(as_text=True)
    text = client.get("/pairings/?sort=west").get_data(as_text=True)
    assert text.index("苍溪县") < text.index("昭觉县")  # 510824 before 513431
    text = client.get("/pairings/?sort=-west").get_data(as_text=True)
    assert text.index("昭觉县") < text.index("苍溪县")
    app.config["ITEMS_PER_PAGE"] = 1
    try:
        page2 = client.get("/pairings/?page=2&sort=from").get_data(as_text=True)
        assert "第 2 / 2 页" in page2 and "余姚市" in page2
        assert "第 2 / 2 页" in client.get("/pairings/?page=999").get_data(as_text=True)
        assert "第 1 / 2 页" in client.get("/pairings/?page=abc").get_data(as_text=True)
    finally:
        app.config["ITEMS_PER_PAGE"] = 25


def test_search_escapes_like_wildcards(client, world):
    login(client, "province")
    assert "<td>余姚市" not in client.get("/pairings/?q=%25").get_data(as_text=True)
