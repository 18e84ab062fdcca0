"""Demonstration projects, fund flows, agreements and targets for every county-level pairing.

Figures follow the proportions in domain.md: 浙川 2021 funds of 3,900–6,000 万元 per county and year
(national key counties the most), about a dozen projects per county and year, money arriving over the year
and 75–95 % of it disbursed by year end. Rows are inserted in bulk (one audit event for the whole load); the
generator keeps the money rules by construction and is deterministic (seeded), so every run is the same.
"""

import random
from datetime import date, timedelta

import sqlalchemy as sa

from registry.agreements.models import Agreement, Indicator, IndicatorEntry, Target
from registry.counties.models import CountyCategory, Unit, UnitKind
from registry.exchanges.models import Exchange
from registry.kernel import idnumbers
from registry.kernel.audit.services import record
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.pairings.models import Pairing, Programme
from registry.placements.cells import person_ids_for, refresh_cells
from registry.placements.models import Placement
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
from registry.projects.services import refresh_fund_totals
from registry.purchases.models import Channel, Purchase
from registry.purchases.services import refresh_totals

WAN = 10_000 * 100  # 分 in one 万元
FISCAL_PER_YEAR = {
    CountyCategory.NATIONAL_KEY: 6000,
    CountyCategory.PROVINCIAL_KEY: 5000,
    CountyCategory.OTHER_LIFTED: 3900,
    CountyCategory.NON_POVERTY: 2000,
}
PREFIXES = {"浙川东西部协作": "ZC", "粤川东西部扶贫协作": "YC", "对口支援": "DK"}
NAMES = {
    ProjectCategory.INDUSTRY: [
        "{t}特色农产品种植基地",
        "{t}现代农业产业园配套设施",
        "{t}畜禽养殖小区",
        "{t}农产品冷链仓储中心",
    ],
    ProjectCategory.EMPLOYMENT: ["{t}帮扶车间", "{t}劳务协作工作站", "{t}就业技能培训"],
    ProjectCategory.EDUCATION: ["{t}中心校教学楼改造", "{t}幼儿园建设", "{c}职业技术学校实训室"],
    ProjectCategory.HEALTH: ["{t}卫生院能力提升", "{c}人民医院远程诊疗中心", "{t}村卫生室标准化建设"],
    ProjectCategory.INFRASTRUCTURE: ["{t}产业路硬化", "{t}人饮工程", "{t}便民桥建设"],
    ProjectCategory.RURAL_CONSTRUCTION: ["{t}乡村振兴示范村建设", "{t}人居环境整治"],
    ProjectCategory.RELOCATION: ["{c}易地搬迁安置点后续扶持", "{c}安置点社区工厂"],
    ProjectCategory.CONSUMPTION: ["{c}消费帮扶产品展销中心"],
    ProjectCategory.TALENT: ["{c}党政干部和专业技术人才培训"],
}
TOWN_SUFFIXES = ["城关镇", "新城镇", "河东乡", "团结乡", "和平镇", "光明乡", "民主镇"]


