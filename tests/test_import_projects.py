"""Projects and fund transactions from spreadsheets: create and update by 项目编号, the fund ledger's money rule over
the file and the ledger, idempotent re-imports, scope, the generic command line and the round trip."""

import csv
import io
import re
from datetime import date

import sqlalchemy as sa

from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.transfer.reader import LONG_NUMBER, read_table
from registry.projects.models import FundSource, FundStage, FundTransaction, Project, ProjectStatus
from registry.projects.transfer import (
    FUND_HEADERS,
    HEADERS,
    import_projects,
    import_transactions,
)
from registry.tasks.imports import IMPORTERS, stream_of
from tests.conftest import login
from tests.factories import World, make_transaction
from tests.imports_support import csv_bytes


def _project(**cells):
    base = {
        "项目编号": "ZC-513431-2024-101", "项目名称": "高山蔬菜基地", "市(州)": "凉山彝族自治州",
        "县(市、区)": "昭觉县",
        "东部结对单位": "余姚市", "年度": "2024", "项目类别": "产业发展", "实施方式": "交支票", "资金层级": "县级",
        "计划开工": "2024-03-01", "带动人数": "120", "其中脱贫人口": "80",
    }  # fmt: skip
    return base | cells


def _fund(code, **cells):
    base = {"项目编号": code, "资金来源": "东部财政援助资金", "环节": "到位", "日期": "2024-05-01", "金额(元)": "1000"}
    return base | cells


def _projects(rows, user, name="p.csv"):
    headers, body = read_table(csv_bytes(HEADERS, rows), name)
    return import_projects(headers, body, user=user, filename=name)


def _funds(rows, user, name="f.csv"):
    headers, body = read_table(csv_bytes(FUND_HEADERS, rows), name)
    return import_transactions(headers, body, user=user, filename=name)


def _ledger(project_id):
    stmt = sa.select(FundTransaction).where(FundTransaction.project_id == project_id).order_by(FundTransaction.id)
    return db.session.scalars(stmt).all()


def _reasons(result):
    return [(e.row, e.column, e.reason) for e in result.errors]


def test_projects_are_created_and_updated_by_code_each_audited_with_the_batch(ctx):
    w = World()
    db.session.flush()
    result = _projects([_project(), _project(项目编号=w.project_a.code, 项目名称="改名的项目", 县="")], w.county)
    assert _reasons(result) == [] and (result.created, result.updated) == (1, 1)
    new = db.session.scalar(sa.select(Project).where(Project.code == "ZC-513431-2024-101"))
    assert new.status is ProjectStatus.RESERVE and new.pairing_id == w.a.id and new.beneficiaries_lifted == 80
    assert new.programme_id == w.zc.id and w.project_a.name == "改名的项目"
    batch = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "import"))
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.batch_id == batch.id)).all()
    assert sorted(e.action for e in events) == ["create", "update"]
    assert all("经导入" in e.summary for e in events)
    # Blank cells never overwrite: the same code with only a new responsible person.
    again = _projects([{"项目编号": new.code, "责任人": "李四"}], w.county)
    assert _reasons(again) == [] and again.updated == 1
    assert new.name == "高山蔬菜基地" and new.responsible_person == "李四"


def test_project_rows_are_refused_with_their_reasons_and_nothing_is_written(ctx):
    w = World()
    db.session.flush()
    count = db.session.scalar(sa.select(sa.func.count(Project.id)))
    result = _projects(
        [
            _project(),
            _project(项目编号="ZC-X-1", 县="苍溪县", **{"县(市、区)": "苍溪县", "市(州)": "广元市"}),
            _project(项目编号=w.project_b.code),
            _project(项目编号="ZC-X-2", 东部结对单位="顺德区"),
            _project(项目编号="ZC-X-3", 项目类别="养殖"),
            _project(项目编号="ZC-X-4", **{"县(市、区)": "不存在县"}),
            _project(项目编号="ZC-X-5", 带动人数="10", 其中脱贫人口="20"),
            _project(项目编号="ZC-513431-2024-101"),
            {"项目编号": "ZC-X-6", "项目名称": "只有名称"},
        ],
        w.county,
    )
    reasons = {row: (column, reason) for row, column, reason in _reasons(result)}
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 9, 10}, reasons
    assert "苍溪县" in reasons[3][1] or "范围" in reasons[3][1]
    assert reasons[4] == ("项目编号", "该项目编号已被使用，且不在您的管辖范围内，不能导入修改。")
    assert reasons[5][0] == "东部结对单位" and "可选：宁波市余姚市" in reasons[5][1]
    assert reasons[6][0] == "项目类别" and reasons[7][0] == "县(市、区)"
    assert reasons[8][0] == "其中脱贫人口" and reasons[9] == ("项目编号", "与第 2 行是同一项目。")
    assert reasons[10][1].startswith("新增项目须填写：") and "计划开工" in reasons[10][1]
    assert db.session.scalar(sa.select(sa.func.count(Project.id))) == count
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "import")) == 0


