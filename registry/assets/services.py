"""Asset writes: register (from its source projects), edit, confirm a 待核实 record, dated state changes with the
disposal record, yearly 管护 checks; and the rule the assets hold over projects (no 资产已移交 before the
project's assets are registered and handed over). Callers commit.

Projects are another stream: they are read through the kernel's ``facts("project", …)`` and linked by their id
(``asset_sources.project_id`` → ``projects.id``), never imported.
"""

from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from registry.assets.models import (
    WORKFLOW,
    Asset,
    AssetCheck,
    AssetClass,
    AssetSource,
    AssetState,
    OperationMode,
    OwnerLevel,
)
from registry.counties.models import Unit, UnitKind
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.money import MoneyError, parse_yuan, wan, yuan
from registry.kernel.services import ServiceError, check_version, facts, insert_unique, status_guard
from registry.kernel.transfer import Batch, written
from registry.kernel.transfer import cache_of as _cache
from registry.permissions import authorize_write, check_locked_date

FIELDS = (
    "number", "name", "asset_class", "quantity", "quantity_unit", "original_value_fen", "east_fen", "other_fen",
    "county_id", "township_id", "village_id", "location", "pairing_id", "programme_id", "completed_on",
    "handed_over_on", "owner_level", "owner_name", "caretaker", "caretaker_person", "caretaker_phone",
    "operation_mode", "income_year", "annual_income_fen", "to_households_fen", "to_collective_fen", "note",
)  # fmt: skip
#: Fields a form or an import sets; the rest follow from the source projects.
INPUT_FIELDS = tuple(f for f in FIELDS if f not in ("original_value_fen", "east_fen", "other_fen", "county_id",
                                                    "pairing_id", "programme_id"))  # fmt: skip
CHECK_FIELDS = ("checked_on", "condition", "problems", "checker")
#: Project statuses from which an asset may be registered: accepted (the normal path), handed over (legacy
#: records) and completed (an office that registers as soon as the works are done).
REGISTRABLE = ("completed", "accepted", "handed_over")
#: A check is due once a year: an asset whose last check (or hand-over) is older than this is overdue.
CHECK_EVERY_DAYS = 365
#: Project categories whose assets are public goods by default, and those given to households.
PUBLIC_CATEGORIES = {"education", "health", "infrastructure", "rural_construction"}
HOUSEHOLD_CATEGORIES = {"relocation"}
#: What the legacy path writes for a 管护主体 or 责任人 its project does not tell (``legacy_asset``); confirming the
#: record does not require changing it, so the data checks look for it.
PENDING = "（待核实）"


def project_facts_by_code(codes, cache: dict | None = None) -> dict[str, dict]:
    if cache is not None:
        known = cache.setdefault("projects_by_code", {})
        missing = [c for c in codes if c not in known]
        if missing:
            known.update({f["code"]: f for f in facts("project", codes=missing)})
        return {c: known[c] for c in codes if c in known}
    return {f["code"]: f for f in facts("project", codes=list(codes))}


def parse_sources(text: str) -> list[tuple[str, int, int]]:
    """“ZC-513431-2024-003:120.5:30；…” (project code : 东部财政援助 元 : 其他资金 元) into (code, 分, 分).

    :raise ServiceError: naming the part that cannot be read.
    """
    sources = []
    for part in (text or "").replace("；", ";").replace("\n", ";").replace("，", ";").split(";"):
        part = part.strip().replace("：", ":")
        if not part:
            continue
        pieces = [p.strip() for p in part.split(":")]
        if len(pieces) != 3 or not pieces[0]:
            raise ServiceError(f"“{part}”应写成“项目编号:东部财政援助(元):其他资金(元)”。", "sources")
        try:
            east, other = parse_yuan(pieces[1] or "0"), parse_yuan(pieces[2] or "0")
        except MoneyError as exc:
            raise ServiceError(f"“{part}”：{exc}", "sources") from exc
        sources.append((pieces[0], east, other))
    return sources


def sources_text(asset: Asset) -> str:
    """The source projects as the form and the export write them (read back by ``parse_sources``)."""
    codes = {f["id"]: f["code"] for f in facts("project", ids=[s.project_id for s in asset.sources])}
    return "；".join(
        f"{codes.get(s.project_id, s.project_id)}:{yuan(s.east_fen).replace(',', '')}:"
        f"{yuan(s.other_fen).replace(',', '')}"
        for s in asset.sources
    )


