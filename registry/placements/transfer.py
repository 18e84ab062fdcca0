"""Placements to and from spreadsheets: one column list serves the template, the export and the import."""

import functools
import re

import sqlalchemy as sa

from registry.counties.models import Side, Unit, UnitKind
from registry.kernel import idnumbers
from registry.kernel.database import any_of, keyset_batches
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, yuan
from registry.kernel.transfer import Batch, ImportResult, RowError, parse_amount, parse_date, runner
from registry.kernel.transfer.reader import LONG_NUMBER, LongNumber
from registry.kernel.transfer.sheet import Sheet
from registry.kernel.transfer.template import Column
from registry.permissions import WriteScope, visible_by_id, writable_counties
from registry.placements import services
from registry.placements.models import Destination, Household, Placement

HEADERS = [
    "编号", "姓名", "身份证号", "户类型", "户籍县代码", "户籍县", "乡镇", "就业去向", "就业省份",
    "就业城市", "就业单位", "行业", "有组织转移", "培训情况", "就业开始", "就业结束", "月工资(元)", "备注",
]  # fmt: skip
#: Other names offices give the template's columns, read as that column (the import's notes say so). Full-width
#: brackets and spaces need no entry, and “X(万元)” is read as the 元 column “X(元)” in 万元.
SYNONYMS = {
    "身份证": "身份证号", "身份证号码": "身份证号", "公民身份号码": "身份证号", "证件号码": "身份证号",
    "就业时间": "就业开始", "就业开始时间": "就业开始", "就业开始日期": "就业开始", "开始日期": "就业开始",
    "就业结束时间": "就业结束", "就业结束日期": "就业结束", "结束日期": "就业结束",
    "月收入": "月工资(元)", "月工资": "月工资(元)", "月收入(元)": "月工资(元)", "工资": "月工资(元)",
    "户籍县区划代码": "户籍县代码", "县代码": "户籍县代码", "户籍乡镇": "乡镇", "就业地省份": "就业省份",
    "就业地城市": "就业城市", "就业企业": "就业单位", "工作单位": "就业单位", "是否有组织转移": "有组织转移",
    "户别": "户类型",
}  # fmt: skip
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


def export_rows(stmt, *, reveal: bool):
    """Rows for the export in id order, numbers masked unless ``reveal``; read in batches after the last id
    seen (keyset), so a large export never re-reads what it has already passed, as OFFSET would."""
    for batch in keyset_batches(db.session, stmt, (Placement.id,), lambda p: (p.id,)):
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


