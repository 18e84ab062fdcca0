"""Benchmark: a real province's volume (issue 23) — every page an office opens first, the PDFs, lists and search,
exports, a login during a large import, the nightly checks.

Usage:
    .venv/bin/python -m bench.scale [--database-url URL] [--fraction 1.0] [--keep PATH] [--runs 5] [--smoke]

The data set is ``flask demo load --scale province`` (``registry.demo.scale``): the demo, then five years of
1,010,000 placements, 202,000 purchases, 12,300 projects with status steps and 69,000 fund rows through the
importers. Building it takes a while on two cores, so ``--keep`` names a SQLite file (or, with ``--database-url``,
the PostgreSQL database itself is kept) that a later run reuses when it already holds the set of that fraction.
``--smoke``: 1/2000 of the volume on the smoke demo, one run; seconds, figures not targets.

Every figure is timed in this process through the test client (the server's own time, no network), medians of
``--runs``; "first view" means the figure caches emptied before each run. Targets (issue 23): home pages of the
province, 凉山州 and 昭觉 under 300 ms without a warm cache; province and prefecture dashboards first view under 1 s,
cached under 50 ms; county dashboard first view under 300 ms; ranking under 500 ms; county PDF under 3 s, province
PDF under 10 s; list pages, their last page and keyword search under 200 ms; a login during a large import under 1 s;
the nightly checks under 5 min; a CSV export within 2x a bare cursor and csv.writer over the same rows, an XLSX one
within 1.3x openpyxl's write-only workbook.
"""

import argparse
import csv
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from bench import bench_app, demo_app, dispose, figure, parse_args

PASSWORD = "xiezuo-demo-2026"


def _has_set(app, fraction: float) -> bool:
    """Does the database hold the whole province set of this fraction (every stream loaded, as many generated
    projects as that fraction makes)?"""
    from registry.demo.scale import VOLUMES, done_streams
    from registry.kernel.extensions import db
    from registry.projects.models import Project

    with app.app_context():
        try:
            if not all(done_streams().values()):
                return False
            count = db.session.scalar(sa.select(sa.func.count(Project.id)).where(Project.code.like("PS-%")))
        except sa.exc.DBAPIError:
            return False
        finally:
            db.session.remove()
    expected = round(VOLUMES["projects"] * fraction)
    return bool(count) and abs(count - expected) <= max(2, expected // 20)


def build(url: str | None, fraction: float, smoke: bool, keep: str | None):
    """The app on the province set: reused from ``keep`` / ``url`` when it is there, else built."""
    if keep and not url:
        url = f"sqlite:///{Path(keep).resolve()}"
    if url and (keep or not smoke):
        app = bench_app(url)
        if _has_set(app, fraction):
            print(f"复用已有的省级规模数据：{url}", flush=True)
            # A set built before the load indexed its records at the end (09cf61c) has an empty keyword index, and
            # every search would be timed as a scan of the records above its mark: index them first (nothing to do
            # on a set that is caught up).
            from registry.kernel.search import catch_up  # deferred: as every import here, after the app is built

            with app.app_context():
                print(f"关键词索引补建：{catch_up()} 条", flush=True)
            return app
        dispose(app)
    from registry.demo.scale import load_province
    from registry.kernel.database import refresh_planner_statistics
    from registry.kernel.extensions import db

    started = time.perf_counter()
    app = demo_app(url, "scale", smoke=smoke)
    with app.app_context():
        print(load_province(fraction, echo=lambda text: print(text, flush=True)), flush=True)
        refresh_planner_statistics(db.session)
    figure("scale.build", time.perf_counter() - started, "s", note=f"fraction={fraction}")
    return app


def _login(app, username: str):
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302 and "/login" not in response.headers["Location"], (username, response.status)
    return client


def _empty_caches(app) -> None:
    from registry.kernel.extensions import db
    from registry.reports.models import ReportCache

    with app.app_context():
        db.session.execute(sa.delete(ReportCache))
        db.session.commit()
        db.session.remove()


def _time(client, url: str, runs: int, *, before=None) -> float:
    """Median milliseconds of GET ``url`` (``before`` called ahead of each run, untimed)."""
    samples = []
    for _ in range(runs):
        if before:
            before()
        started = time.perf_counter()
        response = client.get(url)
        body = response.get_data()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, body[:300])
    return statistics.median(samples)


