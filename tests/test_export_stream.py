"""List exports are streamed (written to a temporary file as the rows are read, then sent from it), keep formula
neutralisation and masking, and import back unchanged."""

import csv
import io

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from registry.kernel import exports
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.placements.models import Placement
from registry.placements.transfer import HEADERS
from tests.conftest import login


def _note(app, placement_id, note):
    with app.app_context():
        db.session.get(Placement, placement_id).note = note
        db.session.commit()


def test_the_csv_export_is_streamed_and_imports_back_unchanged(app, world, monkeypatch):
    monkeypatch.setattr(exports, "CSV_LINES", 1)  # one line per chunk: the body really comes in pieces
    _note(app, world.placement_a, "=1+1")
    client = app.test_client()
    login(client, "county")
    response = client.get("/placements/export.csv")
    assert response.status_code == 200 and response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"] and response.headers["Cache-Control"] == "no-store"
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == HEADERS and len(rows) == 2  # the county's one record only
    assert rows[1][2] == "5134**********1239" and rows[1][-1] == "'=1+1"
    again = client.post("/placements/import", data={"file": (io.BytesIO(body), "p.csv")},
                        content_type="multipart/form-data")  # fmt: skip
    assert "更新 0 条，未变 1 条" in again.get_data(as_text=True)


def test_the_xlsx_export_is_sent_from_a_file_and_imports_back_unchanged(app, world):
    _note(app, world.placement_a, "@SUM(A1)")
    client = app.test_client()
    login(client, "county")
    response = client.get("/placements/export.xlsx")
    assert response.status_code == 200 and response.is_streamed
    body = response.get_data()
    assert int(response.headers["Content-Length"]) == len(body)
    sheet = load_workbook(io.BytesIO(body)).active
    assert [c.value for c in sheet[1]] == HEADERS and sheet.max_row == 2
    assert sheet.cell(2, 3).value == "5134**********1239" and sheet.cell(2, len(HEADERS)).value == "'@SUM(A1)"
    again = client.post("/placements/import", data={"file": (io.BytesIO(body), "p.xlsx")},
                        content_type="multipart/form-data")  # fmt: skip
    assert "更新 0 条，未变 1 条" in again.get_data(as_text=True)


def test_a_full_number_export_is_audited_with_its_row_count(app, world):
    client = app.test_client()
    login(client, "province")
    response = client.get("/placements/export.csv?full=1")
    assert response.status_code == 200 and response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert len(rows) == 3 and "*" not in rows[1][2] + rows[2][2]
    with app.app_context():
        summary = db.session.scalar(sa.select(AuditEvent.summary).where(AuditEvent.action == "export_id"))
    assert summary.endswith(" 2 条")


def test_many_rows_stream_in_chunks(app):
    """The CSV is made CSV_LINES rows at a time, never the whole file at once."""
    rows = ([n, f"名{n}", "=x"] for n in range(1, 1201))
    with app.test_request_context():
        chunks = list(exports._csv_lines(["a", "b", "c"], rows))
    assert len(chunks) == 1 + 3  # the header, then 500 + 500 + 200 lines
    text = b"".join(chunks).decode("utf-8-sig").splitlines()
    assert text[0] == "a,b,c" and text[1] == "1,名1,'=x" and len(text) == 1201


def test_keyset_batches_give_every_record_once_in_order_across_ties(app, world):
    """Batches continue after the last (date, id) seen: records sharing a date are neither lost nor repeated where
    a batch ends among them."""
    from datetime import date

    from registry.counties.models import Unit
    from registry.kernel.database import keyset_batches
    from registry.purchases.models import Purchase
    from tests.factories import make_purchase

    with app.app_context():
        zhaojue = db.session.get(Unit, world.zhaojue)
        for day in (3, 1, 3, 2, 3, 3, 1):
            make_purchase(zhaojue, purchased_on=date(2024, 7, day))
        db.session.commit()
        order = (Purchase.purchased_on, Purchase.id)
        expected = db.session.execute(sa.select(*order).order_by(*order)).all()
        for size in (1, 2, 3, 100):
            batches = list(
                keyset_batches(db.session, sa.select(Purchase), order, lambda p: (p.purchased_on, p.id), size)
            )
            assert all(0 < len(b) <= size for b in batches)
            assert [(p.purchased_on, p.id) for b in batches for p in b] == [tuple(r) for r in expected]


def _data_rows(body: bytes, kind: str) -> list[list[str]]:
    """The rows under the header of an exported CSV or XLSX, as text."""
    if kind == "csv":
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]
    sheet = load_workbook(io.BytesIO(body)).active
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(min_row=2, values_only=True)]


@pytest.mark.parametrize(("stream", "expected"), [("purchases", 2), ("exchanges", 2), ("placements", 2)])
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_list_exports_stream_batch_by_batch_and_import_back_unchanged(app, world, monkeypatch, stream, expected, kind):
    """Every large list's export is written while its rows are read one batch at a time (one row per batch
    here), and the file still imports back as unchanged."""
    from registry.kernel import database

    monkeypatch.setattr(database.keyset_batches, "__defaults__", (1,))
    client = app.test_client()
    login(client, "province")
    response = client.get(f"/{stream}/export.{kind}")
    assert response.status_code == 200 and response.is_streamed
    body = response.get_data()
    assert len(_data_rows(body, kind)) == expected
    again = client.post(f"/{stream}/import", data={"file": (io.BytesIO(body), f"x.{kind}")},
                        content_type="multipart/form-data")  # fmt: skip
    assert "新增 0 条，更新 0 条" in again.get_data(as_text=True) or "更新 0 条，未变" in again.get_data(as_text=True)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_project_and_fund_exports_stream_every_record_once_in_order(app, world, monkeypatch, kind):
    """The fund ledger is read one transaction per batch here (after the last project code, date and id seen);
    the project list is sent from a file too."""
    from registry.kernel import database
    from registry.projects.models import FundTransaction, Project

    monkeypatch.setattr(database.keyset_batches, "__defaults__", (1,))
    client = app.test_client()
    login(client, "province")
    with app.app_context():
        order = (Project.code, FundTransaction.occurred_on, FundTransaction.id)
        ledger = db.session.execute(
            sa.select(Project.code, FundTransaction.occurred_on).join(Project).order_by(*order)
        ).all()
        codes = db.session.scalars(sa.select(Project.code).order_by(Project.code)).all()
    assert len(ledger) >= 2  # a batch boundary is crossed
    for url, expected in (("/projects/funds/export", [(c, d.isoformat()) for c, d in ledger]),
                          ("/projects/export", codes)):  # fmt: skip
        response = client.get(f"{url}.{kind}")
        assert response.status_code == 200 and response.is_streamed
        rows = _data_rows(response.get_data(), kind)
        got = [(r[0], r[4][:10]) for r in rows] if "funds" in url else [r[0] for r in rows]
        assert got == expected
