"""The report cache: figures and PDFs by unit, quarter, scope and data version; PDFs rendered in a process pool."""

import dataclasses
from datetime import date

import pytest
import sqlalchemy as sa

from registry.auth.models import User
from registry.counties.models import Unit
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.pairings.models import Pairing
from registry.projects.models import FundStage, Project
from registry.reports import cache, queries, workers
from registry.reports.models import ReportCache
from registry.reports.services import save_narrative
from tests.conftest import PASSWORD
from tests.factories import make_placement, make_transaction

Q = Quarter.parse("2024Q3")


@pytest.fixture
def scoped(app, world):
    """The world plus a 昭觉 placement from before the 浙川 pairing (no pairing): the county counts it, the
    Zhejiang liaison, limited to their pairings, does not."""
    with app.app_context():
        zhaojue = db.session.get(Unit, world.zhaojue)
        make_placement(zhaojue, person_name="阿苦", id_number="513431198807070014", start_date=date(2020, 5, 1))
        db.session.commit()
    return world


def rows(kind=None):
    # A new transaction: the cache is written on a connection of its own, after this session's snapshot began.
    db.session.commit()
    stmt = sa.select(ReportCache)
    if kind:
        stmt = stmt.where(ReportCache.kind == kind)
    return db.session.scalars(stmt.order_by(ReportCache.id)).all()


def same(a, b):
    """Equal but for the moment they were made."""
    return dataclasses.replace(a, generated_at=b.generated_at) == b


def test_cached_figures_equal_fresh_ones_and_are_served_without_querying(app, scoped, monkeypatch):
    with app.app_context():
        zhaojue = db.session.get(Unit, scoped.zhaojue)
        county = db.session.get(User, scoped.county)
        first = cache.figures(zhaojue, Q, county)
        fresh = queries.quarter_figures(zhaojue, Q)
        assert same(first, fresh) and first.people_year_to_date == 2
        assert [(r.kind, r.unit_id, r.quarter, r.scope) for r in rows()] == [("figures", zhaojue.id, "2024Q3", "all")]

        def refuse(*args, **kwargs):
            raise AssertionError("the figures should have come from the cache")

        monkeypatch.setattr(queries, "quarter_figures", refuse)
        again = cache.figures(zhaojue, Q, county)
        assert again == first and again is not first


@pytest.mark.parametrize("write", ["placement", "transaction", "narrative"])
def test_any_write_changes_the_version_and_the_next_dashboard_shows_it(app, scoped, as_user, write):
    client = as_user("county")
    assert client.get(f"/reports/{scoped.zhaojue}/2024Q3").status_code == 200
    with app.app_context():
        before = cache.unit_version(db.session.get(Unit, scoped.zhaojue))
        zhaojue = db.session.get(Unit, scoped.zhaojue)
        county = db.session.get(User, scoped.county)
        cached = cache.figures(zhaojue, Q, county)
        if write == "placement":
            make_placement(zhaojue, person_name="阿伍", id_number="513431199203041233", start_date=date(2024, 8, 1))
        elif write == "transaction":
            project = db.session.get(Project, scoped.project_a)
            make_transaction(project, FundStage.DISBURSED, 7_000_00, on=date(2024, 8, 2))
        else:
            save_narrative(zhaojue, Q, {"highlights": "新建帮扶车间三个"}, actor=county)
        db.session.commit()
        assert cache.unit_version(zhaojue) != before
        after = cache.figures(zhaojue, Q, county)
        assert after != cached and same(after, queries.quarter_figures(zhaojue, Q))
        # Entries of the old version went when the new one was stored.
        assert {r.version for r in rows()} == {cache.unit_version(zhaojue)}
    page = client.get(f"/reports/{scoped.zhaojue}/2024Q3").get_data(as_text=True)
    if write == "placement":
        assert after.people_year_to_date == cached.people_year_to_date + 1
    elif write == "transaction":
        assert after.funds_total.disbursed == cached.funds_total.disbursed + 7_000_00
        assert "0.70" in page  # 7,000 元 disbursed in 8月, in 万元 on the chart
    else:
        assert "新建帮扶车间三个" in page


def test_a_late_commit_of_an_older_audit_id_changes_the_version(app, world):
    """PostgreSQL numbers audit events at insert: a transaction holding a lower id may commit after a higher one."""
    with app.app_context():
        newest = db.session.scalar(sa.select(sa.func.max(AuditEvent.id)))
        db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == newest - 1))
        db.session.commit()
        before = cache.data_version()
        db.session.add(AuditEvent(id=newest - 1, action="create", entity_type="test", summary="late"))
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.max(AuditEvent.id))) == newest
        assert cache.data_version() != before


def test_logins_leave_the_version_alone(app, world, as_user):
    with app.app_context():
        before = cache.data_version()
    as_user("county")
    as_user("liaison")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "login")) == 2
        assert cache.data_version() == before


