"""Benchmark: placement and purchase list pages with 1,000,000 placements and 300,000 purchases.

Usage:
    .venv/bin/python -m bench.records_list [--placements 1000000] [--purchases 300000] [--runs 15]
        [--database-url URL] [--smoke]

Bulk-loads synthetic records over 68 counties, logs in as the province office and reports the in-process
server time (median of N runs) of filtered list pages. Target (issue 4): median under 50 ms.
``--smoke``: 2,000 placements, 600 purchases, 1 run (seconds, figures not targets).
"""

import argparse
import random
import time
from datetime import date, timedelta

import sqlalchemy as sa

from bench import figure, fresh_app, parse_args
from bench.projects_list import PASSWORD, timed
from registry.kernel.extensions import db


def build(n_placements: int, n_purchases: int, seed: int = 5):
    from registry.auth.models import Role
    from registry.auth.services import create_user
    from registry.counties.models import UnitKind
    from registry.counties.services import add_division
    from registry.placements.cells import refresh_all_cells
    from registry.placements.models import Person, Placement
    from registry.purchases.models import Purchase
    from registry.purchases.services import refresh_totals

    rng = random.Random(seed)
    sichuan = add_division("510000", "四川省", UnitKind.PROVINCE, None)
    counties = []
    for p in range(10):
        prefecture = add_division(f"51{p + 10:02d}00", f"测试州{p}", UnitKind.PREFECTURE, sichuan)
        for c in range(7):
            if len(counties) < 68:
                counties.append(
                    add_division(f"51{p + 10:02d}{c + 21:02d}", f"测试县{p}-{c}", UnitKind.COUNTY, prefecture)
                )
    create_user({"username": "province", "display_name": "省", "role": Role.PROVINCE, "password": PASSWORD}, actor=None)
    db.session.commit()
    households, destinations = (
        ["lifted", "monitored", "ordinary"],
        ["east_partner", "in_province", "in_county", "workshop"],
    )
    # 10% of people have two placements. Person k has fingerprint k and id k + 1 (bulk rows, no lookups).
    distinct = max(1, n_placements * 9 // 10)
    for start in range(0, distinct, 20000):
        rows = [{"id": k + 1, "fingerprint": f"{k:064x}"} for k in range(start, min(distinct, start + 20000))]
        db.session.execute(sa.insert(Person), rows)
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT setval(pg_get_serial_sequence('people', 'id'), :n)"), {"n": distinct})
    batch = []
    for n in range(n_placements):
        start = date(2021, 1, 1) + timedelta(days=rng.randint(0, 1800))
        batch.append({
            "person_name": f"人员{n}", "id_stored": f"{n:018d}",
            "id_fingerprint": f"{n % distinct:064x}", "person_id": n % distinct + 1,
            "id_masked": "5134**********0000", "sex": "男", "birth_date": date(1990, 1, 1),
            "household": households[n % 3], "origin_county_id": counties[n % 68].id, "origin_township": "",
            "pairing_id": None, "destination_class": destinations[n % 4], "destination_province": "浙江省",
            "destination_city": "宁波市", "employer": f"企业{n % 5000}", "industry": "", "organised": False,
            "training": "", "start_date": start, "end_date": None, "monthly_wage_fen": None, "note": "",
            "version_id": 1,
        })  # fmt: skip
        if len(batch) == 20000:
            db.session.execute(sa.insert(Placement), batch)
            batch = []
    if batch:
        db.session.execute(sa.insert(Placement), batch)
    batch = []
    for n in range(n_purchases):
        batch.append({
            "purchased_on": date(2021, 1, 1) + timedelta(days=rng.randint(0, 1800)), "buyer_name": f"买方{n % 900}",
            "buyer_kind": "unit", "buyer_province": "浙江省", "buyer_city": "宁波市",
            "seller_name": f"合作社{n % 3000}",
            "seller_kind": "cooperative", "seller_county_id": counties[n % 68].id, "pairing_id": None,
            "product": "茶叶", "product_category": "tea", "amount_fen": rng.randint(1000, 10**7),
            "channel_id": 1 + n % 6,
            "counting_type": "purchase" if n % 2 else "helped_sale", "evidence_no": f"E{n}", "evidence_key": f"E{n}",
            "note": "", "version_id": 1,
        })  # fmt: skip
        if len(batch) == 20000:
            db.session.execute(sa.insert(Purchase), batch)
            batch = []
    if batch:
        db.session.execute(sa.insert(Purchase), batch)
    # Bulk rows bypass the services: build the derived summaries the lists read, as demo loads do.
    started = time.perf_counter()
    refresh_all_cells()
    refresh_totals()
    db.session.commit()
    print(f"placement cells and purchase totals rebuilt in {time.perf_counter() - started:.1f} s")
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return counties


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=300_000)
    parser.add_argument("--database-url", help="a database to EMPTY and use (default: a new SQLite file)")
    parser.add_argument("--runs", type=int, default=15)
    args = parse_args(parser, {"placements": 2000, "purchases": 600, "runs": 1}, argv)
    app = fresh_app(args.database_url, "records")
    with app.app_context():
        started = time.perf_counter()
        counties = build(args.placements, args.purchases)
        county = counties[3].id
        engine = db.engine.dialect.name
        print(f"loaded {args.placements} placements, {args.purchases} purchases in "
              f"{time.perf_counter() - started:.1f} s on {engine}")  # fmt: skip
    client = app.test_client()
    client.post("/login", data={"username": "province", "password": PASSWORD})
    cases = [
        ("placements_no_filter", "placements, no filter", "/placements/"),
        ("placements_county_year", "placements, county + year", f"/placements/?county={county}&year=2023"),
        ("placements_destination_page10", "placements, destination, page 10",
         "/placements/?destination=workshop&page=10"),
        ("purchases_no_filter", "purchases, no filter", "/purchases/"),
        ("purchases_county_year", "purchases, county + year", f"/purchases/?county={county}&year=2023"),
        ("purchases_channel_type", "purchases, channel + type", "/purchases/?channel=2&counting_type=purchase"),
    ]  # fmt: skip
    for name, label, page in cases:
        timed(client, page, 1 if args.smoke else 2)
        median, worst = timed(client, page, args.runs)
        figure(f"records_list.{name}", median, "ms", target="<50ms",
               note=f"{label}: median of {args.runs}, max {worst:.1f} ms; {args.placements} placements, "
                    f"{engine}")  # fmt: skip


if __name__ == "__main__":
    main()