def _normalise(data: dict) -> dict:
    for key in ("quantity_unit", "location", "caretaker_phone", "note", "owner_name", "caretaker",
                "caretaker_person", "name", "number"):  # fmt: skip
        data[key] = (data.get(key) or "").strip()
    for key in ("annual_income_fen", "to_households_fen", "to_collective_fen"):
        data[key] = data.get(key) or 0
    for key in ("township_id", "village_id", "income_year", "handed_over_on"):
        data[key] = data.get(key) or None
    if data.get("quantity") in (None, ""):
        data["quantity"] = Decimal(1)
    data["quantity_unit"] = data["quantity_unit"] or "项"
    return data


def _resolve_sources(sources, cache: dict | None) -> list[tuple[dict, int, int]]:
    """(project facts, 东部 分, 其他 分) of each source given as (code or id, east, other)."""
    if not sources:
        raise ServiceError("请填写来源项目（项目编号及各资金来源形成资产的金额）。", "sources")
    codes = [c for c, _, _ in sources if isinstance(c, str)]
    ids = [c for c, _, _ in sources if isinstance(c, int)]
    found = project_facts_by_code(codes, cache) if codes else {}
    by_id = {f["id"]: f for f in facts("project", ids=ids)} if ids else {}
    resolved, seen = [], set()
    for key, east, other in sources:
        project = found.get(key) if isinstance(key, str) else by_id.get(key)
        if project is None:
            raise ServiceError(f"没有项目编号为“{key}”的项目。", "sources")
        if project["id"] in seen:
            raise ServiceError(f"来源项目 {project['code']} 填写了两次。", "sources")
        seen.add(project["id"])
        if project["status"] not in REGISTRABLE:
            raise ServiceError(
                f"项目 {project['code']} 当前为“{project['status_label']}”：项目完工、验收后才能登记其形成的资产。",
                "sources",
            )
        if east < 0 or other < 0:
            raise ServiceError("来源金额不能为负数。", "sources")
        resolved.append((project, east, other))
    county = resolved[0][0]["county_id"]
    if any(p["county_id"] != county for p, _, _ in resolved):
        raise ServiceError("一项资产的来源项目须在同一县(市、区)。", "sources")
    return resolved


def _check(data: dict, resolved) -> None:
    """Cross-field rules; sets county, pairing, programme and the money shares from the source projects."""
    first = resolved[0][0]
    data["county_id"], data["pairing_id"], data["programme_id"] = (
        first["county_id"], first["pairing_id"], first["programme_id"])  # fmt: skip
    data["east_fen"] = sum(e for _, e, _ in resolved)
    data["other_fen"] = sum(o for _, _, o in resolved)
    data["original_value_fen"] = data["east_fen"] + data["other_fen"]
    if data["original_value_fen"] <= 0:
        raise ServiceError("资产原值（各来源金额之和）须大于 0。", "sources")
    if not data["number"]:
        raise ServiceError("请填写资产编号。", "number")
    if not data["name"]:
        raise ServiceError("请填写资产名称。", "name")
    for key, label in (("asset_class", "资产类别"), ("owner_level", "确权层级"), ("operation_mode", "运营方式")):
        if data.get(key) is None:
            raise ServiceError(f"请选择{label}。", key)
    if data["quantity"] <= 0:
        raise ServiceError("数量须大于 0。", "quantity")
    county = db.session.get(Unit, data["county_id"])
    for key, kind in (("township_id", UnitKind.TOWNSHIP), ("village_id", UnitKind.VILLAGE)):
        if data.get(key):
            unit = db.session.get(Unit, data[key])
            if unit is None or unit.kind is not kind or unit.county_id != county.id:
                raise ServiceError(f"所选{kind.label}不在{county.name}。", key)
    if data.get("village_id") and data.get("township_id"):
        if db.session.get(Unit, data["village_id"]).parent_id != data["township_id"]:
            raise ServiceError("所选村不在所选乡镇。", "village_id")
    if data.get("completed_on") is None:
        raise ServiceError("请填写竣工日期。", "completed_on")
    today = date.today()
    if data["completed_on"] > today:
        raise ServiceError("竣工日期不能晚于今天。", "completed_on")
    if data["handed_over_on"] is not None:
        if data["handed_over_on"] < data["completed_on"]:
            raise ServiceError("移交日期不能早于竣工日期。", "handed_over_on")
        if data["handed_over_on"] > today:
            raise ServiceError("移交日期不能晚于今天。", "handed_over_on")
    for key, label in (("owner_name", "所有权人（单位或农户）"), ("caretaker", "管护主体"),
                       ("caretaker_person", "管护责任人")):  # fmt: skip
        if not data[key]:
            raise ServiceError(f"请填写{label}。", key)
    if data["owner_level"] is OwnerLevel.HOUSEHOLD and data["asset_class"] is AssetClass.PUBLIC:
        raise ServiceError("公益性资产不能确权到户。", "owner_level")
    income, households, collective = data["annual_income_fen"], data["to_households_fen"], data["to_collective_fen"]
    if min(income, households, collective) < 0:
        raise ServiceError("收益金额不能为负数。", "annual_income_fen")
    if households + collective > income:
        raise ServiceError(
            f"分配给脱贫户与村集体的收益合计 {wan(households + collective, 4)} 万元，"
            f"超过年收益 {wan(income, 4)} 万元。",
            "to_households_fen",
        )
    if income and not data["income_year"]:
        raise ServiceError("填写年收益时请填写收益年度。", "income_year")
    if data["income_year"] and not 2000 <= data["income_year"] <= today.year:
        raise ServiceError(f"收益年度应在 2000–{today.year} 之间。", "income_year")


