"""Demonstration ledger (整改台账) for the Liangshan counties: the 2023 national assessment's feedback batch with
problems open, overdue, under way, waiting for 销号 and closed by both sides, each linked to demo records, plus a
prefecture-level problem and one the East partner reported; then the data checks' proposals.

Idempotent: nothing is added once the batch exists. Every problem goes through the ledger's services, as the
demo users who would take each step (the county office, 凉山州协作办, 省协作办); the steps' dates are then set to
the days they would have been taken, so the quarterly reports of 2024 show the ledger as it stood.
"""

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from registry.auth.models import Role, User
from registry.auth.services import create_user
from registry.counties.models import Unit
from registry.findings.services import run_checks
from registry.kernel.extensions import db
from registry.placements.models import Placement
from registry.problems import services
from registry.problems.models import Category, Problem, Source
from registry.projects.models import FundTransaction, Project, ProjectStatus
from registry.purchases.models import Purchase

BATCH = "2023年度国家考核评估反馈"
FOUND = date(2024, 4, 15)
#: County offices the demo needs besides 昭觉县 (the local side of 双销号 is the county's own office).
COUNTY_USERS = [("butuo", "布拖县协作办 阿说", "513429"), ("meigu", "美姑县协作办 曲比", "513436")]
PASSWORD = "xiezuo-demo-2026"

#: (county code, category, description, amount 元, 责任单位, 措施, 时限, what to link, how far it got)
PROBLEMS = [
    ("513431", Category.FUNDS, "东西部协作财政援助资金到位后拨付滞后，部分项目资金闲置超过 6 个月。", 3_860_000,
     "昭觉县财政局", "逐项目梳理资金拨付进度，建立周调度机制，限期完成拨付。",
     date(2024, 8, 31), "idle", "closed"),
    ("513431", Category.ASSET, "部分帮扶项目建成后未明确管护主体，资产未纳入台账管理。", 0,
     "昭觉县农业农村局", "逐项明确产权和管护主体，签订管护协议，纳入项目资产台账。",
     date(2024, 9, 30), "done", "requested"),
    ("513431", Category.LABOUR, "劳务协作数据中存在同一人员在两地重复统计的情况。", 0,
     "昭觉县人社局", "与周边县比对身份证号，核减重复人员，建立跨县核对机制。",
     date(2024, 6, 30), "placement", "returned"),
    ("513429", Category.PROJECT, "部分产业帮扶项目超过计划完工时间仍未完工，联农带农机制未落实。", 1_200_000,
     "布拖县乡村振兴局", "倒排工期，挂图作战，对滞后项目约谈实施单位。",
     date(2024, 10, 31), "late", "in_progress"),
    ("513429", Category.CONSUMPTION, "消费帮扶销售额统计口径不一，部分销售凭证缺失。", 450_000,
     "布拖县商务局", "统一统计口径，补齐发票和合同凭证，无凭证的不计入。",
     date(2024, 7, 31), "purchase", "open"),
    ("513436", Category.FUNDS, "项目资金使用进度慢，年底结转资金比例偏高。", 2_150_000,
     "美姑县财政局", "压实项目单位责任，按月通报资金支出进度。",
     date(2024, 11, 30), "idle", "in_progress"),
    ("513436", Category.DATA, "东西部协作信息公开不及时，项目公示不完整。", 0,
     "美姑县乡村振兴局", "在县政府网站和村务公开栏补充公示项目名称、资金和带农情况。",
     date(2024, 6, 30), "done", "closed"),
    ("513432", Category.PROJECT, "帮扶车间吸纳脱贫人口就业人数未达到协议要求。", 0,
     "喜德县人社局", "调整车间用工结构，优先吸纳脱贫劳动力。",
     date(2024, 9, 30), "late", "open"),
]  # fmt: skip


def _unit(code: str) -> Unit:
    return db.session.scalar(sa.select(Unit).where(Unit.code == code))


def _user(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username == username))


def _users() -> dict[str, User]:
    for username, name, code in COUNTY_USERS:
        if _user(username) is None and _unit(code) is not None:
            create_user({"username": username, "display_name": name, "role": Role.COUNTY,
                         "scope_unit_id": _unit(code).id, "password": PASSWORD}, actor=None)  # fmt: skip
    db.session.flush()
    offices = {"513431": "zhaojue", **{code: username for username, _, code in COUNTY_USERS}}
    users = {code: _user(name) for code, name in offices.items()}
    # The head of each county office signs its side of 销号, not the clerk who asked (PROBLEM_REQUESTER_MAY_SIGN).
    for code, username in offices.items():
        head = f"{username}_head"
        if _user(head) is None and _unit(code) is not None:
            create_user({"username": head, "display_name": f"{_unit(code).name}协作办负责人", "role": Role.COUNTY,
                         "scope_unit_id": _unit(code).id, "password": PASSWORD}, actor=None)  # fmt: skip
    db.session.flush()
    users |= {f"{code}:head": _user(f"{username}_head") for code, username in offices.items()}
    users |= {"prefecture": _user("liangshan"), "province": _user("sheng")}
    return users


