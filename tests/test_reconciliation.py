"""Reconciliation of the quarterly report's figures over the whole demo, on the database under test.

For every demo county and every quarter 2017Q1–2026Q4 (and every prefecture with demo counties and the province):
the project section adds up to the funds section, the funds section equals the summary row 财政援助资金 under its
definition, the county rows of a prefecture or the province add up to its totals, and a liaison's figures equal the
same figures computed from their pairings only. The figures are checked against each other and against a plain
Python recomputation from the raw transactions (``Ledger``), so changing any one definition alone fails here.

The demo is loaded once per test process into a database of its own (conftest.DemoDatabase), not the suite's
``app`` database that every other test empties; this module works on its own copy, which the per-year tests share.
Dashboard = PDF cell by cell is checked for one county, one prefecture and the province (rendering hundreds of PDFs
would add nothing the figures do not).
"""

import re
from collections import defaultdict
from datetime import date

import pytest
import sqlalchemy as sa

from registry import demo
from registry.agreements.services import counties_within
from registry.auth.models import Role, User
from registry.counties.models import Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.permissions import report_pairings
from registry.placements import figures as placements
from registry.projects.models import FundSource, FundStage, FundTransaction, Project
from registry.reports import queries as Q
from tests.conftest import login
from tests.factories import make_transaction, make_user

#: Modules using the loaded demo run on one xdist worker (``--dist loadgroup``), which loads it once.
pytestmark = pytest.mark.xdist_group("demo")

YEARS = range(2017, 2027)
EAST_FISCAL = FundSource.EAST_FISCAL.label


# ---- the demo, once per module ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_app(demo_app):
    """The suite's loaded demo (a copy for this module), with money moving across years and a city liaison."""
    with demo_app.app_context():
        _money_across_years()
        make_user(Role.LIAISON, _unit("330200"), username="ningbo")
        db.session.commit()
    return demo_app


def _unit(code: str) -> Unit:
    return db.session.scalar(sa.select(Unit).where(Unit.code == code))


def _project(county: str, prefix: str, year: int) -> Project:
    return db.session.scalar(
        sa.select(Project).where(Project.code.like(f"{prefix}-{county}-{year}-%")).order_by(Project.code).limit(1)
    )


WAN = 10_000 * 100


def _money_across_years():
    """The demo's money never leaves its project's year; real ledgers do. Add money moving on earlier years'
    projects: 粤川 legacy after the programme ended (2021, 2022, 2026), a 2025 浙川 project paid in 2026, so that
    其中往年项目 and the 另： lines are not always zero and a definition mixing 本年度 and 项目累计 shows."""
    arrived, disbursed = FundStage.ARRIVED, FundStage.DISBURSED
    moves = [
        ("513431", "YC", 2019, [(arrived, 50, date(2021, 5, 10)), (disbursed, 20, date(2022, 2, 10)),
                                (disbursed, 30, date(2026, 8, 15))]),
        ("513431", "ZC", 2025, [(arrived, 20, date(2026, 1, 20)), (disbursed, 10, date(2026, 7, 5))]),
        ("513429", "ZC", 2023, [(arrived, 12, date(2024, 3, 1)), (disbursed, 12, date(2026, 9, 1))]),
        ("513429", "YC", 2020, [(arrived, 8, date(2020, 12, 30)), (disbursed, 8, date(2021, 2, 1))]),
    ]  # fmt: skip
    for county, prefix, year, steps in moves:
        project = _project(county, prefix, year)
        for stage, wan, on in steps:
            make_transaction(project, stage, wan * WAN, on)


class Ledger:
    """Every fund transaction of the demo as plain tuples, by county: the figures recomputed without SQL."""

    def __init__(self):
        self.by_county = defaultdict(list)
        stmt = sa.select(
            Project.county_id, Project.programme_id, Project.year, Project.pairing_id, FundTransaction.source,
            FundTransaction.stage, FundTransaction.amount_fen, FundTransaction.occurred_on,
        ).join(Project, Project.id == FundTransaction.project_id)  # fmt: skip
        for county, programme, year, pairing, source, stage, amount, on in db.session.execute(stmt):
            self.by_county[county].append((programme, year, pairing, FundSource(source), FundStage(stage), amount, on))

    def funds(self, county_ids, quarter: Quarter, programmes, pairings=None) -> dict:
        """(source label or 合计, stage) -> amount dated in the year to the quarter's end, of these programmes'
        projects (and pairings); the funds section's definition, stated independently."""
        start, end = quarter.year_to_date.start, quarter.year_to_date.end
        sums = defaultdict(int)
        for county in county_ids:
            for programme, _, pairing, source, stage, amount, on in self.by_county.get(county, ()):
                if not (start <= on <= end and (pairings is None or pairing in pairings)):
                    continue
                if programme in programmes:
                    sums[(source.label, stage)] += amount
                    sums[("合计", stage)] += amount
                else:
                    sums[(programme, stage)] += amount
        return sums


