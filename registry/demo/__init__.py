"""Demonstration data: programmes, the documented pairings (domain.md §1.2–1.3), organisations, one user per role,
then each part in its order (``load``): the records of projects, placements, purchases, exchanges and agreements
together (``records``: their figures must agree with each other), the 整改 ledger over them (``problems``), a
stream's own demo (``assets.demo``, ``disclosure.demo``); ``scale`` grows it to a province's volume.

Idempotent: running it again adds only what is missing. Nothing here runs in production (see cli.py).
"""

import csv
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from registry.assets import demo as demo_assets
from registry.auth.models import Role, User
from registry.auth.services import create_user
from registry.counties.models import Unit, UnitKind
from registry.counties.services import create_local_unit, load_divisions
from registry.demo import problems as demo_problems
from registry.demo import records as demo_projects
from registry.disclosure import demo as demo_disclosure
from registry.kernel.database import reset_id_sequences
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError
from registry.pairings.models import Pairing, Programme
from registry.pairings.services import create_pairing, create_programme
from registry.reports.services import save_narrative

PAIRINGS_CSV = Path(__file__).resolve().parent.parent / "pairings" / "data" / "pairings.csv"
DEMO_PASSWORD = "xiezuo-demo-2026"

PROGRAMMES = [
    {
        "name": "浙川东西部协作",
        "province_code": "330000",
        "starts_on": date(2021, 4, 1),
        "ends_on": None,
        "description": "新一轮东西部协作：浙江 62 个县(市、区)结对四川 12 个市(州) 68 个县。",
    },
    {
        "name": "粤川东西部扶贫协作",
        "province_code": "440000",
        "starts_on": date(2010, 1, 1),
        "ends_on": date(2021, 3, 31),
        "description": "广东对四川凉山、甘孜的东西部扶贫协作（2021 年结对调整后结束，项目资产仍需管护）。",
    },
    {
        "name": "对口支援",
        "province_code": None,
        "starts_on": None,
        "ends_on": None,
        "description": "对口支援（如浙江—甘孜、温州—阿坝涉藏地区对口支援）。",
    },
]

#: (username, display name, role, scope division code)
USERS = [
    ("admin", "系统管理员", Role.ADMIN, None),
    ("sheng", "省协作办 王敏", Role.PROVINCE, None),
    ("liangshan", "凉山州协作办 李强", Role.PREFECTURE, "513400"),
    ("zhaojue", "昭觉县协作办 吉克", Role.COUNTY, "513431"),
    ("zhejiang", "浙江前方工作组 陈杰", Role.LIAISON, "330000"),
    ("guangdong", "广东前方工作组 梁伟", Role.LIAISON, "440000"),
    ("lingdao", "领导 张华（只读）", Role.READER, None),
]

#: Organisations below counties, paired school-to-school and hospital-to-hospital.
ORGANISATIONS = [
    # (parent county code, kind, name, east county code, east kind, east name, programme, from)
    (
        "513431",
        UnitKind.SCHOOL,
        "昭觉县民族中学",
        "330281",
        UnitKind.SCHOOL,
        "余姚中学",
        "浙川东西部协作",
        date(2021, 9, 1),
    ),
    (
        "513431",
        UnitKind.HOSPITAL,
        "昭觉县人民医院",
        "330281",
        UnitKind.HOSPITAL,
        "余姚市人民医院",
        "浙川东西部协作",
        date(2021, 6, 1),
    ),
    (
        "513435",
        UnitKind.SCHOOL,
        "甘洛县中学",
        "330213",
        UnitKind.SCHOOL,
        "奉化中学",
        "浙川东西部协作",
        date(2022, 2, 20),
    ),
    (
        "513430",
        UnitKind.HOSPITAL,
        "金阳县人民医院",
        "330211",
        UnitKind.HOSPITAL,
        "镇海区人民医院",
        "浙川东西部协作",
        date(2021, 7, 1),
    ),
]


def _unit(code: str) -> Unit:
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == code))
    if unit is None:
        raise ServiceError(f"参考数据中没有区划代码 {code}，请先运行 flask geo load。")
    return unit


def _programmes() -> dict[str, Programme]:
    existing = {p.name: p for p in db.session.scalars(sa.select(Programme))}
    for spec in PROGRAMMES:
        if spec["name"] not in existing:
            data = {k: v for k, v in spec.items() if k != "province_code"}
            data["east_province_id"] = _unit(spec["province_code"]).id if spec["province_code"] else None
            data["is_active"] = True
            existing[spec["name"]] = create_programme(data, actor=None)
    return existing


def _pairing(east: Unit, west: Unit, level: UnitKind, programme: Programme, start, end, source) -> bool:
    exists = db.session.scalar(
        sa.select(Pairing.id).where(
            Pairing.east_unit_id == east.id,
            Pairing.west_unit_id == west.id,
            Pairing.programme_id == programme.id,
            Pairing.valid_from == start,
        )
    )
    if exists:
        return False
    create_pairing(
        {
            "east_unit_id": east.id,
            "west_unit_id": west.id,
            "level": level,
            "programme_id": programme.id,
            "valid_from": start,
            "valid_to": end,
            "source": source[:300],
            "note": "",
        },
        actor=None,
    )
    return True


