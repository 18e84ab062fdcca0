"""Projects and their fund transactions to and from spreadsheets.

Projects: 项目编号 is the key; a row with a code already registered updates that project (if the user may see and
write it), otherwise it creates one in 储备. 协作类型, 状态 and the money columns are figures of the export that an
import does not write (status steps are dated on the project page; money comes from fund transactions).

Fund transactions: each row is one transaction of an existing project, found by 项目编号 among the projects
the user sees. A row equal to a transaction already in the ledger (same project, 资金来源, 环节, 日期, 金额 and
文号/凭证) is that transaction, not a new one, so re-importing a file or an export adds nothing; two equal rows are
two transactions only if the ledger does not already hold two. The money rule (累计拨付 ≤ 累计到位 per source, on
every day) is checked over each project's ledger with all of the file's rows at once, so the order of rows in the
file does not matter.
"""

import functools
from collections import defaultdict
from datetime import date
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.database import keyset_batches
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, rate, wan, yuan
from registry.kernel.services import ServiceError
from registry.kernel.transfer import PROGRESS_EVERY, Batch, RowError, parse_amount, parse_cells, parse_date, runner
from registry.kernel.transfer.reader import LONG_NUMBER, LongNumber
from registry.kernel.transfer.sheet import Sheet
from registry.kernel.transfer.template import Column
from registry.pairings.models import Pairing
from registry.permissions import check_locked_date, scope_filter, writable_counties
from registry.projects import services
from registry.projects.models import (
    DeliveryMode,
    FundingLevel,
    FundSource,
    FundStage,
    FundTransaction,
    Project,
    ProjectCategory,
    ProjectStatus,
)

EXPORT_HEADERS = [
    "项目编号", "项目名称", "市(州)", "县(市、区)", "东部结对单位", "协作类型", "年度", "项目类别", "实施方式",
    "资金层级", "状态", "计划资金(万元)", "到位资金(万元)", "拨付资金(万元)", "资金使用率(%)", "实施单位", "责任人",
    "计划开工", "计划完工", "实际开工", "实际完工", "带动人数", "其中脱贫人口",
]  # fmt: skip
#: Columns of the export an import reads past: derived from the pairing, the status steps and the ledger.
COMPUTED = ["协作类型", "状态", "计划资金(万元)", "到位资金(万元)", "拨付资金(万元)", "资金使用率(%)"]
HEADERS = [h for h in EXPORT_HEADERS if h not in COMPUTED]
TEXTS = {"项目名称": ("name", 200), "实施单位": ("implementing_unit", 200), "责任人": ("responsible_person", 50)}
ENUMS = {"项目类别": ("category", ProjectCategory), "实施方式": ("delivery_mode", DeliveryMode),
         "资金层级": ("funding_level", FundingLevel)}  # fmt: skip
DATES = {"计划开工": "planned_start", "计划完工": "planned_finish", "实际开工": "actual_start",
         "实际完工": "actual_finish"}  # fmt: skip
COUNTS = {"年度": "year", "带动人数": "beneficiaries", "其中脱贫人口": "beneficiaries_lifted"}
SYNONYMS = {
    "编号": "项目编号", "项目代码": "项目编号", "名称": "项目名称", "市州": "市(州)", "所在市(州)": "市(州)",
    "县": "县(市、区)", "县(市区)": "县(市、区)", "所在县": "县(市、区)", "项目所在县": "县(市、区)",
    "县代码": "县(市、区)",
    "结对单位": "东部结对单位", "东部协作单位": "东部结对单位", "项目年度": "年度", "类别": "项目类别",
    "开工日期": "计划开工", "计划开工日期": "计划开工", "计划完工日期": "计划完工", "实际开工日期": "实际开工",
    "实际完工日期": "实际完工", "项目责任人": "责任人", "受益人数": "带动人数", "带动脱贫人口": "其中脱贫人口",
}  # fmt: skip
REQUIRED_FOR_NEW = ("项目编号", "项目名称", "县(市、区)", "年度", "项目类别", "实施方式", "资金层级", "计划开工")
FIELD_COLUMNS = {
    **{attr: header for header, (attr, _) in TEXTS.items()}, **{attr: header for header, (attr, _) in ENUMS.items()},
    **{attr: header for header, attr in DATES.items()}, **{attr: header for header, attr in COUNTS.items()},
    "code": "项目编号", "county_id": "县(市、区)", "pairing_id": "东部结对单位", "programme_id": "东部结对单位",
}  # fmt: skip

