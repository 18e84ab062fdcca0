"""The placements spreadsheet round trip: template = export, all-or-nothing import, blanks never overwrite."""

import csv
import io

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.transfer.reader import read_table
from registry.placements.models import Placement
from registry.placements.transfer import HEADERS, import_placements
from tests.conftest import login
from tests.factories import ID_A

ID_B = "513431198805051231"


def _csv(rows, encoding="utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow([row.get(h, "") for h in HEADERS])
    return buffer.getvalue().encode(encoding)


def _row(**cells):
    base = {
        "姓名": "沙马拉则", "身份证号": ID_B, "户类型": "脱贫户", "户籍县代码": "513431",
        "就业去向": "到东部协作地就业", "就业省份": "浙江省", "就业城市": "宁波市", "就业单位": "宁波某电子厂",
        "有组织转移": "是", "就业开始": "2024-05-01", "月工资(元)": "4800",
    }  # fmt: skip
    return base | cells


@pytest.fixture
def w(world_records):
    world = world_records
    db.session.flush()
    return world


def _import(data: bytes, user, name="t.csv"):
    headers, rows = read_table(data, name)
    return import_placements(headers, rows, user=user, filename=name)


def _count():
    return db.session.scalar(sa.select(sa.func.count(Placement.id)))


def test_valid_rows_are_created_in_one_audited_event(w):
    result = _import(_csv([_row(), _row(身份证号=ID_A, 就业开始="2024-07-01")]), w.county)
    assert (result.created, result.updated, result.errors) == (2, 0, [])
    new = db.session.scalar(sa.select(Placement).where(Placement.id_masked == "5134**********1231"))
    assert new.sex == "男" and new.pairing_id == w.a.id and new.monthly_wage_fen == 480000 and new.organised
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "import")) == 1


def test_one_bad_row_writes_nothing_and_every_error_is_listed(w):
    before = _count()
    rows = [
        _row(),
        _row(身份证号="513431199001011238"),
        _row(户类型="贫困户", 就业开始="2024-13-01"),
        _row(户籍县代码="510824"),
    ]
    result = _import(_csv(rows), w.county)
    assert result.created == 0 and _count() == before
    reasons = {(e.row, e.column): e.reason for e in result.errors}
    assert "校验位不正确" in reasons[(3, "身份证号")]
    assert "应为以下之一" in reasons[(4, "户类型")] and "日期格式" in reasons[(4, "就业开始")]
    assert "不在您的管辖范围内" in reasons[(5, "户籍县代码")]  # 苍溪 is outside the county office's scope
    assert all("513431199001011238" not in e.value for e in result.errors)  # numbers are masked in the report


def test_reimporting_an_export_updates_and_blanks_do_not_overwrite(app, world):
    client = app.test_client()
    login(client, "county")
    exported = client.get("/placements/export.xlsx").data
    sheet = load_workbook(io.BytesIO(exported)).active
    header = [c.value for c in sheet[1]]
    assert header == HEADERS and sheet.max_row == 2 and sheet.cell(2, 3).value == "5134**********1239"
    # Edit: a new employer, the wage blanked (must not be erased), the masked number left as exported.
    sheet.cell(2, header.index("就业单位") + 1, "宁波新单位")
    sheet.cell(2, header.index("月工资(元)") + 1, None)
    buffer = io.BytesIO()
    sheet.parent.save(buffer)
    with app.app_context():
        db.session.get(Placement, world.placement_a).monthly_wage_fen = 500000
        db.session.commit()
    response = client.post("/placements/import", data={"file": (io.BytesIO(buffer.getvalue()), "edited.xlsx")},
                           content_type="multipart/form-data")  # fmt: skip
    assert "新增 0 条，更新 1 条" in response.get_data(as_text=True)
    with app.app_context():
        placement = db.session.get(Placement, world.placement_a)
        assert placement.employer == "宁波新单位" and placement.monthly_wage_fen == 500000
    again = client.post("/placements/import", data={"file": (io.BytesIO(buffer.getvalue()), "edited.xlsx")},
                        content_type="multipart/form-data")  # fmt: skip
    assert "更新 0 条，未变 1 条" in again.get_data(as_text=True)


def test_rows_out_of_scope_or_duplicated_are_errors(w):
    result = _import(_csv([_row(编号=str(w.placement_b.id))]), w.county)
    assert result.errors[0].reason.startswith("没有这条记录")
    result = _import(_csv([_row(), _row()]), w.county)
    assert "与第 2 行是同一条记录" in result.errors[0].reason


