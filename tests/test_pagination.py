"""Pages of a long list: a page in the second half is read from the other end and is the same page; a list
without a known total is counted only a few pages ahead and says “更多”."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.kernel import web
from registry.kernel.extensions import db
from registry.purchases.models import Purchase
from tests.conftest import login
from tests.factories import make_purchase

DAYS = (3, 1, 3, 2, 3, 3, 1, 5, 4, 3, 2)


@pytest.fixture
def purchases(world_records):
    for n, day in enumerate(DAYS):
        make_purchase(world_records.zhaojue, purchased_on=date(2024, 7, day), evidence_no=f"PG-{n:03d}",
                      amount_fen=1000 * (n % 4) + 100)  # fmt: skip
    db.session.commit()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Purchase))


def _page(app, stmt, page, **kw):
    with app.test_request_context(f"/purchases/?page={page}"):
        return web.paginate(stmt, args={}, per_page=3, **kw)


@pytest.mark.parametrize(
    "order",
    [
        (Purchase.purchased_on.desc(), Purchase.id.desc()),
        (Purchase.purchased_on.asc(), Purchase.id.asc()),
        (Purchase.amount_fen.desc(), Purchase.id.asc()),
        (Purchase.amount_fen.asc(),),  # not ending with the id: read forwards, never backwards
    ],
)
def test_every_page_is_its_slice_of_the_whole_list_read_from_either_end(app, purchases, order):
    stmt = sa.select(Purchase).order_by(*order)
    whole = [p.id for p in db.session.scalars(stmt)]
    pages = -(-purchases // 3)
    for number in range(1, pages + 2):  # one past the last: the last page
        page = _page(app, stmt, number, total=purchases)
        shown = min(number, pages)
        assert page.page == shown and page.pages == pages and not page.more
        if len(order) == 2:
            assert [p.id for p in page.items] == whole[(shown - 1) * 3 : shown * 3]
        else:
            assert len(page.items) == len(whole[(shown - 1) * 3 : shown * 3])


def test_the_second_half_is_read_backwards(app, purchases):
    stmt = sa.select(Purchase).order_by(Purchase.purchased_on.desc(), Purchase.id.desc())
    assert web._reversed_order(stmt) is not None
    assert web._reversed_order(sa.select(Purchase).order_by(Purchase.amount_fen.desc())) is None
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        _page(app, stmt, -(-purchases // 3), total=purchases)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert any("ORDER BY purchases.purchased_on ASC, purchases.id ASC" in s for s in statements)


def test_without_a_total_a_long_list_is_counted_a_few_pages_ahead(app, purchases, monkeypatch):
    monkeypatch.setattr(web, "COUNT_AHEAD_PAGES", 1)
    stmt = sa.select(Purchase).order_by(Purchase.id)
    page = _page(app, stmt, 1)
    assert page.more and page.total == 6 and page.has_next and 4 not in page.window()
    assert [p.id for p in page.items] == [p.id for p in db.session.scalars(stmt.limit(3))]
    near_end = _page(app, stmt, 4)
    assert not near_end.more and near_end.total == purchases
    with app.test_request_context("/purchases/?page=1"):
        html = app.jinja_env.from_string(
            '{% from "_macros/tables.html" import pagination %}{{ pagination(page) }}'
        ).render(page=page)
    assert "更多" in html and "6 条以上" in html


def test_the_list_page_shows_its_last_page(app, purchases, monkeypatch):
    monkeypatch.setitem(app.config, "ITEMS_PER_PAGE", 4)
    client = app.test_client()
    login(client, "province")
    whole = db.session.scalars(
        sa.select(Purchase.evidence_no).order_by(Purchase.purchased_on.desc(), Purchase.id.desc())
    ).all()
    last = -(-len(whole) // 4)
    body = client.get(f"/purchases/?page={last}").get_data(as_text=True)
    for number in whole[(last - 1) * 4 :]:
        assert number in body
    assert whole[(last - 1) * 4 - 1] not in body
