"""The keyword index (kernel/search.py) gives exactly what the LIKE it stands in front of gives, for one-, two- and
three-character Chinese names, masked number fragments, employers and evidence numbers, before and after the index
catches up, after edits and deletes, through the services and the bulk insert; and the search reads the index."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.exchanges.models import Exchange
from registry.kernel import idnumbers, search
from registry.kernel.database import prepare_bulk_insert
from registry.kernel.extensions import db
from registry.kernel.web import like_pattern
from registry.placements.models import Placement
from registry.purchases.models import Purchase
from tests.conftest import login
from tests.factories import make_exchange, make_placement, make_purchase

NAMES = ["王", "王芳", "李王芳", "吉克阿依", "张伟", "Wang Fang", "芳", "王芳芳"]
EMPLOYERS = ["宁波某服饰有限公司", "王芳食品厂", "FP-2024 电子", "杭州芳华", "", "100%纯", "a_b\\c"]
QUERIES = [
    "王", "芳", "王芳", "李王芳", "吉克", "克阿", "吉克阿依", "阿依吉", "张", "伟", "wang", "WANG", "g f", "有限",
    "宁波某服饰有限公司", "某服", "FP", "fp-2024", "2024", "-", " ", "5134", "****", "1239", "*1", "华", "芳华",
    "100%", "%", "_", "a_b", "\\", "纯", "宁波某服饰有限公司X", "食品厂", "0001", "FP-2019-0001", "茶", "苦荞",
]  # fmt: skip


def _number(county_code: str, n: int) -> str:
    body = f"{county_code}19900101{n:03d}"
    return body + idnumbers.check_digit(body)


def _like(model, query):
    columns = [model.__table__.c[c] for c in search.SEARCHED[model.__tablename__]]
    return sa.or_(*(c.like(like_pattern(query)) for c in columns))


def _assert_same(model):
    for query in QUERIES:
        by_index = set(db.session.scalars(sa.select(model.id).where(search.keyword(model, query))))
        by_like = set(db.session.scalars(sa.select(model.id).where(_like(model, query))))
        assert by_index == by_like, (model.__name__, query)


def _records(world):
    county = world.zhaojue
    for n, (name, employer) in enumerate(zip(NAMES, EMPLOYERS * 2, strict=False)):
        make_placement(county, person_name=name, employer=employer, id_number=_number(county.code, n + 10))
    for n, seller in enumerate(["昭觉县王芳合作社", "苦荞茶公司", "Wang 茶"]):
        make_purchase(county, seller_name=seller, evidence_no=f"FP-2024-01{n}", product="苦荞茶" if n else "茶")
    make_exchange(county, person_name="王芳")
    db.session.flush()


@pytest.mark.parametrize("model", [Placement, Purchase, Exchange])
def test_the_index_finds_exactly_what_like_finds(world_records, model):
    _records(world_records)
    _assert_same(model)  # new records: above the mark on SQLite
    db.session.commit()
    search.catch_up()
    _assert_same(model)  # indexed
    for record in db.session.scalars(sa.select(model)).all()[::2]:
        for column in search.SEARCHED[model.__tablename__]:
            setattr(record, column, getattr(record, column)[::-1] + "王芳")
    db.session.flush()
    _assert_same(model)  # edited after indexing: the triggers re-index
    for record in db.session.scalars(sa.select(model)).all()[1::3]:
        db.session.delete(record)
    db.session.flush()
    _assert_same(model)
    db.session.commit()
    search.catch_up()
    _assert_same(model)


def test_a_bulk_insert_is_found_before_and_after_the_catch_up(world_records):
    """The importers' bulk path (database.prepare_bulk_insert) needs no hook: its rows lie above the mark until
    the task queue's catch-up indexes them."""
    county = world_records.zhaojue
    rows = []
    for n, name in enumerate(["王芳", "吉克阿依", "李"]):
        number = _number(county.code, 100 + n)
        person = db.session.execute(
            sa.text("INSERT INTO people (fingerprint) VALUES (:f) RETURNING id"), {"f": idnumbers.fingerprint(number)}
        ).scalar_one()
        rows.append({
            "person_name": name, "id_stored": idnumbers.protect(number),
            "id_fingerprint": idnumbers.fingerprint(number), "id_masked": idnumbers.parse(number).masked,
            "person_id": person, "sex": "男", "birth_date": date(1990, 1, 1),
            "household": "lifted", "origin_county_id": county.id, "destination_class": "east_partner",
            "employer": f"批量{name}公司", "start_date": date(2024, 1, 2), "version_id": 1,
        })  # fmt: skip
    connection = db.session.connection()
    _, write = prepare_bulk_insert(connection, Placement.__table__, rows, ids=True)
    write()
    _assert_same(Placement)
    assert db.session.scalar(sa.select(sa.func.count()).where(search.keyword(Placement, "批量吉克"))) == 1
    db.session.commit()
    search.catch_up()
    _assert_same(Placement)
    assert search.unindexed("placements") == 0