def _ids(app) -> dict:
    from registry.agreements.models import Agreement
    from registry.counties.models import Unit
    from registry.kernel.extensions import db
    from registry.placements.models import Placement

    with app.app_context():
        units = dict(db.session.execute(sa.select(Unit.code, Unit.id).where(
            Unit.code.in_(["510000", "513400", "513431"]))).all())  # fmt: skip
        year = date.today().year
        agreement = db.session.scalar(sa.select(Agreement.id).where(Agreement.year == year).order_by(Agreement.id))
        # A two-character name of the set (the search must find them without a scan).
        name = db.session.scalar(
            sa.select(Placement.person_name).where(sa.func.length(Placement.person_name) == 2).limit(1)
        )
        db.session.remove()
    return {"sichuan": units["510000"], "liangshan": units["513400"], "zhaojue": units["513431"],
            "agreement": agreement, "name": name or "王伟"}  # fmt: skip


def _list_sizes(app) -> dict[str, int]:
    from registry.kernel.extensions import db
    from registry.placements.models import Placement
    from registry.projects.models import Project
    from registry.purchases.models import Purchase

    with app.app_context():
        sizes = {
            name: db.session.scalar(sa.select(sa.func.count(model.id)))
            for name, model in (("placements", Placement), ("purchases", Purchase), ("projects", Project))
        }
        db.session.remove()
    return sizes  # fmt: skip


def pages(app, runs: int) -> None:
    from registry.reports.services import latest_quarter

    ids = _ids(app)
    quarter = latest_quarter()
    empty = lambda: _empty_caches(app)  # noqa: E731
    clients = {u: _login(app, u) for u in ("sheng", "liangshan", "zhaojue")}
    for username, client in clients.items():
        figure(f"home.{username}", _time(client, "/", runs, before=empty), "ms", target="300ms", note="no warm cache")
    province = clients["sheng"]
    for name, unit, first_target in (("province", "sichuan", "1000ms"), ("prefecture", "liangshan", "1000ms"),
                                     ("county", "zhaojue", "300ms")):  # fmt: skip
        url = f"/reports/{ids[unit]}/{quarter}"
        figure(f"dashboard.{name}.first", _time(province, url, runs, before=empty), "ms", target=first_target)
        if name != "county":
            figure(f"dashboard.{name}.cached", _time(province, url, runs), "ms", target="50ms")
    if ids["agreement"]:
        url = f"/agreements/{ids['agreement']}/ranking"
        figure("ranking", _time(province, url, runs, before=empty), "ms", target="500ms", note="no warm cache")
    pdf_runs = max(1, min(runs, 3))
    for name, unit, target in (("county", "zhaojue", "3000ms"), ("province", "sichuan", "10000ms")):
        url = f"/reports/{ids[unit]}/{quarter}.pdf"
        figure(f"pdf.{name}.first", _time(province, url, pdf_runs, before=empty), "ms", target=target)
    for stream, count in _list_sizes(app).items():
        last = max(1, -(-count // app.config["ITEMS_PER_PAGE"]))
        figure(f"list.{stream}.first", _time(province, f"/{stream}/", runs), "ms", target="200ms")
        figure(f"list.{stream}.last", _time(province, f"/{stream}/?page={last}", runs), "ms", target="200ms",
               note=f"page={last}")  # fmt: skip
    figure("search.placements", _time(province, f"/placements/?q={ids['name']}", runs), "ms", target="200ms",
           note="two-character name")  # fmt: skip
    figure("search.purchases", _time(province, "/purchases/?q=核桃", runs), "ms", target="200ms")
    # Broad keywords: one character of many names (王: ~12,000 placements of the full set), a product word found in
    # ~25,000 purchases; the list header counts every match.
    figure("search.placements.broad", _time(province, "/placements/?q=王", runs), "ms", target="200ms",
           note="one character")  # fmt: skip
    figure("search.purchases.broad", _time(province, "/purchases/?q=茶", runs), "ms", target="200ms")


def exports(app) -> None:
    """The full-province CSV and XLSX of placements, as the export job writes them, against bare writers over the
    same rows."""
    from openpyxl import Workbook

    from registry.auth.models import User
    from registry.kernel.exports import write_table
    from registry.kernel.extensions import db
    from registry.placements import queries
    from registry.placements.models import Placement
    from registry.placements.transfer import HEADERS

    folder = Path(tempfile.mkdtemp())
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == "sheng"))
        columns = [c for c in Placement.__table__.columns if c.name not in ("id_stored", "id_fingerprint")]
        for kind in ("csv", "xlsx"):
            started = time.perf_counter()
            stmt = queries.filtered({k: "" for k in queries.FILTER_KEYS}, user)
            rows = write_table(folder / f"app.{kind}", kind, HEADERS, queries.export_batches(stmt, kind, reveal=False),
                               title="劳务协作")  # fmt: skip
            app_time = time.perf_counter() - started
            started = time.perf_counter()
            result = db.session.connection().execution_options(yield_per=5000).execute(sa.select(*columns))
            if kind == "csv":
                with (folder / "bare.csv").open("w", newline="", encoding="utf-8-sig") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(HEADERS)
                    for row in result:
                        writer.writerow(row)
            else:
                workbook = Workbook(write_only=True)
                sheet = workbook.create_sheet("劳务协作")
                sheet.append(HEADERS)
                for row in result:
                    sheet.append([str(v) if v is not None else None for v in row])
                workbook.save(folder / "bare.xlsx")
            bare = time.perf_counter() - started
            target = "2x" if kind == "csv" else "1.3x"
            figure(f"export.placements.{kind}", app_time, "s", baseline=f"{bare:.2f}s",
                   note=f"rows={rows} ratio={app_time / bare:.2f} target={target}")  # fmt: skip
        db.session.remove()


