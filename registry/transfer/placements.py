"""Placements to and from spreadsheets: one column list serves the template, the export and the import."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from registry import idnumbers
from registry.audit.services import record
from registry.counties.models import Side, Unit, UnitKind
from registry.database import utcnow
from registry.extensions import db
from registry.money import MoneyError, parse_yuan, yuan
from registry.pairings.services import CountyPairings
from registry.permissions import county_writable, placement_filter
from registry.placements.cells import person_ids_for, refresh_cells, slice_of
from registry.placements.models import Destination, Household, Placement
from registry.services import ServiceError
from registry.transfer import PROGRESS_EVERY, column_index, runner

HEADERS = [
    "编号", "姓名", "身份证号", "户类型", "户籍县代码", "户籍县", "乡镇", "就业去向", "就业省份",
    "就业城市", "就业单位", "行业", "有组织转移", "培训情况", "就业开始", "就业结束", "月工资(元)", "备注",
]  # fmt: skip
REQUIRED_FOR_NEW = ("姓名", "身份证号", "户类型", "就业去向", "就业开始")
MAX_ROWS = 200_000
TEXT_LIMITS = {
    "姓名": 50,
    "乡镇": 50,
    "就业省份": 20,
    "就业城市": 30,
    "就业单位": 200,
    "行业": 50,
    "培训情况": 200,
    "备注": 2000,
}
TEXT_ATTRS = {"姓名": "person_name", "乡镇": "origin_township", "就业省份": "destination_province",
              "就业城市": "destination_city", "就业单位": "employer", "行业": "industry", "培训情况": "training",
              "备注": "note"}  # fmt: skip
HOUSEHOLDS = {h.label: h for h in Household}
DESTINATIONS = {d.label: d for d in Destination}
MASKED = re.compile(r"^\d{4}\*{10}[\dX]{4}$")


@dataclass
class RowError:
    row: int
    column: str
    value: str
    reason: str


@dataclass
class ImportResult:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)


def export_rows(stmt, *, reveal: bool):
    """Rows for the export in id order, numbers masked unless ``reveal``; read in batches after the last id
    seen (keyset), so a large export never re-reads what it has already passed, as OFFSET would."""
    last_id = 0
    while True:
        batch = db.session.scalars(stmt.where(Placement.id > last_id).order_by(Placement.id).limit(2000)).all()
        if not batch:
            return
        last_id = batch[-1].id
        county_ids = {p.origin_county_id for p in batch}
        counties = {u.id: u for u in db.session.scalars(sa.select(Unit).where(Unit.id.in_(county_ids)))}
        for p in batch:
            county = counties[p.origin_county_id]
            yield [
                p.id, p.person_name, idnumbers.reveal(p.id_stored) if reveal else p.id_masked, p.household.label,
                county.code, county.name, p.origin_township, p.destination_class.label, p.destination_province,
                p.destination_city, p.employer, p.industry, "是" if p.organised else "否", p.training,
                p.start_date, p.end_date, _wage(p.monthly_wage_fen), p.note,
            ]  # fmt: skip


def _wage(fen: int | None) -> str:
    return "" if fen is None else yuan(fen).replace(",", "")


def parse_date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("日期格式应为 YYYY-MM-DD，例如 2024-03-31。")


class _Context:
    """Lookups loaded once per import: the user's counties, their pairings, the records being updated."""

    def __init__(self, user):
        units = db.session.scalars(sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)).all()
        self.writable = {u.id: u for u in units if county_writable(user, u)}
        self.by_code = {u.code: u for u in self.writable.values()}
        self.by_name: dict[str, list[Unit]] = {}
        for unit in self.writable.values():
            self.by_name.setdefault(unit.name, []).append(unit)
        self.pairings = CountyPairings(self.writable.keys())


def import_placements_steps(headers: list[str], rows, *, user, filename: str = ""):
    """Validate every row, then write all of them or nothing (a generator: see registry.transfer).

    A row with 编号 updates that record; without it, a row matches an existing record by identity number, origin
    county and start date, or creates one. Blank cells never overwrite stored values.
    """
    result = ImportResult()
    index = column_index(headers, HEADERS)
    ctx = _Context(user)
    parsed = []
    for number, cells in rows:
        result.rows += 1
        if result.rows > MAX_ROWS:
            raise ServiceError(f"一次最多导入 {MAX_ROWS} 行，请拆分文件。")
        cell = {h: (cells[i] if i < len(cells) else "") for h, i in index.items()}
        errors, values = _parse_row(number, cell, ctx)
        result.errors.extend(errors)
        if not errors:
            # Keep only what matching and writing need: the row number, the 编号 text and the parsed values.
            parsed.append((number, cell["编号"], values))
        if result.rows % PROGRESS_EVERY == 0:
            yield result.rows
    _match(parsed, ctx, user, result)
    if result.errors:
        return result  # nothing was written: the rows were only read and checked
    _write(parsed, ctx, result)
    record("import", None, actor=user, entity_type="placements",
           summary=f"导入劳务协作 {filename}：{result.rows} 行，新增 {result.created}，更新 {result.updated}，"
                   f"未变 {result.unchanged}")  # fmt: skip
    return result


