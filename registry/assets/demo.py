"""Demonstration assets: the legacy path (``flask assets from-projects --apply``) for the demo's projects already at
资产已移交, 粤川 ones included; assets registered the normal way for accepted (已验收) projects; yearly 管护 checks,
a few of them overdue; a few records confirmed, given income, or idle. Idempotent like the rest of the demo."""

import random
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from registry.assets import commands, services
from registry.assets.models import Asset, AssetCheck, AssetClass, AssetState, Condition, OperationMode
from registry.counties.models import Unit
from registry.kernel.audit.services import record
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA
from registry.kernel.services import ServiceError

#: The counties whose assets the demo fills out completely (confirmed, owners named, income): 昭觉县 (浙川) and
#: 布拖县, whose older projects came from the 粤川 programme.
SHOWCASE = ("513431", "513429")
#: How many assets are left without a check for over a year (overdue reminders).
OVERDUE = 4
CARETAKERS = ["村股份经济合作社", "村民委员会", "乡镇农业服务中心", "县农业农村局"]
PEOPLE = ["吉克阿呷", "阿说木呷", "沙马拉则", "曲木伍各", "王建华", "李明", "海来日哈", "俄木阿支"]


def load(today: date | None = None) -> str:
    today = today or date.today()
    if db.session.scalar(sa.select(sa.func.count()).select_from(Asset)):
        return "演示资产：已存在，未重复加载。"
    rng = random.Random(51)
    created, problems = commands.from_projects(apply=True, echo=lambda _line: None)
    registered = _accepted_projects(rng, today)
    showcase = _showcase(rng, today)
    checks = _checks(rng, today)
    _registered_in_their_time(today)
    summary = (f"演示资产：补录（待核实）{created} 项，已验收项目登记 {registered} 项，核实并完善 {showcase} 项，"
               f"管护检查 {checks} 条（逾期 {OVERDUE} 项）")  # fmt: skip
    if problems:
        summary += f"，未补录 {len(problems)} 个项目（无资金记录）"
    record("load", None, actor=None, entity_type="assets", summary=summary)
    return summary + "。"


def _accepted_projects(rng, today) -> int:
    """Projects at 已验收: assets registered from the project's prefill; two of 昭觉县's are left for the prompt."""
    projects = services.projects_without_assets(("accepted",))
    zhaojue = db.session.scalar(sa.select(Unit.id).where(Unit.code == SHOWCASE[0]))
    left = [p["id"] for p in projects if p["county_id"] == zhaojue][:2]
    count, cache = 0, {}
    taken = services.taken_numbers(cache)
    for project in projects:
        if project["id"] in left:
            continue
        values = services.prefill(project, taken)
        done = values["completed_on"] or project["accepted_on"] or date(project["year"], 12, 1)
        values |= {
            "completed_on": done,
            "handed_over_on": min(done + timedelta(days=rng.randint(10, 60)), today) if rng.random() < 0.5 else None,
            "owner_name": _owner(project, values),
            "caretaker": values["caretaker"] or "村股份经济合作社",
            "caretaker_person": values["caretaker_person"] or rng.choice(PEOPLE),
        }
        try:
            with db.session.begin_nested():
                services.create_asset(values, actor=None, cache=cache)
            taken.add(values["number"])
            count += 1
        except ServiceError:
            continue  # a project with no money recorded has no value to register
    return count


def _registered_in_their_time(today: date) -> None:
    """The demo tells years of history loaded in a minute: each asset is taken as registered on the day it was
    handed over (or completed), and a confirmed draft as confirmed a month later, so that the quarterly reports of
    earlier quarters, which count the register as it stood at their cut-off, show them."""
    now = datetime.now(UTC)
    for asset in db.session.scalars(sa.select(Asset)):
        registered = datetime.combine(min(today, asset.handed_over_on or asset.completed_on), time(10), CHINA)
        asset.created_at = min(registered, now)
        if asset.confirmed_at is not None:
            asset.confirmed_at = min(registered + timedelta(days=30), now)
    db.session.flush()


