"""Exporting and re-importing unchanged records is a no-op: the apostrophe an export puts before formula-like text
(so a spreadsheet shows it instead of running it) is recognised and taken off by the import."""

import io

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from registry.exchanges.models import Exchange
from registry.kernel.audit.models import AuditEvent
from registry.kernel.exports import neutralise, unescape
from registry.kernel.extensions import db
from registry.kernel.transfer.reader import read_table
from registry.placements.models import Placement
from registry.purchases.models import Purchase
from tests.conftest import login

#: Text a spreadsheet would run, and text that merely looks like an escaped formula.
FORMULA_LIKE = {
    Purchase: {
        "buyer_name": '=HYPERLINK("http://example.com","宁波食堂")',
        "seller_name": "+86 昭觉合作社",
        "product": "-苦荞茶-",
        "note": "@SUM(A1)",
        "buyer_city": "'=宁波市",
        "evidence_no": "-FP-2024-0001",
    },
    Placement: {
        "employer": "=1+2 服饰有限公司",
        "training": "-电工培训",
        "destination_city": "'+宁波市",
        "origin_township": "@乡",
        "note": "''=备注",
    },
    Exchange: {
        "sending_unit": "=余姚市人民政府",
        "position": "+挂职副县长",
        "note": "-'=备注",
        "receiving_unit": "'昭觉县人民政府",
    },
}


@pytest.mark.parametrize(
    "text",
    ["=1", "'=1", "''=1", "-", "'", "''", "'abc", "abc", "'\tx", "\tx", "@", "+1", "=", "'-"],
)
def test_unescape_undoes_neutralise(text):
    assert unescape(neutralise(text)) == text


def _set_formula_like(app, world):
    with app.app_context():
        for model, record_id in ((Purchase, world.purchase_a), (Placement, world.placement_a),
                                 (Exchange, world.exchange_a)):  # fmt: skip
            record = db.session.get(model, record_id)
            for attr, value in FORMULA_LIKE[model].items():
                setattr(record, attr, value)
        db.session.get(Purchase, world.purchase_a).evidence_key = "-FP-2024-0001"
        db.session.commit()


def _stored(app, world) -> dict:
    with app.app_context():
        return {
            model: {
                attr: getattr(db.session.get(model, record_id), attr)
                for attr in (*FORMULA_LIKE[model], "version_id", "updated_at")
            }
            for model, record_id in (
                (Purchase, world.purchase_a),
                (Placement, world.placement_a),
                (Exchange, world.exchange_a),
            )  # fmt: skip
        }


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
@pytest.mark.parametrize("stream", ["purchases", "placements", "exchanges"])
def test_an_unchanged_export_imports_as_unchanged(app, world, stream, kind):
    _set_formula_like(app, world)
    before = _stored(app, world)
    client = app.test_client()
    login(client, "county")
    with app.app_context():
        events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    exported = client.get(f"/{stream}/export.{kind}").data
    # The export does neutralise: the escape is really there to be recognised.
    headers, rows = read_table(exported, f"x.{kind}")
    if kind == "xlsx":
        raw = [c.value for row in load_workbook(io.BytesIO(exported)).active.iter_rows(min_row=2) for c in row]
    else:
        raw = exported.decode("utf-8-sig")
    assert any(isinstance(v, str) and v.startswith("'=") for v in raw) if kind == "xlsx" else "'=" in raw
    rows = list(rows)
    response = client.post(
        f"/{stream}/import", data={"file": (io.BytesIO(exported), f"unchanged.{kind}")},
        content_type="multipart/form-data",
    )  # fmt: skip
    text = response.get_data(as_text=True)
    assert f"已导入 {len(rows)} 行" in text and "新增 0 条，更新 0 条" in text, text[-1500:]
    assert _stored(app, world) == before
    with app.app_context():
        # Only the import's own event: no record was created or changed.
        new = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.id > events)).all()
        assert [e.action for e in new] == ["import"] and new[0].changes == {"created": [], "updated": []}


def test_a_second_round_trip_adds_nothing_either(app, world):
    """Export, import, export again: the two exports are the same, apostrophes and all."""
    _set_formula_like(app, world)
    client = app.test_client()
    login(client, "county")
    first = client.get("/purchases/export.csv").data
    client.post(
        "/purchases/import", data={"file": (io.BytesIO(first), "p.csv")}, content_type="multipart/form-data"
    ).get_data()
    assert client.get("/purchases/export.csv").data == first