PROJECT_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "按“项目编号”匹配：已登记的项目按本行修改（须在您的管辖范围内），未登记的编号新增为“储备”项目。",
    "空白单元格不会覆盖已有内容。“协作类型”“状态”和资金列只供查看，导入时不读取：状态在项目页面变更，资金请用资金记录导入。",
    "“县(市、区)”填县名或6位区划代码；县名重复时按“市(州)”区分。“东部结对单位”须是该县在计划开工日有效的结对单位，"
    "该县只有一个结对单位时可留空。",
]


def _counties():
    """Sichuan counties by code, and by name (a list: names repeat across prefectures)."""
    stmt = sa.select(Unit).options(joinedload(Unit.parent)).where(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST)
    by_code, by_name = {}, defaultdict(list)
    for unit in db.session.scalars(stmt):
        by_code[unit.code] = unit
        by_name[unit.name].append(unit)
    return by_code, by_name


def _find_county(text: str, prefecture: str, by_code, by_name) -> Unit:
    if text in by_code:
        return by_code[text]
    found = by_name.get(text, [])
    if len(found) > 1 and prefecture:
        found = [u for u in found if u.parent is not None and u.parent.name == prefecture]
    if not found:
        raise ServiceError("不是四川的县(市、区)：请填县名或6位区划代码。")
    if len(found) > 1:
        raise ServiceError("有多个同名的县(市、区)：请填写“市(州)”或改填区划代码。")
    return found[0]


def _pairing(county: Unit, start: date, text: str) -> int:
    """The pairing named by 东部结对单位 among the county's valid on the planned start (the only one if blank)."""
    choices = services.pairing_choices(county.id, start)
    if text:
        found = [p for p in choices if text in (p.east_unit.display_name, p.east_unit.name, p.east_unit.full_name)]
    else:
        found = choices if len(choices) == 1 else []
    if len(found) > 1:
        # A county paired with the same East city at county level and through its prefecture (宁波市 with 盐源县
        # and with 凉山州): the name means the county's own pairing, the most specific one.
        found = [p for p in found if p.west_unit_id == county.id] or found
    if len(found) == 1:
        return found[0].id
    names = "、".join(p.east_unit.display_name for p in choices) or "无"
    if not text:
        raise ServiceError(f"请填写东部结对单位：{county.name}在 {start.isoformat()} 的结对单位有 {names}。")
    raise ServiceError(f"不是{county.name}在计划开工日 {start.isoformat()} 的结对单位。可选：{names}。")


#: Rows read and written together: an import commits a chunk at a time (other users' writes get in between).
CHUNK = 2000


def import_projects_steps(headers, rows, *, user, filename=""):
    """Read every row and write it through the project services; the caller commits only if no row failed.

    Rows are read and written ``CHUNK`` at a time (``Sheet.chunked``): each chunk's codes are looked up when it is
    written, and a code repeated anywhere in the file is refused, so a project the import creates is never one a
    later row updates."""
    sheet = Sheet(headers, rows, HEADERS, SYNONYMS, ignored=COMPUTED, fields=FIELD_COLUMNS, default="项目编号")
    by_code, by_name = _counties()
    seen = {}
    batch = Batch(user, entity_type="projects", title="帮扶项目", filename=filename, chunks=True)

    def parse(number, cell):
        errors, values = _parse_project(number, cell, by_code, by_name)
        code = cell["项目编号"]
        if isinstance(code, LongNumber):
            errors.append(RowError(number, "项目编号", code, LONG_NUMBER))
        elif not code:
            errors.append(RowError(number, "项目编号", "", "必须填写：它是每个项目的唯一标识。"))
        elif len(code) > 40:
            errors.append(RowError(number, "项目编号", code, "不能超过 40 个字。"))
        elif code in seen:
            errors.append(RowError(number, "项目编号", code, f"与第 {seen[code]} 行是同一项目。"))
        else:
            seen[code] = number
        return errors, (number, code, cell, values)

    def write(chunk):
        codes = [code for _, code, _, _ in chunk]
        existing = {p.code: p for p in db.session.scalars(sa.select(Project).where(Project.code.in_(codes)))}
        visible = set(
            db.session.scalars(sa.select(Project.id).where(Project.code.in_(codes), scope_filter(user, Project)))
        )
        for number, code, cell, values in chunk:
            with sheet.row(number, cell):
                current = existing.get(code)
                if current is not None and current.id not in visible:
                    raise ServiceError("该项目编号已被使用，且不在您的管辖范围内，不能导入修改。", "code")
                county = by_code.get(str(values.get("county_code"))) if values.get("county_code") else None
                _write_project(code, cell, values, current, county, user, batch, sheet.result)

    return (yield from sheet.chunked(parse, write, batch, size=CHUNK))


