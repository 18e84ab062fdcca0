"""The placements import writes in chunks and bulk INSERTs: it must do exactly what the form's service does row by
row (same records, same audit entries, same derived cells, same refusals), and a file read in many chunks must be
matched as if it had been matched whole before any write."""

import csv
import io
import json

import pytest
import sqlalchemy as sa
from pyroaring import BitMap

from registry.kernel import idnumbers
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.services import ServiceError
from registry.kernel.transfer.reader import read_table
from registry.placements import services, transfer
from registry.placements.models import Person, Placement, PlacementCell
from registry.placements.transfer import HEADERS, import_placements
from tests.factories import ID_A

ID_B = "513431198805051231"


def _number(region: str, n: int) -> str:
    body = f"{region}19900101{n:03d}"
    return body + idnumbers.check_digit(body)


def _row(**cells):
    base = {
        "姓名": "沙马拉则", "身份证号": ID_B, "户类型": "脱贫户", "户籍县代码": "513431",
        "就业去向": "到东部协作地就业", "就业省份": "浙江省", "就业城市": "宁波市", "就业单位": "宁波某电子厂",
        "有组织转移": "是", "就业开始": "2024-05-01", "月工资(元)": "4800",
    }  # fmt: skip
    return base | cells


def _csv(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow([row.get(h, "") for h in HEADERS])
    return buffer.getvalue().encode("utf-8-sig")


@pytest.fixture
def w(world_records):
    world = world_records
    db.session.flush()
    return world


def _import(rows, user):
    headers, parsed = read_table(_csv(rows), "t.csv")
    return import_placements(headers, parsed, user=user, filename="t.csv")


def _form_data(rows):
    """What the form would hand the service for each row (the importer's own reading of the cells)."""
    counties = transfer._Counties()
    data = []
    for number, cells in enumerate(rows, start=2):
        cell = {h: cells.get(h, "") for h in HEADERS}
        errors, values = transfer._parse_row(number, cell, counties)
        assert not errors
        data.append({k: v for k, v in values.items() if k not in ("id", "masked")})
    return data


COLUMNS = [c.name for c in Placement.__table__.columns if c.name not in ("id", "id_stored", "created_at",
                                                                          "updated_at", "person_id")]  # fmt: skip


def _state(known_ids):
    """Everything the writes left, without ids (the same rows get other ids on the two paths)."""
    new = db.session.scalars(sa.select(Placement).where(Placement.id.not_in(known_ids))).all()
    placements = sorted(
        (tuple(str(getattr(p, c)) for c in COLUMNS), idnumbers.reveal(p.id_stored), p.person_id is not None)
        for p in new
    )
    fingerprint_of = {i: f for i, f in db.session.execute(sa.select(Person.id, Person.fingerprint))}
    assert all(fingerprint_of[p.person_id] == p.id_fingerprint for p in new)
    events = sorted(
        (e.action, e.entity_type, e.actor_id, e.actor_name, e.summary.split("：", 1)[-1],
         json.dumps(e.changes, sort_keys=True, ensure_ascii=False), e.context_type, e.ip)
        for e in db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.entity_type == "placements", AuditEvent.entity_id.in_([p.id for p in new])))
    )  # fmt: skip
    cells = sorted(
        (c.origin_county_id, c.pairing_id, str(c.household), str(c.destination_class), c.start_year,
         c.end_year or 0, c.placements, sorted(fingerprint_of[i] for i in BitMap.deserialize(c.people)))
        for c in db.session.scalars(sa.select(PlacementCell))
    )  # fmt: skip
    return placements, events, cells


ROWS = [
    _row(),
    _row(身份证号=ID_A, 就业开始="2024-07-01", 就业结束="2024-12-31", 户类型="监测对象"),
    _row(身份证号=_number("513429", 7), 户籍县代码="513429", 就业去向="县内就近就地", 有组织转移="否")
    | {"月工资(元)": ""},
    _row(身份证号=_number("513431", 8), 备注="=1+1", 培训情况="电工培训", 就业开始="2023-02-01"),
    _row(身份证号=_number("513431", 9), 户籍县代码="", 户籍县="昭觉县", 姓名="阿牛", 就业开始="2024-01-15"),
]


@pytest.mark.parametrize("chunk", [2000, 2])
def test_the_import_writes_what_the_form_service_writes(w, monkeypatch, chunk):
    monkeypatch.setattr(transfer, "CHUNK", chunk)
    monkeypatch.setattr("registry.kernel.transfer.AUDIT_EVERY", 3)
    known = [w.placement_a.id, w.placement_b.id]
    savepoint = db.session.begin_nested()
    for data in _form_data(ROWS):
        services.create_placement(data, actor=w.prefecture)
    by_form = _state(known)
    savepoint.rollback()

    result = _import(ROWS, w.prefecture)
    assert (result.created, result.errors) == (len(ROWS), [])
    by_import = _state(known)
    assert by_import == by_form
    assert len(by_import[0]) == len(ROWS) and len(by_import[1]) == len(ROWS)
    # Each record's event says it came with the import, and points to the import's own event.
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))
    new_ids = sorted(db.session.scalars(sa.select(Placement.id).where(Placement.id.not_in(known))))
    assert sorted(event.changes["created"]) == new_ids and event.changes["updated"] == []
    per_record = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.batch_id == event.id)).all()
    assert sorted(e.entity_id for e in per_record) == new_ids
    assert all(e.summary.startswith("经导入新增（t.csv）：登记劳务协作 ") for e in per_record)


