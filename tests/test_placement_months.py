"""People in work during a period from the monthly bitmaps (``registry.placements.months``): always equal to
COUNT(DISTINCT) over the placements themselves, for every period shape (whole months, a quarter cut off mid-month,
a period starting mid-month, across years), filter (pairings, programme) and grouping (destination, county), after
every kind of write, and when a county's rows do not reach the period (counted from the placements)."""

import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from registry.kernel.extensions import db
from registry.kernel.periods import Period, Quarter
from registry.pairings.models import Pairing
from registry.placements import figures, months
from registry.placements.models import Destination, Household, Placement, PlacementMonth, PlacementMonthSpan
from registry.placements.services import update_placement
from tests.factories import make_placement
from tests.test_placement_cells import number, populate

PERIODS = [
    Period(date(2022, 1, 1), date(2022, 12, 31)),
    Period(date(2023, 4, 1), date(2023, 6, 30)),
    Period(date(2023, 4, 1), date(2023, 5, 17)),  # a running quarter cut off mid-month
    Period(date(2021, 3, 9), date(2021, 9, 30)),  # starting mid-month
    Period(date(2019, 11, 20), date(2020, 2, 3)),  # both edges mid-month, across a year
    Period(date(2024, 7, 15), date(2024, 7, 15)),  # one day
    Quarter.of(2018, 1),
]


def from_bitmaps(counties, period, pairings=None, programme_id=None) -> dict:
    people = months.people_in_work(counties, period, pairings=pairings, programme_id=programme_id)
    result = {"all": len(people.all), "lifted": len(people.lifted)}
    for d, (a, b) in people.by_destination.items():
        if len(a):
            result[("destination", d)] = (len(a), len(b))
    for c, (a, b) in people.by_county.items():
        if len(a):
            result[("county", c)] = (len(a), len(b))
    return result


def assert_equal_everywhere(w):
    db.session.flush()
    counties = [w.zhaojue.id, w.butuo.id, w.cangxi.id]
    programmes = set(db.session.scalars(sa.select(Pairing.programme_id)))
    zhaojue_pairings = sa.select(Pairing.id).where(Pairing.west_unit_id == w.zhaojue.id)
    for period in PERIODS:
        for chosen in (counties, counties[:1], counties[1:]):
            assert from_bitmaps(chosen, period) == figures.counted_in_sql(chosen, None, period), (period, chosen)
            assert from_bitmaps(chosen, period, zhaojue_pairings) == figures.counted_in_sql(
                chosen, zhaojue_pairings, period
            ), (period, chosen, "pairings")
            for programme_id in programmes:
                assert from_bitmaps(chosen, period, programme_id=programme_id) == figures.counted_in_sql(
                    chosen, None, period, programme_id
                ), (period, chosen, programme_id)


@pytest.fixture
def w(world_records):
    db.session.flush()
    return world_records


def test_bitmap_figures_equal_a_plain_count_after_every_write(w):
    populate(w, n=120)
    assert_equal_everywhere(w)
    rng = random.Random(3)
    placements = db.session.scalars(sa.select(Placement).order_by(Placement.id)).all()
    for placement in rng.sample(placements, 12):
        change = rng.choice([
            {"end_date": placement.start_date + timedelta(days=rng.randint(0, 400))},
            {"end_date": None},
            {"start_date": date(2019, rng.randint(1, 12), rng.randint(1, 28)), "end_date": None},
            {"origin_county_id": w.cangxi.id},
            {"household": rng.choice(list(Household))},
            {"destination_class": rng.choice(list(Destination))},
        ])  # fmt: skip
        if change.get("end_date") and change["end_date"] > date.today():
            change["end_date"] = None
        update_placement(placement, change, actor=w.admin)
    assert_equal_everywhere(w)


def test_the_report_figures_read_the_bitmaps(w):
    populate(w, n=60, seed=11)
    counties = [w.zhaojue.id, w.butuo.id, w.cangxi.id]
    period = Period(date(2022, 1, 1), date(2022, 8, 14))
    plain = figures.counted_in_sql(counties, None, period)
    assert figures.people_in_work(counties, None, period) == (plain["all"], plain["lifted"])
    assert figures.people_by_county(counties, None, period) == {
        k[1]: v for k, v in plain.items() if isinstance(k, tuple) and k[0] == "county"
    }
    assert figures.people_by_destination(counties, None, period) == {
        k[1]: v[0] for k, v in plain.items() if isinstance(k, tuple) and k[0] == "destination"
    }
    assert figures.people_by_destination(counties, None, period, lifted_only=True) == {
        k[1]: v[1] for k, v in plain.items() if isinstance(k, tuple) and k[0] == "destination" and v[1]
    }


