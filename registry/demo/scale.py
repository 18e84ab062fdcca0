"""A province's volume on top of the demo: ``flask demo load --scale province``.

The demo holds 1/200 of a real province's labour records. Speed claims are made on this set instead: five years
(2022 to today) of 1,010,000 placements, 202,000 purchases, 12,300 projects with their status steps and 69,000
fund transactions over the demo's 68 paired counties (volumes of ``domain.md`` §11.5 and issue 23). Every record
goes in the way an office's would: placements, purchases, projects and funds as spreadsheets through the
streams' own importers (the rules, the audit events, the derived cells and totals are the application's own),
project status steps through the project service. ``fraction`` scales every volume (the benches' ``--smoke``
runs take 1/1000).

Shapes, as the cooperation offices report them: most people are placed once; about 13 % twice by their county
(the second job after the first ended); about 3 % by two counties in overlapping periods (the 同一人同期被两个县计入
the data checks find). Purchases carry unique evidence numbers; project funds arrive after approval and are
disbursed from what arrived (拨付 ≤ 到位 on every day); nothing is dated in a locked quarter or after today.
Deterministic: the same seed and fraction give the same records.
"""

import csv
import random
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from registry.auth.models import Role, User
from registry.counties.models import Unit, UnitKind
from registry.kernel import idnumbers, search
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.quarter_locks import QuarterLock
from registry.kernel.services import ServiceError
from registry.kernel.transfer import run_steps
from registry.kernel.transfer.reader import read_table
from registry.pairings.models import Pairing
from registry.placements.models import Destination, Household, Placement
from registry.placements.transfer import HEADERS as PLACEMENT_HEADERS
from registry.projects import services as project_services
from registry.projects.models import (
    DeliveryMode,
    FundingLevel,
    FundSource,
    FundStage,
    FundTransaction,
    Project,
    ProjectCategory,
    ProjectStatus,
    StatusChange,
)
from registry.projects.transfer import FUND_HEADERS
from registry.projects.transfer import HEADERS as PROJECT_HEADERS
from registry.purchases.models import BuyerKind, Channel, CountingType, ProductCategory, Purchase, SellerKind
from registry.purchases.transfer import HEADERS as PURCHASE_HEADERS
from registry.tasks.imports import IMPORTERS

#: Full-scale volumes (issue 23's measurements were made at these).
VOLUMES = {"placements": 1_010_000, "purchases": 202_000, "projects": 12_300, "funds": 69_000}
FIRST_YEAR = 2022
#: 备注 of the generated placements (what a resumed load looks for).
MARK = "省级规模演示"
#: Rows per imported file (the import's limit is 200,000; smaller files keep each import's memory low).
FILE_ROWS = 100_000

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
YI_NAMES = ["吉克", "阿呷", "沙马", "曲木", "阿苦", "马海", "俄木", "日火", "海来", "吉木"]
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鹏辉建国海峰晓东拉则伍呷子日莫色阿依"
TOWNS = ["城关镇", "新城镇", "民主乡", "团结乡", "红星镇", "解放乡", "四开乡", "竹核乡"]
EMPLOYERS = ["电子科技", "服装制造", "食品加工", "物流", "建筑工程", "汽车配件", "家政服务", "酒店管理"]
INDUSTRIES = ["制造业", "建筑业", "服务业", "农业", "交通运输业"]
PRODUCTS = {
    ProductCategory.TEA: ["苦荞茶", "藏茶", "绿茶"],
    ProductCategory.FRUIT_VEG: ["马铃薯", "脐橙", "石榴", "苹果"],
    ProductCategory.MEAT_EGG_MILK: ["牦牛肉", "黑山羊", "土鸡蛋"],
    ProductCategory.PROCESSED: ["花椒", "核桃油", "腊肉"],
    ProductCategory.HERBS: ["川芎", "党参"],
    ProductCategory.MUSHROOM: ["松茸", "羊肚菌"],
    ProductCategory.GRAIN_OIL: ["荞麦", "菜籽油"],
    ProductCategory.OTHER: ["蜂蜜"],
}
PROJECT_NAMES = {
    ProjectCategory.INDUSTRY: ["特色农产品种植基地", "现代农业产业园配套设施", "畜禽养殖小区", "冷链仓储中心"],
    ProjectCategory.EMPLOYMENT: ["帮扶车间", "劳务协作工作站", "就业技能培训"],
    ProjectCategory.EDUCATION: ["中心校教学楼改造", "幼儿园建设"],
    ProjectCategory.HEALTH: ["卫生院能力提升", "村卫生室标准化建设"],
    ProjectCategory.INFRASTRUCTURE: ["产业路硬化", "人饮工程", "便民桥建设"],
}
# Destination shares: most go to the East partner or stay in the province.
DESTINATIONS = [Destination.EAST_PARTNER] * 4 + [Destination.IN_PROVINCE] * 2 + [
    Destination.OTHER_PROVINCE, Destination.IN_COUNTY, Destination.WORKSHOP, Destination.PUBLIC_WELFARE,
]  # fmt: skip
HOUSEHOLDS = [Household.LIFTED] * 6 + [Household.MONITORED] + [Household.ORDINARY] * 3


