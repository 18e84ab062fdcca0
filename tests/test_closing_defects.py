"""Defects around the quarter close (#24 section 4, and the download of record of section 1): the public
verification page answers any input with a page; an approval renders and signs outside the write transaction;
two first submissions of one quarter at once; after approval the report's download is the version of record."""

import pytest
import sqlalchemy as sa

from registry.closing import services, signing
from registry.closing.models import ReportVersion
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