def load(first_year: int = 2017, today: date | None = None) -> str:
    """Generate projects for every county-level pairing and year it was valid; skip counties that have some."""
    today = today or date.today()
    rng = random.Random(20210401)
    pairings = db.session.scalars(
        sa.select(Pairing).join(Unit, Unit.id == Pairing.west_unit_id).where(Unit.kind == UnitKind.COUNTY)
        .order_by(Pairing.west_unit_id, Pairing.valid_from)
    ).all()  # fmt: skip
    existing = set(db.session.scalars(sa.select(Project.county_id).distinct()))
    programmes = {p.id: p for p in db.session.scalars(sa.select(Programme))}
    counters: dict[str, int] = {}
    projects, changes, transactions = [], [], []
    next_id = (db.session.scalar(sa.select(sa.func.max(Project.id))) or 0) + 1
    for pairing in pairings:
        county = pairing.west_unit
        if county.id in existing:
            continue
        programme = programmes[pairing.programme_id]
        start_year = max(first_year, pairing.valid_from.year)
        end_year = min(today.year, (pairing.valid_to or today).year)
        for year in range(start_year, end_year + 1):
            year_start = max(date(year, 1, 1), pairing.valid_from)
            year_end = min(date(year, 12, 31), pairing.valid_to or date(year, 12, 31), today)
            if year_end < year_start:
                continue
            budget = FISCAL_PER_YEAR.get(county.category, 2000) * WAN
            if programme.name != "浙川东西部协作":
                budget = budget * 3 // 4
            count = rng.randint(8, 16)
            shares = [rng.uniform(0.5, 1.5) for _ in range(count)]
            # Whole 元 that add up to the budget exactly (each part the difference of rounded running totals):
            # truncating each share lost up to 1 元 a project, and 凉山州's plans summed to 64,999.99 万元.
            whole, bounds, running = budget // 100, [0], 0.0
            for share in shares:
                running += share
                bounds.append(round(whole * running / sum(shares)))
            bounds[-1] = whole
            for index in range(count):
                planned = (bounds[index + 1] - bounds[index]) * 100
                project, steps, money = _project(rng, next_id, county, pairing, programme, year, year_start,
                                                 year_end, planned, today, counters)  # fmt: skip
                projects.append(project)
                changes.extend(steps)
                transactions.extend(money)
                next_id += 1
    if projects:
        db.session.execute(sa.insert(Project), projects)
        db.session.execute(sa.insert(StatusChange), changes)
        for start in range(0, len(transactions), 5000):
            db.session.execute(sa.insert(FundTransaction), transactions[start : start + 5000])
        refresh_fund_totals([p["id"] for p in projects])
    agreements = _agreements(today)
    entries = _enterprise_entries(rng, pairings, existing, today)
    summary = (
        f"演示数据：项目 {len(projects)} 个，资金流水 {len(transactions)} 条，协议 {agreements} 份，"
        f"引导企业 {entries} 家次"
    )
    record("load", None, actor=None, entity_type="projects", summary=summary)
    return summary + "。"


def _project(rng, pid, county, pairing, programme, year, start, end, planned, today, counters):
    category = rng.choices(list(NAMES), weights=[30, 12, 10, 10, 14, 10, 6, 4, 4])[0]
    town = rng.choice(TOWN_SUFFIXES)
    name = rng.choice(NAMES[category]).format(t=county.name + town, c=county.name)
    prefix = PREFIXES.get(programme.name, "XM")
    stem = f"{prefix}-{county.code}-{year}"
    counters[stem] = counters.get(stem, 0) + 1
    planned_start = min(start + timedelta(days=rng.randint(30, 120)), end)
    approved_on = min(planned_start - timedelta(days=rng.randint(5, 25)), end)
    approved_on = max(approved_on, start)
    age = today.year - year
    path = [ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.COMPLETED, ProjectStatus.ACCEPTED,
            ProjectStatus.HANDED_OVER]  # fmt: skip
    reached = {0: rng.choice([1, 2, 2, 2]), 1: rng.choice([3, 3, 4, 4]), 2: rng.choice([4, 5, 5])}.get(age, 5)
    if age == 0 and rng.random() < 0.15:
        reached = 0  # still in the library
    dates = [approved_on]
    for _ in range(1, reached):
        dates.append(min(dates[-1] + timedelta(days=rng.randint(20, 150)), today))
    now = utcnow()
    steps = [{"project_id": pid, "from_status": None, "to_status": ProjectStatus.RESERVE.value,
              "changed_on": min(date(year, 1, 1), approved_on), "note": "录入项目", "recorded_at": now}]  # fmt: skip
    previous = ProjectStatus.RESERVE
    for status, day in zip(path[:reached], dates, strict=False):
        steps.append({"project_id": pid, "from_status": previous.value, "to_status": status.value, "changed_on": day,
                      "note": "", "recorded_at": now})  # fmt: skip
        previous = status
    status = previous
    lifted = rng.randint(20, 300)
    project = {
        "id": pid, "code": f"{stem}-{counters[stem]:03d}", "name": name, "county_id": county.id,
        "pairing_id": pairing.id, "programme_id": programme.id, "year": year, "category": category.value,
        "delivery_mode": rng.choice([DeliveryMode.CHEQUE, DeliveryMode.CHEQUE, DeliveryMode.TURNKEY]).value,
        "funding_level": rng.choice([FundingLevel.COUNTY, FundingLevel.COUNTY, FundingLevel.CITY,
                                     FundingLevel.TOWN_VILLAGE]).value,
        "implementing_unit": county.name + rng.choice(["农业农村局", "乡村振兴局", "教育局", "卫生健康局"]),
        "responsible_person": rng.choice(["王", "李", "张", "刘", "陈", "杨", "吉克", "阿呷"])
        + rng.choice(["明", "华", "强", "芳", "军", "丽"]),
        "planned_start": planned_start, "planned_finish": planned_start + timedelta(days=rng.randint(120, 300)),
        "actual_start": dates[1] if reached >= 2 else None, "actual_finish": dates[2] if reached >= 3 else None,
        "beneficiaries": lifted + rng.randint(0, 400), "beneficiaries_lifted": lifted,
        "farmer_benefit": "优先吸纳脱贫劳动力务工，收益按比例分配给村集体和脱贫户。",
        "performance_targets": f"带动脱贫人口 {lifted} 人增收。", "status": status.value,
        "created_at": now, "updated_at": now, "version_id": 1,
    }  # fmt: skip
    money = []

    def add(stage, amount, day):
        document = f"{prefix}财〔{day.year}〕{rng.randint(1, 99)}号"
        money.append({"project_id": pid, "source": FundSource.EAST_FISCAL.value, "stage": stage.value,
                      "amount_fen": amount, "occurred_on": day, "document_no": document,
                      "note": "", "created_at": now, "updated_at": now, "version_id": 1})  # fmt: skip

    add(FundStage.PLANNED, planned, min(date(year, 1, 1) + timedelta(days=rng.randint(10, 60)), today))
    if reached >= 1:
        first = planned * rng.choice([5, 6, 7]) // 10 // 100 * 100
        add(FundStage.ARRIVED, first, approved_on)
        arrived = first
        if approved_on + timedelta(days=90) <= today:
            add(FundStage.ARRIVED, planned - first, approved_on + timedelta(days=90))
            arrived = planned
        if reached >= 2:
            paid = arrived * rng.randint(55, 95) // 100 // 100 * 100
            pay_day = max(dates[1], approved_on + timedelta(days=90) if arrived == planned else approved_on)
            if paid and pay_day <= today:
                add(FundStage.DISBURSED, paid, pay_day)
        if rng.random() < 0.25:
            social = rng.randint(20, 200) * WAN // 10
            money.append({**money[-1], "source": FundSource.SOCIAL.value, "stage": FundStage.ARRIVED.value,
                          "amount_fen": social, "occurred_on": approved_on, "document_no": "社会捐赠"})  # fmt: skip
    return project, steps, money