def test_a_county_is_found_by_code_and_a_single_partner_may_be_left_blank(ctx):
    w = World()
    db.session.flush()
    result = _projects([_project(东部结对单位="", **{"县(市、区)": "513431", "市(州)": ""})], w.county)
    assert _reasons(result) == [] and result.created == 1


def test_funds_are_added_once_even_when_the_file_is_imported_again(ctx):
    w = World()
    db.session.flush()
    code = w.project_a.code
    rows = [
        _fund(code, 环节="拨付", 日期="2024-05-02", **{"金额(元)": "1050000", "文号/凭证": "PZ-2"}),
        _fund(code, 日期="2024-05-01", **{"金额(元)": "100万元", "文号/凭证": "PZ-1"}),
        _fund(code, 环节="计划", 日期="2024-01-10", **{"金额(元)": "3000000"}),
    ]
    # The 拨付 of 105 万 is covered only by the ledger's 10 万 plus the file's 100 万 (a row below it).
    result = _funds(rows, w.county)
    assert _reasons(result) == [] and result.created == 3
    project = w.project_a
    assert (project.planned_fen, project.arrived_fen, project.disbursed_fen) == (300000000, 110000000, 105000000)
    again = _funds(rows, w.county)
    assert _reasons(again) == [] and (again.created, again.unchanged) == (0, 3) and len(_ledger(project.id)) == 4
    # The ledger's own transaction, in the export's form, is that transaction too; a new 备注 only updates it.
    noted = _funds([_fund(code, 日期="2024-04-01", 备注="首笔到位", **{"金额(元)": "100000.00"})], w.county)
    assert _reasons(noted) == [] and noted.updated == 1 and len(_ledger(project.id)) == 4
    assert w.txn_a.note == "首笔到位"


def test_two_equal_rows_are_two_transactions_once(ctx):
    w = World()
    db.session.flush()
    rows = [_fund(w.project_a.code), _fund(w.project_a.code)]
    assert _funds(rows, w.county).created == 2
    assert _funds(rows, w.county).unchanged == 2 and len(_ledger(w.project_a.id)) == 3


def test_the_money_rule_is_checked_over_file_and_ledger_and_names_the_row(ctx):
    w = World()
    db.session.flush()
    code = w.project_a.code
    make_transaction(w.project_a, FundStage.DISBURSED, 50_000_00, on=date(2024, 6, 1))
    rows = [
        _fund(code, 环节="拨付", 日期="2024-05-01", **{"金额(元)": "60000"}),
        _fund(code, 日期="2024-07-01", **{"金额(元)": "100"}),
        _fund(code, 环节="拨付", 资金来源="社会帮扶资金", **{"金额(元)": "1"}),
    ]
    result = _funds(rows, w.county)
    errors = _reasons(result)
    # The ledger's 拨付 of 6-01 breaks once the file's 5-01 拨付 comes before it: the file's row is named.
    assert [(r, c) for r, c, _ in errors] == [(2, "金额(元)"), (4, "金额(元)")], errors
    assert "东部财政援助资金：截至 2024-06-01 累计拨付 11.0000 万元，超过累计到位 10.0000 万元" in errors[0][2]
    assert errors[0][2].endswith("（与文件中第 3 行及已登记的资金记录一并计算）")
    assert "社会帮扶资金" in errors[1][2]
    assert len(_ledger(w.project_a.id)) == 2 and result.created == 0


def test_fund_rows_out_of_scope_or_unknown_or_for_a_reserve_project(ctx):
    w = World()
    db.session.flush()
    _projects([_project()], w.county)
    rows = [
        _fund(w.project_b.code, 日期="2019-05-01"),
        _fund("没有这个项目"),
        _fund("ZC-513431-2024-101"),
        _fund(w.project_a.code, 日期="2999-01-01"),
        _fund(w.project_a.code, 环节="到账", **{"金额(元)": "0"}),
        _fund(w.project_a.code, **{"金额(元)": "12.5万"}),
    ]
    reasons = {(r, c): reason for r, c, reason in _reasons(_funds(rows, w.county))}
    assert reasons[(2, "项目编号")] == reasons[(3, "项目编号")] == "没有这个项目编号，或该项目不在您的管辖范围内。"
    assert reasons[(4, "环节")].startswith("储备项目只能登记计划资金")
    assert reasons[(5, "日期")].startswith("日期不能晚于今天")
    assert (6, "环节") in reasons and reasons[(6, "金额(元)")] == "金额须大于 0。"
    assert "单位不明确" in reasons[(7, "金额(元)")]