def _links(county: Unit, kind: str) -> list[tuple[str, int]]:
    """Demo records of the county that show the problem (the checks' own kinds of case)."""
    if kind == "idle":
        project = db.session.scalar(
            sa.select(Project)
            .where(Project.county_id == county.id, Project.arrived_fen > Project.disbursed_fen, Project.year == 2023)
            .order_by(Project.id)
            .limit(1)  # fmt: skip
        )
        if project is None:
            return []
        money = db.session.scalars(
            sa.select(FundTransaction.id).where(FundTransaction.project_id == project.id).limit(2)
        ).all()
        return [("projects", project.id), *(("fund_transactions", t) for t in money)]
    if kind in ("late", "done"):
        status = ProjectStatus.IN_PROGRESS if kind == "late" else ProjectStatus.HANDED_OVER
        ids = db.session.scalars(
            sa.select(Project.id).where(Project.county_id == county.id, Project.status == status).order_by(Project.id)
            .limit(2)
        ).all()  # fmt: skip
        return [("projects", i) for i in ids]
    if kind == "placement":
        ids = db.session.scalars(
            sa.select(Placement.id).where(Placement.origin_county_id == county.id).order_by(Placement.id).limit(2)
        ).all()
        return [("placements", i) for i in ids]
    ids = db.session.scalars(
        sa.select(Purchase.id).where(Purchase.seller_county_id == county.id).order_by(Purchase.id).limit(3)
    ).all()
    return [("purchases", i) for i in ids]


def _dated(problem: Problem, day: date) -> None:
    """Put the problem's newest step on ``day`` (10:00 Beijing time)."""
    problem.steps[-1].at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)


def _walk(problem: Problem, how_far: str, users: dict, county_code: str) -> None:
    if how_far == "open":
        return
    local = users[county_code]
    prefecture = users["prefecture"]
    first = problem.amount_fen // 2
    text = "已召开专题会议部署整改，制定整改方案，明确责任人和完成时限。"
    services.add_progress(problem, {"entry_on": date(2024, 5, 20), "rectified_fen": first, "text": text}, actor=local)
    _dated(problem, date(2024, 5, 20))
    if how_far == "in_progress":
        return
    rest = problem.amount_fen - first
    text = "整改措施已全部落实，相关佐证材料已归档。"
    services.add_progress(problem, {"entry_on": date(2024, 7, 10), "rectified_fen": rest, "text": text}, actor=local)
    _dated(problem, date(2024, 7, 10))
    services.request_close(problem, actor=local, comment="已按整改方案完成整改，申请销号。")
    _dated(problem, date(2024, 7, 15))
    if how_far == "requested":
        return
    if how_far == "returned":
        services.return_problem(
            problem, actor=prefecture, reason="核减名单未附两县比对结果，请补充佐证材料后重新申请。"
        )
        _dated(problem, date(2024, 7, 25))
        return
    services.sign_off(problem, actor=users[f"{county_code}:head"], comment="经核查，整改到位。")
    _dated(problem, date(2024, 7, 22))
    problem.local_signed_at = problem.steps[-1].at
    services.sign_off(problem, actor=prefecture, comment="州级复核通过，同意销号。")
    for step in problem.steps[-2:]:
        step.at = datetime(2024, 8, 5, 2, 0, tzinfo=UTC)
    problem.supervisor_signed_at, problem.closed_on = problem.steps[-1].at, date(2024, 8, 5)


def load() -> str:
    """Load the Liangshan ledger unless it is there; return a one-line summary."""
    if db.session.scalar(sa.select(sa.func.count(Problem.id)).where(Problem.batch == BATCH)):
        return "整改台账：已有演示数据，未新增。"
    users = _users()
    if users.get("prefecture") is None or users.get("province") is None:
        return "整改台账：缺少演示账号，未加载。"
    added = 0
    for code, category, text, yuan, responsible, measures, deadline, kind, how_far in PROBLEMS:
        county = _unit(code)
        if county is None or (how_far != "open" and users.get(code) is None):
            continue
        problem = services.create_problem(
            {"source": Source.NATIONAL, "year": 2024, "batch": BATCH, "found_on": FOUND, "description": text,
             "category": category, "amount_fen": yuan * 100, "unit_id": county.id, "lead_unit": "凉山州乡村振兴局",
             "responsible_unit": responsible, "responsible_person": "分管副县长", "measures": measures,
             "deadline": deadline}, actor=users["prefecture"],
        )  # fmt: skip
        _dated(problem, FOUND)
        for table, record_id in _links(county, kind):
            services.add_link(problem, table, record_id, actor=users["prefecture"])
        _walk(problem, how_far, users, code)
        added += 1
    # Two of this year: found two months ago, due in four (the ledger has current work as well as 2024's).
    today = date.today()
    recent, due = today - timedelta(days=60), today + timedelta(days=120)
    liangshan = _unit("513400")
    own = services.create_problem(
        {"source": Source.SUPERVISION, "year": recent.year, "batch": f"{recent.year}年省级东西部协作专项督查",
         "found_on": recent, "category": Category.PROJECT,
         "description": "州级东西部协作项目库动态调整不及时，储备项目论证不充分。",
         "unit_id": liangshan.id, "lead_unit": "凉山州乡村振兴局", "responsible_unit": "凉山州东西部协作工作组",
         "measures": "建立项目库季度更新制度，组织专家论证储备项目。", "deadline": due},
        actor=users["province"],
    )  # fmt: skip
    _dated(own, recent)
    east = services.create_problem(
        {"source": Source.EAST_FEEDBACK, "year": recent.year, "batch": f"{recent.year}年浙江前方工作组反馈",
         "found_on": recent, "category": Category.ASSET,
         "description": "宁波援建产业园区部分标准厂房空置，租赁企业未按约定吸纳脱贫人口就业。",
         "amount_fen": 5_600_000_00, "unit_id": _unit("513431").id, "lead_unit": "昭觉县经信局",
         "responsible_unit": "昭觉县产业园区管委会", "measures": "引进劳动密集型企业入驻，签订带农协议。",
         "deadline": due}, actor=users["513431"],
    )  # fmt: skip
    _dated(east, recent)
    db.session.flush()
    new, _total = run_checks(actor=None)
    return f"整改台账：{BATCH} {added} 个问题，州级和东部反馈问题 2 个；数据核查线索 {new} 条。"