import_placements = runner(import_placements_steps)


def _parse_row(number: int, cell: dict, ctx: _Context):
    errors, values = [], {}

    def fail(column, reason, shown=None):
        errors.append(RowError(number, column, shown if shown is not None else cell[column], reason))

    if cell["编号"]:
        if not cell["编号"].isdigit():
            fail("编号", "编号应为导出文件中的数字，新增记录请留空。")
        else:
            values["id"] = int(cell["编号"])
    for header, attr in TEXT_ATTRS.items():
        text = cell[header]
        if text:
            if len(text) > TEXT_LIMITS[header]:
                fail(header, f"不能超过 {TEXT_LIMITS[header]} 个字。", text[:20] + "…")
            else:
                values[attr] = text
    if cell["身份证号"] and not MASKED.match(cell["身份证号"].upper()):
        try:
            person = idnumbers.parse(cell["身份证号"])
        except idnumbers.IdNumberError as exc:
            fail("身份证号", str(exc), idnumbers.mask(cell["身份证号"].strip()))
        else:
            values["id_number"] = person
    elif cell["身份证号"]:
        values["masked"] = cell["身份证号"].upper()
    for header, attr, table in (("户类型", "household", HOUSEHOLDS), ("就业去向", "destination_class", DESTINATIONS)):
        if cell[header]:
            if cell[header] in table:
                values[attr] = table[cell[header]]
            else:
                fail(header, "应为以下之一：" + "、".join(table) + "。")
    if cell["户籍县代码"] or cell["户籍县"]:
        county = ctx.by_code.get(cell["户籍县代码"]) if cell["户籍县代码"] else None
        if cell["户籍县代码"] and county is None:
            fail("户籍县代码", "不是您可以登记的四川县级区划代码。")
        elif county is None:
            matches = ctx.by_name.get(cell["户籍县"], [])
            if len(matches) != 1:
                fail(
                    "户籍县", "县名不唯一或不在您的管辖范围内，请填写户籍县代码。" if matches or cell["户籍县"] else ""
                )
            else:
                county = matches[0]
        if county is not None:
            values["origin_county_id"] = county.id
    if cell["有组织转移"]:
        if cell["有组织转移"] in ("是", "否"):
            values["organised"] = cell["有组织转移"] == "是"
        else:
            fail("有组织转移", "应为“是”或“否”。")
    for header, attr in (("就业开始", "start_date"), ("就业结束", "end_date")):
        if cell[header]:
            try:
                values[attr] = parse_date(cell[header])
            except ValueError as exc:
                fail(header, str(exc))
    if values.get("start_date") and values["start_date"] > date.today():
        fail("就业开始", "不能晚于今天。")
    if values.get("start_date") and values.get("end_date") and values["end_date"] < values["start_date"]:
        fail("就业结束", "早于就业开始日期。")
    if cell["月工资(元)"]:
        try:
            values["monthly_wage_fen"] = parse_yuan(cell["月工资(元)"])
        except MoneyError as exc:
            fail("月工资(元)", str(exc))
    if "id" not in values and not errors:
        for header in REQUIRED_FOR_NEW:
            if not cell[header]:
                fail(header, "新增记录必须填写。")
        if "origin_county_id" not in values and not errors:
            fail("户籍县代码", "新增记录必须填写户籍县代码或户籍县。")
        if "masked" in values:
            fail("身份证号", "新增记录须填写完整的身份证号。")
    return errors, values


