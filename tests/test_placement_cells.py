"""The derived placement cells and people ids: always equal to what the placements say, and the list header read
from them equals COUNT(DISTINCT) over the same filtered placements, for every scope and filter."""

import random
import threading
import time
from collections import defaultdict
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask_login import login_user
from pyroaring import BitMap

from registry.counties.models import Unit
from registry.kernel import idnumbers
from registry.kernel.extensions import db
from registry.placements import queries
from registry.placements.cells import header_from_cells, header_from_placements, person_id_for
from registry.placements.models import Destination, Household, Person, Placement, PlacementCell
from registry.placements.services import update_placement
from registry.placements.transfer import HEADERS, import_placements
from tests.conftest import TEST_DATABASE_URL
from tests.factories import make_placement


def number(region: str, n: int) -> str:
    """A valid identity number (GB 11643 check digit) for test person ``n`` of a county."""
    body = f"{region}{date(1970, 1, 1) + timedelta(days=97 * (n % 150)):%Y%m%d}{n % 1000:03d}"
    return body + idnumbers.check_digit(body)


def cells_as_stored() -> dict:
    """{cell key: (placements, fingerprints of its people)} as the placement_cells table holds them."""
    fingerprints = dict(db.session.execute(sa.select(Person.id, Person.fingerprint)).all())
    stored = {}
    for cell in db.session.scalars(sa.select(PlacementCell)):
        key = (cell.origin_county_id, cell.pairing_id, cell.household, cell.destination_class, cell.start_year,
               cell.end_year)  # fmt: skip
        assert key not in stored, f"two cells for {key}"
        stored[key] = (cell.placements, {fingerprints[i] for i in BitMap.deserialize(cell.people)})
    return stored


def cells_from_placements() -> dict:
    """The same, worked out from the placements themselves (by fingerprint, not by the stored person ids)."""
    groups = defaultdict(list)
    for p in db.session.scalars(sa.select(Placement)):
        key = (p.origin_county_id, p.pairing_id, p.household, p.destination_class, p.start_date.year,
               p.end_date.year if p.end_date else None)  # fmt: skip
        groups[key].append(p.id_fingerprint)
    return {key: (len(fps), set(fps)) for key, fps in groups.items()}


def assert_cells_consistent():
    db.session.flush()
    assert cells_as_stored() == cells_from_placements()
    persons = dict(db.session.execute(sa.select(Person.id, Person.fingerprint)).all())
    for person_id, fingerprint in db.session.execute(sa.select(Placement.person_id, Placement.id_fingerprint)):
        assert persons[person_id] == fingerprint


@pytest.fixture
def w(world_records):
    world = world_records
    db.session.flush()
    return world


def populate(w, n=90, seed=7):
    """People placed several times, across counties, years, households and destinations, some ended, some not;
    Zhaojue placements before its pairing began (2021-04-01) have none, so a liaison does not see them."""
    rng = random.Random(seed)
    counties = [(w.zhaojue, "513431"), (w.butuo, "513429"), (w.cangxi, "510824")]
    people = [(rng.choice(counties), i) for i in range(30)]
    for k in range(n):
        (county, region), person = rng.choice(people)
        if rng.random() < 0.2:
            county = rng.choice(counties)[0]  # the same person placed by another county
        start = date(2018, 1, 1) + timedelta(days=rng.randint(0, 2400))
        end = start + timedelta(days=rng.randint(0, 900)) if rng.random() < 0.5 else None
        make_placement(
            county, id_number=number(region, person), person_name=f"人员{person}", start_date=start,
            end_date=end if end and end <= date.today() else None, household=rng.choice(list(Household)),
            destination_class=rng.choice(list(Destination)), employer=f"单位{k % 4}",
        )  # fmt: skip


def test_every_service_write_keeps_the_cells_equal_to_the_placements(w):
    assert_cells_consistent()  # the world's two placements
    p = make_placement(w.zhaojue, start_date=date(2023, 6, 1), household=Household.MONITORED)
    assert_cells_consistent()
    assert p.person_id == w.placement_a.person_id  # the same identity number is the same person
    # Moves to another cell in the same slice, then to another year, county (and pairing), and ends.
    for change in (
        {"destination_class": Destination.WORKSHOP},
        {"household": Household.LIFTED},
        {"start_date": date(2020, 2, 1)},
        {"origin_county_id": w.cangxi.id},
        {"end_date": date(2024, 1, 31)},
        {"id_number": "510824199203041239"},
        {"origin_county_id": w.zhaojue.id, "start_date": date(2024, 3, 1), "end_date": None},
    ):
        update_placement(p, change, actor=w.admin)
        assert_cells_consistent()
    assert p.person_id == w.placement_b.person_id  # the new number's person
    populate(w, n=40)
    assert_cells_consistent()


def test_person_ids_are_one_per_fingerprint(w):
    first = person_id_for("f" * 64)
    assert person_id_for("f" * 64) == first != person_id_for("e" * 64)
    assert db.session.scalar(sa.select(sa.func.count(Person.id)).where(Person.fingerprint == "f" * 64)) == 1


def _import(user, rows):
    lines = [[row.get(h, "") for h in HEADERS] for row in rows]
    return import_placements(HEADERS, list(enumerate(lines, start=2)), user=user, filename="t.csv")