def test_a_period_past_a_county_span_is_counted_from_the_placements(w):
    populate(w, n=50, seed=5)
    counties = [w.zhaojue.id, w.butuo.id, w.cangxi.id]
    # Rows built last year: open placements stop at last December; this year's figures must still be exact.
    db.session.execute(sa.update(PlacementMonthSpan).values(last_month=months.span_for() - 12))
    db.session.execute(sa.delete(PlacementMonth).where(PlacementMonth.month > months.span_for() - 12))
    this_year = Period(date(date.today().year, 1, 1), date.today())
    assert from_bitmaps(counties, this_year) == figures.counted_in_sql(counties, None, this_year)
    # The nightly task moves the spans on and builds the missing months.
    assert months.extend_spans() == len({p.origin_county_id for p in db.session.scalars(sa.select(Placement))})
    assert set(db.session.scalars(sa.select(PlacementMonthSpan.last_month))) == {months.span_for()}
    assert months.extend_spans() == 0
    assert from_bitmaps(counties, this_year) == figures.counted_in_sql(counties, None, this_year)


def test_rebuilding_everything_gives_the_same_rows(w):
    populate(w, n=40, seed=9)

    def rows():
        return sorted(
            (r.origin_county_id, r.month, r.pairing_id or 0, r.destination_class, r.people, r.lifted)
            for r in db.session.scalars(sa.select(PlacementMonth))
        )

    db.session.flush()
    before = rows()
    assert before
    months.rebuild_all()
    assert rows() == before


def test_a_county_without_rows_is_counted_from_its_placements(w):
    """After the upgrade that adds the rows, before ``flask figures refresh``: exact, only slower."""
    make_placement(w.butuo, id_number=number("513429", 1), start_date=date(2023, 2, 1))
    db.session.execute(sa.delete(PlacementMonth))
    db.session.execute(sa.delete(PlacementMonthSpan))
    period = Period(date(2023, 1, 1), date(2023, 3, 31))
    assert from_bitmaps([w.butuo.id], period) == figures.counted_in_sql([w.butuo.id], None, period)
    assert from_bitmaps([w.butuo.id], period)["all"] >= 1


def test_progress_of_many_units_equals_each_units_own(w):
    """The ranking's one pass over every unit gives each unit exactly what its own progress gives: money and counts
    added up over its counties, people counted once per unit (a person placed by 昭觉 and 布拖 is one 凉山州 person)."""
    from registry.agreements.models import Agreement
    from registry.agreements.services import progress_many
    from registry.counties.models import Unit

    populate(w, n=80, seed=21)
    units = [db.session.get(Unit, u.id) for u in (w.zhaojue, w.butuo, w.cangxi, w.liangshan, w.guangyuan, w.sichuan)]
    for agreement in db.session.scalars(sa.select(Agreement)):
        cutoff = date(agreement.year, 9, 30)
        together = progress_many(agreement, units, cutoff)
        for unit in units:
            assert together[unit.id] == progress_many(agreement, [unit], cutoff)[unit.id], (agreement.title, unit.name)
        people = {u.id: {p.code: p.actual for p in together[u.id]}["labour_total"] for u in units}
        assert people[w.liangshan.id] <= people[w.zhaojue.id] + people[w.butuo.id]


def test_flask_figures_refresh_builds_what_an_upgrade_left_missing(app, w):
    populate(w, n=20, seed=4)
    db.session.execute(sa.delete(PlacementMonth))
    db.session.execute(sa.delete(PlacementMonthSpan))
    db.session.commit()
    counties = {c for c in db.session.scalars(sa.select(Placement.origin_county_id).distinct())}
    result = app.test_cli_runner().invoke(args=["figures", "refresh"])
    assert result.exit_code == 0 and f"已重建 {len(counties)} 个县" in result.output
    assert set(db.session.scalars(sa.select(PlacementMonthSpan.origin_county_id))) == counties
    assert "已重建 0 个县" in app.test_cli_runner().invoke(args=["figures", "refresh"]).output
    assert f"已重建 {len(counties)} 个县" in app.test_cli_runner().invoke(args=["figures", "refresh", "--all"]).output


# ---- a write touches only the months it spans (issue 23) -------------------------------------------------------


def month_rows() -> dict:
    """{(county, month, pairing, destination): (row id, people, lifted)} as stored: a row rewritten (deleted and
    inserted) gets a new id."""
    return {
        (r.origin_county_id, r.month, r.pairing_id, r.destination_class): (r.id, r.people, r.lifted)
        for r in db.session.scalars(sa.select(PlacementMonth))
    }


#: The real builders, for the rebuild the tests compare with while ``refuse_county_rebuilds`` holds.
_REAL = {"refresh_months": months.refresh_months, "_rebuild": months._rebuild}


def rebuilt_rows() -> dict:
    """The rows a rebuild from scratch makes (then the stored ones are put back as they were)."""
    db.session.flush()
    savepoint = db.session.begin_nested()
    patched = {name: getattr(months, name) for name in _REAL}
    try:
        for name, function in _REAL.items():
            setattr(months, name, function)
        months.rebuild_all()
    finally:
        for name, function in patched.items():
            setattr(months, name, function)
    rows = {k: v[1:] for k, v in month_rows().items()}
    savepoint.rollback()
    return rows


def assert_rows_are_a_rebuild():
    db.session.flush()
    assert {k: v[1:] for k, v in month_rows().items()} == rebuilt_rows()