def test_headers_encodings_and_file_types(w):
    with pytest.raises(ServiceError, match="缺少列：备注"):
        import_placements(HEADERS[:-1], iter([]), user=w.county)
    with pytest.raises(ServiceError, match="无法识别的列：电话"):
        import_placements([*HEADERS, "电话"], iter([]), user=w.county)
    from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
    from registry.purchases.transfer import import_purchases

    with pytest.raises(ServiceError, match="重复的列：备注"):
        import_purchases([*PURCHASE_HEADERS, "备注"], iter([]), user=w.county)
    assert _import(_csv([_row()], encoding="gb18030"), w.county).created == 1  # Chinese-locale Excel CSV
    with pytest.raises(ServiceError, match="只能导入"):
        read_table(b"\xd0\xcf\x11\xe0", "old.xls")
    with pytest.raises(ServiceError, match="无法读取该 Excel"):
        read_table(b"PK\x03\x04 not really a zip", "broken.xlsx")


def test_export_neutralises_formulas_and_full_numbers_are_permitted_and_audited(app, world):
    with app.app_context():
        db.session.get(Placement, world.placement_a).employer = '=HYPERLINK("http://x")'
        db.session.commit()
    county = app.test_client()
    login(county, "county")
    text = county.get("/placements/export.csv?full=1").data.decode("utf-8-sig")
    assert ID_A in text and "'=HYPERLINK" in text
    liaison = app.test_client()
    login(liaison, "liaison")
    assert liaison.get("/placements/export.csv?full=1").status_code == 403
    assert ID_A not in liaison.get("/placements/export.csv").data.decode("utf-8-sig")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "export_id")) == 1


odd_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bad=st.lists(
        st.fixed_dictionaries({"姓名": odd_text, "身份证号": odd_text, "户类型": odd_text, "就业开始": odd_text}),
        min_size=1, max_size=4,
    )
)  # fmt: skip
def test_property_any_malformed_row_means_nothing_is_written(w, bad):
    before = _count()
    rows = [_row(身份证号=ID_A, 就业开始="2024-08-01")] + [_row(**cells) for cells in bad]
    savepoint = db.session.begin_nested()  # each example starts from the same world
    try:
        headers, parsed = read_table(_csv(rows), "p.csv")
        try:
            result = import_placements(headers, parsed, user=w.county)
        except ServiceError:
            result = None
        if result is None or result.errors:
            assert _count() == before
        else:
            assert _count() == before + result.created
    finally:
        savepoint.rollback()


def test_cli_import_reports_progress_and_errors(app, runner, world, tmp_path):
    good = tmp_path / "good.csv"
    good.write_bytes(_csv([_row(身份证号=ID_B)]))
    result = runner.invoke(args=["transfer", "import-placements", str(good), "--user", "county"])
    assert result.exit_code == 0, result.output
    assert "已导入 1 行：新增 1" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv([_row(身份证号="513431199001011238")]))
    result = runner.invoke(args=["transfer", "import-placements", str(bad), "--user", "county"])
    assert result.exit_code == 1 and "第 2 行 身份证号：身份证号校验位不正确" in result.output
    result = runner.invoke(args=["transfer", "import-placements", str(good), "--user", "lingdao"])
    assert result.exit_code == 1 and "不存在、已停用或无权" in result.output
    result = runner.invoke(args=["transfer", "import-placements", str(tmp_path / "none.csv"), "--user", "county"])
    assert result.exit_code == 1 and "文件不存在" in result.output


def test_the_page_shows_progress_while_a_large_file_is_checked(app, world):
    from registry.kernel.idnumbers import check_digit

    rows = []
    for n in range(2100):
        body = f"51343119{80 + n // 1000:02d}0101{n % 1000:03d}"
        rows.append(_row(身份证号=body + check_digit(body)))
    client = app.test_client()
    login(client, "county")
    response = client.post("/placements/import", data={"file": (io.BytesIO(_csv(rows)), "big.csv")},
                           content_type="multipart/form-data")  # fmt: skip
    assert response.is_streamed
    text = response.get_data(as_text=True)
    assert text.index("已检查 1000 行") < text.index("已检查 2000 行") < text.index("新增 2100 条")
    assert text.rstrip().endswith("</html>")
