"""What the quarter-close tests share: the world's users by name and a county quarter taken to approval."""

import sqlalchemy as sa

from registry.closing import services
from registry.closing.models import ReportVersion
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter

Q = Quarter.of(2024, 2)


def user(username):
    from registry.auth.models import User  # deferred: keeps this module importable before the app's models

    return db.session.scalar(sa.select(User).where(User.username == username))


def approved(app, unit_name="昭觉县", quarter=Q) -> ReportVersion:
    """A county quarter submitted, reviewed and approved through the services (one render); its version 1."""
    with app.test_request_context():
        unit = db.session.scalar(sa.select(Unit).where(Unit.name == unit_name))
        services.submit(unit, quarter, actor=user("county"))
        services.review(unit, quarter, passed=True, comment="", actor=user("prefecture"))
        services.approve(unit, quarter, actor=user("province"))
        db.session.commit()
        version = db.session.scalar(sa.select(ReportVersion))
        db.session.expunge(version)
        return version


def unlocked(app, unit_name="昭觉县", quarter=Q) -> None:
    """The approved quarter unlocked again (asked by the county, granted by the province), to be filled in anew."""
    with app.test_request_context():
        unit = db.session.scalar(sa.select(Unit).where(Unit.name == unit_name))
        unlock = services.request_unlock(unit, quarter, "更正项目数据", actor=user("county"))
        db.session.flush()
        services.decide_unlock(unit, quarter, unlock.id, grant=True, actor=user("province"))
        db.session.commit()