def refuse_county_rebuilds(monkeypatch):
    """From here on, fail a write that rebuilds a county's months the old way (January of the start year to the
    span), or rebuilds any range of months: the county's first placement builds its rows, every later write
    patches them."""

    def refused(*args, **kwargs):
        raise AssertionError("a placement write rebuilt a county's months from the start year")

    monkeypatch.setattr(months, "refresh_months", refused)
    monkeypatch.setattr(months, "_rebuild", refused)


def test_an_edit_rewrites_only_the_rows_of_the_months_it_spans(w, monkeypatch):
    populate(w, n=120, seed=13)
    refuse_county_rebuilds(monkeypatch)
    span = months.span_for()
    placement = db.session.scalars(
        sa.select(Placement).where(Placement.end_date.is_(None), Placement.start_date < date(2021, 1, 1))
        .order_by(Placement.id)
    ).first()  # fmt: skip
    old_first = months.month_of(placement.start_date)
    before = month_rows()
    # Still in work since before 2021 (every month to the span), ended after 100 days, moved to another group.
    new_start = placement.start_date + timedelta(days=40)
    change = {"start_date": new_start, "end_date": new_start + timedelta(days=100),
              "destination_class": next(d for d in Destination if d is not placement.destination_class)}  # fmt: skip
    old_key = (placement.pairing_id, placement.destination_class)
    update_placement(placement, change, actor=w.admin)
    db.session.flush()
    after = month_rows()
    new_key = (placement.pairing_id, placement.destination_class)
    spanned = set(range(old_first, span + 1))  # the old state's months; the new one's lie within them
    assert months.month_of(placement.end_date) < span
    touched = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert touched, "the edit changed some rows"
    for county, month, pairing, destination in touched:
        assert county == placement.origin_county_id and month in spanned, (month, spanned)
        assert (pairing, destination) in (old_key, new_key)
    # Every other row is the same row, not a copy: same id, same bytes.
    for key in before.keys() - touched:
        assert after[key] == before[key]
    assert_rows_are_a_rebuild()


def test_a_person_placed_twice_keeps_the_months_their_other_placement_covers(w, monkeypatch):
    one = make_placement(w.butuo, id_number=number("513429", 7), start_date=date(2022, 1, 10), end_date=None)
    refuse_county_rebuilds(monkeypatch)
    other = make_placement(w.butuo, id_number=number("513429", 7), start_date=date(2022, 6, 1),
                           end_date=date(2022, 12, 31))  # fmt: skip
    assert one.person_id == other.person_id and one.destination_class == other.destination_class
    update_placement(one, {"end_date": date(2022, 3, 31)}, actor=w.admin)  # June to December: still the other's
    assert_rows_are_a_rebuild()
    june = Period(date(2022, 6, 1), date(2022, 6, 30))
    assert from_bitmaps([w.butuo.id], june)["all"] == 1
    update_placement(other, {"household": Household.LIFTED}, actor=w.admin)
    assert_rows_are_a_rebuild()
    update_placement(one, {"end_date": None}, actor=w.admin)
    assert_rows_are_a_rebuild()


def test_a_deleted_placement_leaves_the_months_it_spanned(w, monkeypatch):
    populate(w, n=40, seed=17)
    refuse_county_rebuilds(monkeypatch)
    placement = db.session.scalars(sa.select(Placement).order_by(Placement.id.desc())).first()
    was = months.spanned(placement)
    db.session.delete(placement)
    db.session.flush()
    months.patch_months([was])
    assert_rows_are_a_rebuild()
    assert_equal_everywhere(w)


def test_many_edits_each_patch_and_stay_a_rebuild(w, monkeypatch):
    populate(w, n=80, seed=19)
    refuse_county_rebuilds(monkeypatch)
    rng = random.Random(5)
    for placement in rng.sample(db.session.scalars(sa.select(Placement)).all(), 15):
        change = rng.choice([
            {"end_date": min(date.today(), placement.start_date + timedelta(days=rng.randint(0, 700)))},
            {"end_date": None},
            {"origin_county_id": w.cangxi.id},
            {"household": rng.choice(list(Household))},
            {"start_date": placement.start_date - timedelta(days=rng.randint(1, 90))},
        ])  # fmt: skip
        update_placement(placement, change, actor=w.admin)
    assert_rows_are_a_rebuild()
    assert_equal_everywhere(w)


def test_an_import_rebuilds_only_the_months_its_rows_span(w, monkeypatch):
    from tests.test_import_placements import _csv, _import, _row

    populate(w, n=40, seed=23)
    db.session.commit()
    rebuilt = []
    real = months._rebuild
    monkeypatch.setattr(months, "_rebuild", lambda county, first, last: (rebuilt.append((county, first, last)),
                                                                         real(county, first, last)))  # fmt: skip
    monkeypatch.setattr(months, "refresh_months", lambda *a, **k: pytest.fail("a whole county rebuilt"))
    result = _import(_csv([_row(就业开始="2023-05-10", 就业结束="2023-08-20")]), w.admin)
    assert not result.errors and result.created == 1
    # One range per year at most, and only May to August 2023.
    assert rebuilt == [(w.zhaojue.id, months.month_of(date(2023, 5, 1)), months.month_of(date(2023, 8, 1)))]
    assert_rows_are_a_rebuild()