class _Context:
    """What the generator draws from: each paired county's county-level pairings, the locks, today."""

    def __init__(self, today: date):
        self.today = today
        pairings = db.session.scalars(
            sa.select(Pairing).join(Unit, Unit.id == Pairing.west_unit_id)
            .where(Unit.kind == UnitKind.COUNTY, sa.or_(Pairing.valid_to.is_(None),
                                                         Pairing.valid_to >= date(FIRST_YEAR, 1, 1)))
            .order_by(Unit.code, Pairing.valid_from, Pairing.id)
        ).all()  # fmt: skip
        self.pairings: dict[str, list[Pairing]] = {}
        self.names: dict[str, str] = {}
        for pairing in pairings:
            self.pairings.setdefault(pairing.west_unit.code, []).append(pairing)
            self.names[pairing.west_unit.code] = pairing.west_unit.name
        self.counties = sorted(self.pairings)
        codes = dict(db.session.execute(sa.select(Unit.id, Unit.code)).all())
        self.locked = {(codes[u], y, q) for u, y, q in db.session.execute(
            sa.select(QuarterLock.unit_id, QuarterLock.year, QuarterLock.quarter))}  # fmt: skip

    def pairing_on(self, county: str, day: date) -> Pairing | None:
        """The county-level pairing of ``county`` valid on ``day`` (the first when several are)."""
        for pairing in self.pairings[county]:
            if pairing.valid_from <= day and (pairing.valid_to is None or pairing.valid_to >= day):
                return pairing
        return None

    def windows(self, county: str) -> list[tuple[date, date]]:
        """The spans from FIRST_YEAR to today in which one of the county's pairings is valid."""
        first = date(FIRST_YEAR, 1, 1)
        spans = []
        for pairing in self.pairings[county]:
            start, end = max(first, pairing.valid_from), min(self.today, pairing.valid_to or self.today)
            if start <= end:
                spans.append((start, end))
        return spans

    def open_day(self, county: str, day: date) -> bool:
        """May a record of ``county`` be dated ``day``: not after today, a pairing valid, its quarter unlocked."""
        quarter = Quarter.containing(day)
        return (day <= self.today and self.pairing_on(county, day) is not None
                and (county, quarter.year, quarter.number) not in self.locked)  # fmt: skip


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _name(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return rng.choice(YI_NAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
    # Two-character names are common: the keyword search must find them.
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 1, 2))))


