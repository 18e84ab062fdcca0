"""Limits before work: a file with too many rows is refused before its rows are read or checked, and the purchases
import streams (chunks of rows, new purchases written as rows of values) with the same outcome as in one piece."""

import io

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.transfer.reader import read_table
from registry.purchases import transfer as purchases_transfer
from registry.purchases.models import Purchase, PurchaseTotals
from registry.purchases.transfer import HEADERS, import_purchases


def _purchase(n: int, **cells) -> list[str]:
    base = {
        "日期": "2024-09-01", "购买方": "宁波某超市", "购买方类型": "企业", "销售方": "昭觉某合作社",
        "销售方类型": "合作社", "销售方所在县代码": "513431", "产品": "马铃薯", "产品类别": "果蔬", "金额(元)": "12.50",
        "渠道": "直采", "计入方式": "帮助销售", "发票号/合同号": f"LIM-{n:05d}",
    }  # fmt: skip
    values = base | cells
    return [values.get(h, "") for h in HEADERS]


def _xlsx(rows) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv(rows) -> bytes:
    return ("\n".join(",".join(row) for row in rows) + "\n").encode("utf-8")


@pytest.fixture
def w(world_records):
    db.session.flush()
    return world_records


@pytest.fixture
def parsed(monkeypatch):
    """Counts the rows the purchases importer reads and checks."""
    calls = []
    real = purchases_transfer._parse

    def counting(number, *args):
        calls.append(number)
        return real(number, *args)

    monkeypatch.setattr(purchases_transfer, "_parse", counting)
    return calls


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_too_many_rows_are_refused_before_any_row_is_read(w, monkeypatch, parsed, kind):
    monkeypatch.setattr("registry.kernel.transfer.MAX_ROWS", 5)
    rows = [HEADERS] + [_purchase(n) for n in range(6)]
    data = _xlsx(rows) if kind == "xlsx" else _csv(rows)
    headers, body = read_table(data, f"t.{kind}")
    with pytest.raises(ServiceError, match="一次最多导入 5 行"):
        import_purchases(headers, body, user=w.county)
    assert parsed == []


def test_title_blank_and_total_rows_do_not_count_toward_the_limit(w, monkeypatch, parsed):
    """The sheet's length is only a bound: when it exceeds the limit, the data rows are counted exactly."""
    monkeypatch.setattr("registry.kernel.transfer.MAX_ROWS", 3)
    total = [""] * len(HEADERS)
    total[0] = "合计"
    rows = [["2024年消费帮扶台账"], HEADERS, _purchase(1), [], _purchase(2), _purchase(3), total]
    headers, body = read_table(_xlsx(rows), "t.xlsx")
    assert body.last == 7
    result = import_purchases(headers, body, user=w.county)
    assert result.errors == [] and result.created == 3 and len(parsed) == 3


def test_a_reader_without_a_known_length_is_stopped_at_the_first_row_too_many(w, monkeypatch, parsed):
    monkeypatch.setattr("registry.kernel.transfer.MAX_ROWS", 2)
    before = db.session.scalar(sa.select(sa.func.count(Purchase.id)))
    rows = iter([(n + 2, _purchase(n)) for n in range(5)])
    with pytest.raises(ServiceError, match="一次最多导入 2 行"):
        import_purchases(HEADERS, rows, user=w.county)
    assert len(parsed) == 2
    assert db.session.scalar(sa.select(sa.func.count(Purchase.id))) == before
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 0


def _outcome(w, rows):
    headers, body = read_table(_csv([HEADERS, *rows]), "t.csv")
    result = import_purchases(headers, body, user=w.county)
    errors = [(e.row, e.column, e.value, e.reason) for e in result.errors]
    added = db.session.execute(
        sa.select(Purchase.evidence_no, Purchase.amount_fen).where(Purchase.evidence_no.like("LIM-%"))
        .order_by(Purchase.evidence_no)
    ).all()  # fmt: skip
    db.session.rollback()
    return result.rows, result.created, result.updated, errors, added


def test_purchases_in_chunks_give_what_one_piece_gives(w, monkeypatch):
    rows = [_purchase(n, **{"金额(元)": str(10 + n)}) for n in range(5)]
    rows.append(_purchase(2))  # a repeat of row 4's evidence
    rows.append(_purchase(9, 日期="2024-13-01"))
    whole = _outcome(w, rows)
    assert [e[:2] for e in whole[3]] == [(7, "发票号/合同号"), (8, "日期")]
    for chunk in (1, 2, 4):
        monkeypatch.setattr(purchases_transfer, "CHUNK", chunk)
        assert _outcome(w, rows) == whole
    good = rows[:5]
    monkeypatch.setattr(purchases_transfer, "CHUNK", 2)
    headers, body = read_table(_csv([HEADERS, *good]), "t.csv")
    result = import_purchases(headers, body, user=w.county)
    assert result.errors == [] and result.created == 5
    db.session.commit()
    created = db.session.scalars(sa.select(Purchase).where(Purchase.evidence_no.like("LIM-%"))).all()
    assert sorted(p.amount_fen for p in created) == [1000, 1100, 1200, 1300, 1400]
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.entity_type == "purchases", AuditEvent.action == "create",
                                    AuditEvent.entity_id.in_([p.id for p in created]))
    ).all()  # fmt: skip
    assert len(events) == 5 and all(e.batch_id is not None and "经导入新增" in e.summary for e in events)
    # The derived totals hold the new purchases.
    totals = db.session.scalar(
        sa.select(sa.func.sum(PurchaseTotals.amount_fen)).where(PurchaseTotals.seller_county_id == w.zhaojue.id)
    )
    direct = db.session.scalar(
        sa.select(sa.func.sum(Purchase.amount_fen)).where(Purchase.seller_county_id == w.zhaojue.id)
    )
    assert totals == direct
    # Imported again: each row names its purchase and changes nothing.
    headers, body = read_table(_csv([HEADERS, *good]), "t.csv")
    again = import_purchases(headers, body, user=w.county)
    assert again.errors == [] and again.created == 0 and again.unchanged == 5