def _write_project(code, cell, values, current, county, user, batch, result) -> None:
    """Create or change one project with the project services (``county`` the row's, if it names one)."""
    if county is None and current is not None:
        county = current.county
    start = values.get("planned_start") or (current.planned_start if current is not None else None)
    if county is not None and start is not None and (cell["东部结对单位"] or current is None):
        try:
            values["pairing_id"] = _pairing(county, start, cell["东部结对单位"])
        except ServiceError as exc:
            raise ServiceError(str(exc), "pairing_id") from exc
    data = {k: v for k, v in values.items() if k != "county_code"}
    if county is not None:
        data["county_id"] = county.id
    if current is None:
        missing = [h for h in REQUIRED_FOR_NEW if not cell[h]]
        if missing:
            raise ServiceError("新增项目须填写：" + "、".join(missing) + "。", "code")
        services.create_project({**data, "code": code}, actor=user, batch=batch)
        result.created += 1
    elif services.update_project(current, data, actor=user, batch=batch):
        result.updated += 1
    else:
        result.unchanged += 1


import_projects = runner(import_projects_steps)


def _parse_project(number, cell, by_code, by_name):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    parse_cells(cell, TEXTS, ENUMS, values, fail)
    if cell["县(市、区)"]:
        try:
            values["county_code"] = _find_county(cell["县(市、区)"], cell["市(州)"], by_code, by_name).code
        except ServiceError as exc:
            fail("县(市、区)", str(exc))
    for header, attr in DATES.items():
        if cell[header]:
            try:
                values[attr] = parse_date(cell[header])
            except ValueError as exc:
                fail(header, str(exc))
    for header, attr in COUNTS.items():
        if cell[header]:
            if cell[header].isdigit():
                values[attr] = int(cell[header])
            else:
                fail(header, "应为不小于 0 的整数。")
    return errors, values


def export_rows(stmt):
    """Rows of the export, streamed in batches so a large selection stays within memory."""
    ids = db.session.scalars(stmt.with_only_columns(Project.id).order_by(Project.code)).all()
    for start in range(0, len(ids), 1000):
        batch = ids[start : start + 1000]
        projects = db.session.scalars(
            sa.select(Project)
            .options(
                joinedload(Project.county).joinedload(Unit.prefecture),
                joinedload(Project.pairing).joinedload(Pairing.east_unit).joinedload(Unit.parent),
                joinedload(Project.programme),
            )
            .where(Project.id.in_(batch))
            .order_by(Project.code)
        ).unique()
        for p in projects:
            usage = rate(p.disbursed_fen, p.arrived_fen)
            yield [
                p.code, p.name, p.county.prefecture.name if p.county.prefecture else "", p.county.name,
                p.pairing.east_unit.display_name, p.programme.name, p.year, p.category.label, p.delivery_mode.label,
                p.funding_level.label, p.status.label, wan(p.planned_fen, 4), wan(p.arrived_fen, 4),
                wan(p.disbursed_fen, 4), "" if usage is None else str(usage), p.implementing_unit,
                p.responsible_person, p.planned_start, p.planned_finish, p.actual_start, p.actual_finish,
                p.beneficiaries, p.beneficiaries_lifted,
            ]  # fmt: skip


