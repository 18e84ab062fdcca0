"""Placements: identity numbers (validation, masking, protection, audited reveal), derived pairing, counting."""

from datetime import date

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from registry.agreements.services import progress
from registry.kernel import idnumbers
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.placements.models import Household, Placement
from registry.placements.services import possible_duplicates, reveal_number, update_placement
from tests.conftest import login
from tests.factories import ID_A, make_pairing, make_placement


def test_valid_numbers_give_sex_and_age():
    person = idnumbers.parse(" 51343119900101123x ".replace("x", "9"))
    assert person.number == ID_A and person.sex == "男" and person.birth_date == date(1990, 1, 1)
    assert person.age_on(date(2024, 12, 31)) == 34 and person.age_on(date(2024, 1, 1)) == 34
    assert person.age_on(date(2023, 12, 31)) == 33
    assert idnumbers.parse("５１３４３１１９９００１０１１２３９").number == ID_A  # full-width digits
    base = "11010519491231002"
    assert idnumbers.parse((base + idnumbers.check_digit(base)).lower()).sex == "女"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "请填写身份证号"),
        ("51343119900101123", "应为 18 位"),
        ("5134311990010112A9", "应为 18 位"),
        ("513431199001011238", "校验位不正确"),
        ("993431199001011239", "省级行政区划代码"),
        ("513431199002301234", "出生日期无效"),
        ("513431289001011234", "出生日期不在合理范围"),
    ],
)
def test_invalid_numbers_are_refused_in_chinese_without_echoing_them(text, message):
    with pytest.raises(idnumbers.IdNumberError, match=message) as info:
        idnumbers.parse(text)
    assert not text or text not in str(info.value)


def test_masking():
    assert idnumbers.mask(ID_A) == "5134**********1239"
    assert idnumbers.mask("123") == "***"


@pytest.fixture
def w(world_records):
    return world_records


def test_numbers_are_encrypted_at_rest_when_a_key_is_configured(app, w):
    before, app.config["ID_NUMBER_KEY"] = app.config["ID_NUMBER_KEY"], Fernet.generate_key().decode()
    try:
        placement = make_placement(w.zhaojue, person_name="阿牛")
        db.session.flush()
        raw = db.session.execute(
            sa.text("SELECT id_stored, id_masked FROM placements WHERE id = :i"), {"i": placement.id}
        ).one()
        assert ID_A not in raw[0] and raw[1] == "5134**********1239"
        assert reveal_number(placement, actor=w.county) == ID_A
        assert placement.id_fingerprint == idnumbers.fingerprint(ID_A) != idnumbers.fingerprint("510824199203041239")
    finally:
        app.config["ID_NUMBER_KEY"] = before


def test_the_audit_trail_never_holds_the_number(w):
    placement = make_placement(w.zhaojue, person_name="阿牛", start_date=date(2024, 4, 1))
    update_placement(placement, {"id_number": "510824199203041239", "employer": "新单位"}, actor=w.admin)
    reveal_number(placement, actor=w.county)
    db.session.flush()
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.entity_type == "placements")).all()
    text = repr([(e.summary, e.changes) for e in events])
    assert ID_A not in text and "510824199203041239" not in text and "5108**********1239" in text
    assert [e.action for e in events if e.entity_id == placement.id][-1] == "view_id"


def test_pairing_follows_the_origin_county_and_start_date(w):
    make_pairing(w.shunde, w.butuo, w.yc, valid_from=date(2016, 8, 1), valid_to=date(2021, 3, 31))
    make_pairing(w.cixi, w.butuo, w.zc, valid_from=date(2021, 4, 1))
    early = make_placement(w.butuo, start_date=date(2019, 5, 1))
    late = make_placement(w.butuo, start_date=date(2024, 5, 1))
    assert early.pairing.east_unit.name == "顺德区" and late.pairing.east_unit.name == "慈溪市"
    assert make_placement(w.butuo, start_date=date(2015, 5, 1)).pairing is None


def test_a_person_counts_once_and_lifted_are_a_part(w):
    make_placement(w.zhaojue, start_date=date(2024, 6, 1))  # the same person again (ID_A), second job
    other = "51343119880505123" + idnumbers.check_digit("51343119880505123")
    make_placement(w.zhaojue, id_number=other, household=Household.ORDINARY, start_date=date(2023, 1, 1),
                   end_date=date(2023, 12, 31))  # fmt: skip
    rows = {r.code: r for r in progress(w.agreement_zc, w.zhaojue, date(2024, 12, 31))}
    # World placed ID_A in March; the June job is the same person; the 2023 job ended before 2024.
    assert rows["labour_total"].actual == 1 and rows["labour_lifted"].actual == 1


def test_people_placed_by_two_counties_are_listed_as_possible_duplicates(w):
    make_placement(w.cangxi, start_date=date(2019, 6, 1))  # ID_A again, from another county
    rows = db.session.scalars(possible_duplicates()).all()
    assert {r.origin_county_id for r in rows} == {w.zhaojue.id, w.cangxi.id}


def _form(world, **overrides):
    data = {
        "person_name": "曲木伍呷", "id_number": "513431199001011239", "household": "lifted",
        "origin_county_id": str(world.zhaojue), "destination_class": "east_partner", "destination_province": "浙江省",
        "destination_city": "宁波市", "employer": "宁波某电子厂", "start_date": "2024-04-01",
        "monthly_wage_fen": "4,800",
    }  # fmt: skip
    return data | overrides


def test_pages_mask_numbers_and_reveal_only_with_permission(app, world):
    county = app.test_client()
    login(county, "county")
    assert county.post("/placements/new", data=_form(world)).status_code in (302, 303)
    listing = county.get("/placements/").get_data(as_text=True)
    assert "5134**********1239" in listing and ID_A not in listing
    text = county.post("/placements/new", data=_form(world, id_number="513431199001011238")).get_data(as_text=True)
    assert "校验位不正确" in text
    revealed = county.post(f"/placements/{world.placement_a}/reveal")
    assert ID_A in revealed.get_data(as_text=True) and revealed.headers["Cache-Control"] == "no-store"
    liaison = app.test_client()
    login(liaison, "liaison")
    page = liaison.get(f"/placements/{world.placement_a}").get_data(as_text=True)
    assert ID_A not in page and "显示完整号码" not in page
    assert liaison.post(f"/placements/{world.placement_a}/reveal").status_code == 403
    assert liaison.get(f"/placements/{world.placement_b}").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "view_id")) == 1
        assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == 3


def test_list_counts_people_not_records(app, client, world):
    login(client, "province")
    client.post("/placements/new", data=_form(world, start_date="2024-08-01"))  # ID_A's second job
    text = client.get("/placements/?year=2024").get_data(as_text=True)
    # ID_A twice in 昭觉, and the 苍溪 person still in work since 2019: three records, two people.
    assert '<span class="num">3</span><span>就业记录' in text and '<span class="num">2</span><span>人数' in text


def test_invalid_input_writes_nothing(app, w):
    with pytest.raises(ServiceError, match="就业结束日期早于开始日期"):
        make_placement(w.zhaojue, start_date=date(2024, 3, 1), end_date=date(2024, 1, 1))
    with pytest.raises(ServiceError, match="校验位不正确"):
        make_placement(w.zhaojue, id_number="513431199001011238")