def _match(parsed, ctx: _Context, user, result: ImportResult) -> None:
    """Find the record each row updates (by 编号, else by person, county and start date); check scope and clashes."""
    ids = [v["id"] for _, _, v in parsed if "id" in v]
    existing = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        for p in db.session.scalars(sa.select(Placement).where(Placement.id.in_(chunk), placement_filter(user))):
            existing[p.id] = p
    counties = {v.get("origin_county_id") for _, _, v in parsed} - {None}
    natural = {}
    if counties:
        rows = db.session.execute(
            sa.select(Placement.id_fingerprint, Placement.origin_county_id, Placement.start_date, Placement.id)
            .where(Placement.origin_county_id.in_(counties))
        )  # fmt: skip
        natural = {(f, c, s): i for f, c, s, i in rows}
    seen = {}
    for number, record_no, values in parsed:
        if "id" in values:
            record_ = existing.get(values["id"])
            if record_ is None:
                result.errors.append(RowError(number, "编号", record_no, "没有这条记录，或不在您的管辖范围内。"))
                continue
            if record_.origin_county_id not in ctx.writable:
                result.errors.append(RowError(number, "编号", record_no, "您不能修改该县的记录。"))
                continue
            if "masked" in values and values["masked"] != record_.id_masked:
                result.errors.append(RowError(number, "身份证号", values["masked"], "与原记录的身份证号不一致。"))
                continue
            values["record"] = record_
            key = ("id", record_.id)
        else:
            person = values["id_number"]
            fingerprint = idnumbers.fingerprint(person.number)
            key = (fingerprint, values["origin_county_id"], values["start_date"])
            if key in natural:
                values["record_id"] = natural[key]
        if key in seen:
            column = "编号" if key[0] == "id" else "身份证号"
            shown = record_no or values["id_number"].masked
            result.errors.append(RowError(number, column, shown, f"与第 {seen[key]} 行是同一条记录。"))
            continue
        seen[key] = number


def _write(parsed, ctx: _Context, result: ImportResult) -> None:
    """Insert new records in bulk and apply changed fields to matched ones (blank cells left alone); then rebuild
    the placement cells of every (county, start year) slice touched, once for the whole import."""
    now = utcnow()
    people = person_ids_for(
        idnumbers.fingerprint(values["id_number"].number) for _, _, values in parsed if "id_number" in values
    )
    touched = set()
    inserts = []
    for _, _, values in parsed:
        if "record" in values or "record_id" in values:
            placement = values.get("record") or db.session.get(Placement, values["record_id"])
            before = slice_of(placement)
            if _apply(placement, values, ctx, people):
                touched.update((before, slice_of(placement)))
                result.updated += 1
            else:
                result.unchanged += 1
            continue
        person = values["id_number"]
        fingerprint = idnumbers.fingerprint(person.number)
        touched.add((values["origin_county_id"], values["start_date"].year))
        inserts.append({
            "person_name": values["person_name"], "id_stored": idnumbers.protect(person.number),
            "id_fingerprint": fingerprint, "person_id": people[fingerprint], "id_masked": person.masked,
            "sex": person.sex, "birth_date": person.birth_date, "household": values["household"].value,
            "origin_county_id": values["origin_county_id"], "origin_township": values.get("origin_township", ""),
            "pairing_id": ctx.pairings.on(values["origin_county_id"], values["start_date"]),
            "destination_class": values["destination_class"].value,
            "destination_province": values.get("destination_province", ""),
            "destination_city": values.get("destination_city", ""), "employer": values.get("employer", ""),
            "industry": values.get("industry", ""), "organised": values.get("organised", False),
            "training": values.get("training", ""), "start_date": values["start_date"],
            "end_date": values.get("end_date"), "monthly_wage_fen": values.get("monthly_wage_fen"),
            "note": values.get("note", ""), "created_at": now, "updated_at": now, "version_id": 1,
        })  # fmt: skip
    if inserts:
        for start in range(0, len(inserts), 5000):
            db.session.execute(sa.insert(Placement), inserts[start : start + 5000])
        result.created = len(inserts)
    refresh_cells(touched)  # flushes the updates first


def _apply(placement: Placement, values: dict, ctx: _Context, people: dict[str, int]) -> bool:
    """Set the non-blank values on a matched record; True if anything changed."""
    changed = False
    for attr in ("person_name", "household", "origin_county_id", "origin_township", "destination_class",
                 "destination_province", "destination_city", "employer", "industry", "organised", "training",
                 "start_date", "end_date", "monthly_wage_fen", "note"):  # fmt: skip
        if attr in values and getattr(placement, attr) != values[attr]:
            setattr(placement, attr, values[attr])
            changed = True
    person = values.get("id_number")
    if person is not None and idnumbers.fingerprint(person.number) != placement.id_fingerprint:
        placement.id_stored = idnumbers.protect(person.number)
        placement.id_fingerprint = idnumbers.fingerprint(person.number)
        placement.person_id = people[placement.id_fingerprint]
        placement.id_masked, placement.sex, placement.birth_date = person.masked, person.sex, person.birth_date
        changed = True
    if changed:
        placement.pairing_id = ctx.pairings.on(placement.origin_county_id, placement.start_date)
    return changed
