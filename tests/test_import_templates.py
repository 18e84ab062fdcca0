"""Every importing stream's template guides: a 填表说明 sheet, drop-downs on coded columns (counties limited to the
user's scope), text format on codes and identity numbers, widths that fit the headers, a frozen header row; and
the template's own header with its example row imports."""

import io

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from registry.agreements.transfer import ENTRY_HEADERS, TARGET_HEADERS
from registry.assets.models import AssetClass, AssetState, OperationMode, OwnerLevel
from registry.assets.transfer import IMPORT_HEADERS as ASSET_HEADERS
from registry.counties.models import Unit, UnitKind
from registry.exchanges.transfer import HEADERS as EXCHANGE_HEADERS
from registry.kernel.extensions import db
from registry.kernel.transfer.template import CHOICES_SHEET, INSTRUCTIONS, display_width
from registry.pairings.models import Pairing
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.problems.models import Category, Source
from registry.problems.transfer import HEADERS as LEDGER_HEADERS
from registry.problems.transfer import IMPORT_HEADERS as PROBLEM_HEADERS
from registry.projects.models import Project, ProjectStatus
from registry.projects.transfer import FUND_HEADERS
from registry.projects.transfer import HEADERS as PROJECT_HEADERS
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from tests.conftest import login
from tests.factories import make_local, make_project

#: stream -> (template, import page, user, the importer's columns, coded columns, text columns, county columns)
STREAMS = {
    "placements": ("/placements/template.xlsx", "/placements/import", "county", PLACEMENT_HEADERS,
                   ["户类型", "就业去向", "有组织转移", "户籍县代码"], ["身份证号", "户籍县代码", "编号"],
                   "户籍县代码"),
    "purchases": ("/purchases/template.xlsx", "/purchases/import", "county", PURCHASE_HEADERS,
                  ["购买方类型", "销售方类型", "产品类别", "渠道", "计入方式", "销售方所在县代码"],
                  ["发票号/合同号", "销售方所在县代码"], "销售方所在县代码"),
    "exchanges": ("/exchanges/template.xlsx", "/exchanges/import", "county", EXCHANGE_HEADERS,
                  ["方向", "类型", "领域", "县代码"], ["编号", "县代码", "派出方", "接收方"], "县代码"),
    "projects": ("/projects/template.xlsx", "/projects/import", "county", PROJECT_HEADERS,
                 ["项目类别", "实施方式", "资金层级", "县(市、区)", "东部结对单位"], ["项目编号"], "县(市、区)"),
    "funds": ("/projects/funds/template.xlsx", "/projects/funds/import", "county", FUND_HEADERS,
              ["资金来源", "环节"], ["项目编号", "文号/凭证"], None),
    "targets": ("/agreements/targets/template.xlsx", "/agreements/targets/import", "prefecture", TARGET_HEADERS,
                ["协作类型", "单位代码", "指标"], ["单位代码", "年度"], "单位代码"),
    "entries": ("/indicator-entries/template.xlsx", "/indicator-entries/import", "county", ENTRY_HEADERS,
                ["指标", "县代码", "东部结对单位"], ["县代码", "佐证"], "县代码"),
    "assets": ("/assets/template.xlsx", "/assets/import", "county", ASSET_HEADERS,
               ["资产类别", "确权层级", "运营方式", "状态", "县代码"], ["编号", "资产编号", "来源项目", "县代码"],
               "县代码"),
    "problems": ("/problems/template.xlsx", "/problems/import", "county", PROBLEM_HEADERS,
                 ["问题来源", "问题类别", "涉及单位代码", "涉及单位"], ["编号", "涉及单位代码"], "涉及单位代码"),
}  # fmt: skip
#: stream -> {coded column: exactly the labels its importer accepts}
LABELS = {
    "assets": {"资产类别": [m.label for m in AssetClass], "确权层级": [m.label for m in OwnerLevel],
               "运营方式": [m.label for m in OperationMode], "状态": [m.label for m in AssetState]},
    "problems": {"问题来源": [m.label for m in Source], "问题类别": [m.label for m in Category]},
}  # fmt: skip


def _choices(workbook, validation) -> list[str]:
    formula = validation.formula1
    if formula.startswith('"'):
        return formula.strip('"').split(",")
    sheet_name, cells = formula.split("!")
    sheet = workbook[sheet_name.strip("'")]
    first, last = cells.replace("$", "").split(":")
    return [c.value for row in sheet[first:last] for c in row]


def _validation_of(sheet, letter):
    for validation in sheet.data_validations.dataValidation:
        if any(str(r).startswith(f"{letter}2:") for r in validation.sqref.ranges):
            return validation
    return None