def _clash(number: str, asset: Asset | None) -> None:
    other = db.session.scalar(sa.select(Asset.id).where(Asset.number == number))
    if other is not None and (asset is None or other != asset.id):
        raise ServiceError(f"资产编号 {number} 已被使用。", "number")


def _sources_changes(before: list, after: list) -> dict:
    return {"sources": [before, after]} if before != after else {}


def _source_list(resolved) -> list:
    return [[p["code"], e, o] for p, e, o in resolved]


def create_asset(
    data: dict, *, actor, batch: Batch | None = None, needs_review: bool = False, cache: dict | None = None
) -> Asset:
    """Register an asset from its source projects (``data["sources"]``: (code or project id, 东部 分, 其他 分)).
    ``cache`` (else the import's) keeps project facts and the write scope between calls."""
    cache = _cache(batch) if batch is not None else cache
    asset, resolved = _new_asset(data, actor=actor, needs_review=needs_review, cache=cache)
    _clash(asset.number, None)
    insert_unique(asset, f"资产编号 {asset.number} 已被使用。", "number")
    _registered(asset, resolved, actor=actor, batch=batch)
    return asset


def _new_asset(data: dict, *, actor, needs_review: bool, cache: dict | None) -> tuple[Asset, list]:
    """A new asset, checked (values, sources, the writer's scope) but not yet added to the session."""
    sources = data.get("sources")
    data = _normalise({k: data.get(k) for k in INPUT_FIELDS})
    resolved = _resolve_sources(sources, cache)
    _check(data, resolved)
    authorize_write(actor, Asset, data, cache=cache)
    asset = Asset(**data, state=AssetState.NORMAL, needs_review=needs_review)
    asset.sources = [AssetSource(project_id=p["id"], east_fen=e, other_fen=o) for p, e, o in resolved]
    return asset, resolved


def _registered(asset: Asset, resolved, *, actor, batch: Batch | None) -> None:
    """An inserted asset's first step (登记) and its audit entry."""
    on = asset.handed_over_on or asset.completed_on
    WORKFLOW.start(asset, "register", actor=actor, opinion="登记资产", on=on)
    changes = snapshot(asset, FIELDS) | {"sources": _source_list(resolved)}
    written("create", asset, actor=actor, batch=batch, changes=changes,
            summary=f"登记资产 {asset.number} {asset.name}" + ("（待核实）" if asset.needs_review else ""))  # fmt: skip


def update_asset(asset: Asset, data: dict, *, actor, version=None, batch: Batch | None = None) -> dict:
    """Change an asset; its sources are replaced when ``data`` has them."""
    check_version(asset, version)
    merged = _normalise({k: data.get(k, getattr(asset, k)) for k in INPUT_FIELDS})
    current = [(s.project_id, s.east_fen, s.other_fen) for s in asset.sources]
    sources = data.get("sources") or current
    resolved = _resolve_sources(sources, _cache(batch))
    _check(merged, resolved)
    authorize_write(actor, Asset, merged, before=asset, cache=_cache(batch))
    _clash(merged["number"], asset)
    before = [[f["code"], e, o] for f, e, o in _resolve_sources(current, _cache(batch))] if current else []
    after = _source_list(resolved)
    changes = apply_changes(asset, merged, FIELDS) | _sources_changes(before, after)
    if "sources" in changes:
        asset.sources = [AssetSource(project_id=p["id"], east_fen=e, other_fen=o) for p, e, o in resolved]
        db.session.flush()
    if changes:
        written("update", asset, actor=actor, batch=batch, changes=changes, summary=f"修改资产 {asset.number}")
    return changes