def test_a_liaisons_entry_is_never_served_to_a_county_user(app, scoped, as_user):
    liaison, county = as_user("liaison"), as_user("county")
    url = f"/reports/{scoped.zhaojue}/2024Q3"
    limited = liaison.get(url).get_data(as_text=True)
    assert "仅含浙江省的结对关系" in limited
    full = county.get(url).get_data(as_text=True)
    assert "仅含" not in full
    with app.app_context():
        scopes = [r.scope for r in rows("figures")]
        assert scopes[0].startswith("pairings:") and scopes[1] == "all"
        zhaojue = db.session.get(Unit, scoped.zhaojue)
        as_liaison = cache.figures(zhaojue, Q, db.session.get(User, scoped.liaison))
        as_county = cache.figures(zhaojue, Q, db.session.get(User, scoped.county))
        assert (as_liaison.people_year_to_date, as_county.people_year_to_date) == (1, 2)
        # Another liaison with other pairings gets an entry of their own.
        other = cache.scope_for(db.session.get(User, scoped.liaison))
        assert other.pairings == [scoped.a] and other.key == scopes[0]
    # And the PDFs: the county's is not the liaison's.
    liaison_pdf = liaison.get(url + ".pdf")
    county_pdf = county.get(url + ".pdf")
    assert liaison_pdf.status_code == county_pdf.status_code == 200
    assert liaison_pdf.data != county_pdf.data
    assert county.get(url + ".pdf").data == county_pdf.data  # served from the cache, byte for byte
    with app.app_context():
        assert len(rows("pdf")) == 2
        assert len({r.scope for r in rows("pdf")}) == 2