@pytest.mark.parametrize("stream", list(STREAMS))
def test_the_template_guides(app, world, stream):
    url, _page, user, headers, coded, texts, county_column = STREAMS[stream]
    client = app.test_client()
    login(client, user)
    response = client.get(url)
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.data))
    sheet = workbook.worksheets[0]
    header = [c.value for c in sheet[1]]
    assert set(headers) <= set(header), set(headers) - set(header)
    assert sheet.freeze_panes == "A2"
    for position, name in enumerate(header, start=1):
        assert sheet.column_dimensions[get_column_letter(position)].width >= display_width(name)
    for name in texts:
        letter = get_column_letter(header.index(name) + 1)
        # The column's own style (<col style>): Excel gives it to every cell typed or pasted into the column.
        assert sheet.column_dimensions[letter].number_format == "@", name
    for name in coded:
        assert _validation_of(sheet, get_column_letter(header.index(name) + 1)) is not None, name
    for name, labels in LABELS.get(stream, {}).items():
        assert _choices(workbook, _validation_of(sheet, get_column_letter(header.index(name) + 1))) == labels, name
    if county_column:
        choices = _choices(workbook, _validation_of(sheet, get_column_letter(header.index(county_column) + 1)))
        # The user's scope only: Zhaojue (and, for targets, its prefecture and the province), never Cangxi.
        assert ("513431" in choices or "昭觉县" in choices) and "510824" not in choices and "苍溪县" not in choices
    notes = workbook[INSTRUCTIONS]
    assert [c.value for c in notes[1]] == ["列名", "含义", "格式", "是否必填", "示例"]
    described = {row[0].value: row for row in notes.iter_rows(min_row=2) if row[0].value in header}
    assert set(described) == set(header)
    assert all(row[1].value and row[2].value and row[3].value for row in described.values())
    if CHOICES_SHEET in workbook.sheetnames:
        assert workbook[CHOICES_SHEET].sheet_state == "hidden"


@pytest.mark.parametrize("stream", list(STREAMS))
def test_the_template_with_its_example_row_imports(app, world, stream):
    url, page, user, _headers, _coded, _texts, _county = STREAMS[stream]
    client = app.test_client()
    login(client, user if stream != "targets" else "province")
    workbook = load_workbook(io.BytesIO(client.get(url).data))
    sheet = workbook.worksheets[0]
    header = [c.value for c in sheet[1]]
    examples = {row[0].value: row[4].value for row in workbook[INSTRUCTIONS].iter_rows(min_row=2)}
    if stream == "funds":
        with app.app_context():
            examples["项目编号"] = db.session.get(Project, world.project_a).code
    if stream == "assets":
        # The example's source project, as a completed project of the user's county, and its township and village.
        with app.app_context():
            zhaojue = db.session.get(Unit, world.zhaojue)
            project = make_project(zhaojue, db.session.get(Pairing, world.a), year=2023, status=ProjectStatus.COMPLETED)
            make_local(make_local(zhaojue, examples["乡镇"], UnitKind.TOWNSHIP), examples["村"], UnitKind.VILLAGE)
            db.session.commit()
            examples["来源项目"] = project.code + examples["来源项目"][examples["来源项目"].index(":") :]
    for position, name in enumerate(header, start=1):
        sheet.cell(row=2, column=position, value=examples.get(name) or None)
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = client.post(page, data={"file": (io.BytesIO(buffer.getvalue()), "filled.xlsx")},
                           content_type="multipart/form-data")  # fmt: skip
    text = response.get_data(as_text=True)
    assert "已导入 1 行" in text and "新增 1 条" in text, text[-2500:]


@pytest.mark.parametrize("stream", ["assets", "problems"])
def test_the_import_page_shows_the_templates_rules(app, world, stream):
    url, page, user, *_ = STREAMS[stream]
    client = app.test_client()
    login(client, user)
    notes = load_workbook(io.BytesIO(client.get(url).data))[INSTRUCTIONS]
    rules = [c.value for c in notes["A"] if isinstance(c.value, str) and c.value[:2] in {f"{n}." for n in range(10)}]
    assert len(rules) >= 3
    text = client.get(page).get_data(as_text=True)
    for rule in rules:
        assert rule.split(". ", 1)[1][:20] in text, rule


def test_the_ledger_export_keeps_its_title_rows_and_imports_back(app, world):
    """Only the template changed: the export sent upward keeps its title and date lines above the header."""
    client = app.test_client()
    login(client, "county")
    url, page, *_ = STREAMS["problems"]
    workbook = load_workbook(io.BytesIO(client.get(url).data))
    sheet = workbook.worksheets[0]
    examples = {row[0].value: row[4].value for row in workbook[INSTRUCTIONS].iter_rows(min_row=2)}
    for position, cell in enumerate(sheet[1], start=1):
        sheet.cell(row=2, column=position, value=examples.get(cell.value) or None)
    buffer = io.BytesIO()
    workbook.save(buffer)
    client.post(page, data={"file": (io.BytesIO(buffer.getvalue()), "filled.xlsx")},
                content_type="multipart/form-data")  # fmt: skip
    export = load_workbook(io.BytesIO(client.get("/problems/export.xlsx").data)).worksheets[0]
    assert "整改台账" in export["A1"].value and "共 1 个问题" in export["A2"].value
    assert [c.value for c in export[3]] == LEDGER_HEADERS and export.freeze_panes == "A4"
    buffer = io.BytesIO()
    export.parent.save(buffer)
    response = client.post(page, data={"file": (io.BytesIO(buffer.getvalue()), "export.xlsx")},
                           content_type="multipart/form-data")  # fmt: skip
    text = response.get_data(as_text=True)
    assert "已导入 1 行" in text and "未变 1 条" in text, text[-2500:]