@pytest.fixture(scope="module")
def ledger(demo_app):
    with demo_app.app_context():
        return Ledger()


def _units(kind=None):
    """Demo counties (those with projects), or the prefectures holding them and the province."""
    counties = db.session.scalars(
        sa.select(Unit).where(Unit.id.in_(sa.select(Project.county_id))).order_by(Unit.code)
    ).all()
    if kind is UnitKind.COUNTY:
        return counties
    prefectures = db.session.scalars(
        sa.select(Unit).where(Unit.id.in_({c.prefecture_id for c in counties})).order_by(Unit.code)
    ).all()
    return [*prefectures, db.session.scalar(sa.select(Unit).where(Unit.code == "510000"))]


def _liaisons():
    """(username, SELECT of their pairing ids, those ids) of the demo's East liaisons."""
    found = []
    for username in ("zhejiang", "guangdong", "ningbo"):
        user = db.session.scalar(sa.select(User).where(User.username == username))
        select = report_pairings(user)
        found.append((username, select, set(db.session.scalars(select))))
    return found


def _amounts(row: Q.FundRow) -> dict:
    return {FundStage.PLANNED: row.planned, FundStage.ARRIVED: row.arrived, FundStage.DISBURSED: row.disbursed}


def _apart_rows(funds: Q.FundsSection) -> list:
    return sorted(sorted(_amounts(r).items()) for r in funds.apart)


def _apart_expected(expected: dict) -> list:
    """The ledger's sums of programmes outside the report's (keyed by programme id), as _apart_rows gives them."""
    programmes = {k for k, _ in expected if isinstance(k, int)}
    return sorted(sorted({st: expected[(k, st)] for st in FundStage}.items()) for k in programmes)


def _summed(rows) -> tuple[int, int, int, int]:
    return tuple(sum(values) for values in zip(*(r.amounts for r in rows), strict=True)) if rows else (0, 0, 0, 0)


def _check_county(unit: Unit, quarter: Quarter, ledger: Ledger, pairings=None, ids=None, who="全部") -> None:
    where = f"{unit.name} {quarter} ({who})"
    counties = counties_within(unit)
    programmes = Q.report_programmes(unit, quarter, pairings)
    # The county ids as a list, as the report passes them (queries.for_unit).
    county_ids = list(db.session.scalars(counties))
    agreements = Q._agreements(unit, quarter, county_ids, pairings, codes={"fiscal_funds"})
    funds = Q.funds_section(counties, pairings, quarter, programmes, quarter.end)
    section = Q.projects_section(unit, quarter, pairings, programmes, quarter.end)
    monthly = Q._monthly_disbursed(counties, pairings, quarter, programmes)

    # The money tables count the summary's programmes.
    if agreements:
        assert set(programmes.values()) == {a.programme for a in agreements}, where
    # Funds section = summary row 财政援助资金 (东部财政援助资金 到位, 年累计), summed over the year's agreements.
    fiscal = funds.source(EAST_FISCAL)
    summary = sum(r.year_to_date for a in agreements for r in a.rows if r.code == "fiscal_funds")
    if agreements:
        assert (fiscal.arrived if fiscal else 0) == summary, where
    # Funds section = the records, recomputed from the raw transactions (pairings of the liaison only, if any).
    expected = ledger.funds([unit.id], quarter, set(programmes), ids)
    for row in funds.rows + (funds.total,):
        assert _amounts(row) == {stage: expected[(row.label, stage)] for stage in _amounts(row)}, where
    assert {r.label for r in funds.rows} == {k for k, _ in expected if isinstance(k, str)} - {"合计"}, where
    assert _apart_rows(funds) == _apart_expected(expected), where
    # Project section = funds section: total row, each source, 其中往年项目 and the other programmes' lines.
    counted = [g for g in section.groups if g.counted]
    assert section.total.year.amounts == funds.total.amounts, where
    assert _summed([g.total.year for g in counted]) == funds.total.amounts, where
    for row in funds.rows:
        parts = [f.year for g in counted for p in g.projects for f in p.funds if f.label == row.label]
        assert _summed(parts) == row.amounts, (where, row.label)
    earlier = [g.total.year for g in counted if not g.label.endswith("年度项目")]
    assert _summed(earlier) == funds.earlier.amounts, where
    apart_groups = sorted(g.total.year.amounts for g in section.groups if not g.counted)
    assert apart_groups == sorted(r.amounts for r in funds.apart), where
    for g in section.groups:
        assert _summed([p.total.year for p in g.projects]) == g.total.year.amounts, (where, g.label)
        assert _summed([p.total.to_date for p in g.projects]) == g.total.to_date.amounts, (where, g.label)
        for p in g.projects:
            assert _summed([f.year for f in p.funds]) == p.total.year.amounts, (where, p.code)
            assert p.year == quarter.year or any(f.year.amounts != (0, 0, 0, 0) for f in p.funds), (where, p.code)
    # The chart of monthly disbursements adds up to the funds section's 拨付.
    assert sum(v for _, v in monthly) == funds.total.disbursed, where


