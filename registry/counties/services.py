"""Load the reference divisions, and create or change the organisations office staff add below a county."""

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from registry.counties.models import (
    CATEGORIES_2021,
    CLASSIFICATION_2021,
    DIVISION_KINDS,
    LOCAL_KINDS,
    SICHUAN_CODE,
    CountyCategory,
    Side,
    Unit,
    UnitCategory,
    UnitKind,
)
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError, check_version

DATA_DIR = Path(__file__).resolve().parent / "data"
LEVELS = {
    "province": UnitKind.PROVINCE,
    "prefecture": UnitKind.PREFECTURE,
    "county": UnitKind.COUNTY,
}
CATEGORY_BY_LABEL = {c.label: c for c in CATEGORIES_2021}
POOR_BY_LEVEL = {
    "国家级": CountyCategory.NATIONAL_POOR,
    "省级": CountyCategory.PROVINCIAL_POOR,
    "": CountyCategory.POOR,
}
ONE_DAY = timedelta(days=1)
LOCAL_FIELDS = ("name", "kind", "parent_id", "note", "is_active")


@dataclass
class LoadResult:
    created: int = 0
    renamed: int = 0
    categorised: int = 0
    unchanged: int = 0


def read_divisions(path: Path) -> list[dict]:
    """Read and check divisions.csv; raise ServiceError (with the line number) on any bad row."""
    rows, seen = [], set()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            code, name = (
                (row.get("code") or "").strip(),
                (row.get("name") or "").strip(),
            )
            level, parent = (
                (row.get("level") or "").strip(),
                (row.get("parent_code") or "").strip(),
            )
            if not (len(code) == 6 and code.isdigit()):
                raise ServiceError(f"{path.name} 第 {line} 行：区划代码“{code}”应为 6 位数字。")
            if level not in LEVELS:
                raise ServiceError(f"{path.name} 第 {line} 行：层级“{level}”无效。")
            if not name:
                raise ServiceError(f"{path.name} 第 {line} 行：名称为空。")
            if code in seen:
                raise ServiceError(f"{path.name} 第 {line} 行：区划代码 {code} 重复。")
            if level != "province" and parent not in seen:
                raise ServiceError(f"{path.name} 第 {line} 行：上级代码 {parent} 不存在或排在本行之后。")
            seen.add(code)
            rows.append(
                {
                    "code": code,
                    "name": name,
                    "kind": LEVELS[level],
                    "parent_code": parent or None,
                }
            )
    return rows


def read_categories(path: Path) -> dict[str, CountyCategory]:
    categories = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            label = (row.get("category") or "").strip()
            if label not in CATEGORY_BY_LABEL:
                raise ServiceError(f"{path.name} 第 {line} 行：帮扶类别“{label}”无效。")
            categories[(row.get("code") or "").strip()] = CATEGORY_BY_LABEL[label]
    return categories


@dataclass(frozen=True)
class PovertyCounty:
    level: str
    exit_year: int
    source: str


def read_poverty(path: Path, categories: dict[str, CountyCategory]) -> dict[str, PovertyCounty]:
    """Read sichuan_poverty_counties.csv: the 88 former poverty counties, their level and 摘帽 year."""
    counties = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            code, level = (row.get("code") or "").strip(), (row.get("level") or "").strip()
            year = (row.get("exit_year") or "").strip()
            if level not in POOR_BY_LEVEL:
                raise ServiceError(f"{path.name} 第 {line} 行：贫困县级别“{level}”无效（国家级、省级或留空）。")
            if not (year.isdigit() and 2016 <= int(year) <= 2020):
                raise ServiceError(f"{path.name} 第 {line} 行：摘帽年度“{year}”应在 2016–2020 之间。")
            if categories.get(code) in (None, CountyCategory.NON_POVERTY):
                raise ServiceError(f"{path.name} 第 {line} 行：{code} 在 sichuan_categories.csv 中不是脱贫县。")
            counties[code] = PovertyCounty(level, int(year), (row.get("source") or "").strip())
    return counties


