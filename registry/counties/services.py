"""Load the reference divisions, and create or change the organisations office staff add below a county."""

import csv
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from registry.audit.services import apply_changes, record, snapshot
from registry.counties.models import (
    DIVISION_KINDS,
    LOCAL_KINDS,
    SICHUAN_CODE,
    CountyCategory,
    Side,
    Unit,
    UnitKind,
)
from registry.extensions import db
from registry.services import ServiceError, check_version

DATA_DIR = Path(__file__).resolve().parent / "data"
LEVELS = {
    "province": UnitKind.PROVINCE,
    "prefecture": UnitKind.PREFECTURE,
    "county": UnitKind.COUNTY,
}
CATEGORY_BY_LABEL = {c.label: c for c in CountyCategory}
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


def load_divisions(data_dir: Path = DATA_DIR, *, actor=None) -> LoadResult:
    """Insert or rename divisions from the data files; safe to run again (idempotent).

    A category is only filled where none is set, so an administrator's later correction survives reloads.
    The whole file is checked before anything is written.
    """
    rows = read_divisions(data_dir / "divisions.csv")
    categories = read_categories(data_dir / "sichuan_categories.csv")
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
        category = categories.get(unit.code)
        if category is not None and unit.category is None:
            unit.category = category
            result.categorised += 1
    record(
        "load",
        None,
        actor=actor,
        entity_type="units",
        summary=f"导入行政区划：新增 {result.created}，更名 {result.renamed}，设置类别 {result.categorised}",
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


def set_category(unit: Unit, category: CountyCategory | None, *, actor, version=None) -> dict:
    """An administrator corrects the assistance category of a Sichuan county-level unit."""
    check_version(unit, version)
    if unit.kind is not UnitKind.COUNTY or unit.side is not Side.WEST:
        raise ServiceError("只有四川的县级单位有帮扶类别。", "category")
    changes = apply_changes(unit, {"category": category}, ("category",))
    if changes:
        record(
            "update",
            unit,
            actor=actor,
            summary=f"修改 {unit.name} 的帮扶类别",
            changes=changes,
        )
    return changes