def _check_region(unit: Unit, quarter: Quarter, ledger: Ledger, pairings=None, ids=None, who="全部") -> None:
    where = f"{unit.name} {quarter} ({who})"
    counties = counties_within(unit)
    programmes = Q.report_programmes(unit, quarter, pairings)
    county_ids = list(db.session.scalars(counties))  # a list, as the report passes them (queries.for_unit)
    agreements = Q._agreements(unit, quarter, county_ids, pairings, codes={"fiscal_funds", "project_count"})
    funds = Q.funds_section(counties, pairings, quarter, programmes, quarter.end)
    rows = Q._county_rows(unit, quarter, pairings, programmes)
    people, lifted = placements.people_in_work(counties, pairings, quarter.year_to_date)
    channels = Q._channels(counties, pairings, quarter)

    summary = defaultdict(int)
    for a in agreements:
        for r in a.rows:
            summary[r.code] += r.year_to_date
    if agreements:
        assert set(programmes.values()) == {a.programme for a in agreements}, where
        assert (funds.source(EAST_FISCAL).arrived if funds.source(EAST_FISCAL) else 0) == summary["fiscal_funds"]
        assert sum(c.projects for c in rows) == summary["project_count"], where
    county_ids = list(db.session.scalars(counties))
    expected = ledger.funds(county_ids, quarter, set(programmes), ids)
    for stage, amount in _amounts(funds.total).items():
        assert amount == expected[("合计", stage)], where
    assert _apart_rows(funds) == _apart_expected(expected), where
    monthly = Q._monthly_disbursed(counties, pairings, quarter, programmes)
    assert sum(v for _, v in monthly) == funds.total.disbursed, where
    # County rows add up to the report's totals, each under its section's definition.
    assert sum(c.arrived for c in rows) == funds.total.arrived, where
    assert sum(c.disbursed for c in rows) == funds.total.disbursed, where
    # (No demo person is placed from two counties; such a person would count once in the total, once per county.)
    assert (sum(c.people for c in rows), sum(c.people_lifted for c in rows)) == (people, lifted), where
    assert sum(c.consumption for c in rows) == sum(c.year_to_date for c in channels), where


@pytest.mark.parametrize("year", YEARS)
def test_every_county_and_region_reconciles(demo_app, ledger, year):
    with demo_app.app_context():
        counties, regions = _units(UnitKind.COUNTY), _units()
        liaisons = _liaisons()
        checked = 0
        for number in (1, 2, 3, 4):
            quarter = Quarter.of(year, number)
            for unit in counties:
                _check_county(unit, quarter, ledger)
                checked += 1
            for unit in regions:
                _check_region(unit, quarter, ledger)
            # A liaison's copy: the same figures from their pairings only. The province's every quarter (it adds
            # up every county they pair); county by county in the third quarter, to keep the suite's time.
            for username, select, ids in liaisons:
                _check_region(regions[-1], quarter, ledger, select, ids, username)
                for unit in Q.paired_counties(regions[-1], quarter, select) if number == 3 else ():
                    _check_county(unit, quarter, ledger, select, ids, username)
        assert checked == 4 * len(counties) >= 4 * 20


