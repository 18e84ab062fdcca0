"""Defects around the quarter close (#24 section 4, and the download of record of section 1): the public
verification page answers any input with a page; an approval renders and signs outside the write transaction;
two first submissions of one quarter at once; after approval the report's download is the version of record."""

import threading

import pytest
import sqlalchemy as sa

from registry.closing import services, signing
from registry.closing.models import QuarterReport, ReportState, ReportVersion
from registry.counties.models import Unit
from registry.extensions import db
from registry.periods import Quarter

Q = Quarter.of(2024, 2)


@pytest.fixture(scope="session")
def signing_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("signing")
    signing.generate_self_signed(folder / "signing.p12", folder / "signing.pass", "测试协作办")
    return folder / "signing.p12", (folder / "signing.pass").read_text()


@pytest.fixture(autouse=True)
def _signing(app, signing_files, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNING_PKCS12", str(signing_files[0]))
    monkeypatch.setitem(app.config, "SIGNING_PASSPHRASE", signing_files[1])


def _user(username):
    from registry.auth.models import User

    return db.session.scalar(sa.select(User).where(User.username == username))


def _approved(app, unit_name="昭觉县") -> ReportVersion:
    """A county quarter submitted, reviewed and approved through the services; its version 1."""
    with app.test_request_context():
        unit = db.session.scalar(sa.select(Unit).where(Unit.name == unit_name))
        services.submit(unit, Q, actor=_user("county"))
        services.review(unit, Q, passed=True, comment="", actor=_user("prefecture"))
        services.approve(unit, Q, actor=_user("province"))
        db.session.commit()
        version = db.session.scalar(sa.select(ReportVersion))
        db.session.expunge(version)
        return version


# ---- the public verification page -------------------------------------------------------------------------------


def test_the_verification_page_answers_any_input_with_a_page(app, world, client):
    version = _approved(app)
    base = f"/closing/verify/{version.token}"
    # A NUL in the query is refused for the whole site with a page of its own (errors.py).
    assert client.get(f"{base}?h=%00").status_code == 400
    for h in ("中文", "%E4%B8%AD", "%FF%FE", "é" * 64, "0" * 10_000, "%F0%9F%98%80", "\u200b" + "a" * 63):
        response = client.get(f"{base}?h={h}")
        assert response.status_code == 422, (h, response.status_code)
        assert "指纹不一致" in response.get_data(as_text=True)
    assert "指纹一致" in client.get(f"{base}?h={version.figures_sha256.upper()}").get_data(as_text=True)
    for token in ("中文", "%00", "a%00b", "%E4%B8%AD", "x" * 5000, "%FF", ".."):
        response = client.get(f"/closing/verify/{token}?h=中")
        assert response.status_code == 404, (token, response.status_code)
        assert "没有找到该报告版本" in response.get_data(as_text=True)
    # The typed fingerprint of the form (CSRF is off in tests).
    response = client.post(base, data={"figures_hash": "指纹"})
    assert response.status_code == 422 and "指纹不一致" in response.get_data(as_text=True)


# ---- two first submissions at once ------------------------------------------------------------------------------


def _waiting_on_a_lock(engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


def test_two_first_submissions_of_a_quarter_at_once(app, world, as_user, monkeypatch):
    """The first request has inserted the quarter's report row and not committed; the second, started then, finds
    no row and inserts its own (PostgreSQL: it waits on the unique key, SQLite: on the write lock at BEGIN). When
    the first commits, the second answers in Chinese: never a 500."""
    import time

    first, second = as_user("county"), as_user("county")
    inserted, go = threading.Event(), threading.Event()
    submit = services.submit

    def paused(unit, quarter, *, actor):
        report = submit(unit, quarter, actor=actor)
        if threading.current_thread().name == "first":
            inserted.set()
            assert go.wait(30)
        return report

    monkeypatch.setattr(services, "submit", paused)
    answers = {}

    def post(name, client):
        answers[name] = client.post(f"/closing/{world.zhaojue}/{Q}/submit")

    a = threading.Thread(target=post, args=("first", first), name="first")
    a.start()
    assert inserted.wait(30)
    b = threading.Thread(target=post, args=("second", second), name="second")
    b.start()
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "postgresql":
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(engine) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _waiting_on_a_lock(engine), "the second submission never met the first's row"
        else:
            time.sleep(0.5)  # the second request waits for the write lock at BEGIN (busy timeout 5 s)
    go.set()
    a.join(60)
    b.join(60)
    assert answers["first"].status_code == 302
    assert answers["second"].status_code == 302, answers["second"].status_code
    page = second.get(answers["second"].location).get_data(as_text=True)
    assert "报表已提交" in page or "不能提交" in page
    with app.app_context():
        reports = db.session.scalars(sa.select(QuarterReport).where(QuarterReport.unit_id == world.zhaojue)).all()
        assert [r.state for r in reports] == [ReportState.SUBMITTED]
