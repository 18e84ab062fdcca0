"""Exports at driver speed give the cells the record-by-record exports gave; above EXPORT_BACKGROUND_ROWS a list's
export is a background job with progress and a download of the same file, which imports back unchanged."""

import csv
import io
from datetime import date

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from registry.exchanges import queries as exchange_queries
from registry.exchanges import transfer as exchange_transfer
from registry.kernel import exports
from registry.kernel.extensions import db
from registry.placements import queries as placement_queries
from registry.placements import transfer as placement_transfer
from registry.placements.models import Placement
from registry.purchases import queries as purchase_queries
from registry.purchases import transfer as purchase_transfer
from registry.purchases.models import Purchase
from registry.tasks.models import JobKind, JobState
from tests.conftest import login
from tests.tasks_support import Queue, ThreadConsumer, finished, queue_settings, wait_for


def _legacy(rows, kind):
    """What the record-by-record exports wrote into each cell."""
    if kind == "csv":
        return [[exports.neutralise(exports._csv_text(v)) for v in row] for row in rows]
    return [[exports._xlsx_value(v) for v in row] for row in rows]


def _fast(batches, kind):
    rows = [list(row) for batch in batches for row in batch]
    if kind == "csv":  # the csv module writes None as "" and numbers with str()
        return [["" if v is None else str(v) for v in row] for row in rows]
    return rows


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_the_row_tuples_give_the_cells_the_records_gave(app, world_records, monkeypatch, kind):
    for record in (world_records.placement_a, world_records.purchase_a, world_records.exchange_a):
        record.note = "=HYPERLINK(1)"
    world_records.placement_a.employer = "'+1"
    world_records.placement_a.monthly_wage_fen = 345_607
    world_records.placement_a.end_date = date(2024, 9, 30)
    world_records.purchase_a.buyer_name = "@buyer"
    db.session.flush()
    monkeypatch.setattr(exports, "EXPORT_BATCH", 1)  # every row its own keyset batch
    from registry.kernel import database

    monkeypatch.setattr(database.keyset_batches, "__defaults__", (1,))
    stmt = sa.select(Placement)
    for reveal in (False, True):
        assert _fast(placement_queries.export_batches(stmt, kind, reveal=reveal), kind) == _legacy(
            placement_transfer.export_rows(stmt, reveal=reveal), kind
        )
    stmt = sa.select(Purchase)
    assert _fast(purchase_queries.export_batches(stmt, kind), kind) == _legacy(
        purchase_transfer.export_rows(stmt), kind
    )
    stmt = exchange_queries.filtered({}, _province())[0]
    assert _fast(exchange_queries.export_batches(stmt, kind), kind) == _legacy(
        exchange_transfer.export_rows(stmt), kind
    )


def _province():
    from registry.auth.models import Role, User

    return db.session.scalar(sa.select(User).where(User.role == Role.PROVINCE).limit(1))


@pytest.fixture
def queue(app, tmp_path):
    with Queue(app, queue_settings("sqlite", tmp_path)) as q:
        yield q


def _rows(body: bytes, kind: str) -> list[list[str]]:
    if kind == "csv":
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    sheet = load_workbook(io.BytesIO(body)).active
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


@pytest.mark.parametrize("stream", ["placements", "purchases", "exchanges"])
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_large_export_is_a_job_whose_file_is_the_page_export(app, world, queue, monkeypatch, stream, kind):
    _note(app, stream, "=1+1")
    client = app.test_client()
    login(client, "province")
    immediate = client.get(f"/{stream}/export.{kind}")
    assert immediate.status_code == 200
    expected = _rows(immediate.get_data(), kind)
    monkeypatch.setitem(app.config, "EXPORT_BACKGROUND_ROWS", 1)
    response = client.get(f"/{stream}/export.{kind}")
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="job-progress"' in page and "导出" in page
    with ThreadConsumer():
        job = wait_for(app, job_id, finished)
    assert job.state is JobState.DONE and job.kind is JobKind.EXPORT, job.message
    status = client.get(f"/jobs/{job_id}/status").json
    assert status["done"] == status["total"] == len(expected) - 1 and status["download_name"].endswith(f".{kind}")
    download = client.get(status["download"])
    body = download.get_data()
    download.close()
    assert _rows(body, kind) == expected
    assert any("'=1+1" in row for row in expected)  # formulas stay neutralised
    again = client.post(f"/{stream}/import", data={"file": (io.BytesIO(body), f"x.{kind}")},
                        content_type="multipart/form-data")  # fmt: skip
    text = again.get_data(as_text=True)
    assert "新增 0 条，更新 0 条" in text or "更新 0 条，未变" in text


def _note(app, stream, note):
    from registry.exchanges.models import Exchange

    model = {"placements": Placement, "purchases": Purchase, "exchanges": Exchange}[stream]
    with app.app_context():
        db.session.scalars(sa.select(model).limit(1)).one().note = note
        db.session.commit()


def test_a_small_export_stays_in_the_request(app, world, queue):
    client = app.test_client()
    login(client, "province")
    response = client.get("/placements/export.xlsx")
    assert response.status_code == 200 and response.is_streamed
    response.close()


def test_a_full_number_export_job_is_audited_and_its_numbers_kept_from_others(app, world, queue, monkeypatch):
    from registry.kernel.audit.models import AuditEvent
    from registry.tasks.models import Job

    monkeypatch.setitem(app.config, "EXPORT_BACKGROUND_ROWS", 1)
    client = app.test_client()
    login(client, "province")
    response = client.get("/placements/export.csv?full=1")
    job_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    with ThreadConsumer():
        job = wait_for(app, job_id, finished)
    assert job.state is JobState.DONE, job.message
    download = client.get(f"/jobs/{job_id}/download")
    rows = _rows(download.get_data(), "csv")
    download.close()
    assert len(rows) == 3 and "*" not in rows[1][2] + rows[2][2]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "export_id")) == 1
        assert db.session.get(Job, job_id).params["full"] is True
