"""The derived purchase totals: always equal to what the purchases say, and the list's count and totals by
channel read from them equal sums over the same filtered purchases, for every scope and filter."""

import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask_login import login_user

from registry.kernel.extensions import db
from registry.purchases import queries
from registry.purchases.models import CountingType, ProductCategory, Purchase, PurchaseTotals
from registry.purchases.services import update_purchase
from registry.purchases.transfer import HEADERS, import_purchases
from tests.conftest import login
from tests.factories import make_purchase


def totals_as_stored() -> dict:
    rows = db.session.execute(
        sa.select(PurchaseTotals.seller_county_id, PurchaseTotals.pairing_id, PurchaseTotals.channel_id,
                  PurchaseTotals.counting_type, PurchaseTotals.product_category, PurchaseTotals.year,
                  PurchaseTotals.purchases, PurchaseTotals.amount_fen)
    ).all()  # fmt: skip
    stored = {}
    for *key, count, amount in rows:
        assert tuple(key) not in stored, f"two rows for {key}"
        stored[tuple(key)] = (count, amount)
    return stored


def totals_from_purchases() -> dict:
    totals = {}
    for p in db.session.scalars(sa.select(Purchase)):
        key = (p.seller_county_id, p.pairing_id, p.channel_id, p.counting_type, p.product_category, p.purchased_on.year)
        count, amount = totals.get(key, (0, 0))
        totals[key] = (count + 1, amount + p.amount_fen)
    return totals


def assert_totals_consistent():
    db.session.flush()
    assert totals_as_stored() == totals_from_purchases()


@pytest.fixture
def w(world_records):
    world = world_records
    db.session.flush()
    return world


def populate(w, n=80, seed=3):
    rng = random.Random(seed)
    for _ in range(n):
        make_purchase(
            rng.choice([w.zhaojue, w.butuo, w.cangxi]),
            purchased_on=date(2019, 1, 1) + timedelta(days=rng.randint(0, 2000)),
            amount_fen=rng.randint(1, 10**8),
            channel_id=rng.randint(1, 3),
            counting_type=rng.choice(list(CountingType)),
            product_category=rng.choice(list(ProductCategory)),
            seller_name=rng.choice(["甲合作社", "乙公司"]),
        )


def test_every_service_write_keeps_the_totals_equal_to_the_purchases(w):
    assert_totals_consistent()
    p = make_purchase(w.zhaojue, purchased_on=date(2023, 3, 1), amount_fen=123)
    assert_totals_consistent()
    for change in (
        {"amount_fen": 456},
        {"channel_id": 2},
        {"counting_type": CountingType.HELPED_SALE},
        {"product_category": ProductCategory.HERBS},
        {"purchased_on": date(2019, 5, 5)},
        {"seller_county_id": w.cangxi.id},
        {"seller_county_id": w.zhaojue.id, "purchased_on": date(2024, 8, 8)},
    ):
        update_purchase(p, change, actor=w.admin)
        assert_totals_consistent()
    populate(w, n=30)
    assert_totals_consistent()


def test_an_import_rebuilds_the_totals_it_touched(w):
    populate(w, n=20)
    moved = db.session.scalars(sa.select(Purchase).order_by(Purchase.id).limit(2)).all()
    rows = [
        {"日期": f"{2020 + i}-06-0{i + 1}", "购买方": "宁波食堂", "购买方类型": "食堂", "销售方": "合作社",
         "销售方类型": "合作社", "销售方所在县代码": code, "产品": "茶", "产品类别": "茶叶", "金额(元)": "12.34",
         "渠道": "政采云四川馆", "计入方式": "采购", "发票号/合同号": f"IMP-{i}"}
        for i, code in enumerate(["513431", "513429", "510824"])
    ] + [
        {"发票号/合同号": moved[0].evidence_no, "日期": "2021-01-01", "金额(元)": "99"},
        {"发票号/合同号": moved[1].evidence_no, "销售方所在县代码": "513429", "计入方式": "帮助销售"},
    ]  # fmt: skip
    lines = [[row.get(h, "") for h in HEADERS] for row in rows]
    result = import_purchases(HEADERS, list(enumerate(lines, start=2)), user=w.admin, filename="t.csv")
    assert (result.errors, result.created, result.updated) == ([], 3, 2)
    assert_totals_consistent()


FILTERS = [
    {},
    {"year": "2022"},
    {"channel": "2", "counting_type": "purchase"},
    {"category": "tea", "year": "2021"},
    {"county": "zhaojue"},
    {"county": "cangxi", "year": "2019"},
    {"county": "butuo", "channel": "1", "counting_type": "helped_sale"},
    {"year": "1990"},
]


def _check(app, user, args):
    """The header the page computes equals a direct GROUP BY over the filtered purchases."""
    with app.test_request_context():
        login_user(user)
        stmt = queries.filtered(args, user)
        direct = db.session.execute(
            stmt.with_only_columns(Purchase.channel_id, Purchase.counting_type, sa.func.count(Purchase.id),
                                   sa.func.sum(Purchase.amount_fen))
            .group_by(Purchase.channel_id, Purchase.counting_type).order_by(None)
        ).all()  # fmt: skip
        from_totals = db.session.execute(
            sa.select(PurchaseTotals.channel_id, PurchaseTotals.counting_type, sa.func.sum(PurchaseTotals.purchases),
                      sa.func.sum(PurchaseTotals.amount_fen))
            .where(*queries.totals_filter(args, user)).group_by(PurchaseTotals.channel_id, PurchaseTotals.counting_type)
        ).all()  # fmt: skip
    expected = {(c, t): (int(n), int(a)) for c, t, n, a in direct}
    assert {(c, t): (int(n), int(a)) for c, t, n, a in from_totals} == expected, (user, args)
    return expected


def test_the_totals_equal_the_filtered_purchases_for_every_scope_and_filter(app, w):
    populate(w)
    db.session.flush()
    nonempty = 0
    for name in ("admin", "province", "prefecture", "county", "liaison", "reader"):
        for args in FILTERS:
            args = {k: str(getattr(w, v).id) if k == "county" else v for k, v in args.items()}
            nonempty += bool(_check(app, getattr(w, name), args))
    assert nonempty > 20


def test_the_list_page_shows_the_totals(app, w, client):
    populate(w, n=30)
    db.session.commit()
    login(client, "county")
    expected = _check(app, w.county, {"year": "2022"})
    page = client.get("/purchases/?year=2022").get_data(as_text=True)
    assert f'<span class="num">{sum(n for n, _ in expected.values())}</span><span>记录</span>' in page
    keyword = _check(app, w.county, {"year": "2022", "q": "甲合作社"})
    page = client.get("/purchases/?year=2022&q=甲合作社").get_data(as_text=True)
    assert f'<span class="num">{sum(n for n, _ in keyword.values())}</span><span>记录</span>' in page