def confirm_asset(asset: Asset, *, actor, version=None) -> None:
    """核实 a record the legacy path created: it becomes an ordinary record of the register."""
    check_version(asset, version)
    authorize_write(actor, Asset, asset, before=asset)
    if not asset.needs_review:
        raise ServiceError("该资产不是待核实记录。")
    asset.needs_review = False
    asset.confirmed_at = utcnow()  # a report of an earlier quarter still counts it as 待核实
    record("update", asset, actor=actor, summary=f"核实资产 {asset.number}", changes={"needs_review": [True, False]})


def change_state(asset: Asset, data: dict, *, actor, version=None) -> None:
    """A dated change of state (正常/闲置/低效/损毁/已处置); 已处置 carries its disposal record and is final."""
    check_version(asset, version)
    to, on = data.get("to_state"), data.get("changed_on")
    if to is None:
        raise ServiceError("请选择新的状态。", "to_state")
    if on is None:
        raise ServiceError("请填写变更日期。", "changed_on")
    WORKFLOW.check(asset, to.value, actor)
    if on > date.today():
        raise ServiceError("变更日期不能晚于今天。", "changed_on")
    if on < asset.completed_on:
        raise ServiceError("变更日期不能早于竣工日期。", "changed_on")
    last = max((c.changed_on for c in asset.state_changes), default=None)
    if last and on < last:
        raise ServiceError(f"变更日期不能早于上一次状态变更日期 {last.isoformat()}。", "changed_on")
    note = WORKFLOW.opinion(to.value, data.get("note"))
    # The report counts assets by state as of a quarter's end: a locked quarter's figures stay as approved.
    check_locked_date(asset.county_id, on, field="changed_on")
    changes = {}
    if to is AssetState.DISPOSED:
        method = (data.get("disposal_method") or "").strip()
        decision = (data.get("disposal_decision") or "").strip()
        proceeds = data.get("disposal_proceeds_fen") or 0
        if not method:
            raise ServiceError("处置资产请填写处置方式（拍卖、报废、转让等）。", "disposal_method")
        if not decision:
            raise ServiceError("处置资产请填写决策程序或批准文号（如村民代表大会决议）。", "disposal_decision")
        if proceeds < 0:
            raise ServiceError("处置收入不能为负数。", "disposal_proceeds_fen")
        asset.disposed_on, asset.disposal_method, asset.disposal_decision = on, method, decision
        asset.disposal_proceeds_fen = proceeds
        changes = {"disposed_on": [None, on.isoformat()], "disposal_method": ["", method],
                   "disposal_decision": ["", decision], "disposal_proceeds_fen": [0, proceeds]}  # fmt: skip
    summary = f"{asset.number}：{asset.state.label} → {to.label}（{on.isoformat()}）"
    WORKFLOW.take(asset, to.value, actor=actor, opinion=note, on=on, summary=summary, changes=changes)


def add_check(asset: Asset, data: dict, *, actor) -> AssetCheck:
    """Record a 管护 check (检查日期, 状况, 问题)."""
    authorize_write(actor, Asset, asset, before=asset)
    data = {k: data.get(k) for k in CHECK_FIELDS}
    if data["checked_on"] is None:
        raise ServiceError("请填写检查日期。", "checked_on")
    if data["checked_on"] > date.today():
        raise ServiceError("检查日期不能晚于今天。", "checked_on")
    if data["checked_on"] < asset.completed_on:
        raise ServiceError("检查日期不能早于竣工日期。", "checked_on")
    if asset.state is AssetState.DISPOSED:
        raise ServiceError("资产已处置，不再进行管护检查。", "checked_on")
    if data["condition"] is None:
        raise ServiceError("请选择状况。", "condition")
    check_locked_date(asset.county_id, data["checked_on"], field="checked_on")  # overdue checks are reported
    data["problems"] = (data["problems"] or "").strip()
    data["checker"] = (data["checker"] or "").strip()
    check = AssetCheck(asset=asset, actor_id=getattr(actor, "id", None), **data)
    db.session.add(check)
    db.session.flush()
    record("create", check, actor=actor, context=asset, changes=snapshot(check, CHECK_FIELDS),
           summary=f"{asset.number} 管护检查 {data['checked_on']}（{data['condition'].label}）")  # fmt: skip
    return check


