"""Agreement targets and allocations, and indicator entries, from spreadsheets: set by year, programme, unit and
indicator; entries added once; scope; the round trip of their exports."""

import io

import sqlalchemy as sa

from registry.agreements.models import IndicatorEntry, Target
from registry.agreements.transfer import ENTRY_HEADERS, TARGET_HEADERS, import_entries, import_targets
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.transfer.reader import read_table
from tests.conftest import login
from tests.factories import World
from tests.imports_support import csv_bytes


def _run(importer, headers, rows, user):
    head, body = read_table(csv_bytes(headers, rows), "t.csv")
    return importer(head, body, user=user, filename="t.csv")


def _target(**cells):
    return {"年度": "2024", "协作类型": "浙川东西部协作", "单位代码": "513431", "指标": "财政援助资金",
            "目标值": "3900"} | cells  # fmt: skip


def _entry(**cells):
    base = {"指标": "引导企业数", "县代码": "513431", "日期": "2024-06-01", "数值": "1", "对象": "余姚某机械公司"}
    return base | cells


def _targets():
    return {(t.unit.code, t.indicator.name): t.value for t in db.session.scalars(sa.select(Target))}


def test_targets_are_set_updated_and_left_alone_per_unit_and_indicator(ctx):
    w = World()
    db.session.flush()
    rows = [
        _target(单位代码="510000", 目标值="39000.5"),
        _target(),
        _target(指标="帮助农村劳动力就业人数", 目标值="1200"),
        _target(单位代码="", 单位="昭觉县", 指标="项目数", 目标值="12"),
    ]
    result = _run(import_targets, TARGET_HEADERS, rows, w.province)
    assert [e.reason for e in result.errors] == [] and result.created == 4
    assert _targets() == {("510000", "财政援助资金"): 39_000_500_000, ("513431", "财政援助资金"): 3_900_000_000,
                          ("513431", "帮助农村劳动力就业人数"): 1200, ("513431", "项目数"): 12}  # fmt: skip
    events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "targets")).all()
    assert len(events) == 2 and all(e.batch_id is not None for e in events)
    rows = [_target(目标值="4000"), _target(指标="项目数", 目标值="")]
    again = _run(import_targets, TARGET_HEADERS, rows, w.province)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert _targets()[("513431", "财政援助资金")] == 4_000_000_000


def test_target_rows_are_refused_with_their_reasons(ctx):
    w = World()
    db.session.flush()
    rows = [
        _target(协作类型="不存在的协作"),
        _target(单位代码="330281"),
        _target(指标="没有的指标"),
        _target(指标="项目数", 目标值="1.5"),
        _target(目标值="12.5万"),
        _target(),
        _target(),
    ]
    result = _run(import_targets, TARGET_HEADERS, rows, w.province)
    reasons = {(e.row, e.column): e.reason for e in result.errors}
    assert reasons[(2, "协作类型")].startswith("没有不存在的协作 2024 年的协议")
    assert reasons[(3, "单位代码")] == "不是四川省、市(州)或县(市、区)的区划代码。"
    assert (4, "指标") in reasons and "数量指标" in reasons[(5, "目标值")] and "单位不明确" in reasons[(6, "目标值")]
    assert reasons[(8, "指标")] == "与第 7 行是同一目标。"
    assert _targets() == {}


def test_entries_are_added_once_and_scope_is_checked(ctx):
    w = World()
    db.session.flush()
    count = db.session.scalar(sa.select(sa.func.count(IndicatorEntry.id)))
    rows = [_entry(), _entry(指标="引导企业到位投资额", 数值="250.5", 东部结对单位="宁波市余姚市")]
    result = _run(import_entries, ENTRY_HEADERS, rows, w.county)
    assert [e.reason for e in result.errors] == [] and result.created == 2
    money = db.session.scalar(sa.select(IndicatorEntry).where(IndicatorEntry.value == 250_500_000))
    assert money is not None and money.pairing_id == w.a.id
    again = _run(import_entries, ENTRY_HEADERS, rows, w.county)
    assert (again.created, again.unchanged) == (0, 2)
    assert db.session.scalar(sa.select(sa.func.count(IndicatorEntry.id))) == count + 2
    bad = _run(
        import_entries,
        ENTRY_HEADERS,
        [_entry(县代码="510824", 日期="2019-06-01"), _entry(指标="财政援助资金"), _entry(数值="两个"),
         _entry(东部结对单位="顺德区")],
        w.county,
    )  # fmt: skip
    reasons = {(e.row, e.column): e.reason for e in bad.errors}
    assert reasons[(2, "县代码")].startswith("苍溪县不在您的管辖范围内")
    assert "自动统计" in reasons[(3, "指标")] and "整数" in reasons[(4, "数值")]
    assert "可选：宁波市余姚市" in reasons[(5, "东部结对单位")]


def test_target_and_entry_exports_round_trip_unchanged(app, world):
    admin = app.test_client()
    login(admin, "province")
    admin.post(
        "/agreements/targets/import",
        data={"file": (io.BytesIO(csv_bytes(TARGET_HEADERS, [_target(目标值="3900.123456")])), "t.csv")},
        content_type="multipart/form-data",
    ).get_data()
    for export, page, client in (
        ("/agreements/targets/export", "/agreements/targets/import", admin),
        ("/indicator-entries/export", "/indicator-entries/import", admin),
    ):
        for kind in ("xlsx", "csv"):
            data = client.get(f"{export}.{kind}").data
            head, body = read_table(data, f"x.{kind}")
            count = len(list(body))
            assert count >= 1
            text = client.post(page, data={"file": (io.BytesIO(data), f"x.{kind}")},
                               content_type="multipart/form-data").get_data(as_text=True)  # fmt: skip
            assert f"已导入 {count} 行" in text and "新增 0 条，更新 0 条" in text, text[-1500:]
    with app.app_context():
        assert db.session.scalar(sa.select(Target.value)) == 3_900_123_456