def _import_file(path: Path, rows: int) -> None:
    """A placements CSV of ``rows`` new people in the template's layout, marked in 备注 so they can be removed."""
    import random
    from datetime import timedelta

    from registry.kernel.idnumbers import check_digit
    from registry.placements.transfer import HEADERS

    rng = random.Random(99)
    counties = ["513431", "513429", "513430", "513432", "513433", "513434"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for n in range(rows):
            county = counties[n % len(counties)]
            birth = date(1975, 1, 1) + timedelta(days=n // 1000 * 3 + rng.randint(0, 2))
            body = f"{county}{birth:%Y%m%d}{n % 1000:03d}"
            start = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
            writer.writerow(["", f"测{n % 97}", body + check_digit(body), "脱贫户", county, "", "城关镇", "帮扶车间",
                             "四川省", "", "帮扶车间", "制造业", "是", "", start.isoformat(), "", "3000",
                             "bench-login"])  # fmt: skip


def login_during_import(app, rows: int) -> None:
    """A placements import of ``rows`` runs in one thread (as the import page's background task does: under the
    write lock); once it is writing, another user logs in. The imported rows are removed afterwards."""
    from registry.auth.models import User
    from registry.kernel.database import writing
    from registry.kernel.extensions import db
    from registry.kernel.transfer import run_steps
    from registry.kernel.transfer.reader import read_table
    from registry.placements.cells import refresh_cells
    from registry.placements.models import Placement
    from registry.placements.transfer import import_placements_steps

    path = Path(tempfile.mkdtemp()) / "import.csv"
    _import_file(path, rows)
    started_writing, done, outcome = threading.Event(), threading.Event(), {}

    def progress(count):
        if count >= min(rows, 4000):
            started_writing.set()

    def run_import():
        try:
            with app.app_context():
                user = db.session.scalar(sa.select(User).where(User.username == "sheng"))
                headers, table = read_table(path, path.name)
                with writing():
                    result = run_steps(import_placements_steps(headers, table, user=user, filename=path.name),
                                       progress)  # fmt: skip
                    outcome["errors"] = len(result.errors)
                    db.session.commit()
                db.session.remove()
        finally:
            started_writing.set()
            done.set()

    thread = threading.Thread(target=run_import, daemon=True)
    thread.start()
    started_writing.wait(timeout=900)
    running = not done.is_set()
    started = time.perf_counter()
    response = app.test_client().post("/login", data={"username": "zhaojue", "password": PASSWORD})
    elapsed = (time.perf_counter() - started) * 1000
    thread.join()
    figure("login.during_import", elapsed, "ms", target="1000ms",
           note=f"status={response.status_code} import_rows={rows} import_running={running} "
                f"import_errors={outcome.get('errors')}")  # fmt: skip
    with app.app_context(), writing():
        touched = db.session.execute(
            sa.select(Placement.origin_county_id, Placement.start_date).where(Placement.note == "bench-login")
        ).all()
        db.session.execute(sa.delete(Placement).where(Placement.note == "bench-login"))
        refresh_cells({(county, start.year) for county, start in touched})
        db.session.commit()
        db.session.remove()


def recomputation(app) -> None:
    """The figures read from derived rows equal a plain recomputation over the records, for a sample of units and
    periods at this volume: people in work (monthly bitmaps vs COUNT(DISTINCT)) in total, 脱贫, per destination
    and per county, and each unit's row of a many-unit progress vs its own. Raises on any difference."""
    import random

    from registry.agreements.models import Agreement
    from registry.agreements.services import counties_of, progress_many
    from registry.counties.models import Unit, UnitKind
    from registry.kernel.extensions import db
    from registry.kernel.periods import Period, Quarter
    from registry.placements import figures, months

    rng = random.Random(7)
    checked = 0
    with app.app_context():
        counties = db.session.scalars(
            sa.select(Unit).where(Unit.kind == UnitKind.COUNTY, Unit.code.like("51%")).order_by(Unit.code)
        ).all()
        units = [db.session.scalar(sa.select(Unit).where(Unit.code == code)) for code in ("510000", "513400")]
        units += rng.sample(counties, min(4, len(counties)))
        today = date.today()
        periods = [Quarter.of(2023, 2), Quarter.of(2024, 4), Quarter.containing(today).year_to_date,
                   Period(date(today.year, 1, 1), today), Period(date(2022, 3, 17), date(2022, 11, 2))]  # fmt: skip
        ids = counties_of(units)
        for unit in units:
            for period in periods:
                people = months.people_in_work(ids[unit.id], period)
                plain = figures.counted_in_sql(ids[unit.id], None, period)
                got = {"all": len(people.all), "lifted": len(people.lifted)}
                got |= {("destination", d): (len(a), len(b)) for d, (a, b) in people.by_destination.items() if a}
                got |= {("county", c): (len(a), len(b)) for c, (a, b) in people.by_county.items() if a}
                if got != plain:
                    raise AssertionError(f"{unit.name} {period}: {got} != {plain}")
                checked += 1
        for agreement in db.session.scalars(sa.select(Agreement).where(Agreement.year >= today.year - 1)):
            together = progress_many(agreement, units, today)
            for unit in units:
                if together[unit.id] != progress_many(agreement, [unit], today)[unit.id]:
                    raise AssertionError(f"{agreement.title} {unit.name}: progress differs")
                checked += 1
        db.session.remove()
    figure("scale.recomputed", checked, "", note="figures equal to a plain recomputation (units x periods)")


def nightly(app) -> None:
    from registry.findings.services import run_checks
    from registry.kernel.database import writing
    from registry.kernel.extensions import db

    with app.app_context():
        started = time.perf_counter()
        with writing():
            run_checks(actor=None)
            db.session.commit()
        figure("nightly.checks", time.perf_counter() - started, "s", target="300s")
        db.session.remove()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL (kept and reused); default a SQLite file")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the province's volume")
    parser.add_argument("--keep", help="SQLite file holding the set (reused when it already holds it)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--import-rows", type=int, default=200_000, help="rows of the import a login meets")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: pages,exports,login,check,nightly")
    args = parse_args(parser, {"fraction": 0.0005, "runs": 1, "import_rows": 3000}, argv)
    app = build(args.database_url, args.fraction, args.smoke, args.keep)
    # A PDF is timed, not cut off: the page's own limit (503 after REPORT_PDF_TIMEOUT) would hide the figure.
    app.config["REPORT_PDF_TIMEOUT"] = 3600
    skip = set(filter(None, args.skip.split(",")))
    with app.app_context():
        from registry.kernel.extensions import db
        from registry.placements.models import Placement

        count = db.session.scalar(sa.select(sa.func.count(Placement.id)))
        db.session.remove()
    figure("scale.placements", count, "", note=f"fraction={args.fraction}")
    if "pages" not in skip:
        pages(app, args.runs)
    if "exports" not in skip:
        exports(app)
    if "login" not in skip:
        login_during_import(app, args.import_rows)
    if "check" not in skip:
        recomputation(app)
    if "nightly" not in skip:
        nightly(app)
    dispose(app)


if __name__ == "__main__":
    main()