def _agreements(today: date) -> int:
    """An agreement per programme and year with county-level pairings; targets per county and for the province."""
    indicators = {i.code: i for i in db.session.scalars(sa.select(Indicator))}
    province = db.session.scalar(sa.select(Unit).where(Unit.code == "510000"))
    made = 0
    for programme in db.session.scalars(
        sa.select(Programme).where(Programme.name.in_(("浙川东西部协作", "粤川东西部扶贫协作")))
    ):
        pairings = db.session.scalars(
            sa.select(Pairing).join(Unit, Unit.id == Pairing.west_unit_id)
            .where(Pairing.programme_id == programme.id, Unit.kind == UnitKind.COUNTY)
        ).all()  # fmt: skip
        years = range(max(2017, min((p.valid_from.year for p in pairings), default=today.year)), today.year + 1)
        for year in years:
            counties = {
                p.west_unit
                for p in pairings
                if p.valid_from.year <= year and (p.valid_to is None or p.valid_to.year >= year)
            }
            if not counties or db.session.scalar(
                sa.select(Agreement.id).where(Agreement.programme_id == programme.id, Agreement.year == year)
            ):
                continue
            agreement = Agreement(programme_id=programme.id, year=year, title=f"{year}年{programme.name}协议",
                                  signed_on=date(year, 3, 28), note="演示数据")  # fmt: skip
            db.session.add(agreement)
            db.session.flush()
            sums: dict[str, int] = {}
            for county in sorted(counties, key=lambda u: u.code):
                funds = FISCAL_PER_YEAR.get(county.category, 2000) * WAN
                if programme.name != "浙川东西部协作":
                    funds = funds * 3 // 4
                values = {"fiscal_funds": funds, "project_count": 12, "labour_total": 1500, "labour_lifted": 900,
                          "consumption": funds // 2, "cadres": 3, "professionals": 12, "enterprises": 2,
                          "investment": funds * 2, "cadres_to_east": 2, "professionals_to_east": 5}  # fmt: skip
                for code, value in values.items():
                    if code not in indicators:
                        continue  # an indicator an administrator replaced before the built-in one came
                    db.session.add(
                        Target(
                            agreement_id=agreement.id, indicator_id=indicators[code].id, unit_id=county.id, value=value
                        )
                    )
                    sums[code] = sums.get(code, 0) + value
            for code, value in sums.items():
                db.session.add(
                    Target(
                        agreement_id=agreement.id, indicator_id=indicators[code].id, unit_id=province.id, value=value
                    )
                )
            made += 1
    db.session.flush()
    return made