def test_an_import_rebuilds_the_cells_it_touched(w):
    populate(w, n=30)
    existing = db.session.scalars(sa.select(Placement).order_by(Placement.id).limit(3)).all()
    elsewhere = "510824" if existing[2].origin_county_id != w.cangxi.id else "513431"
    rows = [
        {"姓名": "新人", "身份证号": number("513431", 500 + i), "户类型": "脱贫户", "户籍县代码": code,
         "就业去向": "帮扶车间", "就业开始": f"{2019 + i % 5}-05-01", "就业结束": "2024-01-01" if i % 2 else ""}
        for i, code in enumerate(["513431", "513429", "510824", "513431"])
    ] + [
        {"编号": str(existing[0].id), "户类型": "一般农户", "就业开始": "2022-02-02"},  # moves to another slice
        {"编号": str(existing[1].id), "身份证号": number("513429", 999)},  # another person
        {"编号": str(existing[2].id), "户籍县代码": elsewhere},  # another county
    ]  # fmt: skip
    result = _import(w.admin, rows)
    assert (result.errors, result.created, result.updated) == ([], 4, 3)
    assert_cells_consistent()


def _check_header(app, user, args):
    with app.test_request_context():
        login_user(user)
        stmt = queries.filtered(args, user)
        from_cells = header_from_cells(*queries.cell_filter(args, user))
        from_sql = header_from_placements(stmt)
        # The rule itself, counted the old way: people are identity fingerprints, each counted once.
        people = sa.func.count(sa.distinct(Placement.id_fingerprint))
        lifted = sa.case((Placement.household == Household.LIFTED, Placement.id_fingerprint))
        count, persons, lifted_persons = db.session.execute(
            stmt.with_only_columns(sa.func.count(Placement.id), people, sa.func.count(sa.distinct(lifted)))
        ).one()
        by_destination = dict(
            db.session.execute(
                stmt.with_only_columns(Placement.destination_class, people).group_by(Placement.destination_class)
            ).all()
        )
    expected = (count, persons, lifted_persons, [(d, by_destination[d]) for d in Destination if d in by_destination])
    # A keyword is the one filter the cells cannot answer (the page then counts in SQL).
    # A keyword search's page counts in one pass over the matches (queries.keyword_header).
    keyword = (queries.keyword_header(stmt),) if args.get("q") else ()
    for header in (from_sql, *keyword) if args.get("q") else (from_cells, from_sql):
        assert (header.placements, header.people, header.lifted, header.by_destination) == expected, (user, args)
    return expected


FILTERS = [
    {},
    {"year": "2021"},
    {"year": "2023"},
    {"year": "1999"},
    {"destination": "workshop"},
    {"household": "lifted"},
    {"household": "monitored", "destination": "east_partner", "year": "2022"},
    {"county": "zhaojue"},
    {"county": "cangxi", "year": "2020"},
    {"prefecture": "liangshan"},
    {"prefecture": "liangshan", "household": "ordinary", "year": "2024"},
    {"county": "butuo", "destination": "in_county"},
]


def test_the_header_from_cells_equals_count_distinct_for_every_scope_and_filter(app, w):
    populate(w)
    db.session.flush()
    seen = set()
    for name in ("admin", "province", "prefecture", "county", "liaison", "reader"):
        for args in FILTERS:
            args = {k: str(getattr(w, v).id) if k in ("county", "prefecture") else v for k, v in args.items()}
            expected = _check_header(app, getattr(w, name), args)
            seen.add(expected[0] > 0 and expected[1] < expected[0])
    assert seen == {True, False}  # the data does put people in several placements, and some filters find none


def test_the_list_page_shows_the_header(app, w, client):
    populate(w, n=40)
    db.session.commit()
    from tests.conftest import login

    login(client, "liaison")
    year = "2023"
    page = client.get(f"/placements/?year={year}").get_data(as_text=True)
    expected = _check_header(app, w.liaison, {"year": year})
    assert f'<span class="num">{expected[0]}</span><span>就业记录</span>' in page
    assert f'<span class="num">{expected[1]}</span><span>人数（每人只计一次）</span>' in page
    keyword = client.get(f"/placements/?year={year}&q=单位1").get_data(as_text=True)
    expected = _check_header(app, w.liaison, {"year": year, "q": "单位1"})
    assert f'<span class="num">{expected[0]}</span><span>就业记录</span>' in keyword


@pytest.mark.postgres_only
@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL (READ COMMITTED, concurrent writers)")
def test_concurrent_writes_in_one_county_never_leave_two_sets_of_cells(app, world):
    """Two requests placing people in the same county and year at once: the second rebuild waits for the first
    to commit, then sees its placement, so the cells hold both placements once."""
    first_flushed, second_started = threading.Event(), threading.Event()
    errors = []

    def place(name, number_, before_commit=None, before_create=None):
        try:
            with app.app_context():
                county = db.session.get(Unit, world.zhaojue)
                if before_create:
                    before_create()
                make_placement(county, id_number=number_, person_name=name, start_date=date(2024, 6, 1))
                if before_commit:
                    before_commit()
                db.session.commit()
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    def hold():
        first_flushed.set()
        second_started.wait(5)
        time.sleep(0.5)  # the second writer is now inside its rebuild (waiting, with the lock)

    def start():
        first_flushed.wait(5)
        second_started.set()

    threads = [
        threading.Thread(target=place, args=("甲", number("513431", 11)), kwargs={"before_commit": hold}),
        threading.Thread(target=place, args=("乙", number("513431", 12)), kwargs={"before_create": start}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not errors
    with app.app_context():
        assert_cells_consistent()
        assert db.session.scalar(sa.select(sa.func.sum(PlacementCell.placements))) == 4
