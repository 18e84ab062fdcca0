"""Benchmark: one placement edited through the service in a county holding 50,000 placements.

Usage:
    .venv/bin/python -m bench.placement_edit [--placements 50000] [--edits 20] [--database-url URL] [--smoke]

Builds one county (昭觉县) with ``--placements`` placements over five years through the placements importer (as
an office's workbook would: most closed, a third still in work), then times ``--edits`` edits of one placement each
through ``placements.services.update_placement`` (the form's path: the write, the cells, the monthly people rows,
the flush; each committed): an end date set on a placement still in work that started five years ago (the months
it spans: all of them), a destination changed on a closed one, a start date moved. The figure is the median edit.
The baseline is what an edit cost before the months were patched (issue 23): each edit is taken back through the
service with the county's monthly rows rebuilt from January of the start year to the span (``refresh_months``), as
every edit did then, in the same run on the same data.
Target: an edit under 100 ms. ``--smoke``: 300 placements, 5 edits.
"""

import argparse
import csv
import io
import random
import statistics
import time
from contextlib import contextmanager
from datetime import date, timedelta

from bench import figure, fresh_app, parse_args
from registry.kernel.idnumbers import check_digit
from registry.placements.transfer import HEADERS

COUNTY = "513431"  # 昭觉县
HOUSEHOLDS = ["脱贫户", "监测对象", "一般农户"]
DESTINATIONS = ["到东部协作地就业", "省内县外", "县内就近就地", "帮扶车间"]


def workbook_rows(count: int, seed: int = 23) -> bytes:
    """A CSV in the import template's layout: ``count`` placements of distinct people of one county."""
    rng = random.Random(seed)
    today = date.today()
    first = date(today.year - 4, 1, 1)
    days = (today - first).days
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for n in range(count):
        birth = date(1965, 1, 1) + timedelta(days=rng.randint(0, 14000))
        body = f"{COUNTY}{birth:%Y%m%d}{n % 1000:03d}"
        start = first + timedelta(days=rng.randint(0, days))
        end = None
        if rng.random() < 0.66:
            end = start + timedelta(days=rng.randint(20, 500))
            end = None if end > today else end
        writer.writerow([
            None, f"测试{n}", body + check_digit(body), rng.choice(HOUSEHOLDS), COUNTY, None, "新城镇",
            rng.choice(DESTINATIONS), "浙江省", "宁波市", f"宁波某企业{n % 300}", "制造业", "是", "",
            start.isoformat(), end.isoformat() if end else None, str(rng.randint(2500, 8000)), None,
        ])  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


def build(app, count: int) -> float:
    """Divisions, an importing user and the county's placements through the importer; seconds of the import."""
    import sqlalchemy as sa

    from registry.auth.models import Role, User
    from registry.counties.services import load_divisions
    from registry.kernel.database import refresh_planner_statistics, writing
    from registry.kernel.extensions import db
    from registry.kernel.transfer.reader import read_table
    from registry.placements.transfer import import_placements

    with app.app_context(), writing():
        load_divisions()
        db.session.add(User(username="bench", display_name="bench", password_hash="x", role=Role.PROVINCE))
        db.session.commit()
        user = db.session.scalar(sa.select(User).where(User.username == "bench"))
        headers, rows = read_table(workbook_rows(count), "placements.csv")
        started = time.perf_counter()
        result = import_placements(headers, rows, user=user, filename="placements.csv")
        db.session.commit()
        elapsed = time.perf_counter() - started
        assert not result.errors, result.errors[:3]
        refresh_planner_statistics(db.session)
        return elapsed


def edits(app, runs: int) -> tuple[list[float], list[float]]:
    """(milliseconds of each edit through the service, milliseconds of the same edit taken back as every edit ran
    before issue 23's fix)."""
    import sqlalchemy as sa

    from registry.auth.models import User
    from registry.kernel.database import writing
    from registry.kernel.extensions import db
    from registry.placements.models import Destination, Placement
    from registry.placements.services import update_placement

    today = date.today()
    edited, rebuilt = [], []
    with app.app_context(), writing():
        user = db.session.scalar(sa.select(User).where(User.username == "bench"))
        # The edits an office makes most: an end date on a placement still in work since four years ago (the worst
        # case: it spans every month from its start to the span), a destination changed, a start date moved.
        open_since = sa.select(Placement.id).where(
            Placement.end_date.is_(None), Placement.start_date <= date(today.year - 3, 12, 31)
        )
        still = db.session.scalars(open_since.order_by(Placement.id)).all()
        closed = db.session.scalars(sa.select(Placement.id).where(Placement.end_date.is_not(None))).all()
        for n in range(runs):
            kind = n % 3
            pool = still if kind == 0 and still else closed
            placement = db.session.get(Placement, pool[(n // 3) % len(pool)])
            if kind == 0:
                change = {"end_date": min(today, placement.start_date + timedelta(days=200))}
            elif kind == 1:
                change = {"destination_class": next(d for d in Destination if d != placement.destination_class)}
            else:
                start = placement.start_date + timedelta(days=-1 if n % 2 else 1)
                change = {"start_date": start if start <= placement.end_date else placement.start_date}
            undo = {k: getattr(placement, k) for k in change}
            started = time.perf_counter()
            update_placement(placement, change, actor=user)
            db.session.flush()
            edited.append((time.perf_counter() - started) * 1000)
            db.session.commit()
            # The baseline, on the same data: the edit taken back the way every edit ran before issue 23's fix (the
            # county's months rebuilt from January of the start year to the span).
            with _whole_rebuilds():
                started = time.perf_counter()
                update_placement(placement, undo, actor=user)
                db.session.flush()
                rebuilt.append((time.perf_counter() - started) * 1000)
            db.session.commit()
    return edited, rebuilt


@contextmanager
def _whole_rebuilds():
    """Placement writes refresh the months as before issue 23: every month from the first touched year on."""
    from registry.placements import cells, months

    def whole(states):
        firsts: dict[int, int] = {}
        for state in states:
            firsts[state.county_id] = min(firsts.get(state.county_id, state.first), state.first)
        months.refresh_months({county: first // 12 for county, first in firsts.items()})

    patched = cells.patch_months
    cells.patch_months = whole
    try:
        yield
    finally:
        cells.patch_months = patched


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=50_000)
    parser.add_argument("--edits", type=int, default=21)
    parser.add_argument("--database-url", help="a database to EMPTY and use (default: a new SQLite file)")
    args = parse_args(parser, {"placements": 300, "edits": 6}, argv)
    app = fresh_app(args.database_url, "placement_edit")
    engine = (args.database_url or "sqlite").split(":", 1)[0].split("+")[0]
    seconds = build(app, args.placements)
    print(f"{args.placements} placements of one county imported in {seconds:.1f} s ({engine})")
    edited, rebuilt = edits(app, args.edits)
    figure("placement_edit.edit", statistics.median(edited), "ms", target="<100ms",
           baseline=statistics.median(rebuilt),
           note=f"median of {len(edited)} edits through update_placement, {args.placements} placements in the "
           f"county, {engine}; max {max(edited):.0f} ms; baseline: the same edits taken back with the months "
           f"rebuilt from the start year, as before issue 23 (median)")  # fmt: skip


if __name__ == "__main__":
    main()