# ---- from projects ------------------------------------------------------------------------------------------------


def next_number(project_code: str, taken: set | None = None) -> str:
    """The first free asset number of a project: its code with -01, -02…; ``taken``, when given, is every asset
    number there is (a batch's, read once by ``taken_numbers``) and the query is not made."""
    stem = f"{project_code}-"
    if taken is None:
        # startswith escapes % and _ a project code may hold (LIKE would read them as wildcards).
        taken = set(db.session.scalars(sa.select(Asset.number).where(Asset.number.startswith(stem, autoescape=True))))
    numbers = [int(n[len(stem) :]) for n in taken if n.startswith(stem) and n[len(stem) :].isdigit()]
    return f"{stem}{max(numbers, default=0) + 1:02d}"


def taken_numbers(cache: dict) -> set:
    """Every asset number, read once per batch (``cache``) and kept up to date by ``legacy_asset``: numbering
    assets for a thousand projects one LIKE scan each read the register a thousand times."""
    if "asset_numbers" not in cache:
        cache["asset_numbers"] = set(db.session.scalars(sa.select(Asset.number)))
    return cache["asset_numbers"]


def default_class(category: str) -> AssetClass:
    if category in PUBLIC_CATEGORIES:
        return AssetClass.PUBLIC
    if category in HOUSEHOLD_CATEGORIES:
        return AssetClass.HOUSEHOLD
    return AssetClass.OPERATING


def prefill(project: dict, taken: set | None = None) -> dict:
    """A new asset's values from its project: location, funds by source, class from the category (``taken``: see
    ``next_number``)."""
    east = project["funds"].get("east_fiscal", 0)
    other = sum(v for k, v in project["funds"].items() if k != "east_fiscal")
    asset_class = default_class(project["category"])
    village = project["village_id"]
    owner_level = {AssetClass.PUBLIC: OwnerLevel.VILLAGE if village else OwnerLevel.COUNTY,
                   AssetClass.HOUSEHOLD: OwnerLevel.HOUSEHOLD}.get(asset_class, OwnerLevel.VILLAGE)  # fmt: skip
    return {
        "number": next_number(project["code"], taken), "name": project["name"], "asset_class": asset_class,
        "quantity": Decimal(1), "quantity_unit": "项", "township_id": project["township_id"],
        "village_id": village, "completed_on": project["actual_finish"] or project["accepted_on"],
        "handed_over_on": project["handed_over_on"], "owner_level": owner_level,
        "operation_mode": OperationMode.SELF if asset_class is not AssetClass.OPERATING else OperationMode.LEASE,
        "caretaker_person": project["responsible_person"], "caretaker": project["implementing_unit"],
        "sources": [(project["code"], east, other)],
    }  # fmt: skip


def projects_without_assets(statuses) -> list[dict]:
    """Facts of the projects in ``statuses`` that no asset names as its source."""
    linked = set(db.session.scalars(sa.select(AssetSource.project_id).distinct()))
    return [p for p in facts("project", statuses=statuses) if p["id"] not in linked]


def _unit_name(unit_id: int, cache: dict | None) -> str:
    """A unit's name; a batch (``cache``) reads each once and without flushing: a lookup that flushes the previous
    record's pending rows costs as much as the record's own insert (``flask assets from-projects``)."""
    names = cache.setdefault("unit_names", {}) if cache is not None else {}
    if unit_id not in names:
        with db.session.no_autoflush:
            names[unit_id] = db.session.scalar(sa.select(Unit.name).where(Unit.id == unit_id))
    return names[unit_id]


def legacy_asset(project: dict, *, actor, cache: dict | None = None) -> Asset:
    """A draft (待核实) asset for a project already at 资产已移交 without one, filled from the project as far as it
    tells; owner and 管护 fields say what is still to be confirmed."""
    taken = taken_numbers(cache) if cache is not None else None
    asset = create_asset(_legacy_values(project, taken, cache), actor=actor, needs_review=True, cache=cache)
    if taken is not None:
        taken.add(asset.number)
    return asset


