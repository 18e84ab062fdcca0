"""Consumption purchases (evidence counted once across channels) and people exchanged (in post, 到岗率)."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Indicator
from registry.agreements.services import progress, set_targets
from registry.exchanges.models import Direction, Field, PersonType
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.purchases.models import CountingType, Purchase
from tests.conftest import login
from tests.factories import World, make_exchange, make_purchase


@pytest.fixture
def w(ctx):
    return World()


def _rows(w, cutoff=date(2024, 12, 31)):
    return {r.code: r for r in progress(w.agreement_zc, w.zhaojue, cutoff)}


def test_the_same_evidence_counts_once_across_channels(w):
    with pytest.raises(ServiceError) as info:
        make_purchase(w.zhaojue, evidence_no=" fp-2024-0001 ", channel_id=2)  # same invoice, other channel
    assert "已于 2024-05-01 在“政采云四川馆”计入" in str(info.value) and info.value.field == "evidence_no"
    assert db.session.scalar(sa.select(sa.func.count(Purchase.id))) == 2


def test_consumption_sums_purchases_and_helped_sales_of_the_programme(w):
    make_purchase(
        w.zhaojue, amount_fen=12_345_00, counting_type=CountingType.HELPED_SALE, purchased_on=date(2024, 9, 1)
    )
    make_purchase(w.zhaojue, amount_fen=1_00, purchased_on=date(2023, 12, 31))  # last year
    rows = _rows(w)
    assert rows["consumption"].actual == 5_000_000 + 12_345_00
    assert _rows(w, date(2024, 6, 30))["consumption"].actual == 5_000_000


def test_people_in_post_and_the_arrival_rate(w):
    cadres = db.session.scalar(sa.select(Indicator).where(Indicator.code == "cadres"))
    set_targets(w.agreement_zc, w.zhaojue, {cadres.id: 4}, actor=None)
    make_exchange(w.zhaojue, arrival_date=date(2023, 6, 1), departure_date=date(2024, 2, 1))  # in post in 2024 too
    make_exchange(w.zhaojue, arrival_date=date(2022, 1, 1), departure_date=date(2023, 6, 30))  # left before 2024
    # The other direction is not East's 选派: it counts against its own indicator.
    make_exchange(w.zhaojue, direction=Direction.WEST_TO_EAST, sending_unit="昭觉县人民政府",
                  receiving_unit="宁波市余姚市人民政府")  # fmt: skip
    make_exchange(w.zhaojue, person_type=PersonType.PROFESSIONAL, field=Field.HEALTH)
    rows = _rows(w)
    assert rows["cadres"].actual == 2 and str(rows["cadres"].rate) == "50.00"
    assert rows["professionals"].actual == 1
    with pytest.raises(ServiceError, match="请选择领域"):
        make_exchange(w.zhaojue, person_type=PersonType.PROFESSIONAL)
    with pytest.raises(ServiceError, match="离岗日期早于到岗日期"):
        make_exchange(w.zhaojue, departure_date=date(2020, 1, 1))


def test_pages_scope_and_errors(app, world):
    county = app.test_client()
    login(county, "county")
    listing = county.get("/purchases/").get_data(as_text=True)
    assert "FP-2024-0001" in listing and "FP-2019-0001" not in listing
    assert county.get(f"/purchases/{world.purchase_b}").status_code == 404
    data = {
        "purchased_on": "2024-06-01", "buyer_name": "宁波某超市", "buyer_kind": "enterprise", "seller_name": "某合作社",
        "seller_kind": "cooperative", "seller_county_id": str(world.zhaojue), "product": "马铃薯",
        "product_category": "fruit_veg", "amount_fen": "8000", "channel_id": "3", "counting_type": "helped_sale",
        "evidence_no": "FP-2024-0001",
    }  # fmt: skip
    assert "同一凭证不能重复计入" in county.post("/purchases/new", data=data).get_data(as_text=True)
    assert county.post("/purchases/new", data=data | {"evidence_no": "HT-9"}).status_code in (302, 303)
    assert county.post("/purchases/channels", data={"name": "新渠道"}).status_code == 403
    people = county.get("/exchanges/").get_data(as_text=True)
    assert "宁波市余姚市人民政府" in people and county.get(f"/exchanges/{world.exchange_b}").status_code == 404
    admin = app.test_client()
    login(admin, "admin")
    assert admin.post("/purchases/channels", data={"name": "消费帮扶月活动"}).status_code in (302, 303)
    assert "消费帮扶月活动" in admin.get("/purchases/channels").get_data(as_text=True)


def test_exports_follow_scope_and_neutralise_formulas(app, world):
    with app.app_context():
        db.session.get(Purchase, world.purchase_a).note = "@SUM(A1)"
        db.session.commit()
    client = app.test_client()
    login(client, "county")
    text = client.get("/purchases/export.csv").data.decode("utf-8-sig")
    assert "FP-2024-0001" in text and "FP-2019-0001" not in text and "'@SUM(A1)" in text and ",50000.00," in text
    text = client.get("/exchanges/export.csv").data.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("编号,姓名,方向,类型") and "昭觉县" in text and "苍溪县" not in text


def test_purchases_round_trip_by_evidence_number(app, world):
    import io

    from openpyxl import load_workbook

    client = app.test_client()
    login(client, "county")
    book = load_workbook(io.BytesIO(client.get("/purchases/export.xlsx").data))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    sheet.cell(2, header.index("产品") + 1, "苦荞茶（礼盒）")
    sheet.cell(2, header.index("备注") + 1, None)  # blank: keeps the stored note
    new = ["2024-09-01", "宁波某超市", "企业", "浙江省", "宁波市", "昭觉某合作社", "合作社", "513431", "昭觉县",
           "马铃薯", "果蔬", "1200.50", "直采", "帮助销售", "HT-2024-77", ""]  # fmt: skip
    sheet.append(new)
    buffer = io.BytesIO()
    book.save(buffer)
    with app.app_context():
        db.session.get(Purchase, world.purchase_a).note = "保留"
        db.session.commit()
    response = client.post("/purchases/import", data={"file": (io.BytesIO(buffer.getvalue()), "p.xlsx")},
                           content_type="multipart/form-data")  # fmt: skip
    assert "新增 1 条，更新 1 条" in response.get_data(as_text=True)
    with app.app_context():
        purchase = db.session.get(Purchase, world.purchase_a)
        assert purchase.product == "苦荞茶（礼盒）" and purchase.note == "保留"
        added = db.session.scalar(sa.select(Purchase).where(Purchase.evidence_key == "HT-2024-77"))
        assert added.amount_fen == 120050 and added.pairing_id == world.a
    # A bad row anywhere: nothing written, the reason listed.
    sheet.append([*new[:11], "abc", "无此渠道", "帮助销售", "HT-2024-78", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    text = client.post("/purchases/import", data={"file": (io.BytesIO(buffer.getvalue()), "p.xlsx")},
                       content_type="multipart/form-data").get_data(as_text=True)  # fmt: skip
    assert "未导入" in text and "不是有效的金额" in text and "没有这个渠道" in text
    with app.app_context():
        assert db.session.scalar(sa.select(Purchase).where(Purchase.evidence_key == "HT-2024-78")) is None


def test_exchanges_round_trip(app, world):
    import io

    client = app.test_client()
    login(client, "county")
    exported = client.get("/exchanges/export.csv").data.decode("utf-8-sig")
    lines = exported.splitlines()
    edited = lines[0] + "\n" + lines[1].replace("宁波市余姚市人民政府", "余姚市人民政府办公室") + "\n"
    edited += (
        ",周晓东,东部选派到四川,专业技术人才,医疗,330281,余姚市人民医院,513431,昭觉县人民医院,513431,,,2024-09-01,,\n"
    )
    edited += ",缺领域,东部选派到四川,专业技术人才,,,余姚市,,昭觉县,513431,,,2024-09-01,,\n"
    response = client.post("/exchanges/import", data={"file": (io.BytesIO(edited.encode("utf-8-sig")), "e.csv")},
                           content_type="multipart/form-data")  # fmt: skip
    assert "专业技术人才请选择领域" in response.get_data(as_text=True)
    edited = "\n".join(edited.splitlines()[:3]) + "\n"
    response = client.post("/exchanges/import", data={"file": (io.BytesIO(edited.encode("utf-8-sig")), "e.csv")},
                           content_type="multipart/form-data")  # fmt: skip
    assert "新增 1 条，更新 1 条" in response.get_data(as_text=True)
    from registry.exchanges.models import Exchange

    with app.app_context():
        assert db.session.get(Exchange, world.exchange_a).sending_unit == "余姚市人民政府办公室"
        added = db.session.scalar(sa.select(Exchange).where(Exchange.person_name == "周晓东"))
        assert added.field is Field.HEALTH and added.pairing_id == world.a
        assert (added.sending_unit_id, added.receiving_unit_id) == (world.yuyao, world.zhaojue)
        assert added.sending_unit == "余姚市人民医院"