def test_the_sqlite_index_equals_one_rebuilt_from_the_records(world_records, app):
    """After creates, edits and deletes the FTS5 table holds exactly the tokens of the records up to the mark."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's FTS5 table; PostgreSQL maintains its GIN index itself")
    _records(world_records)
    db.session.commit()
    search.catch_up()
    for record in db.session.scalars(sa.select(Placement)).all()[::2]:
        record.person_name = record.person_name + "测"
    for record in db.session.scalars(sa.select(Placement)).all()[1::3]:
        db.session.delete(record)
    db.session.commit()
    search.catch_up()
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp.rebuilt USING fts5(grams, content='', columnsize=0, detail=none, "
            "tokenize='ascii')"
        )
        conn.exec_driver_sql(
            f"INSERT INTO temp.rebuilt(rowid, grams) SELECT new.id, {search.sqlite_tokens('placements')} "
            "FROM placements AS new"
        )
        conn.exec_driver_sql("CREATE VIRTUAL TABLE temp.v1 USING fts5vocab(main, placements_search, 'row')")
        conn.exec_driver_sql("CREATE VIRTUAL TABLE temp.v2 USING fts5vocab(temp, rebuilt, 'row')")
        live = conn.exec_driver_sql("SELECT term, doc FROM temp.v1 WHERE doc > 0 ORDER BY term").all()
        rebuilt = conn.exec_driver_sql("SELECT term, doc FROM temp.v2 ORDER BY term").all()
        conn.exec_driver_sql("DROP TABLE temp.v1")
        conn.exec_driver_sql("DROP TABLE temp.v2")
        conn.exec_driver_sql("DROP TABLE temp.rebuilt")
    assert live == rebuilt and live


def test_a_search_reads_the_index_not_the_table(world_records):
    _records(world_records)
    db.session.commit()
    search.catch_up()
    stmt = sa.select(Placement.id).where(search.keyword(Placement, "王芳"))
    if db.engine.dialect.name == "sqlite":
        plan = " ".join(str(r) for r in db.session.execute(sa.text("EXPLAIN QUERY PLAN " + _sql(stmt))).all())
        # The candidates come from the FTS5 index as one IN list (on a table this small SQLite may still choose to
        # scan it and test each row against that list; at a million rows it reads them by rowid, /tmp/h6/bench).
        assert "VIRTUAL TABLE INDEX" in plan and "LIST SUBQUERY" in plan
    else:
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(db.session.scalars(sa.text("EXPLAIN " + _sql(stmt))))
        assert "placements_search_grams" in plan


def _sql(stmt) -> str:
    return str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("query", ["王", "王芳", "李王芳", "有限", "5134"])
def test_the_list_pages_search_with_the_index(app, world_records, query):
    _records(world_records)
    db.session.commit()
    expected = db.session.scalar(sa.select(sa.func.count()).select_from(Placement).where(_like(Placement, query)))
    client = app.test_client()
    login(client, "province")
    body = client.get("/placements/", query_string={"q": query}).get_data(as_text=True)
    assert f'<span class="num">{expected}</span><span>就业记录</span>' in body
    for stream in ("purchases", "exchanges"):
        assert client.get(f"/{stream}/", query_string={"q": query}).status_code == 200


def test_the_command_brings_the_index_up_to_date(app, world, runner):
    result = runner.invoke(args=["tasks", "search-index"])
    assert result.exit_code == 0 and "关键词索引新增" in result.output
    with app.app_context():
        assert search.unindexed("placements") == search.unindexed("purchases") == 0