def reference_history(category: CountyCategory, poverty: PovertyCounty | None) -> list[tuple]:
    """The periods ``(category, valid_from, valid_to, source)`` of one county from the reference data.

    A poverty county is 贫困县 (国家级/省级) to the end of its 摘帽 year (the year whose end-of-year figures the
    exit was assessed on), 已脱贫摘帽 from the next 1 January, and in its 2021 category from 2021-08-10. Any other
    county is 非贫困县 until the 2021 classification and 非脱贫县 after.
    """
    notice = "四川省委农村工作领导小组 2021-08-10 通知（sichuan_categories.csv）"
    before = CLASSIFICATION_2021 - ONE_DAY
    if poverty is None:
        return [
            (CountyCategory.NON_POOR, None, before, "未列入 88 个贫困县（sichuan_poverty_counties.csv）"),
            (category, CLASSIFICATION_2021, None, notice),
        ]
    exit_year = f"{poverty.exit_year} 年摘帽：{poverty.source}"
    return [
        (POOR_BY_LEVEL[poverty.level], None, date(poverty.exit_year, 12, 31), exit_year),
        (CountyCategory.EXITED, date(poverty.exit_year + 1, 1, 1), before, exit_year),
        (category, CLASSIFICATION_2021, None, notice),
    ]


def history_of_category(unit_id: int) -> list[UnitCategory]:
    """A unit's category periods, oldest first (an open start sorts first)."""
    rows = db.session.scalars(sa.select(UnitCategory).where(UnitCategory.unit_id == unit_id)).all()
    return sorted(rows, key=lambda r: r.valid_from or date.min)


def _overlaps(a_from, a_to, b_from, b_to) -> bool:
    return (a_from or date.min) <= (b_to or date.max) and (b_from or date.min) <= (a_to or date.max)


def _fill_history(unit: Unit, periods: list[tuple], existing: list[UnitCategory]) -> int:
    """Add the reference periods that overlap nothing already recorded; never change a recorded row."""
    added = 0
    for category, valid_from, valid_to, source in periods:
        if any(_overlaps(valid_from, valid_to, r.valid_from, r.valid_to) for r in existing):
            continue
        row = UnitCategory(unit_id=unit.id, category=category, valid_from=valid_from, valid_to=valid_to,
                           source=source[:300], is_reference=True)  # fmt: skip
        db.session.add(row)
        existing.append(row)
        added += 1
    current = [r for r in existing if r.valid_to is None]
    if current and unit.category is not current[0].category:
        unit.category = current[0].category
    return added


def category_on(unit: Unit | int, day: date) -> CountyCategory | None:
    """The assistance category valid for ``unit`` on ``day``, or None (not a Sichuan county, or not recorded)."""
    unit_id = unit if isinstance(unit, int) else unit.id
    return db.session.scalar(
        sa.select(UnitCategory.category).where(
            UnitCategory.unit_id == unit_id,
            sa.or_(UnitCategory.valid_from.is_(None), UnitCategory.valid_from <= day),
            sa.or_(UnitCategory.valid_to.is_(None), UnitCategory.valid_to >= day),
        )
    )


def load_divisions(data_dir: Path = DATA_DIR, *, actor=None) -> LoadResult:
    """Insert or rename divisions from the data files; safe to run again (idempotent).

    Each Sichuan county's category history is filled from the reference files only where no recorded period
    overlaps it, so an administrator's dated change (and anything loaded before) survives reloads. The current
    category (``Unit.category``) follows the open period. Every file is checked before anything is written.
    """
    rows = read_divisions(data_dir / "divisions.csv")
    categories = read_categories(data_dir / "sichuan_categories.csv")
    poverty = read_poverty(data_dir / "sichuan_poverty_counties.csv", categories)
    existing = {u.code: u for u in db.session.scalars(sa.select(Unit).where(Unit.code.is_not(None)))}
    result = LoadResult()
    for row in rows:
        unit = existing.get(row["code"])
        parent = existing.get(row["parent_code"]) if row["parent_code"] else None
        if unit is None:
            unit = Unit(code=row["code"], name=row["name"], kind=row["kind"], parent=parent)
            _place(unit, parent)
            db.session.add(unit)
            db.session.flush()
            _set_ancestors(unit, parent)
            existing[unit.code] = unit
            result.created += 1
        elif unit.name != row["name"]:
            unit.name = row["name"]
            unit.full_name = (parent.full_name if parent else "") + unit.name
            result.renamed += 1
        else:
            result.unchanged += 1
    db.session.flush()
    recorded: dict[int, list[UnitCategory]] = {}
    for row in db.session.scalars(sa.select(UnitCategory)):
        recorded.setdefault(row.unit_id, []).append(row)
    for code, category in categories.items():
        unit = existing.get(code)
        if unit is not None:
            periods = reference_history(category, poverty.get(code))
            result.categorised += _fill_history(unit, periods, recorded.setdefault(unit.id, []))
    record(
        "load",
        None,
        actor=actor,
        entity_type="units",
        summary=f"导入行政区划：新增 {result.created}，更名 {result.renamed}，新增类别时段 {result.categorised}",
    )
    db.session.flush()
    return result


