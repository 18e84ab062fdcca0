"""The home page's own figures and rankings from one pass (``ranking.with_unit``, issue 23): the province's and a
prefecture's pace and the user's county ranking are read together, and each equals what ``for_unit`` and
``for_user`` give apart, on the demo (placements in many counties, people placed by two counties)."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.agreements import ranking
from registry.agreements.models import Agreement
from registry.auth.models import User
from registry.counties.models import Unit
from registry.kernel.extensions import db

pytestmark = pytest.mark.xdist_group("demo")


@pytest.mark.parametrize(("username", "code"), [("sheng", "510000"), ("liangshan", "513400"), ("lingdao", "510000")])
def test_one_pass_equals_the_two_apart(demo_app, username, code):
    today = date.today()
    with demo_app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        unit = db.session.scalar(sa.select(Unit).where(Unit.code == code))
        agreements = db.session.scalars(sa.select(Agreement).where(Agreement.year == today.year)).all()
        assert agreements
        compared = 0
        for agreement in agreements:
            own, counties = ranking.with_unit(agreement, unit, user, today)
            assert own == ranking.for_unit(agreement, unit, today)
            assert counties == ranking.for_user(agreement, user, today)
            compared += len(counties.rows)
        # Not vacuous: rankings with rows and people in work among their figures.
        assert compared > 1
        db.session.remove()


def test_home_page_reads_each_agreement_once(demo_app, monkeypatch):
    """The province office's home page computes each agreement's progress once (not once for the province's own
    figures and again for the ranking)."""
    from registry.agreements import services

    calls = []
    real = services.progress_many

    def counted(agreement, units, cutoff=None):
        calls.append((agreement.id, tuple(sorted(u.id for u in units))))
        return real(agreement, units, cutoff)

    monkeypatch.setattr(ranking, "progress_many", counted)
    monkeypatch.setattr(services, "progress_many", counted)
    client = demo_app.test_client()
    from registry import demo
    from tests.conftest import login

    assert login(client, "sheng", demo.DEMO_PASSWORD).status_code in (302, 303)
    assert client.get("/").status_code == 200
    agreements = [a for a, _ in calls]
    assert agreements and len(agreements) == len(set(agreements)), calls