def test_exports_round_trip_unchanged(app, world):
    client = app.test_client()
    login(client, "county")
    for kind in ("xlsx", "csv"):
        with app.app_context():
            events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
        for export, page in (
            ("/projects/export", "/projects/import"),
            ("/projects/funds/export", "/projects/funds/import"),
        ):
            data = client.get(f"{export}.{kind}").data
            response = client.post(page, data={"file": (io.BytesIO(data), f"x.{kind}")},
                                   content_type="multipart/form-data")  # fmt: skip
            text = response.get_data(as_text=True)
            # Every row the export wrote (the county's projects, or its fund transactions) comes back unchanged.
            imported = re.search(r"已导入 (\d+) 行", text)
            assert imported and f"新增 0 条，更新 0 条，未变 {imported[1]} 条" in text, text[-1500:]
        with app.app_context():
            new = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.id > events)).all()
            assert [e.action for e in new] == ["import", "import"]
            assert len(_ledger(world.project_a)) == 1


def test_generic_command_imports_every_registered_stream(app, runner, world, tmp_path):
    assert {"placements", "purchases", "exchanges", "projects", "funds"} <= set(IMPORTERS)
    assert stream_of(IMPORTERS["funds"][0]) == "funds"
    with app.app_context():
        code = db.session.get(Project, world.project_a).code
    good = tmp_path / "funds.csv"
    good.write_bytes(csv_bytes(FUND_HEADERS, [_fund(code, 环节="拨付", **{"金额(元)": "10"})]))
    result = runner.invoke(args=["transfer", "import", "funds", str(good), "--user", "county"])
    assert result.exit_code == 0 and "新增 1" in result.output, result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(FUND_HEADERS, [_fund(code, 环节="拨付", **{"金额(元)": "99999999"})]))
    result = runner.invoke(args=["transfer", "import", "funds", str(bad), "--user", "county"])
    assert result.exit_code != 0 and "第 2 行 金额(元)" in result.output and "超过累计到位" in result.output
    result = runner.invoke(args=["transfer", "import", "projects", str(good), "--user", "reader"])
    assert result.exit_code != 0 and "无权登记帮扶项目" in result.output
    result = runner.invoke(args=["transfer", "import", "nothing", str(good), "--user", "county"])
    assert result.exit_code != 0
    with app.app_context():
        assert len(_ledger(world.project_a)) == 2
        assert db.session.get(FundTransaction, _ledger(world.project_a)[-1].id).source is FundSource.EAST_FISCAL


def test_quirks_of_a_county_sheet_are_read_and_said(ctx):
    """A title above the header, other column names, 万元 amounts, Chinese dates and a 合计 row are read (and said);
    a voucher number Excel kept as a long number is refused with the reason."""
    w = World()
    db.session.flush()
    code = w.project_a.code
    lines = [
        ["昭觉县2024年东西部协作资金到位情况表"],
        ["项目代码", "来源", "阶段", "到位日期", "金额(万元)", "凭证号", "备注", "项目名称"],
        [code, "东部财政援助资金", "到位", "2024年5月1日", "12.5", "PZ-9", "", "产业帮扶车间建设"],
        [code, "东部财政援助资金", "拨付", "45413", "2", "PZ-10", "", ""],
        ["合计", "", "", "", "14.5", "", "", ""],
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    headers, body = read_table(buffer.getvalue().encode("utf-8-sig"), "q.csv")
    result = import_transactions(headers, body, user=w.county, filename="q.csv")
    assert _reasons(result) == [] and result.created == 2
    notes = "".join(result.notes)
    assert "已忽略表头上方的 1 行标题" in notes and "按“文号/凭证”列读取" in notes and "（单位：万元）" in notes
    assert "是合计行，已跳过" in notes
    added = _ledger(w.project_a.id)[1:]
    assert [(t.amount_fen, t.occurred_on) for t in added] == [
        (12_500_000, date(2024, 5, 1)),
        (2_000_000, date(2024, 5, 1)),
    ]
    buffer = io.StringIO()
    row = [code, "东部财政援助资金", "到位", "2024-05-01", "10", "5.13431E+17", ""]
    csv.writer(buffer).writerows([FUND_HEADERS, row])
    headers, body = read_table(buffer.getvalue().encode("utf-8-sig"), "n.csv")
    refused = import_transactions(headers, body, user=w.county, filename="n.csv")
    assert [(e.column, e.reason) for e in refused.errors] == [("文号/凭证", LONG_NUMBER)]
