"""Plain factory functions: sensible defaults, keyword overrides, add and flush, return the object."""

import itertools
from datetime import date, timedelta

import sqlalchemy as sa

from registry.agreements.models import Indicator
from registry.agreements.services import create_agreement, create_entry
from registry.assets.models import AssetClass
from registry.auth.models import Role
from registry.auth.services import create_user
from registry.counties.models import CountyCategory, Unit, UnitKind
from registry.counties.services import add_division, create_local_unit
from registry.kernel.extensions import db
from registry.pairings.services import create_pairing, create_programme
from registry.projects.models import DeliveryMode, FundingLevel, FundSource, FundStage, ProjectCategory, ProjectStatus
from registry.projects.services import add_transaction, change_status, create_project

PASSWORD = "correct-horse-battery"
_seq = itertools.count(1)


def make_division(code: str, name: str, kind: UnitKind, parent: Unit | None = None, category=None) -> Unit:
    return add_division(code, name, kind, parent, category)


def make_local(parent: Unit, name: str | None = None, kind: UnitKind = UnitKind.SCHOOL) -> Unit:
    return create_local_unit({"name": name or f"单位{next(_seq)}", "kind": kind, "parent_id": parent.id}, actor=None)


def make_programme(name: str | None = None, **overrides):
    data = {"name": name or f"协作{next(_seq)}", "is_active": True, "description": ""} | overrides
    return create_programme(data, actor=None)


def make_pairing(east: Unit, west: Unit, programme, *, level=None, valid_from=date(2021, 4, 1), valid_to=None, **kw):
    data = {
        "east_unit_id": east.id,
        "west_unit_id": west.id,
        "programme_id": programme.id,
        "level": level or west.kind,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "source": kw.get("source", ""),
        "note": kw.get("note", ""),
    }
    return create_pairing(data, actor=None)


def make_user(role: Role = Role.ADMIN, scope: Unit | None = None, username: str | None = None, **overrides):
    data = {
        "username": username or f"user{next(_seq)}",
        "display_name": overrides.pop("display_name", "测试用户"),
        "role": role,
        "scope_unit_id": scope.id if scope else None,
        "password": overrides.pop("password", PASSWORD),
    } | overrides
    return create_user(data, actor=None)


def make_project(county: Unit, pairing, *, year=2024, code=None, status=None, **overrides):
    """A project in ``county`` under ``pairing``, optionally stepped on to ``status`` (立项 on 15 March)."""
    data = {
        "code": code or f"XM-{county.code}-{year}-{next(_seq):03d}",
        "name": overrides.pop("name", "产业帮扶车间建设"),
        "county_id": county.id,
        "pairing_id": pairing.id,
        "year": year,
        "category": ProjectCategory.INDUSTRY,
        "delivery_mode": DeliveryMode.CHEQUE,
        "funding_level": FundingLevel.COUNTY,
        "planned_start": overrides.pop("planned_start", date(year, 3, 1)),
    } | overrides
    project = create_project(data, actor=None)
    path = [ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS, ProjectStatus.COMPLETED]
    if status is not None:
        for step, day in zip(path[: path.index(status) + 1], (15, 20, 25), strict=False):
            change_status(project, step, date(year, 3, day), actor=None)
    return project


def make_transaction(project, stage=FundStage.ARRIVED, amount_fen=100_000_00, on=None, source=FundSource.EAST_FISCAL):
    data = {"source": source, "stage": stage, "amount_fen": amount_fen, "occurred_on": on or date(project.year, 4, 1)}
    return add_transaction(project, data, actor=None)


def make_purchase(county: Unit, **overrides):
    from registry.purchases.models import BuyerKind, CountingType, ProductCategory, SellerKind
    from registry.purchases.services import create_purchase

    data = {
        "purchased_on": date(2024, 5, 1), "buyer_name": "宁波某机关食堂", "buyer_kind": BuyerKind.CANTEEN,
        "buyer_province": "浙江省", "buyer_city": "宁波市", "seller_name": "昭觉县某农业合作社",
        "seller_kind": SellerKind.COOPERATIVE, "seller_county_id": county.id, "product": "苦荞茶",
        "product_category": ProductCategory.TEA, "amount_fen": 5_000_000, "channel_id": 1,
        "counting_type": CountingType.PURCHASE, "evidence_no": f"FP-{next(_seq):06d}",
    } | overrides  # fmt: skip
    return create_purchase(data, actor=None)


def make_exchange(county: Unit, **overrides):
    from registry.exchanges.models import Direction, PersonType
    from registry.exchanges.services import create_exchange

    data = {
        "person_name": "陈明", "direction": Direction.EAST_TO_WEST, "person_type": PersonType.CADRE,
        "sending_unit": "宁波市余姚市人民政府", "receiving_unit": "昭觉县人民政府", "county_id": county.id,
        "arrival_date": date(2024, 3, 1),
    } | overrides  # fmt: skip
    return create_exchange(data, actor=None)


