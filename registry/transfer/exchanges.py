"""People exchanged to and from spreadsheets; 编号 (or name, county, type and arrival) is the stable key."""

import sqlalchemy as sa

from registry.audit.services import record
from registry.counties.models import Side, Unit, UnitKind
from registry.database import utcnow
from registry.exchanges.models import Direction, Exchange, Field, PersonType
from registry.extensions import db
from registry.pairings.services import CountyPairings
from registry.permissions import county_writable, exchange_filter
from registry.transfer import PROGRESS_EVERY, column_index, runner
from registry.transfer.placements import ImportResult, RowError, parse_date

HEADERS = [
    "编号", "姓名", "方向", "类型", "领域", "派出单位", "接收单位", "县代码", "县", "挂职岗位", "到岗日期",
    "离岗日期", "备注",
]  # fmt: skip
TEXTS = {"姓名": ("person_name", 50), "派出单位": ("sending_unit", 200), "接收单位": ("receiving_unit", 200),
         "挂职岗位": ("position", 100), "备注": ("note", 2000)}  # fmt: skip
ENUMS = {"方向": ("direction", Direction), "类型": ("person_type", PersonType), "领域": ("field", Field)}
REQUIRED_FOR_NEW = ("姓名", "方向", "类型", "派出单位", "接收单位", "县代码", "到岗日期")


def export_row(e: Exchange) -> list:
    return [e.id, e.person_name, e.direction.label, e.person_type.label, e.field.label if e.field else "",
            e.sending_unit, e.receiving_unit, e.county.code, e.county.name, e.position, e.arrival_date,
            e.departure_date, e.note]  # fmt: skip


def import_exchanges_steps(headers, rows, *, user, filename=""):
    """Check every row, then write all of them or nothing; blank cells never overwrite stored values."""
    result = ImportResult()
    index = column_index(headers, HEADERS)
    sichuan = sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)
    counties = {u.code: u for u in db.session.scalars(sichuan) if county_writable(user, u)}
    parsed = []
    for number, cells in rows:
        result.rows += 1
        cell = {h: (cells[i] if i < len(cells) else "") for h, i in index.items()}
        errors, values = _parse(number, cell, counties)
        if not cell["编号"]:
            errors += [RowError(number, h, "", "新增记录必须填写。") for h in REQUIRED_FOR_NEW if not cell[h]]
        result.errors.extend(errors)
        if not errors:
            parsed.append((number, cell["编号"], values))
        if result.rows % PROGRESS_EVERY == 0:
            yield result.rows
    ids = [int(no) for _, no, _ in parsed if no]
    existing = {
        e.id: e for e in db.session.scalars(sa.select(Exchange).where(Exchange.id.in_(ids), exchange_filter(user)))
    } if ids else {}  # fmt: skip
    writable = {u.id for u in counties.values()}
    for number, no, values in parsed:
        current = existing.get(int(no)) if no else None
        if no and (current is None or current.county_id not in writable):
            result.errors.append(RowError(number, "编号", no, "没有这条记录，或不在您可以修改的范围内。"))
            continue
        person_type = values.get("person_type") or (current.person_type if current else None)
        field = values.get("field") or (current.field if current else None)
        if person_type is PersonType.PROFESSIONAL and field is None:
            result.errors.append(RowError(number, "领域", "", "专业技术人才须填写领域（教育、医疗、农技或其他）。"))
    if result.errors:
        return result
    now, inserts = utcnow(), []
    pairings = CountyPairings(writable)
    for _, no, values in parsed:
        if no:
            current = existing[int(no)]
            changed = False
            for attr, value in values.items():
                if getattr(current, attr) != value:
                    setattr(current, attr, value)
                    changed = True
            if changed:
                current.pairing_id = pairings.on(current.county_id, current.arrival_date)
                result.updated += 1
            else:
                result.unchanged += 1
            continue
        row = {"position": "", "note": "", "field": None, "departure_date": None} | values
        if row["person_type"] is PersonType.CADRE:
            row["field"] = None
        pairing_id = pairings.on(values["county_id"], values["arrival_date"])
        inserts.append(row | {"pairing_id": pairing_id, "created_at": now, "updated_at": now, "version_id": 1})
    if inserts:
        db.session.execute(sa.insert(Exchange), inserts)
    result.created = len(inserts)
    db.session.flush()
    record("import", None, actor=user, entity_type="exchanges",
           summary=f"导入人才交流 {filename}：{result.rows} 行，新增 {result.created}，更新 {result.updated}，"
                   f"未变 {result.unchanged}")  # fmt: skip
    return result


import_exchanges = runner(import_exchanges_steps)


def _parse(number, cell, counties):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    if cell["编号"] and not cell["编号"].isdigit():
        fail("编号", "编号应为导出文件中的数字，新增记录请留空。")
    for header, (attr, limit) in TEXTS.items():
        if cell[header]:
            if len(cell[header]) > limit:
                fail(header, f"不能超过 {limit} 个字。")
            else:
                values[attr] = cell[header]
    for header, (attr, enum) in ENUMS.items():
        if cell[header]:
            labels = {m.label: m for m in enum}
            if cell[header] in labels:
                values[attr] = labels[cell[header]]
            else:
                fail(header, "应为以下之一：" + "、".join(labels) + "。")
    if cell["县代码"]:
        county = counties.get(cell["县代码"])
        if county is None:
            fail("县代码", "不是您可以登记的四川县级区划代码。")
        else:
            values["county_id"] = county.id
    for header, attr in (("到岗日期", "arrival_date"), ("离岗日期", "departure_date")):
        if cell[header]:
            try:
                values[attr] = parse_date(cell[header])
            except ValueError as exc:
                fail(header, str(exc))
    if (
        values.get("arrival_date")
        and values.get("departure_date")
        and values["departure_date"] < values["arrival_date"]
    ):
        fail("离岗日期", "早于到岗日期。")
    return errors, values