ENTERPRISES = ["纺织", "服饰", "食品", "农业科技", "电子", "文旅", "中药材", "茶业"]


def _enterprise_entries(rng, pairings, existing_counties, today: date) -> int:
    """引导企业 and their 到位投资 for county-level pairings, one to three enterprises a year."""
    indicators = {
        i.code: i
        for i in db.session.scalars(sa.select(Indicator).where(Indicator.code.in_(("enterprises", "investment"))))
    }
    now = utcnow()
    rows = []
    for pairing in pairings:
        if pairing.west_unit_id in existing_counties:
            continue
        for year in range(max(2017, pairing.valid_from.year), min(today.year, (pairing.valid_to or today).year) + 1):
            for n in range(rng.randint(1, 3)):
                day = date(year, rng.randint(3, 11), rng.randint(1, 28))
                if day > today or day < pairing.valid_from or (pairing.valid_to and day > pairing.valid_to):
                    continue
                name = f"{pairing.east_unit.name}{rng.choice(ENTERPRISES)}有限公司{n + 1}"
                common = {"county_id": pairing.west_unit_id, "pairing_id": pairing.id, "occurred_on": day,
                          "subject": name, "evidence": f"投资协议〔{year}〕{rng.randint(1, 60)}号", "note": "",
                          "created_at": now, "updated_at": now, "version_id": 1}  # fmt: skip
                rows.append({**common, "indicator_id": indicators["enterprises"].id, "value": 1})
                rows.append(
                    {**common, "indicator_id": indicators["investment"].id, "value": rng.randint(500, 8000) * WAN}
                )
    if rows:
        db.session.execute(sa.insert(IndicatorEntry), rows)
    return len(rows) // 2


SURNAMES = ["吉克", "阿呷", "沙马", "曲木", "阿苦", "马海", "王", "李", "张", "杨", "陈", "刘"]
GIVEN = ["阿依", "拉则", "伍呷", "子日", "莫色", "明", "芳", "军", "英", "强"]
DESTINATIONS = [
    "east_partner",
    "east_partner",
    "other_province",
    "in_province",
    "in_county",
    "workshop",
    "public_welfare",
]


