"""Notifications at the moment a step is taken (issue 26 item 2): the people of the next step are told, with the
opinion quoted where something was sent back; never the person who acted; nothing for a refused step; e-mail after
the commit through the task queue."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.closing import services as closing
from registry.closing.models import WORKFLOW as REPORTS
from registry.closing.models import QuarterReport
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.problems import services as problems
from registry.problems.models import Problem
from registry.tasks.models import Notification, NotificationSetting
from registry.tasks.queue import configure, huey
from tests.closing_support import Q, user
from tests.test_backup import smtp_server  # noqa: F401 - the local SMTP server fixture


def _told() -> dict[str, list[str]]:
    rows = db.session.execute(
        sa.select(Notification.user_id, Notification.title, Notification.link).order_by(Notification.id)
    ).all()
    names = {u.id: u.username for u in (user(n) for n in ("county", "prefecture", "province", "liaison", "reader"))}
    told: dict[str, list[str]] = {}
    for user_id, title, link in rows:
        told.setdefault(names.get(user_id, str(user_id)), []).append(f"{title} {link}")
    return told


def _zhaojue():
    return db.session.scalar(sa.select(Unit).where(Unit.name == "昭觉县"))


def test_each_step_of_the_close_tells_the_next_people(app, world):
    with app.test_request_context():
        unit = _zhaojue()
        closing.submit(unit, Q, actor=user("county"))
        db.session.commit()
        told = _told()
        assert set(told) == {"prefecture", "liaison"}  # the reviewer and the East side; not the county that acted
        assert told["prefecture"] == [f"昭觉县 {Q.label}报表已提交，请审核。 /reports/{world.zhaojue}/{Q}#closing"]

        db.session.execute(sa.delete(Notification))
        closing.review(unit, Q, passed=True, comment="", actor=user("prefecture"))
        db.session.commit()
        assert list(_told()) == ["province"]

        db.session.execute(sa.delete(Notification))
        report = db.session.scalar(sa.select(QuarterReport))
        REPORTS.take(report, "return", actor=user("province"), opinion="项目资金与台账不符", subject=unit)
        db.session.commit()
        told = _told()
        assert list(told) == ["county"]
        assert told["county"][0].startswith(f"昭觉县 {Q.label}报表被退回，请修改后重新提交。意见：“项目资金与台账不符”")


def test_a_refused_step_tells_nobody(app, world):
    with app.test_request_context():
        with pytest.raises(ServiceError):
            closing.review(_zhaojue(), Q, passed=True, comment="", actor=user("prefecture"))  # not submitted
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0


def test_problem_steps_reach_the_reviewers_and_come_back_to_the_office(app, world):
    with app.test_request_context():
        problem = db.session.get(Problem, world.problem_a)
        problems.add_progress(problem, {"entry_on": date(2024, 9, 1), "text": "已拨付", "amount_fen": 0},
                              actor=user("county"))  # fmt: skip
        problems.request_close(problem, actor=user("county"))
        db.session.commit()
        told = _told()
        assert set(told) == {"prefecture", "province"}  # the supervising offices; the county asked
        assert "申请销号，请审核" in told["prefecture"][0] and f"/problems/{problem.id}" in told["prefecture"][0]

        db.session.execute(sa.delete(Notification))
        problems.return_problem(problem, actor=user("prefecture"), reason="缺少拨付凭证")
        db.session.commit()
        told = _told()
        assert list(told) == ["county"] and "销号被退回" in told["county"][0] and "缺少拨付凭证" in told["county"][0]


def test_the_people_told_are_emailed_after_the_commit(app, world, smtp_server):  # noqa: F811
    configure(app)  # task bodies run in this app (another module's app may have been built since)
    huey.flush()  # the in-memory queue of this test process: only what this test queues
    with app.test_request_context():
        db.session.add(NotificationSetting(user_id=world.prefecture, email="liangshan@example.org"))
        db.session.commit()
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.server_address[1])
        try:
            closing.submit(_zhaojue(), Q, actor=user("county"))
            assert huey.pending_count() == 0  # nothing queued before the step commits
            db.session.commit()
            queued = huey.dequeue()
            assert queued is not None and huey.pending_count() == 0
            huey.execute(queued)
        finally:
            app.config.update(MAIL_SERVER=None, MAIL_PORT=25)
        assert len(smtp_server.messages) == 1 and "liangshan@example.org" in smtp_server.messages[0]
        sent = db.session.scalar(sa.select(Notification).where(Notification.user_id == world.prefecture))
        assert sent.emailed_at is not None