def make_asset(project, **overrides):
    """An asset formed from ``project`` (completed or later), handed over, 1,000,000.00 元 of which 800,000 East."""
    from registry.assets.models import AssetClass, OperationMode, OwnerLevel
    from registry.assets.services import create_asset

    data = {
        "number": overrides.pop("number", f"{project.code}-{next(_seq):02d}"), "name": "村级光伏电站",
        "asset_class": AssetClass.OPERATING, "quantity": 1, "quantity_unit": "座",
        "completed_on": date(project.year, 6, 30), "handed_over_on": date(project.year, 7, 15),
        "owner_level": OwnerLevel.VILLAGE, "owner_name": "某村股份经济合作社", "caretaker": "某村村民委员会",
        "caretaker_person": "吉克阿呷", "operation_mode": OperationMode.LEASE,
        "sources": [(project.code, 80_000_000, 20_000_000)],
    } | overrides  # fmt: skip
    return create_asset(data, actor=None)


#: Valid numbers (check digit per GB 11643) for tests; 513431 = 昭觉县.
ID_A = "513431199001011239"


def make_placement(county: Unit, **overrides):
    from registry.placements.models import Destination, Household
    from registry.placements.services import create_placement

    data = {
        "person_name": "吉克阿呷",
        "id_number": ID_A,
        "household": Household.LIFTED,
        "origin_county_id": county.id,
        "destination_class": Destination.EAST_PARTNER,
        "destination_province": "浙江省",
        "destination_city": "宁波市",
        "employer": "宁波某服饰有限公司",
        "start_date": date(2024, 3, 1),
    } | overrides
    return create_placement(data, actor=None)


def make_problem(unit: Unit, **overrides):
    from registry.problems.models import Category, Source
    from registry.problems.services import create_problem

    data = {
        "source": Source.NATIONAL, "year": 2024, "batch": "2023年度国家考核反馈", "found_on": date(2024, 3, 20),
        "description": "东西部协作资金到位后长期未拨付", "category": Category.FUNDS, "amount_fen": 1_200_000_00,
        "unit_id": unit.id, "lead_unit": "县乡村振兴局", "responsible_unit": "县财政局", "responsible_person": "张三",
        "measures": "督促项目单位加快拨付", "deadline": date(2024, 9, 30),
    } | overrides  # fmt: skip
    return create_problem(data, actor=None)


def add_link(problem, record_type, record_id, *, actor=None):
    from registry.problems.services import add_link as link

    return link(problem, record_type, record_id, actor=actor)


def make_proposal(unit: Unit, **overrides):
    from registry.findings.models import Proposal

    data = {"rule": "projects_late", "key": f"project:{next(_seq)}", "unit_id": unit.id,
            "title": "项目超过计划完工日期未完工"} | overrides  # fmt: skip
    proposal = Proposal(**data)
    db.session.add(proposal)
    db.session.flush()
    return proposal


def make_notice(county: Unit, year: int, notice_type: str = "annual_plan", **overrides):
    """A draft disclosure notice of the county's projects of ``year`` (a 10-day window from today, so it may still be
    published)."""
    from registry.disclosure.services import create_notice

    data = {
        "county_id": county.id, "year": year, "type": notice_type, "issuing_unit": f"{county.name}乡村振兴局",
        "window_start": date.today(), "window_end": date.today() + timedelta(days=9),
    } | overrides  # fmt: skip
    return create_notice(data, actor=None)


