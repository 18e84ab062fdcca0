"""待办 (issue 26 item 1): each pending step is a to-do of the people who may take it, derived from the records, with
its due date and a link to the place of action; it leaves everyone's list once the step is taken."""

from datetime import date

import sqlalchemy as sa

from registry.closing import services as closing
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.todos import SOURCES, todos_for
from registry.problems import services as problems
from registry.problems.models import Problem
from tests.closing_support import Q, user

#: A day in the quarter after Q (2024Q2): Q is the quarter that ended last, due 2024-07-10.
IN_Q3 = date(2024, 7, 15)


def _todos(name, today=IN_Q3, kind="quarter_report"):
    return [(t.action, t.title) for t in todos_for(user(name), today, kinds=[kind])]


def _zhaojue():
    return db.session.scalar(sa.select(Unit).where(Unit.name == "昭觉县"))


def test_every_source_is_registered_by_its_module(app):
    assert {"quarter_report", "problem", "asset"} <= set(SOURCES)


def test_a_quarter_walks_from_one_persons_list_to_the_next(app, world):
    title = f"昭觉县 {Q.label}报表"
    with app.test_request_context():
        unit = _zhaojue()
        assert ("待提交", title) in _todos("county")
        due = next(t for t in todos_for(user("county"), IN_Q3, kinds=["quarter_report"]) if t.title == title).due
        assert due == date(2024, 7, 10)
        narrative = next(t for t in todos_for(user("county"), IN_Q3, kinds=["quarter_report"]) if t.action == "待填写")
        assert narrative.due == date(2024, 7, 15) and narrative.url.endswith(f"/{Q}#narrative")
        assert ("待审核", title) not in _todos("prefecture")

        closing.submit(unit, Q, actor=user("county"))
        db.session.commit()
        assert ("待提交", title) not in _todos("county")
        assert ("待审核", title) in _todos("prefecture")
        assert ("待确认", title) in _todos("liaison")
        assert not [t for t in _todos("province") if t[1] == title]  # a county's report is approved after review

        closing.review(unit, Q, passed=True, comment="", actor=user("prefecture"))
        db.session.commit()
        assert ("待审核", title) not in _todos("prefecture")
        assert ("待审定", title) in _todos("province")

        closing_return(unit)
        todo = next(t for t in todos_for(user("county"), IN_Q3, kinds=["quarter_report"]) if t.title == title)
        assert todo.action == "已退回，待重新提交" and "项目资金数据与台账不符" in todo.note
        assert not [t for t in _todos("province") if t[1] == title]


def closing_return(unit):
    from registry.closing.models import WORKFLOW, QuarterReport

    report = db.session.scalar(sa.select(QuarterReport).where(QuarterReport.unit_id == unit.id))
    WORKFLOW.take(
        report, "return", actor=user("province"), opinion="项目资金数据与台账不符，请核对后重报", subject=unit
    )
    db.session.commit()


def test_pages_show_the_todos_first_and_count_them(app, world, as_user):
    with app.test_request_context():
        closing.submit(_zhaojue(), Q, actor=user("county"))
        db.session.commit()
    client = as_user("prefecture")
    home = client.get("/").get_data(as_text=True)
    assert "待我办理" in home and home.index("待我办理") < home.index("您好") + 2000
    assert f"昭觉县 {Q.label}报表" in home and 'id="nav-todos"' in home
    page = client.get("/todos/").get_data(as_text=True)
    assert "待审核" in page and f"/reports/{world.zhaojue}/{Q}#closing" in page
    only_problems = client.get("/todos/?kind=problem").get_data(as_text=True)
    assert "待审核" not in only_problems
    # Other people's steps are nobody else's to-do: the county has nothing to review, a reader nothing at all.
    assert "待审核" not in as_user("county").get("/todos/").get_data(as_text=True)
    reader = as_user("reader").get("/todos/").get_data(as_text=True)
    assert "目前没有需要您办理的事项" in reader


def test_problems_reach_their_office_and_their_reviewers(app, world, as_user):
    with app.test_request_context():
        problem = db.session.get(Problem, world.problem_a)
        # The world's problem is past its 整改时限 (2024-09-30): the county office's, not the province's.
        overdue = [t for t in todos_for(user("county"), date(2024, 10, 8), kinds=["problem"])]
        assert [(t.action, t.overdue(date(2024, 10, 8))) for t in overdue] == [("整改已逾期", True)]
        assert todos_for(user("province"), date(2024, 10, 8), kinds=["problem"]) == []
        assert [t.action for t in todos_for(user("county"), date(2024, 9, 20), kinds=["problem"])] == ["整改即将到期"]
        assert todos_for(user("county"), date(2024, 6, 1), kinds=["problem"]) == []

        problems.add_progress(problem, {"entry_on": date(2024, 9, 1), "text": "已拨付", "amount_fen": 0},
                              actor=user("county"))  # fmt: skip
        problems.request_close(problem, actor=user("county"))
        db.session.commit()
        actions = {name: [t.action for t in todos_for(user(name), date(2024, 10, 8), kinds=["problem"])]
                   for name in ("county", "prefecture", "province", "reader")}  # fmt: skip
        assert actions["county"] == []  # the clerk who asked does not sign the county's side (another officer does)
        assert actions["prefecture"] == ["待审核销号"] and actions["province"] == ["待审核销号"]
        assert actions["reader"] == []
    page = as_user("prefecture").get("/todos/?kind=problem").get_data(as_text=True)
    assert "待审核销号" in page and f"/problems/{world.problem_a}" in page


def test_the_overdue_filter(app, world, as_user):
    client = as_user("county")
    everything = client.get("/todos/").get_data(as_text=True)
    assert "整改已逾期" in everything  # the world's problem is long past its deadline
    overdue = client.get("/todos/?overdue=yes").get_data(as_text=True)
    assert "整改已逾期" in overdue and "已逾期" in overdue
    assert client.get("/todos/?kind=nonsense&overdue=maybe").status_code == 200
