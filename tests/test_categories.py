"""A county's assistance category has a history: 贫困县 until its 摘帽 year, 已脱贫摘帽, then the 2021 classification;
reports name the category valid in their quarter."""

from datetime import date
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from registry import create_app
from registry.counties.models import CountyCategory, Unit, UnitCategory
from registry.counties.services import category_on, history_of_category, load_divisions, set_category
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError
from registry.reports.queries import quarter_figures
from tests.conftest import Snapshot, make_test_config

C = CountyCategory


def _unit(code):
    return db.session.scalar(sa.select(Unit).where(Unit.code == code))


def _load():
    load_divisions()
    return SimpleNamespace()


@pytest.fixture(scope="module")
def divisions(app):
    """The reference divisions as ``load_divisions`` writes them, loaded once for the module (about a second on
    each engine) and put back for each test that asks (test_geography tests the loading itself)."""
    return Snapshot(app, "divisions", _load)


@pytest.fixture
def loaded(divisions, ctx):
    divisions.restore()
    return _unit


@pytest.mark.parametrize(
    ("code", "day", "category"),
    [
        ("513431", date(2019, 9, 30), C.NATIONAL_POOR),  # 昭觉: 国家级贫困县, 摘帽 2020
        ("513431", date(2020, 12, 31), C.NATIONAL_POOR),
        ("513431", date(2021, 3, 31), C.EXITED),
        ("513431", date(2021, 8, 9), C.EXITED),
        ("513431", date(2021, 8, 10), C.NATIONAL_KEY),
        ("513431", date(2024, 9, 30), C.NATIONAL_KEY),
        ("511132", date(2018, 6, 30), C.PROVINCIAL_POOR),  # 峨边: the one 省定 county of the 2019 batch
        ("511132", date(2024, 9, 30), C.PROVINCIAL_KEY),
        ("511321", date(2016, 6, 30), C.POOR),  # 南部县: 摘帽 2016, level not stated by the source
        ("511321", date(2017, 6, 30), C.EXITED),
        ("511321", date(2024, 9, 30), C.OTHER_LIFTED),
        ("513223", date(2017, 6, 30), C.NATIONAL_POOR),  # 茂县: 阿坝, all 国家连片开发重点县
        ("510104", date(2019, 9, 30), C.NON_POOR),  # 锦江区: never a poverty county
        ("510104", date(2024, 9, 30), C.NON_POVERTY),
    ],
)
def test_category_on_a_day(loaded, code, day, category):
    assert category_on(loaded(code), day) is category


def test_the_current_category_is_the_open_period_and_east_units_have_none(loaded):
    zhaojue = loaded("513431")
    assert zhaojue.category is C.NATIONAL_KEY
    periods = [(r.category, r.valid_from, r.valid_to) for r in history_of_category(zhaojue.id)]
    assert periods == [
        (C.NATIONAL_POOR, None, date(2020, 12, 31)),
        (C.EXITED, date(2021, 1, 1), date(2021, 8, 9)),
        (C.NATIONAL_KEY, date(2021, 8, 10), None),
    ]
    assert category_on(loaded("330281"), date(2024, 1, 1)) is None  # 余姚市


def test_reports_name_the_category_valid_in_their_quarter(loaded):
    zhaojue = loaded("513431")
    assert quarter_figures(zhaojue, Quarter.parse("2019Q3")).unit.category == "国家级贫困县"
    assert quarter_figures(zhaojue, Quarter.parse("2021Q1")).unit.category == "已脱贫摘帽"
    assert quarter_figures(zhaojue, Quarter.parse("2024Q3")).unit.category == "国家乡村振兴重点帮扶县"
    jinjiang = loaded("510104")
    assert quarter_figures(jinjiang, Quarter.parse("2019Q3")).unit.category == "非贫困县"
    assert quarter_figures(jinjiang, Quarter.parse("2024Q3")).unit.category == "非脱贫县"


