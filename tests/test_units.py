"""Units: organisations below counties, the county list and page, categories, and the periods helper."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.counties.models import CountyCategory, Unit, UnitKind
from registry.counties.services import history_of_category
from registry.kernel.extensions import db
from registry.kernel.periods import Period, Quarter
from tests.conftest import login


def test_county_office_adds_a_school_in_its_county(app, client, world):
    login(client, "county")
    response = client.post(
        "/units/new", data={"name": "昭觉县第一小学", "kind": "school", "parent_id": str(world.zhaojue)}
    )
    assert response.status_code in (302, 303)
    with app.app_context():
        school = db.session.scalar(sa.select(Unit).where(Unit.name == "昭觉县第一小学"))
        assert school.full_name == "四川省凉山彝族自治州昭觉县昭觉县第一小学"
        assert (school.county_id, school.prefecture_id, school.province_id) == (
            world.zhaojue,
            world.liangshan,
            world.sichuan,
        )


def test_units_cannot_be_added_outside_scope_or_as_divisions(app, client, world):
    login(client, "county")
    text = client.post(
        "/units/new", data={"name": "苍溪小学", "kind": "school", "parent_id": str(world.cangxi)}
    ).get_data(as_text=True)
    assert "不是有效的选择" in text
    text = client.post("/units/new", data={"name": "新县", "kind": "county", "parent_id": str(world.zhaojue)}).get_data(
        as_text=True
    )
    assert "不是有效的选择" in text
    text = client.post(
        "/units/new", data={"name": "昭觉县民族中学", "kind": "school", "parent_id": str(world.zhaojue)}
    ).get_data(as_text=True)
    assert "已有同名学校" in text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Unit.id))) == 16


def test_renaming_a_township_updates_the_names_below_it(app, client, world):
    login(client, "county")
    client.post("/units/new", data={"name": "竹核乡", "kind": "township", "parent_id": str(world.zhaojue)})
    with app.app_context():
        town = db.session.scalar(sa.select(Unit).where(Unit.name == "竹核乡"))
        town_id = town.id
    client.post("/units/new", data={"name": "竹核村", "kind": "village", "parent_id": str(town_id)})
    response = client.post(
        f"/units/{town_id}/edit",
        data={"name": "竹核镇", "kind": "township", "parent_id": str(world.zhaojue), "version": "1"},
    )
    assert response.status_code in (302, 303)
    with app.app_context():
        village = db.session.scalar(sa.select(Unit).where(Unit.name == "竹核村"))
        assert village.full_name.endswith("昭觉县竹核镇竹核村")


def test_divisions_are_not_editable(client, world):
    login(client, "admin")
    assert client.get(f"/units/{world.zhaojue}/edit").status_code == 403


def test_admin_corrects_a_category_and_it_is_audited(app, client, world):
    login(client, "admin")
    with app.app_context():
        version = db.session.get(Unit, world.cangxi).version_id
    response = client.post(
        f"/units/{world.cangxi}/category",
        data={
            "category": "provincial_key",
            "valid_from": "2024-01-01",
            "note": "川农领〔2024〕1号",
            "version": version,
        },
    )
    assert response.status_code in (302, 303)
    page = client.get(f"/units/{world.cangxi}").get_data(as_text=True)
    assert "变更记录" in page and "其他脱贫县" in page and "省级重点帮扶县" in page
    assert "类别沿革" in page and "2023-12-31" in page and "川农领〔2024〕1号" in page and "类别生效日期" in page
    with app.app_context():
        assert db.session.get(Unit, world.cangxi).category is CountyCategory.PROVINCIAL_KEY
        periods = [(r.category, r.valid_from, r.valid_to) for r in history_of_category(world.cangxi)]
        assert periods == [
            (CountyCategory.OTHER_LIFTED, date(2021, 8, 10), date(2023, 12, 31)),
            (CountyCategory.PROVINCIAL_KEY, date(2024, 1, 1), None),
        ]
        current = db.session.get(Unit, world.cangxi).version_id
        yuyao_version = db.session.get(Unit, world.yuyao).version_id
    # A change without a date is refused, and the category stays.
    response = client.post(f"/units/{world.cangxi}/category", data={"category": "national_key", "version": current})
    assert "请填写生效日期" in client.get(response.headers["Location"]).get_data(as_text=True)
    data = {"category": "national_key", "valid_from": "2024-01-01", "version": yuyao_version}
    response = client.post(f"/units/{world.yuyao}/category", data=data)
    assert response.status_code in (302, 303)
    assert "只有四川的县级单位有帮扶类别" in client.get(f"/units/{world.yuyao}").get_data(as_text=True)
    # Without the version the page was rendered with, the change is refused as stale.
    stale = {"category": "national_key", "valid_from": "2024-06-01"}
    assert client.post(f"/units/{world.cangxi}/category", data=stale).status_code == 409
    response = client.post(f"/units/{world.cangxi}/category", data={"category": "bogus", "version": version + 1})
    assert "帮扶类别无效" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_county_list_filters_and_current_partners(client, world):
    login(client, "province")
    text = client.get("/units/").get_data(as_text=True)
    assert "昭觉县" in text and "余姚市" in text and "苍溪县" in text
    text = client.get("/units/?category=national_key").get_data(as_text=True)
    assert "昭觉县" in text and "苍溪县" not in text
    text = client.get(f"/units/?prefecture={world.guangyuan}").get_data(as_text=True)
    assert "苍溪县" in text and "昭觉县" not in text
    text = client.get("/units/?paired=yes").get_data(as_text=True)
    assert "昭觉县" in text and "布拖县" not in text
    text = client.get("/units/?q=513431").get_data(as_text=True)
    assert "昭觉县" in text and "布拖县" not in text
    assert "余姚市" in client.get("/units/?side=east").get_data(as_text=True)


def test_county_page_answers_partners_of_a_quarter(client, world):
    login(client, "province")
    text = client.get(f"/units/{world.cangxi}?quarter=2019年第2季度").get_data(as_text=True)
    assert "顺德区" in text and "2019年第2季度" in text
    text = client.get(f"/units/{world.cangxi}?quarter=2024Q1").get_data(as_text=True)
    assert "该季度没有有效的结对" in text
    text = client.get(f"/units/{world.cangxi}?quarter=2024Q5").get_data(as_text=True)
    assert "格式不正确" in text


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2024Q1", date(2024, 1, 1), date(2024, 3, 31)),
        ("2024-q2", date(2024, 4, 1), date(2024, 6, 30)),
        ("2024年第3季度", date(2024, 7, 1), date(2024, 9, 30)),
        ("2020Q4", date(2020, 10, 1), date(2020, 12, 31)),
    ],
)
def test_quarter_parsing(text, start, end):
    quarter = Quarter.parse(text)
    assert (quarter.start, quarter.end) == (start, end)
    assert Quarter.parse(str(quarter)) == quarter
    assert quarter.year_to_date == Period(date(start.year, 1, 1), end)
    assert quarter.previous_year().start == start.replace(year=start.year - 1)


@pytest.mark.parametrize("text", ["", "2024", "2024Q0", "2024Q5", "Q1 2024", "二〇二四年第一季度"])
def test_bad_quarters_are_refused_in_chinese(text):
    with pytest.raises(ValueError, match="格式不正确"):
        Quarter.parse(text)


def test_quarter_containing_and_period_order():
    assert str(Quarter.containing(date(2021, 4, 1))) == "2021Q2"
    with pytest.raises(ValueError, match="早于"):
        Period(date(2024, 2, 1), date(2024, 1, 1))
    assert UnitKind.COUNTY.label == "县(市、区)"