LEVELS = {"省": UnitKind.PROVINCE, "市": UnitKind.PREFECTURE, "县": UnitKind.COUNTY}


def _documented_pairings(programmes) -> int:
    added = 0
    with PAIRINGS_CSV.open(encoding="utf-8-sig", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                level = LEVELS[row["level"].strip()]
                programme = programmes[row["programme"].strip()]
                start = date.fromisoformat(row["valid_from"].strip())
                end = date.fromisoformat(row["valid_to"].strip()) if row["valid_to"].strip() else None
            except (KeyError, ValueError) as exc:
                raise ServiceError(f"{PAIRINGS_CSV.name} 第 {line} 行无效：{exc}") from exc
            east, west = (
                _unit(row["east_code"].strip()),
                _unit(row["west_code"].strip()),
            )
            added += _pairing(east, west, level, programme, start, end, row.get("source", "").strip())
    return added


def _organisations(programmes) -> int:
    added = 0
    for (
        west_code,
        kind,
        west_name,
        east_code,
        east_kind,
        east_name,
        programme,
        start,
    ) in ORGANISATIONS:
        west = _local(west_code, kind, west_name)
        east = _local(east_code, east_kind, east_name)
        added += _pairing(east, west, kind, programmes[programme], start, None, "演示数据")
    return added


def _local(county_code: str, kind: UnitKind, name: str) -> Unit:
    county = _unit(county_code)
    unit = db.session.scalar(sa.select(Unit).where(Unit.parent_id == county.id, Unit.name == name))
    return unit or create_local_unit(
        {"name": name, "kind": kind, "parent_id": county.id, "note": "演示数据"},
        actor=None,
    )


def _users() -> int:
    added = 0
    for username, name, role, scope_code in USERS:
        if db.session.scalar(sa.select(User.id).where(User.username == username)):
            continue
        create_user(
            {
                "username": username,
                "display_name": name,
                "role": role,
                "scope_unit_id": _unit(scope_code).id if scope_code else None,
                "password": DEMO_PASSWORD,
            },
            actor=None,
        )
        added += 1
    return added


#: Narratives of the demo's quarterly reports: (county code, year, quarter, 亮点, 问题, 下步打算). Illustrative text in
#: the style of county work summaries, not quotations.
NARRATIVES = [
    (
        "513431",
        2024,
        3,
        "东西部协作资金到位率保持较高水平，帮扶车间新增吸纳脱贫劳动力就业；消费帮扶通过展销会和电商平台拓展销路。\n"
        "余姚市选派的挂职干部和专业技术人才全部到岗，组团式教育帮扶持续推进。",
        "部分项目资金拨付进度偏慢，到位未拨付资金较多；劳务协作中稳岗就业跟踪不够及时。",
        "督促项目实施单位加快拨付和验收；开展季度稳岗回访；结合“川货出川”组织秋季产销对接活动。",
    ),
    (
        "513431",
        2024,
        2,
        "完成年度项目立项，首批东部财政援助资金到位；组织点对点劳务输出专列。",
        "个别项目前期手续办理滞后。",
        "压茬推进项目开工，确保三季度资金拨付进度达到序时要求。",
    ),
]


def _narratives() -> int:
    added = 0
    for code, year, number, highlights, problems, next_steps in NARRATIVES:
        unit = db.session.scalar(sa.select(Unit).where(Unit.code == code))
        data = {"highlights": highlights, "problems": problems, "next_steps": next_steps}
        added += bool(save_narrative(unit, Quarter.of(year, number), data, actor=None))
    return added


def load() -> str:
    """Load everything missing; return a one-line summary."""
    if db.session.scalar(sa.select(sa.func.count(Unit.id)).where(Unit.code.is_not(None))) == 0:
        load_divisions()
    programmes = _programmes()
    pairings = _documented_pairings(programmes)
    organisations = _organisations(programmes)
    users = _users()
    db.session.flush()
    projects = demo_projects.load() + "\n" + demo_projects.load_records()
    _narratives()
    projects += "\n" + demo_problems.load()
    projects += "\n" + demo_disclosure.load()
    # The projects were inserted with their ids: the next project must not take one of them.
    reset_id_sequences(db.session)
    # Project assets: the legacy path for projects at 资产已移交, registration for accepted ones, checks.
    projects += "\n" + demo_assets.load()
    added = pairings + organisations
    return f"演示数据：新增结对 {added}（其中学校/医院 {organisations}），新增账号 {users}。\n{projects}"


def logins_text() -> str:
    lines = [f"演示账号（密码均为 {DEMO_PASSWORD}）："]
    for username, name, role, scope_code in USERS:
        scope = _unit(scope_code).full_name if scope_code else "全省"
        lines.append(f"  {username:<10} {role.label:<10} {scope:<16} {name}")
    return "\n".join(lines)