def placement_rows(ctx: _Context, count: int, rng: random.Random):
    """About ``count`` placement rows (template columns), people by county, shaped as the module docstring says."""
    per_county = max(1, count // len(ctx.counties))
    made = 0
    for index, county in enumerate(ctx.counties):
        other = ctx.counties[(index + 7) % len(ctx.counties)]
        windows = ctx.windows(county)
        if not windows:
            continue
        serial = 0
        produced = 0
        # Bounded: a county whose pairings cover little of the five years yields fewer rows, never loops.
        while produced < per_county and made < count and serial < 4 * per_county:
            serial += 1
            # Unique numbers: person n is born on day n mod 14,000 after 1966-01-01 (before 2005), with sequence
            # number n div 14,000.
            birth = date(1966, 1, 1) + timedelta(days=serial % 14_000)
            body = f"{county}{birth:%Y%m%d}{serial // 14_000:03d}"
            number = body + idnumbers.check_digit(body)
            name, household = _name(rng), rng.choice(HOUSEHOLDS)
            first = _day(rng, *rng.choice(windows))
            shape = rng.random()
            jobs = [(county, first)]
            if shape < 0.13:  # placed twice by its county: the second job starts after the first ended
                jobs.append((county, first + timedelta(days=rng.randint(200, 500))))
            elif shape < 0.16:  # placed by two counties in overlapping periods
                jobs.append((other, first + timedelta(days=rng.randint(10, 60))))
            for n, (origin, begin) in enumerate(jobs):
                if not ctx.open_day(origin, begin):
                    continue
                pairing = ctx.pairing_on(origin, begin)
                if n == 0 and shape < 0.13:  # the first of two jobs ends before the second begins
                    finish = begin + timedelta(days=rng.randint(60, 180))
                else:
                    finish = begin + timedelta(days=rng.randint(60, 700)) if rng.random() < 0.45 else None
                if finish is not None and not ctx.open_day(origin, finish):
                    finish = None  # still in work: an end after today or in a locked quarter is not recorded
                destination = rng.choice(DESTINATIONS)
                east = destination is Destination.EAST_PARTNER
                yield [
                    "", name, number, household.label, origin, "", rng.choice(TOWNS), destination.label,
                    "浙江省" if east else ("广东省" if destination is Destination.OTHER_PROVINCE else "四川省"),
                    pairing.east_unit.name if east else "", f"{rng.choice(EMPLOYERS)}有限公司", rng.choice(INDUSTRIES),
                    rng.choice(("是", "是", "否")), "", begin.isoformat(), finish.isoformat() if finish else "",
                    str(rng.randint(2500, 8000)), MARK,
                ]  # fmt: skip
                produced += 1
                made += 1


def purchase_rows(ctx: _Context, count: int, rng: random.Random, channels: list[str]):
    start = date(FIRST_YEAR, 1, 1)
    for n in range(count):
        county = ctx.counties[n % len(ctx.counties)]
        day = _day(rng, start, ctx.today)
        if not ctx.open_day(county, day):
            continue
        pairing = ctx.pairing_on(county, day)
        category = rng.choice(list(PRODUCTS))
        yield [
            day.isoformat(), f"{pairing.east_unit.name}{rng.choice(['机关食堂', '国企工会', '超市', '学校食堂'])}",
            rng.choice(list(BuyerKind)).label, "浙江省", pairing.east_unit.name,
            f"{ctx.names[county]}{rng.choice(['农业合作社', '农产品公司', '食品有限公司'])}",
            rng.choice(list(SellerKind)).label, county, "", rng.choice(PRODUCTS[category]), category.label,
            f"{rng.randint(500, 300_000)}.{rng.randint(0, 99):02d}", rng.choice(channels),
            rng.choice(list(CountingType)).label, f"SC{county}{day:%Y}{n:07d}", "",
        ]  # fmt: skip


def project_rows(ctx: _Context, count: int, rng: random.Random):
    """Project rows; returns (rows, {code: planned start}) through the generator's list."""
    years = range(FIRST_YEAR, ctx.today.year + 1)
    for n in range(count):
        county = ctx.counties[n % len(ctx.counties)]
        year = years[(n // len(ctx.counties)) % len(years)]
        planned = date(year, rng.randint(2, 9), rng.randint(1, 28))
        planned = min(planned, ctx.today)
        pairing = ctx.pairing_on(county, planned)
        if pairing is None:
            continue
        category = rng.choice(list(PROJECT_NAMES))
        beneficiaries = rng.randint(50, 2000)
        yield [
            f"PS-{county}-{year}-{n:05d}",
            f"{ctx.names[county]}{rng.choice(TOWNS)}{rng.choice(PROJECT_NAMES[category])}",
            "", county, pairing.east_unit.name, str(year), category.label, rng.choice(list(DeliveryMode)).label,
            rng.choice(list(FundingLevel)).label, "", "", planned.isoformat(),
            (planned + timedelta(days=rng.randint(120, 400))).isoformat(), "", "", str(beneficiaries),
            str(beneficiaries * rng.randint(30, 90) // 100),
        ]  # fmt: skip


def _import(stream: str, headers: list[str], rows, user: User, folder: Path, echo: Callable[[str], None]) -> int:
    """Write ``rows`` into CSV files of ``FILE_ROWS`` and import each through the stream's importer; commits."""
    steps_function = IMPORTERS[stream][0]
    total, part, chunk = 0, 0, []

    def flush():
        nonlocal total, part
        if not chunk:
            return
        part += 1
        path = folder / f"{stream}-{part}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(headers)
            writer.writerows(chunk)
        file_headers, file_rows = read_table(path, path.name)
        result = run_steps(steps_function(file_headers, file_rows, user=user, filename=path.name))
        if result.errors:
            db.session.rollback()
            shown = "; ".join(f"第{e.row}行 {e.column}「{e.value}」：{e.reason}" for e in result.errors[:5])
            raise ServiceError(f"{path.name} 未导入（{len(result.errors)} 处错误）：{shown}")
        db.session.commit()
        total += len(chunk)
        echo(f"  {IMPORTERS[stream][2]}：已导入 {total} 行")
        chunk.clear()
        path.unlink()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= FILE_ROWS:
            flush()
    flush()
    return total


#: Status a project reaches by its age (years before this one), drawn with these weights.
STATUS_PATHS = {
    0: [(ProjectStatus.RESERVE,), (ProjectStatus.APPROVED,), (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS)],
    1: [(ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS),
        (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.COMPLETED)],
    2: [(ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.COMPLETED, ProjectStatus.ACCEPTED),
        (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.SUSPENDED),
        (ProjectStatus.APPROVED, ProjectStatus.TERMINATED)],
}  # fmt: skip


def _project_steps(ctx: _Context, user: User, rng: random.Random, echo) -> list[tuple[Project, date]]:
    """Take each new project along its status path through the project service; returns the approved ones with
    their approval day (funds arrive from then on)."""
    approved = []
    projects = db.session.scalars(sa.select(Project).where(Project.code.like("PS-%")).order_by(Project.id)).all()
    for n, project in enumerate(projects):
        age = min(2, ctx.today.year - project.year)
        day = max(date(project.year, 1, 15), project.planned_start - timedelta(days=rng.randint(5, 30)))
        code = project.county.code
        approved_on = None
        for to in rng.choice(STATUS_PATHS[age]):
            if to is ProjectStatus.RESERVE:
                break
            if day > ctx.today or not ctx.open_day(code, day):
                break
            project_services.change_status(project, to, day, actor=user)
            if to is ProjectStatus.APPROVED:
                approved_on = day
            day += timedelta(days=rng.randint(30, 200))
        if approved_on is not None and project.status is not ProjectStatus.TERMINATED:
            approved.append((project.code, project.county.code, approved_on))
        if n % 1000 == 999:
            db.session.commit()
            echo(f"  项目状态：已处理 {n + 1} 个")
    db.session.commit()
    return approved


def fund_rows(ctx: _Context, approved: list, count: int, rng: random.Random):
    """About ``count`` fund rows: per approved project a plan, one or two arrivals and disbursements of what
    arrived, in date order, none after today or in a locked quarter (a project whose dates cannot all be kept is
    left without funds)."""
    per_project = max(3, round(count / max(1, len(approved))))
    made = 0
    for code, county, approved_on in approved:
        if made >= count:
            break
        planned = rng.randint(50, 800) * 10_000  # 元
        rows = [(FundSource.EAST_FISCAL, FundStage.PLANNED, approved_on, planned)]
        day, arrived = approved_on, 0
        steps = max(1, (per_project - 1) // 2)
        for step in range(steps):
            day += timedelta(days=rng.randint(10, 90))
            part = planned - arrived if step == steps - 1 else planned // steps
            rows.append((FundSource.EAST_FISCAL, FundStage.ARRIVED, day, part))
            arrived += part
            day += timedelta(days=rng.randint(5, 90))
            rows.append((FundSource.EAST_FISCAL, FundStage.DISBURSED, day, part * rng.randint(50, 100) // 100))
        if any(not ctx.open_day(county, d) for _, _, d, _ in rows):
            rows = rows[:1] if ctx.open_day(county, approved_on) else []
        for source, stage, occurred, amount in rows:
            made += 1
            document = f"川协资〔{occurred:%Y}〕{made}号"
            yield [code, source.label, stage.label, occurred.isoformat(), str(amount), document, ""]


def done_streams() -> dict[str, bool]:
    """Which streams a previous (interrupted) load has already brought in: each stream's file is committed whole,
    so a load resumes with the first stream it has not finished."""

    def exists(stmt) -> bool:
        return db.session.scalar(sa.select(stmt.exists())) or False

    return {
        "projects": exists(sa.select(Project.id).where(Project.code.like("PS-%"))),
        "funds": exists(sa.select(FundTransaction.id).where(FundTransaction.document_no.like("川协资%"))),
        "purchases": exists(sa.select(Purchase.id).where(Purchase.evidence_no.like("SC%"))),
        "placements": exists(sa.select(Placement.id).where(Placement.note == MARK)),
    }


def _approved() -> list[tuple[str, str, date]]:
    """(code, county code, approval day) of the generated projects approved and not terminated (a resumed load)."""
    return [
        (code, county, day)
        for code, county, day in db.session.execute(
            sa.select(Project.code, Unit.code, StatusChange.changed_on)
            .join(Unit, Unit.id == Project.county_id)
            .join(StatusChange, StatusChange.project_id == Project.id)
            .where(Project.code.like("PS-%"), StatusChange.to_status == ProjectStatus.APPROVED,
                   Project.status != ProjectStatus.TERMINATED)
            .order_by(Project.id)
        )
    ]  # fmt: skip


def load_province(fraction: float = 1.0, *, seed: int = 2026, today: date | None = None,
                  echo: Callable[[str], None] = print) -> str:  # fmt: skip
    """Add a province's volume (times ``fraction``) to a database holding the demo; returns a summary line. An
    interrupted load resumes with the first stream it had not finished."""
    user = db.session.scalar(sa.select(User).where(User.role == Role.PROVINCE, User.is_active.is_(True)))
    if user is None:
        raise ServiceError("请先导入演示数据（flask demo load）：省级规模数据以省协作办账号导入。")
    ctx = _Context(today or date.today())
    volumes = {k: max(1, round(v * fraction)) for k, v in VOLUMES.items()}
    rng = random.Random(seed)
    channels = list(db.session.scalars(sa.select(Channel.name).where(Channel.is_active.is_(True))))
    counts = dict.fromkeys(VOLUMES, 0)
    done = done_streams()
    if all(done.values()):
        raise ServiceError("省级规模数据已导入：请在新的数据库中导入。")
    with tempfile.TemporaryDirectory(prefix="registry-scale-") as tmp:
        folder = Path(tmp)
        if not done["projects"]:
            echo("项目：")
            counts["projects"] = _import("projects", PROJECT_HEADERS, project_rows(ctx, volumes["projects"], rng),
                                         user, folder, echo)  # fmt: skip
            approved = _project_steps(ctx, user, rng, echo)
        else:
            approved = _approved()
        if not done["funds"]:
            echo("项目资金：")
            counts["funds"] = _import("funds", FUND_HEADERS, fund_rows(ctx, approved, volumes["funds"], rng), user,
                                      folder, echo)  # fmt: skip
        if not done["purchases"]:
            echo("消费帮扶：")
            counts["purchases"] = _import(
                "purchases",
                PURCHASE_HEADERS,
                purchase_rows(ctx, volumes["purchases"], rng, channels),
                user,
                folder,
                echo,
            )
        if not done["placements"]:
            echo("劳务协作：")
            counts["placements"] = _import(
                "placements", PLACEMENT_HEADERS, placement_rows(ctx, volumes["placements"], rng), user, folder, echo
            )
    # The keyword index takes the new records now, as the task queue's minute would: a set measured without it
    # searches a million queued records by LIKE.
    db.session.commit()
    echo(f"关键词索引：已索引 {search.catch_up()} 条记录。")
    return (f"省级规模数据：帮扶项目 {counts['projects']} 个，项目资金 {counts['funds']} 笔，"
            f"消费帮扶 {counts['purchases']} 条，劳务协作 {counts['placements']} 条。")  # fmt: skip