def test_pdf_renders_in_a_pool_process_and_a_slow_render_answers_503(app, world, as_user, monkeypatch):
    client = as_user("county")
    monkeypatch.setitem(app.config, "REPORT_PDF_WORKERS", 1)
    response = client.get(f"/reports/{world.zhaojue}/2024Q3.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    import os

    assert any(key[0] == os.getpid() and key[2] == 1 for key in workers._pools)
    monkeypatch.setitem(app.config, "REPORT_PDF_TIMEOUT", 0)
    response = client.get(f"/reports/{world.zhaojue}/2024Q2.pdf")
    assert response.status_code == 503 and "报告生成时间过长" in response.get_data(as_text=True)


def test_a_tampered_entry_is_ignored(app, scoped):
    with app.app_context():
        zhaojue = db.session.get(Unit, scoped.zhaojue)
        county = db.session.get(User, scoped.county)
        good = cache.figures(zhaojue, Q, county)
        (row,) = rows()
        row.body = bytes(32) + row.body[32:]
        db.session.commit()
        assert same(cache.figures(zhaojue, Q, county), good)


def test_an_entry_of_an_earlier_release_is_made_again(app, scoped):
    """A row pickled by a release whose classes lived elsewhere (the kernel's modules moved into registry.kernel)
    names a module that no longer exists: it is made again, as on a miss, not a 500."""
    import pickle
    import sys
    import types

    with app.app_context():
        zhaojue = db.session.get(Unit, scoped.zhaojue)
        county = db.session.get(User, scoped.county)
        good = cache.figures(zhaojue, Q, county)
        (row,) = rows()
        # A Quarter as an earlier release pickled it, from the module it lived in then.
        earlier = types.ModuleType("registry.periods")
        earlier.Quarter = type("Quarter", (), {"__module__": "registry.periods"})
        sys.modules["registry.periods"] = earlier
        try:
            payload = pickle.dumps(earlier.Quarter(), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            del sys.modules["registry.periods"]
        with pytest.raises(ModuleNotFoundError):
            pickle.loads(payload)  # noqa: S301 - the test's own bytes
        row.body = cache._sign(payload) + payload
        db.session.commit()
        assert same(cache.figures(zhaojue, Q, county), good)


def test_the_cache_stays_within_its_size(app, scoped, monkeypatch):
    with app.app_context():
        county = db.session.get(User, scoped.county)
        zhaojue, liangshan, sichuan = (db.session.get(Unit, u) for u in (scoped.zhaojue, scoped.liangshan,
                                                                          scoped.sichuan))  # fmt: skip
        for unit, quarter in ((zhaojue, Q), (liangshan, Q), (sichuan, Q), (zhaojue, Quarter.parse("2024Q2"))):
            cache.figures(unit, quarter, county)
        last = rows()[-1]
        sizes = [r.size for r in rows()]
        db.session.delete(last)
        db.session.commit()
        # Room for the two newest entries only: storing the fourth again pushes out the two oldest.
        monkeypatch.setitem(app.config, "REPORT_CACHE_MAX_MB", (sizes[2] + sizes[3]) / 1024 / 1024)
        cache.figures(zhaojue, Quarter.parse("2024Q2"), county)
        assert [(r.unit_id, r.quarter) for r in rows()] == [(sichuan.id, "2024Q3"), (zhaojue.id, "2024Q2")]


def test_pairings_of_a_liaison_are_part_of_the_scope(app, scoped):
    with app.app_context():
        liaison = db.session.get(User, scoped.liaison)
        before = cache.scope_for(liaison)
        pairing = db.session.get(Pairing, scoped.a)
        from tests.factories import make_pairing

        make_pairing(db.session.get(Unit, scoped.cixi), db.session.get(Unit, scoped.butuo), pairing.programme)
        db.session.commit()
        after = cache.scope_for(liaison)
        assert len(after.pairings) == 2 and after.key != before.key


def _versions(world) -> dict[str, str]:
    units = {name: db.session.get(Unit, getattr(world, name)) for name in ("zhaojue", "butuo", "cangxi", "liangshan",
                                                                           "guangyuan", "sichuan")}  # fmt: skip
    return {name: cache.unit_version(unit) for name, unit in units.items()}


def _changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


@pytest.mark.parametrize(
    ("write", "changed"),
    [
        ("placement in 昭觉", {"zhaojue", "liangshan", "sichuan"}),
        ("placement in 苍溪", {"cangxi", "guangyuan", "sichuan"}),
        ("fund transaction of a 昭觉 project", {"zhaojue", "liangshan", "sichuan"}),
        ("narrative of 昭觉", {"zhaojue", "butuo", "cangxi", "liangshan", "guangyuan", "sichuan"}),
        ("a new pairing", {"zhaojue", "butuo", "cangxi", "liangshan", "guangyuan", "sichuan"}),
        ("a login", set()),
        ("a write rolled back", set()),
    ],
)
def test_a_write_changes_the_versions_of_exactly_the_units_it_concerns(app, scoped, write, changed):
    """A county's cached figures survive writes in other counties and prefectures; the units above a county see its
    writes; what is not tied to a unit (narratives are keyed by unit and quarter but read by every summary,
    pairings) changes every unit's."""
    with app.app_context():
        before = _versions(scoped)
        zhaojue, cangxi = db.session.get(Unit, scoped.zhaojue), db.session.get(Unit, scoped.cangxi)
        admin = db.session.get(User, scoped.admin)
        if write == "placement in 昭觉":
            make_placement(zhaojue, person_name="阿伍", id_number="513431199203041233", start_date=date(2024, 8, 1))
        elif write == "placement in 苍溪":
            make_placement(cangxi, person_name="王芳", id_number="510824199203041239", start_date=date(2024, 8, 1))
        elif write == "fund transaction of a 昭觉 project":
            make_transaction(db.session.get(Project, scoped.project_a), FundStage.PLANNED, 1_00, on=date(2024, 8, 2))
        elif write == "narrative of 昭觉":
            save_narrative(zhaojue, Q, {"highlights": "亮点"}, actor=admin)
        elif write == "a new pairing":
            from tests.factories import make_pairing

            pairing = db.session.get(Pairing, scoped.a)
            make_pairing(db.session.get(Unit, scoped.cixi), db.session.get(Unit, scoped.butuo), pairing.programme)
        elif write == "a write rolled back":
            make_placement(zhaojue, person_name="阿伍", id_number="513431199203041233", start_date=date(2024, 8, 1))
            db.session.rollback()
        if write == "a login":
            response = app.test_client().post("/login", data={"username": "county", "password": PASSWORD})
            assert response.status_code == 302 and "/login" not in response.headers["Location"]
        else:
            db.session.commit()
        assert _changed(before, _versions(scoped)) == changed


def test_a_cached_dashboard_survives_a_write_elsewhere(app, scoped, monkeypatch):
    with app.app_context():
        zhaojue, cangxi = db.session.get(Unit, scoped.zhaojue), db.session.get(Unit, scoped.cangxi)
        county = db.session.get(User, scoped.county)
        first = cache.figures(zhaojue, Q, county)
        db.session.commit()  # a new transaction: the cache was written on a connection of its own meanwhile
        make_placement(cangxi, person_name="王芳", id_number="510824199203041239", start_date=date(2024, 8, 1))
        db.session.commit()

        def refuse(*args, **kwargs):
            raise AssertionError("a write in 苍溪 should leave 昭觉's figures cached")

        monkeypatch.setattr(queries, "quarter_figures", refuse)
        assert cache.figures(zhaojue, Q, county) == first


def test_warming_makes_the_summaries_ahead_and_only_what_is_out_of_date(app, scoped, monkeypatch):
    with app.app_context():
        liangshan, sichuan = db.session.get(Unit, scoped.liangshan), db.session.get(Unit, scoped.sichuan)
        assert cache.warm([sichuan, liangshan], Q) == 2
        assert cache.warm([sichuan, liangshan], Q) == 0  # still current
        make_placement(db.session.get(Unit, scoped.cangxi), person_name="王芳", id_number="510824199203041239",
                       start_date=date(2024, 8, 1))  # fmt: skip
        db.session.commit()
        assert cache.warm([sichuan, liangshan], Q) == 1  # 苍溪 is in the province, not in 凉山州

        def refuse(*args, **kwargs):
            raise AssertionError("warmed figures should be served from the cache")

        monkeypatch.setattr(queries, "quarter_figures", refuse)
        province = db.session.get(User, scoped.province)
        assert cache.figures(sichuan, Q, province).unit.id == sichuan.id
        assert cache.figures(liangshan, Q, province).unit.id == liangshan.id