class World:
    """A small registry with one Zhejiang pairing (in Liangshan) and one Guangdong pairing (in Guangyuan).

    Scoped users (Liangshan prefecture, Zhaojue county, Zhejiang liaison, Liangshan reader) see pairing ``a``
    and must not see pairing ``b``.
    """

    def __init__(self):
        self.sichuan = make_division("510000", "四川省", UnitKind.PROVINCE)
        self.liangshan = make_division("513400", "凉山彝族自治州", UnitKind.PREFECTURE, self.sichuan)
        self.zhaojue = make_division("513431", "昭觉县", UnitKind.COUNTY, self.liangshan, CountyCategory.NATIONAL_KEY)
        self.butuo = make_division("513429", "布拖县", UnitKind.COUNTY, self.liangshan, CountyCategory.NATIONAL_KEY)
        self.guangyuan = make_division("510800", "广元市", UnitKind.PREFECTURE, self.sichuan)
        self.cangxi = make_division("510824", "苍溪县", UnitKind.COUNTY, self.guangyuan, CountyCategory.OTHER_LIFTED)
        self.zhejiang = make_division("330000", "浙江省", UnitKind.PROVINCE)
        self.ningbo = make_division("330200", "宁波市", UnitKind.PREFECTURE, self.zhejiang)
        self.yuyao = make_division("330281", "余姚市", UnitKind.COUNTY, self.ningbo)
        self.cixi = make_division("330282", "慈溪市", UnitKind.COUNTY, self.ningbo)
        self.guangdong = make_division("440000", "广东省", UnitKind.PROVINCE)
        self.foshan = make_division("440600", "佛山市", UnitKind.PREFECTURE, self.guangdong)
        self.shunde = make_division("440606", "顺德区", UnitKind.COUNTY, self.foshan)
        self.zhaojue_school = make_local(self.zhaojue, "昭觉县民族中学")
        self.cangxi_school = make_local(self.cangxi, "苍溪中学")
        self.yuyao_school = make_local(self.yuyao, "余姚中学")
        self.zc = make_programme("浙川东西部协作", east_province_id=self.zhejiang.id, starts_on=date(2021, 4, 1))
        self.yc = make_programme(
            "粤川东西部扶贫协作",
            east_province_id=self.guangdong.id,
            starts_on=date(2010, 1, 1),
            ends_on=date(2021, 3, 31),
        )
        self.a = make_pairing(self.yuyao, self.zhaojue, self.zc)
        self.b = make_pairing(
            self.shunde, self.cangxi, self.yc, valid_from=date(2016, 8, 1), valid_to=date(2020, 12, 31)
        )
        self.project_a = make_project(self.zhaojue, self.a, status=ProjectStatus.IN_PROGRESS)
        self.project_b = make_project(self.cangxi, self.b, year=2019, status=ProjectStatus.IN_PROGRESS)
        self.txn_a = make_transaction(self.project_a)
        self.txn_b = make_transaction(self.project_b)
        self.agreement_zc = create_agreement(
            {"programme_id": self.zc.id, "year": 2024, "title": "2024年浙川协议"}, actor=None
        )
        self.agreement_yc = create_agreement(
            {"programme_id": self.yc.id, "year": 2019, "title": "2019年粤川协议"}, actor=None
        )
        enterprises = db.session.scalar(sa.select(Indicator).where(Indicator.code == "enterprises"))
        self.indicator_builtin = enterprises
        self.entry_a = create_entry(
            {"indicator_id": enterprises.id, "county_id": self.zhaojue.id, "pairing_id": self.a.id,
             "occurred_on": date(2024, 5, 1), "value": 1, "subject": "宁波某服饰公司"}, actor=None,
        )  # fmt: skip
        self.entry_b = create_entry(
            {"indicator_id": enterprises.id, "county_id": self.cangxi.id, "pairing_id": self.b.id,
             "occurred_on": date(2019, 5, 1), "value": 1, "subject": "佛山某食品公司"}, actor=None,
        )  # fmt: skip
        self.placement_a = make_placement(self.zhaojue, start_date=date(2024, 3, 1))
        self.placement_b = make_placement(self.cangxi, start_date=date(2019, 3, 1), id_number="510824199203041239")
        self.purchase_a = make_purchase(self.zhaojue, evidence_no="FP-2024-0001")
        self.purchase_b = make_purchase(self.cangxi, evidence_no="FP-2019-0001", purchased_on=date(2019, 5, 1))
        self.exchange_a = make_exchange(self.zhaojue)
        self.exchange_b = make_exchange(
            self.cangxi, sending_unit="佛山市顺德区人民政府", receiving_unit="苍溪县人民政府",
            arrival_date=date(2019, 3, 1), departure_date=date(2020, 12, 31),
        )  # fmt: skip
        # Finished projects (no money of their own) and the assets formed from them, one per pairing.
        self.done_a = make_project(self.zhaojue, self.a, year=2022, status=ProjectStatus.COMPLETED, name="光伏电站")
        self.done_b = make_project(self.cangxi, self.b, year=2018, status=ProjectStatus.COMPLETED, name="产业路")
        self.asset_a = make_asset(self.done_a)
        self.asset_b = make_asset(self.done_b, name="产业路", asset_class=AssetClass.PUBLIC)
        # 整改台账: a Zhaojue problem (linked to project_a) and a Cangxi one; a data-check proposal in each.
        self.problem_a = make_problem(self.zhaojue)
        self.link_a = add_link(self.problem_a, "projects", self.project_a.id, actor=None)
        self.problem_b = make_problem(self.cangxi, found_on=date(2019, 6, 1), year=2019)
        self.proposal_a = make_proposal(self.zhaojue, key=f"project:{self.project_a.id}")
        self.proposal_b = make_proposal(self.cangxi, key=f"project:{self.project_b.id}")
        self.admin = make_user(Role.ADMIN, username="admin")
        self.province = make_user(Role.PROVINCE, username="province")
        self.prefecture = make_user(Role.PREFECTURE, self.liangshan, username="prefecture")
        self.county = make_user(Role.COUNTY, self.zhaojue, username="county")
        self.liaison = make_user(Role.LIAISON, self.zhejiang, username="liaison")
        self.reader = make_user(Role.READER, self.liangshan, username="reader")
        # Disclosure notices (drafts): Zhaojue's 2024 plan, and Cangxi's 2019 one outside the scoped users'.
        self.notice_a = make_notice(self.zhaojue, 2024)
        self.notice_b = make_notice(self.cangxi, 2019)

    def users(self):
        return {r: getattr(self, r) for r in ("admin", "province", "prefecture", "county", "liaison", "reader")}