def project_columns(user) -> list[Column]:
    """The project template's columns; counties and partners are the ones ``user`` may write in."""
    counties = writable_counties(user)
    prefectures = sorted({c.parent.name for c in counties if c.parent is not None})
    east = db.session.scalars(
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.id.in_(sa.select(Pairing.east_unit_id).where(Pairing.west_unit_id.in_([c.id for c in counties]))))
    ).all() if counties else []  # fmt: skip
    return [
        Column("项目编号", "项目的唯一编号；已登记的编号表示修改该项目", "文本，最多40字", "是", "ZC-513431-2024-001",
               text=True),
        Column("项目名称", "项目全称", "文本，最多200字", "新增时必填", "产业帮扶车间建设"),
        Column("市(州)", "项目所在市(州)，县名重复时用于区分", "文本", "否", "凉山彝族自治州", tuple(prefectures)),
        Column("县(市、区)", "项目所在县(市、区)，限您可登记的县", "县名或6位区划代码", "新增时必填", "昭觉县",
               tuple(c.name for c in counties), strict=False),
        Column("东部结对单位", "该县在计划开工日有效的东部结对单位；只有一个时可留空", "单位名称", "否", "余姚市",
               tuple(sorted({u.display_name for u in east})), strict=False),
        Column("年度", "项目年度", "4位整数", "新增时必填", "2024", text=True),
        Column("项目类别", "项目类别", "从下拉列表选择", "新增时必填", "产业发展", _labels(ProjectCategory)),
        Column("实施方式", "交钥匙或交支票", "从下拉列表选择", "新增时必填", "交支票", _labels(DeliveryMode)),
        Column("资金层级", "资金安排层级", "从下拉列表选择", "新增时必填", "县级", _labels(FundingLevel)),
        Column("实施单位", "项目实施单位", "文本，最多200字", "否", "昭觉县农业农村局"),
        Column("责任人", "项目责任人", "文本，最多50字", "否", "张三"),
        Column("计划开工", "计划开工日期", "日期 YYYY-MM-DD", "新增时必填", "2024-03-01"),
        Column("计划完工", "计划完工日期，不早于计划开工", "日期 YYYY-MM-DD", "否", "2024-12-31"),
        Column("实际开工", "实际开工日期", "日期 YYYY-MM-DD", "否", ""),
        Column("实际完工", "实际完工日期，须先有实际开工", "日期 YYYY-MM-DD", "否", ""),
        Column("带动人数", "项目带动人数", "不小于0的整数", "否", "120"),
        Column("其中脱贫人口", "带动人数中的脱贫人口，不大于带动人数", "不小于0的整数", "否", "80"),
    ]  # fmt: skip


def _labels(enum) -> tuple[str, ...]:
    return tuple(m.label for m in enum)


# ---- fund transactions ------------------------------------------------------------------------------------------

FUND_EXPORT_HEADERS = ["项目编号", "项目名称", "资金来源", "环节", "日期", "金额(元)", "文号/凭证", "备注"]
FUND_HEADERS = [h for h in FUND_EXPORT_HEADERS if h != "项目名称"]
FUND_SYNONYMS = {
    "编号": "项目编号", "项目代码": "项目编号", "来源": "资金来源", "资金类型": "资金来源", "资金环节": "环节",
    "阶段": "环节", "发生日期": "日期", "到位日期": "日期", "拨付日期": "日期", "金额": "金额(元)",
    "文号": "文号/凭证", "凭证号": "文号/凭证", "凭证": "文号/凭证", "文号/凭证号": "文号/凭证",
}  # fmt: skip
FUND_ENUMS = {"资金来源": ("source", FundSource), "环节": ("stage", FundStage)}
FUND_FIELD_COLUMNS = {"source": "资金来源", "stage": "环节", "occurred_on": "日期", "amount_fen": "金额(元)",
                      "document_no": "文号/凭证", "note": "备注"}  # fmt: skip

FUND_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "每行是一个已登记项目的一笔资金，按“项目编号”在您可登记的项目中查找。",
    "与已登记资金记录的项目、资金来源、环节、日期、金额和文号/凭证都相同的行视为同一笔，不再重复登记"
    "（只更新其备注），所以同一文件可以重复导入；确有两笔相同的资金时，请用文号/凭证区分。",
    "各资金来源在每一天的累计拨付都不能超过累计到位：按已登记的资金记录加上文件中的全部行、按日期先后计算。",
    "储备项目只能登记计划资金；日期不能晚于今天，也不能在已锁定的季度内。",
]


#: Projects whose new transactions are written per transaction of a chunked fund import (each project's rows
#: together: the ledger rule is checked over them at once).
FUND_PROJECTS_PER_CHUNK = 200