def export_count(stmt) -> int:
    """How many rows ``export_rows`` gives for ``stmt`` (said in the audit entry before the rows are sent)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))


def _wage(fen: int | None) -> str:
    return "" if fen is None else yuan(fen).replace(",", "")


#: The column a service's refusal of a field is reported in.
FIELD_COLUMNS = {
    **{attr: header for header, attr in TEXT_ATTRS.items()}, "id_number": "身份证号", "household": "户类型",
    "origin_county_id": "户籍县代码", "destination_class": "就业去向", "organised": "有组织转移",
    "start_date": "就业开始", "end_date": "就业结束", "monthly_wage_fen": "月工资(元)",
}  # fmt: skip


class _Counties:
    """Sichuan counties by code and by name, loaded once per import (whether the user may write in one is the
    write gate's question, asked by the services row by row), and the texts, dates and amounts read so far: rows
    repeat the same employer, town or start date, and 100,000 rows hold one copy of each, not one per row."""

    def __init__(self):
        self.texts: dict[str, str] = {}
        self.dates: dict[str, object] = {}
        self.amounts: dict[str, int] = {}
        self.fingerprint_key = idnumbers.fingerprint_key()
        units = db.session.scalars(sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)).all()
        self.by_code = {u.code: u for u in units}
        self.by_name: dict[str, list[Unit]] = {}
        #: {column: "万元"} for amount columns whose header states 万元 (set by the importer).
        self.units: dict[str, str] = {}
        for unit in units:
            self.by_name.setdefault(unit.name, []).append(unit)


#: Rows read, matched and written together: an import holds one chunk of rows at a time, never the whole file.
CHUNK = 2000
#: Texts kept once per import, not once per row (a name or a note is the row's own).
SHARED_TEXTS = {"乡镇", "就业省份", "就业城市", "就业单位", "行业", "培训情况"}


class _Row:
    """A row that passed its own checks: its number, its 编号 text, its values, the fingerprint of its identity
    number, and what matching found (the record it updates, or that it is refused)."""

    __slots__ = ("number", "record_no", "values", "fingerprint", "error", "record", "record_id")

    def __init__(self, number: int, record_no: str, values: dict, fingerprint: str | None):
        self.number, self.record_no, self.values, self.fingerprint = number, record_no, values, fingerprint
        self.error = False
        self.record = self.record_id = None


class _Matching:
    """What matching remembers from chunk to chunk, so each chunk is matched as the whole file was before any
    write: the key of every row so far (a repeat is refused), the keys this import creates, and each record it
    changed as it was before (its key, pairing and masked number: later rows match it by those, as they would
    have before the import touched it)."""

    def __init__(self):
        self.seen: dict[tuple, int] = {}
        self.creates: set[tuple] = set()
        self.original: dict[int, tuple] = {}
        self.original_by_fingerprint: dict[str, list[int]] = {}
        #: Records above this id were added since the import began (ours, or another user's meanwhile).
        self.ceiling = db.session.scalar(sa.select(sa.func.max(Placement.id))) or 0

    def remember(self, placement: Placement) -> None:
        """Keep ``placement`` as it was before this import's first change to it."""
        if placement.id not in self.original:
            key = (placement.id_fingerprint, placement.origin_county_id, placement.start_date)
            self.original[placement.id] = (key, placement.pairing_id, placement.id_masked)
            self.original_by_fingerprint.setdefault(placement.id_fingerprint, []).append(placement.id)


def import_placements_steps(headers: list[str], rows, *, user, filename: str = ""):
    """Read every row and write it through the placement services; the caller commits only if no row failed
    (a generator: see registry.kernel.transfer).

    A row with 编号 updates that record; without it, a row matches an existing record by identity number, origin
    county and start date, or creates one. Only records the user may see and write are matched; a row that
    matches another office's record is refused without saying anything about it. Blank cells never overwrite.

    Rows are read, matched and written ``CHUNK`` at a time (memory stays flat however long the file); matching
    remembers what earlier chunks did (``_Matching``), so every row is matched against the records as they were
    before the import, as if the whole file had been matched first. Errors are reported in that order too: the
    rows' own, then matching's, then the services'.
    """
    sheet = Sheet(headers, rows, HEADERS, SYNONYMS, fields=FIELD_COLUMNS)
    counties = _Counties()
    counties.units = sheet.units
    batch = Batch(user, entity_type="placements", title="劳务协作", filename=filename, chunks=True)
    matching = batch.cache["placements.matching"] = _Matching()

    def parse(number, cell):
        errors, values = _parse_row(number, cell, counties)
        if errors:
            return errors, None
        person = values.get("id_number")
        fingerprint = person and idnumbers.keyed_fingerprint(counties.fingerprint_key, person.number)
        return [], _Row(number, cell["编号"], values, fingerprint)

    def taken():
        # Another import (or form) committed one of our new records after we matched: name the rows, which a
        # second import will then match and update.
        return [RowError(number, "身份证号", masked, TAKEN) for number, masked in _taken_since(matching)]

    return (yield from sheet.chunked(parse, lambda chunk: _write_chunk(chunk, user, batch, sheet), batch,
                                     size=CHUNK, taken=taken))  # fmt: skip


def _write_chunk(chunk: list[_Row], user, batch: Batch, sheet: Sheet):
    """Match a chunk of checked rows and write them with the placement services."""
    if not chunk:
        return
    batch.settle()  # the last chunk's rows are written before this one is matched against the records
    services.prepare_import(
        batch, {row.values["id_number"].number: row.fingerprint for row in chunk if row.fingerprint}
    )
    _match(chunk, user, batch, sheet.match_errors)
    # The records the rows update, loaded together (their rows then find them in the session).
    loaded = _load([row.record_id for row in chunk if row.record_id is not None and not row.error])
    for row in chunk:
        if not row.error:
            shown = functools.partial(_shown, row.values, record_no=row.record_no)
            with sheet.row(row.number, shown, default="编号" if row.record_no else ""):
                _write_row(row, user, batch, sheet.result, loaded)


def _load(ids: list[int]) -> dict[int, Placement]:
    return {p.id: p for p in db.session.scalars(sa.select(Placement).where(Placement.id.in_(ids)))} if ids else {}


#: A new record another user registered while this import ran (the database's unique key refused ours).
TAKEN = "该记录刚被其他用户登记，请重新导入（将按更新处理）。"


def _taken_since(matching: _Matching) -> list[tuple[int, str]]:
    """(row, masked number) of the rows this import was about to create whose key is now in the database (the
    masked number is the record's: the same fingerprint is the same number)."""
    fingerprints = sorted({f for f, _, _ in matching.creates})
    dialect = db.session.get_bind().dialect.name
    taken = []
    for start in range(0, len(fingerprints), 5000):
        rows = db.session.execute(
            sa.select(Placement.id_fingerprint, Placement.origin_county_id, Placement.start_date, Placement.id_masked)
            .where(any_of(Placement.id_fingerprint, fingerprints[start : start + 5000], dialect))
        )  # fmt: skip
        taken.extend((matching.seen[(f, c, s)], masked) for f, c, s, masked in rows if (f, c, s) in matching.creates)
    return sorted(taken)


import_placements = runner(import_placements_steps)


def _shown(values: dict, column: str, record_no: str) -> str:
    if column == "身份证号" and "id_number" in values:
        return values["id_number"].masked
    return record_no if column == "编号" else ""


def _parse_row(number: int, cell: dict, ctx: "_Counties"):
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
                values[attr] = ctx.texts.setdefault(text, text) if header in SHARED_TEXTS else text
    if isinstance(cell["身份证号"], LongNumber):
        fail("身份证号", LONG_NUMBER, idnumbers.mask(cell["身份证号"]))
    elif cell["身份证号"] and not MASKED.match(cell["身份证号"].upper()):
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
            fail("户籍县代码", "不是四川的县级区划代码。")
        elif county is None:
            matches = ctx.by_name.get(cell["户籍县"], [])
            if len(matches) != 1:
                fail("户籍县", "县名不唯一或不是四川的县，请填写户籍县代码。" if matches or cell["户籍县"] else "")
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
        text = cell[header]
        if text:
            try:
                if text not in ctx.dates:
                    ctx.dates[text] = parse_date(text)
                values[attr] = ctx.dates[text]
            except ValueError as exc:
                fail(header, str(exc))
    if cell["月工资(元)"]:
        text = cell["月工资(元)"]
        try:
            if text not in ctx.amounts:
                ctx.amounts[text] = parse_amount(text, ctx.units.get("月工资(元)", ""))
            values["monthly_wage_fen"] = ctx.amounts[text]
        except MoneyError as exc:
            fail("月工资(元)", str(exc))
    if "id" not in values and "masked" in values:
        fail("身份证号", "新增记录须填写完整的身份证号。")
    return errors, values


def _match(parsed: list[_Row], user, batch: Batch, errors: list[RowError]) -> None:
    """Find the record each row updates (by 编号, else by person, county and start date) among the records the user
    may see and write; refuse rows that would touch a record out of scope, and rows repeating an earlier row.

    ``parsed`` is one chunk; what earlier chunks matched and changed is in the batch's ``_Matching``, so records
    are matched as they were before the import (a record it changed by its old key, not one it created)."""
    matching = batch.cache["placements.matching"]
    ids = [row.values["id"] for row in parsed if "id" in row.values]
    visible = visible_by_id(user, Placement, ids)
    fingerprints = sorted({row.fingerprint for row in parsed if row.fingerprint})
    dialect = db.session.get_bind().dialect.name
    natural = {}
    for start in range(0, len(fingerprints), 5000):
        rows = db.session.execute(
            sa.select(Placement.id_fingerprint, Placement.origin_county_id, Placement.start_date, Placement.id,
                      Placement.pairing_id)
            .where(any_of(Placement.id_fingerprint, fingerprints[start : start + 5000], dialect))
        )  # fmt: skip
        natural.update(
            ((f, c, s), (i, p)) for f, c, s, i, p in rows if i not in matching.original and (f, c, s) not in
            matching.creates
        )  # fmt: skip
    for fingerprint in fingerprints:
        for record_id in matching.original_by_fingerprint.get(fingerprint, ()):
            key, pairing_id, _ = matching.original[record_id]
            natural[key] = (record_id, pairing_id)
    if "write_scope" not in batch.cache:
        batch.cache["write_scope"] = WriteScope(user)
    write_scope = batch.cache["write_scope"]
    seen = matching.seen

    def fail(row, column, shown, reason):
        errors.append(RowError(row.number, column, shown, reason))
        row.error = True

    for row in parsed:
        values = row.values
        if "id" in values:
            record_ = visible.get(values["id"])
            if record_ is not None and record_.id > matching.ceiling and record_.id in batch.created:
                record_ = None  # created by this very import: not a record its file can name
            if record_ is None:
                fail(row, "编号", row.record_no, "没有这条记录，或不在您的管辖范围内。")
                continue
            masked = matching.original[record_.id][2] if record_.id in matching.original else record_.id_masked
            if "masked" in values and values["masked"] != masked:
                fail(row, "身份证号", values["masked"], "与原记录的身份证号不一致。")
                continue
            row.record = record_
            key = ("id", record_.id)
        elif "id_number" not in values or "origin_county_id" not in values or "start_date" not in values:
            continue  # a new record lacking what identifies it: the service says what is missing
        else:
            key = (row.fingerprint, values["origin_county_id"], values["start_date"])
            if key in natural:
                record_id, pairing_id = natural[key]
                if not write_scope.allows(values["origin_county_id"], pairing_id):
                    # Say only that it exists (the key is unique), nothing of what it holds.
                    reason = "该人员在此户籍县、此开始日期的记录已被登记，且不在您的管辖范围内，不能导入修改。"
                    fail(row, "身份证号", values["id_number"].masked, reason)
                    continue
                row.record_id = record_id
        if key in seen:
            column = "编号" if key[0] == "id" else "身份证号"
            shown = row.record_no or values["id_number"].masked
            fail(row, column, shown, f"与第 {seen[key]} 行是同一条记录。")
            continue
        seen[key] = row.number
        if key[0] != "id" and row.record_id is None:
            matching.creates.add(key)


def _write_row(row: _Row, user, batch: Batch, result: ImportResult, loaded: dict | None = None) -> None:
    """Create or change one record with the placement services (blank cells are absent from the values)."""
    data = {k: v for k, v in row.values.items() if k not in ("id", "masked")}
    placement = row.record
    if placement is None and row.record_id is not None:
        placement = (loaded or {}).get(row.record_id) or db.session.get(Placement, row.record_id)
    if placement is None:
        services.create_placement(data, actor=user, batch=batch)
        result.created += 1
        return
    batch.cache["placements.matching"].remember(placement)
    if services.update_placement(placement, data, actor=user, batch=batch):
        result.updated += 1
    else:
        result.unchanged += 1


def columns(user) -> list[Column]:
    """The template's columns, explained; 户籍县 limited to the counties ``user`` may register in."""
    counties = writable_counties(user)
    return [
        Column("编号", "导出文件中的记录编号；新增记录留空", "数字", "否（修改时填写）", "", text=True),
        Column("姓名", "务工人员姓名", "文本，最多50字", "是", "沙马拉则"),
        Column("身份证号", "18位居民身份证号；导出的脱敏号码表示不修改", "18位，末位可为X；请保持文本格式",
               "新增时必填", "513431198805051231", text=True),
        Column("户类型", "务工人员的户类型", "从下拉列表选择", "是", "脱贫户", tuple(HOUSEHOLDS)),
        Column("户籍县代码", "户籍所在县(市、区)的区划代码，限您可登记的县", "6位数字", "是（或填户籍县）", "513431",
               tuple(c.code for c in counties), text=True),
        Column("户籍县", "户籍县名称，填写代码时只供核对", "文本", "否", "昭觉县", tuple(c.name for c in counties),
               strict=False),
        Column("乡镇", "户籍乡镇", "文本，最多50字", "否", "竹核乡"),
        Column("就业去向", "就业去向分类", "从下拉列表选择", "是", "到东部协作地就业", tuple(DESTINATIONS)),
        Column("就业省份", "就业地所在省份", "文本，最多20字", "否", "浙江省"),
        Column("就业城市", "就业地所在城市", "文本，最多30字", "否", "宁波市"),
        Column("就业单位", "就业单位名称", "文本，最多200字", "否", "宁波某电子厂"),
        Column("行业", "就业行业", "文本，最多50字", "否", "制造业"),
        Column("有组织转移", "是否为有组织转移就业", "是或否", "否", "是", ("是", "否")),
        Column("培训情况", "参加培训的情况", "文本，最多200字", "否", ""),
        Column("就业开始", "本次就业的开始日期", "日期 YYYY-MM-DD", "是", "2024-05-01"),
        Column("就业结束", "就业结束日期，仍在岗留空", "日期 YYYY-MM-DD", "否", ""),
        Column("月工资(元)", "月工资，单位元；表头写“月工资(万元)”时按万元读取", "数字，最多两位小数", "否", "4800"),
        Column("备注", "说明", "文本，最多2000字", "否", ""),
    ]  # fmt: skip