def add_division(code: str, name: str, kind: UnitKind, parent: Unit | None, category=None) -> Unit:
    """Insert one administrative division under ``parent`` (None for a province); not audited by itself."""
    unit = Unit(code=code, name=name, kind=kind, parent=parent, category=category)
    _place(unit, parent)
    db.session.add(unit)
    db.session.flush()
    _set_ancestors(unit, parent)
    if category is not None:
        # A category given without history is the current one, valid since its classification took effect.
        since = CLASSIFICATION_2021 if category in CATEGORIES_2021 else None
        db.session.add(UnitCategory(unit_id=unit.id, category=category, valid_from=since, source="参考数据"))
    return unit


def _place(unit: Unit, parent: Unit | None):
    """Side and full name follow from the parent (or, for a province, its own code)."""
    if parent is None:
        unit.side = Side.WEST if unit.code == SICHUAN_CODE else Side.EAST
        unit.full_name = unit.name
    else:
        unit.side = parent.side
        unit.full_name = parent.full_name + unit.name


def _set_ancestors(unit: Unit, parent: Unit | None):
    """Copy the parent's ancestor ids and add the unit itself at its own level (needs unit.id)."""
    unit.province_id = parent.province_id if parent else None
    unit.prefecture_id = parent.prefecture_id if parent else None
    unit.county_id = parent.county_id if parent else None
    if unit.kind is UnitKind.PROVINCE:
        unit.province_id = unit.id
    elif unit.kind is UnitKind.PREFECTURE:
        unit.prefecture_id = unit.id
    elif unit.kind is UnitKind.COUNTY:
        unit.county_id = unit.id


def _check_local(data: dict) -> Unit:
    if data["kind"] not in LOCAL_KINDS:
        raise ServiceError(
            "行政区划由参考数据导入，不能手工添加；请选择乡镇、村、学校、医院、企业或社会组织。",
            "kind",
        )
    parent = db.session.get(Unit, data["parent_id"]) if data.get("parent_id") else None
    if parent is None:
        raise ServiceError("请选择所在的县(市、区)或乡镇。", "parent_id")
    if parent.kind not in (UnitKind.COUNTY, UnitKind.TOWNSHIP):
        raise ServiceError("上级单位须为县(市、区)或乡镇(街道)。", "parent_id")
    if data["kind"] is UnitKind.TOWNSHIP and parent.kind is not UnitKind.COUNTY:
        raise ServiceError("乡镇(街道)的上级须为县(市、区)。", "parent_id")
    name = data["name"]
    clash = db.session.scalar(
        sa.select(Unit.id).where(Unit.parent_id == parent.id, Unit.name == name, Unit.kind == data["kind"])
    )
    if clash is not None and clash != data.get("id"):
        raise ServiceError(f"{parent.name}下已有同名{data['kind'].label}“{name}”。", "name")
    return parent


