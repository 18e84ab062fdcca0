"""Spreadsheets as county offices write them: forgiving where it is safe (and saying so), strict where it is not.

Every workbook here is written by openpyxl the way Excel would save it, and read back through the real reader.
"""

import io
from datetime import date

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from registry.kernel.extensions import db
from registry.kernel.money import MoneyError
from registry.kernel.services import ServiceError
from registry.kernel.transfer import parse_amount, parse_date
from registry.kernel.transfer.reader import LONG_NUMBER, LongNumber, read_table
from registry.placements.models import Placement
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.placements.transfer import import_placements
from registry.purchases.models import Purchase
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from registry.purchases.transfer import import_purchases
from tests.factories import ID_A

ID_B = "513431198805051231"


def _xlsx(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _placement(headers=PLACEMENT_HEADERS, **cells):
    base = {
        "姓名": "沙马拉则", "身份证号": ID_B, "户类型": "脱贫户", "户籍县代码": "513431",
        "就业去向": "到东部协作地就业", "就业省份": "浙江省", "就业城市": "宁波市", "就业单位": "宁波某电子厂",
        "有组织转移": "是", "就业开始": "2024-05-01", "月工资(元)": "4800",
    }  # fmt: skip
    values = base | cells
    return [values.get(h, "") for h in headers]


def _purchase(**cells):
    base = {
        "日期": "2024-09-01", "购买方": "宁波某超市", "购买方类型": "企业", "购买方省份": "浙江省",
        "购买方城市": "宁波市", "销售方": "昭觉某合作社", "销售方类型": "合作社", "销售方所在县代码": "513431",
        "销售方所在县": "昭觉县", "产品": "马铃薯", "产品类别": "果蔬", "金额(元)": "1200.50", "渠道": "直采",
        "计入方式": "帮助销售", "发票号/合同号": "HT-2024-77",
    }  # fmt: skip
    values = base | cells
    return [values.get(h, "") for h in PURCHASE_HEADERS]


@pytest.fixture
def w(world_records):
    world = world_records
    db.session.flush()
    return world


def _import(importer, data: bytes, user):
    headers, rows = read_table(data, "t.xlsx")
    return importer(headers, rows, user=user, filename="t.xlsx")


def _placements():
    return db.session.scalars(sa.select(Placement).order_by(Placement.id)).all()


def test_a_title_row_above_the_header_is_ignored_and_said(w):
    before = len(_placements())
    data = _xlsx([["2024年昭觉县劳务协作台账"], ["填报单位：昭觉县人社局"], PLACEMENT_HEADERS, _placement()])
    result = _import(import_placements, data, w.county)
    assert result.errors == [] and result.created == 1 and result.rows == 1
    assert "已忽略表头上方的 2 行标题（表头在第 3 行）。" in result.notes
    assert len(_placements()) == before + 1


def test_errors_keep_the_excel_row_numbers_below_a_title(w):
    data = _xlsx([["台账"], PLACEMENT_HEADERS, _placement(), _placement(身份证号=ID_A, 有组织转移="也许")])
    result = _import(import_placements, data, w.county)
    assert [(e.row, e.column) for e in result.errors] == [(4, "有组织转移")]


def test_a_header_that_is_not_there_still_names_every_missing_column(w):
    data = _xlsx([["台账"], ["说明"], ["甲", "乙"], ["1", "2"]])
    with pytest.raises(ServiceError, match="缺少列：编号、姓名"):
        _import(import_placements, data, w.county)


def test_total_rows_are_skipped_and_named(w):
    total = ["", "合计", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "9600", ""]
    data = _xlsx([PLACEMENT_HEADERS, _placement(), _placement(身份证号=ID_A), total, ["小 计"]])
    result = _import(import_placements, data, w.county)
    assert result.errors == [] and result.created == 2 and result.rows == 2
    assert result.notes == ["第 4 行是合计行，已跳过。", "第 5 行是小计行，已跳过。"]


def test_column_synonyms_are_read_and_said(w):
    headers = [
        {"就业开始": "就业时间", "月工资(元)": "月收入", "身份证号": "身份证号码", "户籍县代码": "户籍县代码"}.get(h, h)
        for h in PLACEMENT_HEADERS
    ]
    row = _placement(PLACEMENT_HEADERS, 就业开始="2024/3/1", 月工资=None)
    data = _xlsx([headers, row])
    result = _import(import_placements, data, w.county)
    assert result.errors == [] and result.created == 1
    assert "表头“就业时间”按“就业开始”列读取。" in result.notes
    assert "表头“月收入”按“月工资(元)”列读取。" in result.notes
    assert "表头“身份证号码”按“身份证号”列读取。" in result.notes
    assert _placements()[-1].start_date == date(2024, 3, 1) and _placements()[-1].monthly_wage_fen == 480000


def test_full_width_brackets_need_no_synonym_and_no_note(w):
    headers = [h.replace("(元)", "（元）") for h in PLACEMENT_HEADERS]
    result = _import(import_placements, _xlsx([headers, _placement()]), w.county)
    assert result.errors == [] and result.notes == []


def test_a_synonym_and_its_column_both_present_is_a_repeated_column(w):
    data = _xlsx([[*PLACEMENT_HEADERS, "身份证"], _placement()])
    with pytest.raises(ServiceError, match="重复的列：身份证号"):
        _import(import_placements, data, w.county)


def test_an_identity_number_stored_as_a_number_says_so(w):
    row = _placement()
    row[PLACEMENT_HEADERS.index("身份证号")] = int(ID_B)  # what Excel keeps when the column is not text
    result = _import(import_placements, _xlsx([PLACEMENT_HEADERS, row]), w.county)
    assert [(e.row, e.column, e.reason) for e in result.errors] == [(2, "身份证号", LONG_NUMBER)]
    assert result.errors[0].reason == "该单元格被 Excel 存为数字，末尾数字已丢失，请将该列设为文本后重新填写"
    assert result.errors[0].value.startswith("5134****") and result.created == 0


def test_the_reader_marks_long_numbers_and_reads_other_numbers_as_text():
    data = _xlsx([["a", "b", "c", "d", "e"], [513431198805051231, 4800, 4800.5, 0.1, 123456789012345]])
    _, rows = read_table(data, "t.xlsx")
    [(number, cells)] = list(rows)
    assert number == 2 and cells == ["513431198805051200", "4800", "4800.5", "0.1", "123456789012345"]
    _, rows = read_table(_xlsx([["a"], [True]]), "t.xlsx")
    assert list(rows) == [(2, ["TRUE"])]  # as Excel shows it, never read as 是
    # Excel keeps 15 significant digits: the last three of the number typed are gone.
    assert isinstance(cells[0], LongNumber) and not isinstance(cells[4], LongNumber)


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_file_on_disk_reads_as_its_bytes_do(tmp_path, kind):
    """Background and command-line imports pass the stored file's path (its bytes are never held as well)."""
    rows = [["标题行"], ["a", "b"], ["", 4800], ["x", "=1+1"]]
    data = _xlsx(rows) if kind == "xlsx" else "\n".join(",".join(map(str, r)) for r in rows).encode()
    path = tmp_path / f"upload.{kind}"
    path.write_bytes(data)
    from_bytes = read_table(data, path.name)
    from_path = read_table(path, path.name)
    assert from_path[0] == from_bytes[0] and list(from_path[1]) == list(from_bytes[1])
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(ServiceError, match="无法读取该 Excel 文件"):
        read_table(path, path.name)


def test_dates_as_offices_type_them_and_excel_serials(w):
    for text in ("2024-03-01", "2024/3/1", "2024.3.1", "2024年3月1日", "45352"):
        assert parse_date(text) == date(2024, 3, 1), text
    for text in ("2024-13-01", "3/1/2024", "1000", "99999", "45352.5", "明年"):
        with pytest.raises(ValueError):
            parse_date(text)
    # A date column Excel saved as numbers (the cell format lost), and one kept as dates.
    starts = [45352, date(2024, 7, 1)]
    rows = [_placement(), _placement(身份证号=ID_A)]
    for row, start in zip(rows, starts, strict=True):
        row[PLACEMENT_HEADERS.index("就业开始")] = start
    result = _import(import_placements, _xlsx([PLACEMENT_HEADERS, *rows]), w.county)
    assert result.errors == [] and [p.start_date for p in _placements()[-2:]] == [date(2024, 3, 1), date(2024, 7, 1)]


def test_amounts_in_wan_yuan_from_the_header_or_the_cell():
    assert parse_amount("12.5万元") == 125_000_00
    assert parse_amount("1,200元") == 1200_00
    assert parse_amount("0.48", "万元") == 4800_00
    assert parse_amount("0.48万元", "万元") == 4800_00
    with pytest.raises(MoneyError, match="单位不明确"):
        parse_amount("12.5万")
    with pytest.raises(MoneyError, match="表头的单位是万元"):
        parse_amount("1,200元", "万元")
    with pytest.raises(MoneyError, match="最多保留六位小数"):
        parse_amount("0.0000001", "万元")


def test_purchases_with_a_title_a_wan_yuan_header_synonyms_and_a_total(w):
    headers = [{"金额(元)": "金额（万元）", "发票号/合同号": "凭证号"}.get(h, h) for h in PURCHASE_HEADERS]
    total = [""] * len(PURCHASE_HEADERS)
    total[0], total[11] = "总计", "12.62"
    data = _xlsx([
        ["2024年消费帮扶台账"], headers,
        _purchase(**{"金额(元)": "12.5", "日期": 45536}),
        _purchase(**{"金额(元)": "0.12万元", "发票号/合同号": "HT-2024-78"}),
        total,
    ])  # fmt: skip
    result = _import(import_purchases, data, w.county)
    assert result.errors == [] and result.created == 2
    assert result.notes == [
        "已忽略表头上方的 1 行标题（表头在第 2 行）。",
        "表头“金额（万元）”按“金额(元)”列读取（单位：万元）。",
        "表头“凭证号”按“发票号/合同号”列读取。",
        "第 5 行是总计行，已跳过。",
    ]
    added = db.session.scalars(
        sa.select(Purchase).where(Purchase.evidence_key.in_(["HT-2024-77", "HT-2024-78"])).order_by(Purchase.id)
    ).all()
    assert [(p.amount_fen, p.purchased_on) for p in added] == [
        (125_000_00, date(2024, 9, 1)),
        (1200_00, date(2024, 9, 1)),
    ]


def test_purchases_refuse_ambiguous_amounts_and_long_evidence_numbers(w):
    data = _xlsx([
        PURCHASE_HEADERS,
        _purchase(**{"金额(元)": "12.5万"}),
        _purchase(**{"发票号/合同号": 12345678901234567890}),
    ])  # fmt: skip
    result = _import(import_purchases, data, w.county)
    reasons = {(e.row, e.column): e.reason for e in result.errors}
    assert "单位不明确" in reasons[(2, "金额(元)")]
    assert reasons[(3, "发票号/合同号")] == LONG_NUMBER
    assert result.created == 0


def test_the_import_page_shows_the_notes(app, world):
    from tests.conftest import login

    client = app.test_client()
    login(client, "county")
    data = _xlsx([["标题"], PLACEMENT_HEADERS, _placement(身份证号=ID_A, 就业开始="2025-01-01")])
    text = client.post(
        "/placements/import", data={"file": (io.BytesIO(data), "t.xlsx")}, content_type="multipart/form-data"
    ).get_data(as_text=True)
    assert "新增 1 条" in text and "已忽略表头上方的 1 行标题（表头在第 2 行）。" in text


def test_exchanges_with_a_title_synonyms_a_serial_date_and_a_total(w):
    from registry.exchanges.models import Exchange
    from registry.exchanges.transfer import HEADERS, import_exchanges

    headers = [{"到岗日期": "到岗时间", "挂职岗位": "岗位"}.get(h, h) for h in HEADERS]
    row = ["", "周晓东", "东部选派到四川", "专业技术人才", "医疗", "330281", "余姚市人民医院", "513431",
           "昭觉县人民医院", "513431", "", "副院长", 45536, "", ""]  # fmt: skip
    data = _xlsx([["人才交流台账"], [], headers, row, ["合计", 1]])
    result = _import(import_exchanges, data, w.county)
    assert result.errors == [] and result.created == 1
    assert result.notes == [
        "已忽略表头上方的 2 行标题（表头在第 3 行）。",
        "表头“岗位”按“挂职岗位”列读取。",
        "表头“到岗时间”按“到岗日期”列读取。",
        "第 5 行是合计行，已跳过。",
    ]
    added = db.session.scalar(sa.select(Exchange).where(Exchange.person_name == "周晓东"))
    assert added.arrival_date == date(2024, 9, 1) and added.position == "副院长"


def test_the_command_line_prints_the_notes(runner, world, tmp_path):
    path = tmp_path / "titled.xlsx"
    path.write_bytes(_xlsx([["标题"], PLACEMENT_HEADERS, _placement(身份证号=ID_A, 就业开始="2025-02-01")]))
    result = runner.invoke(args=["transfer", "import-placements", str(path), "--user", "county"])
    assert result.exit_code == 0, result.output
    assert "说明：已忽略表头上方的 1 行标题（表头在第 2 行）。" in result.output and "新增 1" in result.output


def test_a_csv_excel_saved_with_the_number_in_scientific_form_says_so(w):
    row = _placement()
    row[PLACEMENT_HEADERS.index("身份证号")] = "5.13431E+17"  # how Excel saves an 18-digit number into a CSV
    text = "\n".join(",".join(cells) for cells in (PLACEMENT_HEADERS, row)) + "\n"
    headers, rows = read_table(text.encode("utf-8-sig"), "t.csv")
    result = import_placements(headers, rows, user=w.county, filename="t.csv")
    assert [(e.row, e.column, e.reason) for e in result.errors] == [(2, "身份证号", LONG_NUMBER)]
    _, rows = read_table(b"a,b\n1.5E+3,2E+20\n", "t.csv")
    assert [type(c) for c in next(rows)[1]] == [str, LongNumber]