def test_rows_the_form_refuses_are_refused_with_the_same_reason_and_nothing_is_written(w):
    db.session.add(QuarterLock(unit_id=w.zhaojue.id, year=2024, quarter=2))
    db.session.flush()
    locked = _row(身份证号=_number("513431", 21), 就业开始="2024-05-20")
    outside = _row(身份证号=_number("510824", 22), 户籍县代码="510824", 就业开始="2024-05-20")
    reasons = []
    for data in _form_data([locked, outside]):
        with pytest.raises(ServiceError) as refused:
            services.create_placement(data, actor=w.county)
        reasons.append(str(refused.value))
    before = db.session.scalar(sa.select(sa.func.count(Placement.id)))
    rows = [
        _row(身份证号=_number("513431", 23), 就业开始="2024-08-01"),  # fine on its own
        locked,
        outside,
        _row(身份证号=_number("513431", 23), 就业开始="2024-08-01"),  # repeats row 2
        # The Guangyuan office's record (same person, county and start date): exists, out of scope.
        _row(身份证号="510824199203041239", 户籍县代码="510824", 就业开始="2019-03-01"),
    ]
    result = _import(rows, w.county)
    got = {e.row: e.reason for e in result.errors}
    assert got[3] == reasons[0] and got[4] == reasons[1]
    assert got[5] == "与第 2 行是同一条记录。"
    assert "已被登记，且不在您的管辖范围内" in got[6]
    assert sorted(got) == [3, 4, 5, 6]
    assert result.created == 0 and db.session.scalar(sa.select(sa.func.count(Placement.id))) == before
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 0


def _outcome(rows, user, chunk, monkeypatch):
    """The import's result and the records it left, then undone."""
    monkeypatch.setattr(transfer, "CHUNK", chunk)
    monkeypatch.setattr("registry.kernel.transfer.AUDIT_EVERY", chunk)
    savepoint = db.session.begin_nested()
    result = _import(rows, user)
    placements = sorted(
        (p.id_masked, p.origin_county_id, str(p.start_date), p.employer)
        for p in db.session.scalars(sa.select(Placement))
    )
    savepoint.rollback()
    db.session.expire_all()
    errors = [(e.row, e.column, e.value, e.reason) for e in result.errors]
    return (result.created, result.updated, result.unchanged, errors, placements)


def test_a_file_read_in_chunks_is_matched_as_a_whole_before_any_write(w, monkeypatch):
    a = w.placement_a
    rows = [
        # Moves the world's record to another start date…
        _row(编号=str(a.id), 身份证号="", 就业开始="2024-04-01", 就业单位="新单位"),
        # …and this row still finds it by the key it had before the import (as one whole-file match would).
        _row(身份证号=ID_A, 就业开始="2024-03-01", 就业单位="又一单位"),
        _row(身份证号=_number("513431", 31)),
        _row(身份证号=_number("513431", 31)),  # repeats the row before it, across a chunk boundary
        _row(身份证号=_number("513431", 32), 就业开始="2024-02-01"),
    ]
    whole = _outcome(rows, w.county, 2000, monkeypatch)
    for chunk in (1, 2, 3):
        assert _outcome(rows, w.county, chunk, monkeypatch) == whole
    assert whole[3] == [(5, "身份证号", "5134**********" + _number("513431", 31)[-4:], "与第 4 行是同一条记录。")]
    without_repeat = rows[:3] + rows[4:]
    whole = _outcome(without_repeat, w.county, 2000, monkeypatch)
    assert whole[:4] == (2, 2, 0, [])
    assert _outcome(without_repeat, w.county, 1, monkeypatch) == whole


def test_a_row_cannot_name_a_record_the_same_import_created(w, monkeypatch):
    next_id = db.session.scalar(sa.select(sa.func.max(Placement.id))) + 1
    rows = [_row(身份证号=_number("513431", 41)), _row(编号=str(next_id), 身份证号="", 就业单位="改")]
    whole = _outcome(rows, w.county, 2000, monkeypatch)
    assert whole[3] and whole[3][0][3].startswith("没有这条记录")
    assert _outcome(rows, w.county, 1, monkeypatch) == whole


def test_a_refusal_of_the_whole_file_midway_leaves_nothing(w, monkeypatch):
    monkeypatch.setattr(transfer, "CHUNK", 1)
    monkeypatch.setattr("registry.kernel.transfer.AUDIT_EVERY", 1)
    monkeypatch.setattr("registry.kernel.transfer.MAX_ROWS", 2)
    before = db.session.scalar(sa.select(sa.func.count(Placement.id)))
    rows = [_row(身份证号=_number("513431", n)) for n in (51, 52, 53)]
    with pytest.raises(ServiceError, match="一次最多导入 2 行"):
        _import(rows, w.county)
    assert db.session.scalar(sa.select(sa.func.count(Placement.id))) == before
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 0
    assert db.session.scalar(sa.select(sa.func.count(PlacementCell.id))) > 0  # the world's cells are still there