def import_transactions_steps(headers, rows, *, user, filename=""):
    """Read every row and add the new transactions through the project services, one ledger at a time.

    Every row is read and checked first, the money rule over each project's ledger with all of the file's rows;
    nothing is written unless all pass. The writes then go ``FUND_PROJECTS_PER_CHUNK`` projects per transaction
    (``Batch(chunks=True)``), so other users write between them; a refusal meanwhile takes back what was written."""
    sheet = Sheet(headers, rows, FUND_HEADERS, FUND_SYNONYMS, ignored=["项目名称"], fields=FUND_FIELD_COLUMNS,
                  default="金额(元)")  # fmt: skip
    result = sheet.result
    parsed = []
    for number, cell in sheet.cells():
        errors, values = _parse_transaction(number, cell, sheet.units)
        result.errors.extend(errors)
        if not errors:
            parsed.append((number, cell, values))
        if result.rows % PROGRESS_EVERY == 0:
            yield result.rows
    codes = sorted({cell["项目编号"] for _, cell, _ in parsed})
    projects = {}
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        stmt = sa.select(Project).where(Project.code.in_(chunk), scope_filter(user, Project))
        projects.update((p.code, p) for p in db.session.scalars(stmt))
    by_project = defaultdict(list)
    cache: dict = {}
    for number, cell, values in parsed:
        project = projects.get(cell["项目编号"])
        if project is None:
            result.errors.append(
                RowError(number, "项目编号", cell["项目编号"], "没有这个项目编号，或该项目不在您的管辖范围内。")
            )
            continue
        try:
            _check_row(project, values, cache)
        except ServiceError as exc:
            result.errors.append(sheet.refused(number, exc, cell))
            continue
        by_project[project.id].append((number, cell, values))
    plans = {}
    for project_id, items in by_project.items():
        project = db.session.get(Project, project_id)
        plan = _match(project, items)
        plans[project_id] = plan
        for source in FundSource:
            rows = [t for t in plan.new if t.source is source]
            if rows:
                breach = services.first_breach([*(t for t in project.transactions if t.source is source), *rows])
                if breach is not None:
                    result.errors.append(_breach_error(breach, plan))
    result.errors.sort(key=lambda e: e.row)
    if result.errors:
        return result
    batch = Batch(user, entity_type="projects", title="资金记录", filename=filename, chunks=True)
    done = 0
    try:
        for count, (project_id, plan) in enumerate(plans.items(), start=1):
            project = db.session.get(Project, project_id)
            rows_of = [t.row for t in plan.new] + [number for number, _, _ in plan.notes]
            try:
                if plan.new:
                    datas = [{k: getattr(t, k) for k in services.TRANSACTION_FIELDS} for t in plan.new]
                    services.add_transactions(project, datas, actor=user, batch=batch)
                    result.created += len(plan.new)
                for _number, transaction, note in plan.notes:
                    services.update_transaction(transaction, {"note": note}, actor=user, batch=batch)
                    result.updated += 1
                result.unchanged += plan.unchanged
                # What an undo rebuilds: the project's running totals, from its ledger as it then is.
                batch.touch(refresh_fund_totals, [(project_id,)])
            except ServiceError as exc:
                shown = functools.partial(_code_shown, project.code)
                sheet.write_errors += [sheet.refused(n, exc, shown, default="项目编号") for n in sorted(rows_of)]
            if count % FUND_PROJECTS_PER_CHUNK == 0:
                batch.checkpoint(failed=bool(sheet.write_errors))
            done += len(plan.new) + len(plan.notes) + plan.unchanged
            if done >= PROGRESS_EVERY:
                done = 0
                yield result.rows
        result.errors = sheet.write_errors
        return batch.close(result)
    except BaseException:
        batch.abandon(result)
        raise


def _code_shown(code: str, column: str) -> str:
    return code if column == "项目编号" else ""


def refresh_fund_totals(slices) -> None:
    """The running totals of the projects ``slices`` name ((project id,) each): what a fund import touched, rebuilt
    when it ends and when it is undone."""
    services.refresh_fund_totals(sorted({project_id for (project_id,) in slices}))


import_transactions = runner(import_transactions_steps)


def natural_key(t) -> tuple:
    """What makes a file row the same transaction as one in the ledger."""
    return (t.source, t.stage, t.occurred_on, t.amount_fen, (t.document_no or "").strip())


def _match(project: Project, items):
    """Pair the file's rows with the ledger's equal transactions (one each); the rest are new."""
    ledger = defaultdict(list)
    for t in project.transactions:
        ledger[natural_key(t)].append(t)
    plan = SimpleNamespace(new=[], notes=[], unchanged=0)
    for number, _cell, values in items:
        row = SimpleNamespace(row=number, **{k: values.get(k) for k in services.TRANSACTION_FIELDS})
        row.document_no, row.note = row.document_no or "", row.note or ""
        same = ledger.get(natural_key(row))
        if same:
            transaction = same.pop(0)
            if row.note and row.note != transaction.note:
                plan.notes.append((number, transaction, row.note))
            else:
                plan.unchanged += 1
        else:
            plan.new.append(row)
    return plan


