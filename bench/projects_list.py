"""Benchmark: project list and county page with 20,000 projects and 200,000 fund transactions.

Usage:
    .venv/bin/python -m bench.projects_list                       # SQLite file in a temp folder
    .venv/bin/python -m bench.projects_list --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
        [--projects 20000] [--transactions-per-project 10] [--runs 30] [--smoke]

Builds the schema with the migrations, bulk-loads synthetic but well-formed data (68 counties of 10 prefectures,
two programmes, ten years), logs in as the province office and times requests in-process with the Flask test
client: the time printed is the server's time to produce the response (query + render), median of N runs.
Target (issue 3): median under 50 ms for the filtered list and for the county page, on SQLite and PostgreSQL.
``--smoke``: 300 projects, 2 transactions each, 1 run (seconds, figures not targets).
"""

import argparse
import random
import statistics
import time
from datetime import date, timedelta

import sqlalchemy as sa

from bench import figure, fresh_app, parse_args
from registry.auth.models import Role
from registry.counties.models import CountyCategory, UnitKind
from registry.kernel.extensions import db

PASSWORD = "bench-password-123"


def build(n_projects: int, per_project: int, seed: int = 7):
    """Insert divisions, pairings, users, projects, status steps and transactions in bulk."""
    from registry.auth.services import create_user
    from registry.counties.services import add_division
    from registry.pairings.models import Pairing, Programme
    from registry.projects.models import FundSource, FundStage, FundTransaction, Project, ProjectStatus, StatusChange
    from registry.projects.services import refresh_fund_totals

    rng = random.Random(seed)
    sichuan = add_division("510000", "四川省", UnitKind.PROVINCE, None)
    zhejiang = add_division("330000", "浙江省", UnitKind.PROVINCE, None)
    counties, east = [], []
    for p in range(10):
        prefecture = add_division(f"51{p + 10:02d}00", f"测试州{p}", UnitKind.PREFECTURE, sichuan)
        city = add_division(f"33{p + 1:02d}00", f"测试市{p}", UnitKind.PREFECTURE, zhejiang)
        for c in range(7):
            if len(counties) == 68:
                break
            counties.append(add_division(f"51{p + 10:02d}{c + 21:02d}", f"测试县{p}-{c}", UnitKind.COUNTY, prefecture,
                                         rng.choice(list(CountyCategory))))  # fmt: skip
            east.append(add_division(f"33{p + 1:02d}{c + 21:02d}", f"东部区{p}-{c}", UnitKind.COUNTY, city))
    programme = Programme(name="浙川东西部协作", east_province_id=zhejiang.id, description="")
    db.session.add(programme)
    db.session.flush()
    pairings = []
    for county, partner in zip(counties, east, strict=True):
        pairing = Pairing(east_unit_id=partner.id, west_unit_id=county.id, level=UnitKind.COUNTY,
                          programme_id=programme.id, valid_from=date(2016, 1, 1), source="", note="")  # fmt: skip
        db.session.add(pairing)
        pairings.append(pairing)
    db.session.flush()
    create_user({"username": "province", "display_name": "省", "role": Role.PROVINCE, "password": PASSWORD}, actor=None)
    projects, steps, money = [], [], []
    categories = ["industry", "employment", "education", "health", "infrastructure"]
    statuses = [s.value for s in ProjectStatus]
    for pid in range(1, n_projects + 1):
        index = rng.randrange(len(counties))
        year = rng.randint(2016, 2025)
        projects.append({
            "id": pid, "code": f"ZC-{counties[index].code}-{year}-{pid:05d}", "name": f"帮扶项目{pid}",
            "county_id": counties[index].id, "pairing_id": pairings[index].id, "programme_id": programme.id,
            "year": year, "category": rng.choice(categories), "delivery_mode": "cheque", "funding_level": "county",
            "implementing_unit": "农业农村局", "responsible_person": "", "planned_start": date(year, 3, 1),
            "beneficiaries": 100, "beneficiaries_lifted": 50, "farmer_benefit": "", "performance_targets": "",
            "status": rng.choice(statuses), "version_id": 1,
        })  # fmt: skip
        steps.append({"project_id": pid, "from_status": None, "to_status": "reserve", "changed_on": date(year, 1, 1),
                      "note": ""})  # fmt: skip
        steps.append({"project_id": pid, "from_status": "reserve", "to_status": "approved",
                      "changed_on": date(year, 3, 1), "note": ""})  # fmt: skip
        amount = rng.randint(100, 1000) * 10000 * 100 // per_project
        for k in range(per_project):
            stage = (FundStage.PLANNED, FundStage.ARRIVED, FundStage.ARRIVED, FundStage.DISBURSED)[k % 4]
            money.append({"project_id": pid, "source": FundSource.EAST_FISCAL.value, "stage": stage.value,
                          "amount_fen": amount // (2 if stage is FundStage.DISBURSED else 1),
                          "occurred_on": date(year, 3, 1) + timedelta(days=10 * k), "document_no": "", "note": "",
                          "version_id": 1})  # fmt: skip
    db.session.execute(sa.insert(Project), projects)
    db.session.execute(sa.insert(StatusChange), steps)
    for start in range(0, len(money), 20000):
        db.session.execute(sa.insert(FundTransaction), money[start : start + 20000])
    refresh_fund_totals()
    db.session.commit()
    # Fresh statistics and visibility map, as autovacuum leaves them after a bulk load; measuring while
    # autovacuum still works on 200,000 new rows would time the vacuum, not the pages.
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return counties


def timed(client, url, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(samples), max(samples)


#: The cases' figure names and what they request.
def cases(prefecture_id: int, county_id: int) -> list[tuple[str, str, str]]:
    return [
        ("list_no_filter", "list, no filter", "/projects/"),
        ("list_year_status", "list, year+status", "/projects/?year=2023&status=in_progress"),
        ("list_prefecture_category_sort", "list, prefecture+category+sort",
         f"/projects/?prefecture={prefecture_id}&category=industry&sort=name"),
        ("list_keyword", "list, keyword", "/projects/?q=项目123"),
        ("list_source_page5", "list, fund source, page 5", "/projects/?source=east_fiscal&page=5"),
        ("county_page", "county page, 2023", f"/units/{county_id}?year=2023"),
    ]  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a database to EMPTY and use (default: a new SQLite file)")
    parser.add_argument("--projects", type=int, default=20_000)
    parser.add_argument("--transactions-per-project", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    args = parse_args(parser, {"projects": 300, "transactions_per_project": 2, "runs": 1}, argv)
    app = fresh_app(args.database_url, "bench")
    with app.app_context():
        started = time.perf_counter()
        counties = build(args.projects, args.transactions_per_project)
        county_id, prefecture_id = counties[5].id, counties[5].prefecture_id
        engine = db.engine.dialect.name
        print(f"loaded {args.projects} projects, {args.projects * args.transactions_per_project} transactions "
              f"in {time.perf_counter() - started:.1f} s on {engine}")  # fmt: skip
    client = app.test_client()
    client.post("/login", data={"username": "province", "password": PASSWORD})
    for name, label, url in cases(prefecture_id, county_id):
        timed(client, url, 1 if args.smoke else 3)  # warm up
        median, worst = timed(client, url, args.runs)
        figure(f"projects_list.{name}", median, "ms", target="<50ms",
               note=f"{label}: median of {args.runs}, max {worst:.1f} ms; {args.projects} projects, "
                    f"{engine}")  # fmt: skip


if __name__ == "__main__":
    main()