def create_local_unit(data: dict, *, actor) -> Unit:
    """Add a township, village, school, hospital, enterprise or social organisation under a county."""
    parent = _check_local(data)
    unit = Unit(name=data["name"], kind=data["kind"], parent=parent, note=data.get("note") or "")
    _place(unit, parent)
    _set_ancestors(unit, parent)  # an organisation's ancestors are all above it: no id needed yet
    db.session.add(unit)
    db.session.flush()
    record(
        "create",
        unit,
        actor=actor,
        summary=f"新建单位 {unit.full_name}",
        changes=snapshot(unit, LOCAL_FIELDS),
    )
    return unit


def update_local_unit(unit: Unit, data: dict, *, actor, version=None) -> dict:
    """Rename or move an organisation; divisions keep their reference names."""
    check_version(unit, version)
    if unit.kind in DIVISION_KINDS:
        raise ServiceError("行政区划的名称以参考数据为准，不能在此修改。")
    parent = _check_local({**data, "id": unit.id})
    if parent.county_id != unit.county_id:
        raise ServiceError("单位只能在本县(市、区)内调整上级。", "parent_id")
    changes = apply_changes(unit, data, LOCAL_FIELDS)
    if changes:
        unit.parent = parent
        _place(unit, parent)
        _set_ancestors(unit, parent)
        _refresh_descendants(unit)
        record(
            "update",
            unit,
            actor=actor,
            summary=f"修改单位 {unit.full_name}",
            changes=changes,
        )
    return changes


def _refresh_descendants(unit: Unit):
    """Keep full names below a renamed or moved unit in step (townships hold villages and schools)."""
    children = db.session.scalars(sa.select(Unit).where(Unit.parent_id == unit.id)).all()
    for child in children:
        _place(child, unit)
        _refresh_descendants(child)


def set_category(
    unit: Unit, category: CountyCategory | None, *, valid_from: date | None, actor, version=None, note: str = ""
) -> dict:
    """An administrator records that a Sichuan county's category is ``category`` from ``valid_from`` on.

    The current period ends the day before; a change dated on the current period's first day corrects that
    period instead. Earlier history belongs to the reference data and cannot be rewritten here.
    """
    check_version(unit, version)
    if unit.kind is not UnitKind.COUNTY or unit.side is not Side.WEST:
        raise ServiceError("只有四川的县级单位有帮扶类别。", "category")
    if category is None:
        raise ServiceError("请选择帮扶类别。", "category")
    if valid_from is None:
        raise ServiceError("请填写帮扶类别的生效日期。", "valid_from")
    if valid_from > date.today():
        raise ServiceError("生效日期不能晚于今天；类别调整生效后再登记。", "valid_from")
    if (category in CATEGORIES_2021) != (valid_from >= CLASSIFICATION_2021):
        if category in CATEGORIES_2021:
            raise ServiceError(f"“{category.label}”自 2021-08-10 起才有；此日期之前请选择贫困县类别。", "category")
        raise ServiceError(f"2021-08-10 起应使用乡村振兴重点帮扶县等类别，不能再用“{category.label}”。", "category")
    history = history_of_category(unit.id)
    current = next((r for r in history if r.valid_to is None), None)
    if current is not None and current.valid_from is not None and valid_from < current.valid_from:
        raise ServiceError(
            f"生效日期不能早于当前类别的起始日期 {current.valid_from.isoformat()}；更早的时段以参考数据为准。",
            "valid_from",
        )
    if current is not None and current.category is category:
        return {}
    source = "管理员登记" + (f"：{note}" if note else "")
    old = current.category if current is not None else unit.category
    if current is not None and current.valid_from == valid_from:
        current.category, current.source, current.is_reference = category, source[:300], False
    else:
        if current is not None:
            current.valid_to = valid_from - ONE_DAY
        db.session.add(UnitCategory(unit_id=unit.id, category=category, valid_from=valid_from,
                                    source=source[:300], is_reference=False))  # fmt: skip
    unit.category = category
    changes = {
        "category": [old.value if old else None, category.value],
        "category_from": [None, valid_from.isoformat()],
    }
    record("update", unit, actor=actor, summary=f"修改 {unit.name} 的帮扶类别（自 {valid_from.isoformat()} 起）",
           changes=changes)  # fmt: skip
    db.session.flush()
    return changes
