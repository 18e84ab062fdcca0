"""Consumption purchases (evidence counted once across channels) and people exchanged (in post, 到岗率)."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements.models import Indicator
from registry.agreements.services import progress, set_targets
from registry.exchanges.models import Direction, Field, PersonType
from registry.extensions import db
from registry.purchases.models import CountingType, Purchase
from registry.services import ServiceError
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
    make_exchange(w.zhaojue, direction=Direction.WEST_TO_EAST)  # the other direction is not East's 选派
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
    assert text.splitlines()[0].startswith("姓名,方向,类型") and "昭觉县" in text and "苍溪县" not in text