def _owner(project, values) -> str:
    county = db.session.get(Unit, project["county_id"])
    if project["village_id"]:
        return db.session.get(Unit, project["village_id"]).name + "村集体"
    level = values["owner_level"].value
    return {"county": county.name + "人民政府", "household": "受益脱贫户（名单见移交清单）"}.get(
        level, county.name + "相关村集体"
    )


def _showcase(rng, today) -> int:
    """Confirm the showcase counties' drafts, name owners and 管护 people, give operating assets an income; one
    becomes idle."""
    ids = db.session.scalars(sa.select(Unit.id).where(Unit.code.in_(SHOWCASE))).all()
    assets = db.session.scalars(
        sa.select(Asset).where(Asset.county_id.in_(ids), Asset.needs_review.is_(True)).order_by(Asset.id)
    ).all()
    for i, asset in enumerate(assets):
        data = {"caretaker": rng.choice(CARETAKERS), "caretaker_person": rng.choice(PEOPLE),
                "caretaker_phone": f"1388{rng.randint(1000000, 9999999)}"}  # fmt: skip
        if "待核实" in asset.owner_name:
            data["owner_name"] = asset.county.name + (
                "受益脱贫户" if asset.owner_level.value == "household" else "相关村集体"
            )
        if asset.asset_class is AssetClass.OPERATING:
            income = asset.original_value_fen * rng.randint(4, 8) // 100
            data |= {"operation_mode": rng.choice([OperationMode.LEASE, OperationMode.EQUITY]),
                     "income_year": today.year - 1, "annual_income_fen": income,
                     "to_households_fen": income * 6 // 10, "to_collective_fen": income * 3 // 10}  # fmt: skip
        data["note"] = "演示数据：已核实所有权人和管护责任。"
        services.update_asset(asset, data, actor=None)
        services.confirm_asset(asset, actor=None)
        if i == 3 and asset.state is AssetState.NORMAL:
            services.change_state(
                asset, {"to_state": AssetState.IDLE, "changed_on": today - timedelta(days=40),
                        "note": "承租企业退租，正在重新招租。"}, actor=None,
            )  # fmt: skip
    return len(assets)


def _checks(rng, today) -> int:
    """A check within the last year for every handed-over asset but ``OVERDUE`` of the showcase counties' (their
    last check is over a year old), inserted in bulk like the demo's projects."""
    ids = db.session.scalars(sa.select(Unit.id).where(Unit.code.in_(SHOWCASE))).all()
    rows = db.session.execute(
        sa.select(Asset.id, Asset.county_id, Asset.handed_over_on)
        .where(Asset.handed_over_on.is_not(None), Asset.state != AssetState.DISPOSED)
        .order_by(Asset.id)
    ).all()
    late = []
    for county_id in ids:  # half of them in each showcase county
        old = [a for a, county, handed in rows if county == county_id and handed < today - timedelta(days=500)]
        late += old[: OVERDUE // len(ids)]
    checks = []
    for asset_id, _county, handed in rows:
        if asset_id in late:
            day = handed + timedelta(days=rng.randint(20, 90))
            if day > today - timedelta(days=400):
                day = today - timedelta(days=400)
        else:
            day = max(today - timedelta(days=rng.randint(15, 330)), handed)
        condition = rng.choices(list(Condition), weights=[80, 15, 5])[0]
        problems = (
            "" if condition is Condition.GOOD else rng.choice(["围栏破损，已通知管护主体维修。", "部分设备老化。"])
        )
        checks.append({"asset_id": asset_id, "checked_on": day, "condition": condition.value, "problems": problems,
                       "checker": rng.choice(PEOPLE)})  # fmt: skip
    for start in range(0, len(checks), 5000):
        db.session.execute(sa.insert(AssetCheck), checks[start : start + 5000])
    return len(checks)
