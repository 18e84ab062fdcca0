"""The reference divisions and categories: real counts, idempotent loading, all-or-nothing on bad files."""

import shutil
from datetime import date

import pytest
import sqlalchemy as sa

from registry.counties.models import CountyCategory, Side, Unit, UnitCategory, UnitKind
from registry.counties.services import DATA_DIR, category_on, load_divisions, set_category
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError


def _count(**where):
    stmt = sa.select(sa.func.count(Unit.id))
    for key, value in where.items():
        stmt = stmt.where(getattr(Unit, key) == value)
    return db.session.scalar(stmt)


def _province(code):
    return db.session.scalar(sa.select(Unit).where(Unit.code == code))


@pytest.mark.parametrize(
    ("code", "prefectures", "counties"),
    [("510000", 21, 183), ("330000", 11, 90), ("440000", 21, 122)],
)
def test_reference_counts(ctx, code, prefectures, counties):
    load_divisions()
    province = _province(code)
    assert _count(province_id=province.id, kind=UnitKind.PREFECTURE) == prefectures
    assert _count(province_id=province.id, kind=UnitKind.COUNTY) == counties


def test_categories_and_sides(ctx):
    load_divisions()
    sichuan = _province("510000")
    counts = dict(
        db.session.execute(
            sa.select(Unit.category, sa.func.count(Unit.id))
            .where(Unit.province_id == sichuan.id, Unit.kind == UnitKind.COUNTY)
            .group_by(Unit.category)
        ).all()
    )
    assert counts[CountyCategory.NATIONAL_KEY] == 25
    assert counts[CountyCategory.PROVINCIAL_KEY] == 25
    assert sum(counts.values()) == 183 and None not in counts
    zhaojue = db.session.scalar(sa.select(Unit).where(Unit.code == "513431"))
    assert zhaojue.full_name == "四川省凉山彝族自治州昭觉县" and zhaojue.category is CountyCategory.NATIONAL_KEY
    assert zhaojue.side is Side.WEST and _province("330000").side is Side.EAST
    assert zhaojue.prefecture.code == "513400" and zhaojue.county_id == zhaojue.id


def test_loading_twice_changes_nothing_and_keeps_an_admins_category(ctx):
    first = load_divisions()
    assert first.created == 3 + 53 + 395
    # 88 former poverty counties have three periods, the other 95 two.
    assert first.categorised == 88 * 3 + 95 * 2
    zhaojue = db.session.scalar(sa.select(Unit).where(Unit.code == "513431"))
    set_category(zhaojue, CountyCategory.PROVINCIAL_KEY, valid_from=date(2024, 1, 1), actor=None)
    periods = db.session.scalar(sa.select(sa.func.count(UnitCategory.id)))
    second = load_divisions()
    assert (second.created, second.renamed, second.categorised) == (0, 0, 0)
    assert db.session.scalar(sa.select(sa.func.count(UnitCategory.id))) == periods
    assert zhaojue.category is CountyCategory.PROVINCIAL_KEY
    assert category_on(zhaojue, date(2023, 12, 31)) is CountyCategory.NATIONAL_KEY
    assert category_on(zhaojue, date(2024, 1, 1)) is CountyCategory.PROVINCIAL_KEY


def _copy_data(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("51343X,坏县,county,513400", "应为 6 位数字"),
        ("519999,无上级县,county,519900", "上级代码 519900 不存在"),
        ("513431,重复,county,513400", "重复"),
        ("519998,层级错,town,510000", "层级“town”无效"),
    ],
)
def test_a_bad_file_writes_nothing_and_names_the_line(ctx, tmp_path, line, message):
    data = _copy_data(tmp_path)
    with (data / "divisions.csv").open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(ServiceError, match=message) as info:
        load_divisions(data)
    assert "divisions.csv 第" in str(info.value)
    assert _count() == 0


def test_cli_loads_and_reports(app, runner, tmp_path):
    result = runner.invoke(args=["geo", "load"])
    assert result.exit_code == 0, result.output
    assert "新增 451" in result.output
    result = runner.invoke(args=["geo", "load"])
    assert "新增 0" in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "load")) == 2
    bad = _copy_data(tmp_path)
    (bad / "sichuan_categories.csv").write_text("code,name,category\n513431,昭觉县,重点县\n", encoding="utf-8")
    result = runner.invoke(args=["geo", "load", "--data-dir", str(bad)])
    assert result.exit_code == 1 and "帮扶类别“重点县”无效" in result.output and "未导入任何数据" in result.output
    result = runner.invoke(args=["geo", "load", "--data-dir", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "缺少 divisions.csv、sichuan_categories.csv" in result.output