def test_liaison_copies_are_not_vacuous(demo_app):
    """The liaisons' copies really leave records out: another province's programme, 对口支援."""
    with demo_app.app_context():
        sichuan = _units()[-1]
        (_, zhejiang, _), (_, guangdong, _), (_, ningbo, _) = _liaisons()
        counties = counties_within(sichuan)

        def funds(quarter, pairings):
            quarter = Quarter.parse(quarter)
            programmes = Q.report_programmes(sichuan, quarter, pairings)
            return programmes, Q.funds_section(counties, pairings, quarter, programmes, quarter.end)

        _, everyone = funds("2026Q3", None)
        _, own = funds("2026Q3", zhejiang)
        programmes, nothing = funds("2026Q3", guangdong)
        assert everyone.apart and own.total == everyone.total  # all 浙川 money is Zhejiang's pairings'
        assert not programmes and nothing.total.amounts == (0, 0, 0, 0)  # no Guangdong pairing since 2021
        # In 2019 both programmes ran: the two liaisons' copies split the province's total between them.
        programmes, everyone = funds("2019Q3", None)
        zhejiang_programmes, east = funds("2019Q3", zhejiang)
        guangdong_programmes, south = funds("2019Q3", guangdong)
        assert len(programmes) == 2 and list(guangdong_programmes.values()) == ["粤川东西部扶贫协作"]
        assert list(zhejiang_programmes.values()) == ["浙川东西部协作"]
        assert 0 < south.total.arrived < everyone.total.arrived
        assert east.total.arrived + south.total.arrived == everyone.total.arrived
        # A city's liaison (宁波) sees part of Zhejiang's.
        _, city = funds("2026Q3", ningbo)
        _, east = funds("2026Q3", zhejiang)
        assert 0 < city.total.arrived < east.total.arrived


# ---- dashboard = PDF, cell by cell, on the demo ---------------------------------------------------------------------


def _rows(html: str, css_class: str) -> list[str]:
    rows = []
    for table in re.findall(rf'<table class="[^"]*\b{css_class}\b[^"]*">(.*?)</table>', html, re.S):
        body = re.search(r"<tbody>(.*?)</tbody>", table, re.S).group(1)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
            cells = [
                re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            ]
            rows.append("".join(cells).replace("&amp;", "&"))
    return rows


def _captions(html: str) -> list[str]:
    return [re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<caption>(.*?)</caption>", html, re.S)]


@pytest.mark.parametrize(("username", "code", "tables"), [
    ("zhaojue", "513431", ("summary", "funds", "project-tally", "destinations", "channels")),
    ("liangshan", "513400", ("summary", "funds", "counties", "destinations", "channels")),
    ("sheng", "510000", ("summary", "funds", "counties", "destinations", "channels")),
    ("zhejiang", "510000", ("summary", "funds", "counties")),
])  # fmt: skip
def test_dashboard_equals_pdf_on_the_demo(demo_app, username, code, tables):
    pypdf = pytest.importorskip("pypdf")
    import io

    client = demo_app.test_client()
    assert login(client, username, demo.DEMO_PASSWORD).status_code in (302, 303)
    with demo_app.app_context():
        unit_id = db.session.scalar(sa.select(Unit.id).where(Unit.code == code))
    quarter = "2026Q3"
    html = client.get(f"/reports/{unit_id}/{quarter}").get_data(as_text=True)
    reader = pypdf.PdfReader(io.BytesIO(client.get(f"/reports/{unit_id}/{quarter}.pdf").data))
    text = re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))
    compared = 0
    for css_class in tables:
        for row in _rows(html, css_class):
            assert row in text, (css_class, row)
            compared += 1
    assert compared > 20
    # Every money table says its period and scope; the liaison's copy says whose pairings, in every caption.
    captions = _captions(html)
    # Every project one by one is the dashboard's alone: the PDF prints them summed (帮扶项目汇总, compared above).
    printed = [c for c in captions if not c.startswith("帮扶项目·")]
    assert printed and all(c in text for c in printed)
    assert any("本年度（2026-01-01至2026-09-30）" in c for c in captions)
    if username == "zhejiang":
        assert all("仅含" in c for c in captions)
    assert "其中：其中" not in text and "其中：其中" not in html
    # Two decimals, never four; thousands separators on money and counts.
    numbers = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', html)
    odd = [n for n in numbers if not re.fullmatch(r"—|在岗|\d{4}-\d\d-\d\d|\d{1,3}(,\d{3})*(\.\d\d%?)?", n.strip())]
    assert numbers and not odd, odd