def _breach_error(breach, plan) -> RowError:
    """The refusal at the file's row that breaks the rule: the breaking row itself, or (when a registered 拨付 is
    the one that no longer fits) the file's latest 拨付 of that source dated on or before it."""
    item, message = breach
    same = [t for t in plan.new if t.source is item.source]
    row = getattr(item, "row", None)
    if row is None:
        earlier = [t for t in same if t.stage is FundStage.DISBURSED and t.occurred_on <= item.occurred_on]
        row = max(earlier or same, key=lambda t: (t.occurred_on, t.row)).row
    others = sorted({t.row for t in same} - {row})
    together = f"（与文件中第 {'、'.join(map(str, others))} 行及已登记的资金记录一并计算）" if others else (
        "（与已登记的资金记录一并计算）")  # fmt: skip
    return RowError(row, "金额(元)", yuan(item.amount_fen).replace(",", ""), message + together)


def _check_row(project: Project, values: dict, cache: dict) -> None:
    """The rules of one transaction that name its row (the service checks them again when writing)."""
    if values["occurred_on"] > date.today():
        raise ServiceError("日期不能晚于今天；计划资金请按下达计划的日期登记。", "occurred_on")
    if project.status is ProjectStatus.RESERVE and values["stage"] is not FundStage.PLANNED:
        raise ServiceError("储备项目只能登记计划资金；立项后才能登记到位和拨付。", "stage")
    check_locked_date(project.county_id, values["occurred_on"], cache=cache, field="occurred_on")


def _parse_transaction(number, cell, units):
    errors, values = [], {}

    def fail(column, reason):
        errors.append(RowError(number, column, cell[column], reason))

    for header in ("项目编号", "资金来源", "环节", "日期", "金额(元)"):
        if not cell[header]:
            fail(header, "必须填写。")
    for header in ("项目编号", "文号/凭证"):
        if isinstance(cell[header], LongNumber):
            fail(header, LONG_NUMBER)
    parse_cells(cell, {"文号/凭证": ("document_no", 100), "备注": ("note", 500)}, FUND_ENUMS, values, fail)
    if cell["日期"]:
        try:
            values["occurred_on"] = parse_date(cell["日期"])
        except ValueError as exc:
            fail("日期", str(exc))
    if cell["金额(元)"]:
        try:
            values["amount_fen"] = parse_amount(cell["金额(元)"], units.get("金额(元)", ""))
        except MoneyError as exc:
            fail("金额(元)", str(exc))
        else:
            if values["amount_fen"] <= 0:
                fail("金额(元)", "金额须大于 0。")
    return errors, values


def transaction_rows(stmt):
    """The fund transactions of the projects ``stmt`` selects, by project code and date: the fund export, read in
    keyset batches (``keyset_batches``), so the whole ledger is never held at once."""
    ids = stmt.with_only_columns(Project.id).order_by(None)
    query = (
        sa.select(FundTransaction)
        .options(joinedload(FundTransaction.project))
        .join(Project, Project.id == FundTransaction.project_id)
        .where(FundTransaction.project_id.in_(ids))
    )
    order = (Project.code, FundTransaction.occurred_on, FundTransaction.id)
    for batch in keyset_batches(db.session, query, order, lambda t: (t.project.code, t.occurred_on, t.id)):
        for t in batch:
            yield [t.project.code, t.project.name, t.source.label, t.stage.label, t.occurred_on,
                   yuan(t.amount_fen).replace(",", ""), t.document_no, t.note]  # fmt: skip


def transaction_columns(user) -> list[Column]:
    return [
        Column("项目编号", "已登记项目的编号（须在您可登记的范围内）", "文本", "是", "ZC-513431-2024-001", text=True),
        Column("资金来源", "资金的来源", "从下拉列表选择", "是", "东部财政援助资金", _labels(FundSource)),
        Column("环节", "计划、到位或拨付", "从下拉列表选择", "是", "到位", _labels(FundStage)),
        Column("日期", "下达、到位或拨付的日期，不晚于今天", "日期 YYYY-MM-DD", "是", "2024-04-01"),
        Column("金额(元)", "本笔金额，单位元；表头写“金额(万元)”时按万元读取", "大于0的数字，最多两位小数", "是",
               "1000000"),
        Column("文号/凭证", "下达文号、记账凭证或银行流水号；用于区分同日同额的两笔资金", "文本，最多100字", "否",
               "昭财预〔2024〕12号", text=True),
        Column("备注", "说明", "文本，最多500字", "否", ""),
    ]  # fmt: skip