def load_records(today: date | None = None) -> str:
    """Placements, purchases and postings for every county-level pairing from 2021 (or its start); bulk insert."""

    today = today or date.today()
    rng = random.Random(20240301)
    now = utcnow()
    done = set(db.session.scalars(sa.select(Placement.origin_county_id).distinct()))
    channels = list(db.session.scalars(sa.select(Channel.id).order_by(Channel.id)))
    pairings = db.session.scalars(
        sa.select(Pairing).join(Unit, Unit.id == Pairing.west_unit_id)
        .where(Unit.kind == UnitKind.COUNTY, sa.or_(Pairing.valid_to.is_(None), Pairing.valid_to >= date(2021, 1, 1)))
        .order_by(Pairing.west_unit_id, Pairing.valid_from)
    ).all()  # fmt: skip
    placements, purchases, postings = [], [], []
    for pairing in pairings:
        county = pairing.west_unit
        if county.id in done:
            continue
        done.add(county.id)
        start_year = max(2021, pairing.valid_from.year)
        people = []
        for n in range(rng.randint(150, 300)):
            birth = date(1965, 1, 1) + timedelta(days=rng.randint(0, 14000))
            body = f"{county.code}{birth:%Y%m%d}{n % 1000:03d}"
            person = idnumbers.parse(body + idnumbers.check_digit(body))
            people.append((rng.choice(SURNAMES) + rng.choice(GIVEN), person))
        for year in range(start_year, today.year + 1):
            for name, person in rng.sample(people, k=min(len(people), rng.randint(60, 120))):
                start = date(year, rng.randint(1, 12), rng.randint(1, 28))
                if start > today or start < pairing.valid_from:
                    continue
                end = start + timedelta(days=rng.randint(60, 700)) if rng.random() < 0.4 else None
                placements.append({
                    "person_name": name, "id_stored": idnumbers.protect(person.number),
                    "id_fingerprint": idnumbers.fingerprint(person.number), "id_masked": person.masked,
                    "sex": person.sex, "birth_date": person.birth_date,
                    "household": rng.choice(["lifted", "lifted", "monitored", "ordinary"]),
                    "origin_county_id": county.id,
                    "origin_township": rng.choice(TOWN_SUFFIXES), "pairing_id": pairing.id,
                    "destination_class": rng.choice(DESTINATIONS), "destination_province": "浙江省",
                    "destination_city": pairing.east_unit.name,
                    "employer": f"{pairing.east_unit.name}{rng.choice(ENTERPRISES)}有限公司",
                    "industry": rng.choice(["制造业", "建筑业", "服务业", "农业"]), "organised": rng.random() < 0.6,
                    "training": rng.choice(["", "电工培训", "家政培训", "缝纫培训"]), "start_date": start,
                    "end_date": end if end and end <= today else None,
                    "monthly_wage_fen": rng.randint(2500, 7500) * 100,
                    "note": "", "created_at": now, "updated_at": now, "version_id": 1,
                })  # fmt: skip
            for n in range(rng.randint(10, 25)):
                day = date(year, rng.randint(1, 12), rng.randint(1, 28))
                if day > today or day < pairing.valid_from:
                    continue
                purchases.append({
                    "purchased_on": day,
                    "buyer_name": f"{pairing.east_unit.name}{rng.choice(['机关食堂', '国企工会', '超市'])}",
                    "buyer_kind": rng.choice(["unit", "enterprise", "canteen"]), "buyer_province": "浙江省",
                    "buyer_city": pairing.east_unit.name,
                    "seller_name": f"{county.name}{rng.choice(['农业合作社', '农产品公司'])}",
                    "seller_kind": rng.choice(["enterprise", "cooperative"]), "seller_county_id": county.id,
                    "pairing_id": pairing.id, "product": rng.choice(["苦荞茶", "马铃薯", "核桃", "花椒", "牦牛肉",
                    "蜂蜜"]),
                    "product_category": rng.choice(["tea", "fruit_veg", "meat_egg_milk", "processed"]),
                    "amount_fen": rng.randint(5, 300) * 10000 * 100 // 10, "channel_id": rng.choice(channels),
                    "counting_type": rng.choice(["purchase", "helped_sale"]),
                    "evidence_no": f"FP{county.code}{year}{n:04d}", "evidence_key": f"FP{county.code}{year}{n:04d}",
                    "note": "", "created_at": now, "updated_at": now, "version_id": 1,
                })  # fmt: skip
            for n in range(rng.randint(2, 5)):
                arrival = date(year, rng.randint(1, 9), 1)
                if arrival > today or arrival < pairing.valid_from:
                    continue
                kind = "cadre" if n < 2 else "professional"
                # East→West the East partner sends and the county receives; West→East (the second cadre and the
                # fifth posting) the county sends to its East partner.
                to_east = n in (1, 4)
                east_end = (pairing.east_unit.id, f"{pairing.east_unit.name}人民政府")
                west_end = (county.id, f"{county.name}人民政府")
                sender, receiver = (west_end, east_end) if to_east else (east_end, west_end)
                postings.append({
                    "person_name": rng.choice(["陈", "王", "周", "吴", "郑"]) + rng.choice(["建国", "海峰", "晓东",
                    "丽华"]),
                    "direction": "west_to_east" if to_east else "east_to_west", "person_type": kind,
                    "field": None if kind == "cadre" else rng.choice(["education", "health", "agriculture"]),
                    "sending_unit_id": sender[0], "sending_unit": sender[1],
                    "receiving_unit_id": receiver[0], "receiving_unit": receiver[1],
                    "county_id": county.id, "pairing_id": pairing.id,
                    "position": ("挂职副局长" if to_east else "副县长") if kind == "cadre" else "",
                    "arrival_date": arrival,
                    "departure_date": arrival + timedelta(days=730) if year < today.year - 1 else None,
                    "note": "", "created_at": now, "updated_at": now, "version_id": 1,
                })  # fmt: skip
    people = person_ids_for(row["id_fingerprint"] for row in placements)
    for row in placements:
        row["person_id"] = people[row["id_fingerprint"]]
    for table, rows in ((Placement, placements), (Purchase, purchases), (Exchange, postings)):
        for start in range(0, len(rows), 5000):
            db.session.execute(sa.insert(table), rows[start : start + 5000])
    # Bulk inserts bypass the services: rebuild the derived summaries the lists read for what was added.
    refresh_cells({(row["origin_county_id"], row["start_date"].year) for row in placements})
    refresh_totals({(row["seller_county_id"], row["purchased_on"].year) for row in purchases})
    summary = f"演示数据：劳务协作 {len(placements)} 条，消费帮扶 {len(purchases)} 条，人才交流 {len(postings)} 条"
    record("load", None, actor=None, entity_type="placements", summary=summary)
    return summary + "。"