def test_an_administrators_change_is_dated_audited_and_survives_reloads(loaded):
    zhaojue = loaded("513431")
    version = zhaojue.version_id
    changes = set_category(zhaojue, C.OTHER_LIFTED, valid_from=date(2025, 1, 1), actor=None, version=version,
                           note="测试文件")  # fmt: skip
    assert changes["category"] == ["national_key", "other_lifted"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.entity_id == zhaojue.id))
    assert "自 2025-01-01 起" in event.summary
    assert category_on(zhaojue, date(2024, 12, 31)) is C.NATIONAL_KEY
    assert category_on(zhaojue, date(2025, 1, 1)) is C.OTHER_LIFTED
    assert load_divisions().categorised == 0
    assert zhaojue.category is C.OTHER_LIFTED
    # A change on the first day of the current period corrects it instead of adding a one-day period.
    set_category(zhaojue, C.PROVINCIAL_KEY, valid_from=date(2025, 1, 1), actor=None)
    assert [r.category for r in history_of_category(zhaojue.id)][-2:] == [C.NATIONAL_KEY, C.PROVINCIAL_KEY]
    # The same category again changes nothing.
    assert set_category(zhaojue, C.PROVINCIAL_KEY, valid_from=date(2025, 2, 1), actor=None) == {}


@pytest.mark.parametrize(
    ("code", "category", "valid_from", "field", "message"),
    [
        ("513431", C.NATIONAL_POOR, date(2024, 1, 1), "category", "不能再用“国家级贫困县”"),
        ("513431", C.NATIONAL_KEY, date(2020, 1, 1), "category", "自 2021-08-10 起才有"),
        ("513431", C.OTHER_LIFTED, date(2021, 8, 1), "category", "自 2021-08-10 起才有"),
        ("513431", C.OTHER_LIFTED, date(9999, 1, 1), "valid_from", "不能晚于今天"),
        ("513431", C.OTHER_LIFTED, None, "valid_from", "请填写帮扶类别的生效日期"),
        ("513431", None, date(2024, 1, 1), "category", "请选择帮扶类别"),
        ("330281", C.OTHER_LIFTED, date(2024, 1, 1), "category", "只有四川的县级单位有帮扶类别"),
    ],
)
def test_bad_changes_are_refused_with_the_field(loaded, code, category, valid_from, field, message):
    unit = loaded(code)
    before = [(r.category, r.valid_from, r.valid_to) for r in history_of_category(unit.id)]
    with pytest.raises(ServiceError, match=message) as info:
        set_category(unit, category, valid_from=valid_from, actor=None)
    assert info.value.field == field
    assert [(r.category, r.valid_from, r.valid_to) for r in history_of_category(unit.id)] == before


def test_a_change_before_the_current_period_is_refused(loaded):
    zhaojue = loaded("513431")
    set_category(zhaojue, C.OTHER_LIFTED, valid_from=date(2025, 1, 1), actor=None)
    with pytest.raises(ServiceError, match="不能早于当前类别的起始日期 2025-01-01"):
        set_category(zhaojue, C.PROVINCIAL_KEY, valid_from=date(2024, 6, 1), actor=None)


def test_migration_backfills_the_current_category(empty_database):
    """Upgrading a database that has categories but no history makes each the open period; the loader then
    adds the earlier periods around it."""
    app = create_app(make_test_config(empty_database))
    with app.app_context():
        upgrade(revision="bbfd8b168cd9")
        now = "2026-01-01 00:00:00"
        with db.engine.begin() as conn:
            for id_, code, name, kind, category in (
                (1, "510000", "四川省", "province", None),
                (2, "513400", "凉山彝族自治州", "prefecture", None),
                (3, "513431", "昭觉县", "county", "provincial_key"),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO units (id, code, name, full_name, kind, side, parent_id, category, is_active, "
                        "note, created_at, updated_at, version_id) VALUES (:id, :code, :name, :name, :kind, 'west', "
                        ":parent, :category, true, '', :now, :now, 1)"
                    ),
                    {"id": id_, "code": code, "name": name, "kind": kind, "category": category, "now": now,
                     "parent": id_ - 1 if id_ > 1 else None},
                )  # fmt: skip
            if db.engine.dialect.name == "postgresql":
                # Rows were inserted with explicit ids: move the sequence past them for the loader's new units.
                conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('units', 'id'), 100)")
        upgrade()
        rows = db.session.execute(sa.select(UnitCategory.unit_id, UnitCategory.category, UnitCategory.valid_from))
        assert list(rows) == [(3, C.PROVINCIAL_KEY, date(2021, 8, 10))]
        load_divisions()
        zhaojue = db.session.get(Unit, 3)
        # The backfilled current category (an earlier correction) is kept; the older periods are added.
        assert zhaojue.category is C.PROVINCIAL_KEY
        assert category_on(zhaojue, date(2019, 9, 30)) is C.NATIONAL_POOR
        db.session.remove()
        db.engine.dispose()