def legacy_assets(projects: list[dict], *, actor) -> tuple[list[Asset], list[str]]:
    """``legacy_asset`` for many projects at once (``flask assets from-projects --apply``), with one insert of them
    all: each project is checked as ``legacy_asset`` checks it, and a refused one (no money) is reported and left
    out while the others go on; the numbers are chosen against every number read once, so a number another writer
    takes meanwhile refuses the whole batch at its insert and nothing is written. Returns (assets, problems)."""
    cache: dict = {}
    taken = taken_numbers(cache)
    built, problems = [], []
    with db.session.no_autoflush:
        for project in projects:
            try:
                asset, resolved = _new_asset(
                    _legacy_values(project, taken, cache), actor=actor, needs_review=True, cache=cache
                )
            except ServiceError as exc:
                problems.append(f"{project['code']}：{exc}")
                continue
            taken.add(asset.number)
            built.append((asset, resolved))
    insert_unique([asset for asset, _ in built], "资产编号已被其他操作占用，未补录任何资产；请重新运行。")
    for asset, resolved in built:
        _registered(asset, resolved, actor=actor, batch=None)
    return [asset for asset, _ in built], problems


def _legacy_values(project: dict, taken: set | None, cache: dict | None) -> dict:
    """The values of a project's draft asset (``legacy_asset``); refuses a project without money."""
    values = prefill(project, taken)
    owner = {
        OwnerLevel.COUNTY: _unit_name(project["county_id"], cache),
        OwnerLevel.HOUSEHOLD: "受益农户（名单待核实）",
    }.get(values["owner_level"], "所在村集体（待核实）")
    if values["owner_level"] is OwnerLevel.VILLAGE and project["village_id"]:
        owner = _unit_name(project["village_id"], cache) + "村集体"
    values |= {
        "owner_name": owner,
        "caretaker": values["caretaker"] or PENDING,
        "caretaker_person": values["caretaker_person"] or PENDING,
        "completed_on": values["completed_on"] or project["handed_over_on"] or date(project["year"], 12, 31),
        "note": f"由项目 {project['code']}（资产已移交）补录，待县级协作办核实所有权人、管护主体和原值。",
    }
    if values["handed_over_on"] and values["handed_over_on"] < values["completed_on"]:
        values["handed_over_on"] = values["completed_on"]
    if sum(e + o for _, e, o in values["sources"]) <= 0:
        raise ServiceError(f"项目 {project['code']} 没有资金记录，无法补录资产原值。")
    if cache is not None:
        cache.setdefault("projects_by_code", {})[project["code"]] = project
    return values


# ---- the rule over projects ---------------------------------------------------------------------------------------


@status_guard("project")
def assets_handed_over(project, to: str) -> str | None:
    """A project reaches 资产已移交 only when its assets are registered, confirmed and handed over."""
    if to != "handed_over":
        return None
    assets = db.session.execute(
        sa.select(Asset.number, Asset.handed_over_on, Asset.needs_review)
        .join(AssetSource, AssetSource.asset_id == Asset.id)
        .where(AssetSource.project_id == project.id)
        .order_by(Asset.number)
    ).all()
    if not assets:
        return "该项目尚未登记形成的资产：请先在“项目资产”中登记资产并填写移交日期，再变更为资产已移交。"
    pending = [n for n, handed, _ in assets if handed is None]
    if pending:
        return f"资产 {'、'.join(pending)} 尚未移交（未填写移交日期），项目不能变更为资产已移交。"
    review = [n for n, _, needs in assets if needs]
    if review:
        return f"资产 {'、'.join(review)} 待核实，核实后项目才能变更为资产已移交。"
    return None


# ---- overdue checks -----------------------------------------------------------------------------------------------


def last_checks(until: date | None = None):
    """SQL: asset id -> its last check date (of the checks dated by ``until``, if given: a report's cut-off)."""
    stmt = sa.select(AssetCheck.asset_id, sa.func.max(AssetCheck.checked_on).label("last"))
    if until is not None:
        stmt = stmt.where(AssetCheck.checked_on <= until)
    return stmt.group_by(AssetCheck.asset_id).subquery()


def overdue_clause(today: date, last, *, as_of: bool = False):
    """SQL over Asset joined (outer) with ``last_checks()``: handed over, not disposed, no check for a year.

    ``as_of``: as things stood on ``today`` (a report's cut-off, with ``last_checks(today)``): handed over by then and
    not disposed by then, whatever happened since."""
    limit = today - timedelta(days=CHECK_EVERY_DAYS)
    if as_of:
        kept = sa.and_(sa.or_(Asset.disposed_on.is_(None), Asset.disposed_on > today), Asset.handed_over_on <= today)
    else:
        kept = sa.and_(Asset.state != AssetState.DISPOSED, Asset.handed_over_on.is_not(None))
    return sa.and_(kept, sa.func.coalesce(last.c.last, Asset.handed_over_on) < limit)
