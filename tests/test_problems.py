"""The rectification ledger: every transition (退回 and both sides of 双销号 included), who may take each step,
record links through the gate, scope, the database's own rules, and the spreadsheet round trip."""

import io
from datetime import date

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from registry.auth.models import Role
from registry.counties.models import Unit
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.permissions import OutOfScope, can_close_as_supervisor, can_close_locally, scope_filter
from registry.problems import queries, services
from registry.problems.models import Category, Problem, ProblemStep, Source, State, StepAction
from registry.problems.transfer import HEADERS, import_problems
from tests.conftest import login
from tests.factories import make_problem, make_user


@pytest.fixture
def w(world_records):
    world = world_records
    world.county_butuo = make_user(Role.COUNTY, world.butuo, username="county_butuo")
    world.county2 = make_user(Role.COUNTY, world.zhaojue, username="county2")
    world.province2 = make_user(Role.PROVINCE, username="province2")
    world.gy_prefecture = make_user(Role.PREFECTURE, world.guangyuan, username="gy_prefecture")
    db.session.flush()
    return world


def _progress(problem, actor, **extra):
    data = {"entry_on": date(2024, 5, 1), "text": "已督促拨付 300 万元", "rectified_fen": 300_000_00} | extra
    return services.add_progress(problem, data, actor=actor)


def _requested(w, problem=None):
    problem = problem or w.problem_a
    _progress(problem, w.county)
    services.request_close(problem, actor=w.county)
    return problem


# ---- transitions -------------------------------------------------------------------------------------------------


def test_progress_moves_open_to_in_progress_and_adds_up_the_money(w):
    problem = w.problem_a
    assert problem.state is State.OPEN
    _progress(problem, w.county)
    _progress(problem, w.county, entry_on=date(2024, 6, 1), rectified_fen=150_000_00)
    assert problem.state is State.IN_PROGRESS
    assert problem.rectified_fen == 450_000_00
    assert [s.action for s in problem.steps] == [StepAction.CREATE, StepAction.PROGRESS, StepAction.PROGRESS]


def test_closing_needs_progress_first(w):
    with pytest.raises(ServiceError, match="报送整改进展"):
        services.request_close(w.problem_a, actor=w.county)


def test_double_signoff_local_then_supervisor_closes(w):
    problem = _requested(w)
    assert problem.state is State.REQUESTED
    assert services.sign_off(problem, actor=w.county2) == "local"  # the county office (another person)
    assert problem.state is State.REQUESTED  # one side is not enough
    assert services.sign_off(problem, actor=w.prefecture) == "supervisor"
    assert problem.state is State.CLOSED and problem.closed_on == date.today()
    assert problem.local_signed_by_id == w.county2.id and problem.supervisor_signed_by_id == w.prefecture.id
    assert [s.action for s in problem.steps][-3:] == [StepAction.SIGN_LOCAL, StepAction.SIGN_SUPERVISOR,
                                                      StepAction.CLOSE]  # fmt: skip


def test_double_signoff_supervisor_first_then_local(w):
    problem = _requested(w)
    assert services.sign_off(problem, actor=w.province) == "supervisor"
    assert problem.state is State.REQUESTED
    assert services.sign_off(problem, actor=w.county2) == "local"
    assert problem.state is State.CLOSED


def test_the_requester_does_not_sign_the_local_side_unless_the_deployment_allows_it(app, w):
    problem = _requested(w)  # requested by the county clerk
    assert services.sides_for(w.county, problem) == []
    with pytest.raises(ServiceError, match="销号由您申请"):
        services.sign_off(problem, actor=w.county)
    assert services.sides_for(w.county2, problem) == ["local"]
    app.config["PROBLEM_REQUESTER_MAY_SIGN"] = True  # a one-person county office
    try:
        assert services.sides_for(w.county, problem) == ["local"]
        assert services.sign_off(problem, actor=w.county) == "local"
    finally:
        app.config["PROBLEM_REQUESTER_MAY_SIGN"] = False


def test_one_side_cannot_sign_twice_nor_one_person_both_sides(w):
    problem = _requested(w)
    services.sign_off(problem, actor=w.prefecture)
    with pytest.raises(ServiceError, match="已审核过"):
        services.sign_off(problem, actor=w.prefecture)
    with pytest.raises(ServiceError, match="不是这个问题的"):
        services.sign_off(problem, actor=w.province)  # the supervising side is signed already
    # The province's own problem: the province office is both sides, so two different people must sign.
    own = make_problem(w.sichuan)
    _progress(own, w.province)
    services.request_close(own, actor=w.province)
    services.sign_off(own, actor=w.province)
    with pytest.raises(ServiceError, match="已审核过"):
        services.sign_off(own, actor=w.province)
    services.sign_off(own, actor=w.province2)
    assert own.state is State.CLOSED


def test_return_by_either_side_clears_signoffs_and_needs_a_reason(w):
    problem = _requested(w)
    services.sign_off(problem, actor=w.county2)
    with pytest.raises(ServiceError, match="退回理由"):
        services.return_problem(problem, actor=w.prefecture, reason="  ")
    services.return_problem(problem, actor=w.prefecture, reason="佐证材料不全，拨付凭证未附")
    assert problem.state is State.RETURNED and problem.local_signed_at is None
    assert problem.return_reason == "佐证材料不全，拨付凭证未附"
    assert problem.steps[-1].action is StepAction.RETURN and problem.steps[-1].comment.startswith("佐证材料")
    # Back to work: more progress, a new request, and this time the local side returns it.
    _progress(problem, w.county, entry_on=date(2024, 7, 1))
    assert problem.state is State.IN_PROGRESS
    services.request_close(problem, actor=w.county)
    services.return_problem(problem, actor=w.county2, reason="自查发现仍有 20 万元未拨付")
    assert problem.state is State.RETURNED
    # A returned problem may be requested again directly.
    services.request_close(problem, actor=w.county)
    assert problem.state is State.REQUESTED


@pytest.mark.parametrize("state", [State.OPEN, State.IN_PROGRESS, State.CLOSED])
def test_signing_and_returning_only_when_requested(w, state):
    problem = w.problem_a
    if state is not State.OPEN:
        _progress(problem, w.county)
    if state is State.CLOSED:
        services.request_close(problem, actor=w.county)
        services.sign_off(problem, actor=w.county2)
        services.sign_off(problem, actor=w.prefecture)
    with pytest.raises(ServiceError, match="不在申请销号状态"):
        services.sign_off(problem, actor=w.province)
    with pytest.raises(ServiceError, match="不在申请销号状态"):
        services.return_problem(problem, actor=w.province, reason="x")


def test_a_closed_problem_takes_no_progress_and_no_changes(w):
    problem = _requested(w)
    services.sign_off(problem, actor=w.county2)
    services.sign_off(problem, actor=w.prefecture)
    with pytest.raises(ServiceError, match="已销号"):
        _progress(problem, w.county)
    with pytest.raises(ServiceError, match="已销号的问题不能修改"):
        services.update_problem(problem, {"measures": "改写"}, actor=w.county)
    assert services.update_problem(problem, {}, actor=w.county) == {}  # nothing changed: no refusal


# ---- who may take each step --------------------------------------------------------------------------------------


def test_local_and_supervising_rules(w):
    zhaojue, liangshan, sichuan, cangxi = w.zhaojue, w.liangshan, w.sichuan, w.cangxi
    assert can_close_locally(w.county, zhaojue) and not can_close_as_supervisor(w.county, zhaojue)
    assert not can_close_locally(w.county_butuo, zhaojue)  # another county's office
    assert can_close_as_supervisor(w.prefecture, zhaojue) and not can_close_locally(w.prefecture, zhaojue)
    assert not can_close_as_supervisor(w.gy_prefecture, zhaojue)  # another prefecture
    assert can_close_as_supervisor(w.gy_prefecture, cangxi)  # its own county
    assert can_close_locally(w.prefecture, liangshan) and not can_close_as_supervisor(w.prefecture, liangshan)
    assert can_close_as_supervisor(w.province, liangshan) and can_close_as_supervisor(w.province, zhaojue)
    assert can_close_locally(w.province, sichuan) and can_close_as_supervisor(w.province, sichuan)
    for user in (w.admin, w.liaison, w.reader):
        assert not any(f(user, u) for f in (can_close_locally, can_close_as_supervisor) for u in (zhaojue, sichuan))


def test_outsiders_can_neither_sign_nor_return(w):
    problem = _requested(w)
    for user in (w.county_butuo, w.gy_prefecture, w.admin, w.liaison, w.reader):
        with pytest.raises(ServiceError):
            services.sign_off(problem, actor=user)
        with pytest.raises(ServiceError):
            services.return_problem(problem, actor=user, reason="x")
    assert problem.state is State.REQUESTED and problem.local_signed_at is None


def test_writes_stay_in_scope(w):
    with pytest.raises(OutOfScope, match="苍溪县不在您的管辖范围内"):
        services.create_problem(
            {"source": Source.AUDIT, "year": 2024, "found_on": date(2024, 1, 1), "description": "x",
             "category": Category.DATA, "unit_id": w.cangxi.id}, actor=w.county)  # fmt: skip
    with pytest.raises(OutOfScope):
        services.create_problem(
            {"source": Source.AUDIT, "year": 2024, "found_on": date(2024, 1, 1), "description": "x",
             "category": Category.DATA, "unit_id": w.liangshan.id}, actor=w.county)  # fmt: skip
    with pytest.raises(OutOfScope):
        _progress(w.problem_b, w.county)
    with pytest.raises(OutOfScope):
        services.update_problem(w.problem_a, {"unit_id": w.cangxi.id}, actor=w.prefecture)
    for user in (w.liaison, w.reader):
        with pytest.raises(OutOfScope, match="角色"):
            _progress(w.problem_a, user)
    # A prefecture office records its own prefecture-level problem; the province office any.
    assert make_problem(w.liangshan).unit_id == w.liangshan.id
    services.create_problem(
        {"source": Source.SUPERVISION, "year": 2024, "found_on": date(2024, 1, 1), "description": "州级问题",
         "category": Category.CONDUCT, "unit_id": w.liangshan.id}, actor=w.prefecture)  # fmt: skip


def test_scope_of_the_ledger(w):
    province_problem = make_problem(w.sichuan, description="省级问题")
    prefecture_problem = make_problem(w.liangshan, description="州级问题")

    def seen(user):
        return set(db.session.scalars(sa.select(Problem.id).where(scope_filter(user, Problem))))

    everything = {w.problem_a.id, w.problem_b.id, province_problem.id, prefecture_problem.id}
    assert seen(w.admin) == seen(w.province) == everything
    assert seen(w.prefecture) == {w.problem_a.id, prefecture_problem.id}
    assert seen(w.county) == {w.problem_a.id}
    assert seen(w.reader) == {w.problem_a.id, prefecture_problem.id}
    assert seen(w.liaison) == {w.problem_a.id}  # the county's problem of their pairing (a), nothing else


# ---- links through the gate --------------------------------------------------------------------------------------


def test_links_must_be_visible_to_the_writer_and_are_shown_only_to_readers_who_see_them(w):
    with pytest.raises(ServiceError, match="不在您的管辖范围内"):
        services.add_link(w.problem_a, "projects", w.project_b.id, actor=w.county)
    with pytest.raises(ServiceError, match="记录类型"):
        services.add_link(w.problem_a, "users", w.admin.id, actor=w.county)
    services.add_link(w.problem_a, "fund_transactions", w.txn_a.id, actor=w.county)
    services.add_link(w.problem_a, "placements", w.placement_a.id, actor=w.county)
    with pytest.raises(ServiceError, match="已关联"):
        services.add_link(w.problem_a, "placements", w.placement_a.id, actor=w.county)
    # The province office links a Cangxi purchase to Zhaojue's problem (a cross-county case it sees).
    services.add_link(w.problem_a, "purchases", w.purchase_b.id, actor=w.province)
    types = {(link.record_type, record.id) for link, record, _ in queries.visible_links(w.county, w.problem_a)}
    assert ("purchases", w.purchase_b.id) not in types  # the county office does not see Cangxi's purchase
    assert {("projects", w.project_a.id), ("fund_transactions", w.txn_a.id)} <= types
    assert ("purchases", w.purchase_b.id) in {
        (link.record_type, record.id) for link, record, _ in queries.visible_links(w.province, w.problem_a)
    }
    link = w.problem_a.links[0]
    services.remove_link(w.problem_a, link.id, actor=w.county)
    assert link not in w.problem_a.links


# ---- the database's own rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE problems SET state = 'closed', closed_on = '2024-01-01' WHERE id = :id",
        "UPDATE problems SET state = 'done' WHERE id = :id",
        "UPDATE problems SET amount_fen = -1 WHERE id = :id",
        "UPDATE problems SET rectified_fen = -1 WHERE id = :id",
        "UPDATE problems SET state = 'returned', return_reason = '' WHERE id = :id",
    ],
)
def test_constraints_hold_in_the_database(w, sql):
    db.session.flush()
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.text(sql), {"id": w.problem_a.id})


def test_a_closed_row_with_both_signoffs_is_accepted_by_the_database(w):
    problem = _requested(w)
    services.sign_off(problem, actor=w.county2)
    services.sign_off(problem, actor=w.prefecture)
    db.session.flush()
    assert db.session.scalar(sa.select(Problem.state).where(Problem.id == problem.id)) is State.CLOSED


# ---- ledger figures ----------------------------------------------------------------------------------------------


def test_counts_overdue_and_share_closed_by_deadline(w):
    today = date(2024, 10, 15)
    late = w.problem_a  # deadline 2024-09-30, still open: overdue
    in_time = make_problem(w.zhaojue, deadline=date(2025, 1, 31))
    _progress(in_time, w.county)
    services.request_close(in_time, actor=w.county)
    services.sign_off(in_time, actor=w.county2)
    services.sign_off(in_time, actor=w.prefecture)  # closed today (after 2024): counted closed
    in_time.closed_on = date(2024, 10, 1)
    not_due = make_problem(w.zhaojue, deadline=date(2024, 12, 31))
    stmt = queries.filtered({"unit": str(w.zhaojue.id)}, w.county, today)
    summary = queries.summary(stmt, today)
    assert (summary.total, summary.closed, summary.overdue, summary.closed_in_time) == (3, 1, 1, 1)
    assert summary.in_time_share == "50.0%"  # of the problems due: one closed by its deadline, one overdue
    overdue = queries.filtered({"overdue": "1"}, w.county, today)
    assert list(db.session.scalars(overdue.with_only_columns(Problem.id))) == [late.id]
    counts = queries.counts_by_unit(queries.filtered({}, w.province, today), today)
    zhaojue = next(c for c in counts if c.unit_id == w.zhaojue.id)
    assert zhaojue.by_state == {State.OPEN: 2, State.CLOSED: 1} and zhaojue.overdue == 1
    assert not_due.id in set(
        db.session.scalars(queries.filtered({"state": "open"}, w.county).with_only_columns(Problem.id))
    )


# ---- pages and spreadsheets --------------------------------------------------------------------------------------


def test_the_whole_way_through_the_pages(app, world):
    county, prefecture = app.test_client(), app.test_client()
    login(county, "county")
    login(prefecture, "prefecture")
    pid = world.problem_a
    page = county.get(f"/problems/{pid}").get_data(as_text=True)
    assert "报送进展" in page and f"/problems/{pid}/request" not in page
    data = {"entry_on": "2024-05-01", "text": "已拨付", "rectified_fen": "100", "version": "1"}
    r = county.post(f"/problems/{pid}/progress", data=data)
    assert r.status_code == 302
    with app.app_context():
        version = db.session.get(Problem, pid).version_id
    assert county.post(f"/problems/{pid}/request", data={"version": str(version)}).status_code == 302
    page = prefecture.get(f"/problems/{pid}").get_data(as_text=True)
    assert "主管部门审核销号" in page and "退回" in page
    with app.app_context():
        version = db.session.get(Problem, pid).version_id
    prefecture.post(f"/problems/{pid}/return", data={"reason": "", "version": str(version)})
    page = prefecture.get(f"/problems/{pid}").get_data(as_text=True)
    assert "请填写退回理由" in page
    prefecture.post(f"/problems/{pid}/sign", data={"version": str(version)})
    with app.app_context():
        problem = db.session.get(Problem, pid)
        assert problem.supervisor_signed_by_id is not None and problem.state is State.REQUESTED
        version = problem.version_id
    # The county clerk who asked cannot sign the county's side; the page says who does, and another officer does.
    page = county.get(f"/problems/{pid}").get_data(as_text=True)
    assert "责任单位审核销号" not in page and "须由申请销号人以外的本单位审核人" in page
    refused = county.post(f"/problems/{pid}/sign", data={"version": str(version)}, follow_redirects=True)
    assert "责任单位一方的审核须由本单位另一位审核人" in refused.get_data(as_text=True)
    with app.app_context():
        make_user(Role.COUNTY, db.session.get(Unit, world.zhaojue), username="county_head")
        db.session.commit()
    head = app.test_client()
    login(head, "county_head")
    assert "责任单位审核销号" in head.get(f"/problems/{pid}").get_data(as_text=True)
    head.post(f"/problems/{pid}/sign", data={"version": str(version)})
    with app.app_context():
        assert db.session.get(Problem, pid).state is State.CLOSED
    assert "已销号" in county.get("/problems/?state=closed").get_data(as_text=True)


def test_export_import_round_trip_changes_nothing(app, world):
    client = app.test_client()
    login(client, "province")
    response = client.get("/problems/export.xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert "整改台账" in sheet["A1"].value and [c.value for c in sheet[3]] == HEADERS
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert len(rows) == 2
    with app.app_context():
        from registry.auth.models import User
        from registry.kernel.transfer.reader import read_table

        user = db.session.scalar(sa.select(User).where(User.username == "province"))
        headers, table = read_table(response.data, "ledger.xlsx")
        result = import_problems(headers, table, user=user, filename="ledger.xlsx")
        assert not result.errors, result.errors
        assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
        assert any("标题" in note for note in result.notes)
        db.session.rollback()


def test_import_is_all_or_nothing_with_row_errors(app, world):
    with app.app_context():
        from registry.auth.models import User

        user = db.session.scalar(sa.select(User).where(User.username == "county"))
        good = ["", "国家考核", "2024", "2024年第一批", "2024-05-01", "513431", "", "资金", "资金闲置", "12.5万元",
                "县乡村振兴局", "县财政局", "王五", "限期拨付", "2024-12-31", "", "", "", ""]  # fmt: skip
        outside = list(good)
        outside[5] = "510824"
        bad_date = list(good)
        bad_date[4] = "2024-13-01"
        before = db.session.scalar(sa.select(sa.func.count(Problem.id)))
        result = import_problems(HEADERS, [(2, good), (3, outside), (4, bad_date)], user=user, filename="x.csv")
        assert {(e.row, e.column) for e in result.errors} == {(3, "涉及单位代码"), (4, "发现日期")}
        assert "不在您的管辖范围" in result.errors[-1].reason or "不在您的管辖范围" in result.errors[0].reason
        assert result.created == 0 and db.session.scalar(sa.select(sa.func.count(Problem.id))) == before
        result = import_problems(HEADERS, [(2, good)], user=user, filename="x.csv")
        assert result.created == 1 and not result.errors
        problem = db.session.scalar(sa.select(Problem).order_by(Problem.id.desc()).limit(1))
        assert problem.amount_fen == 12_500_000 and problem.state is State.OPEN
        assert db.session.scalar(sa.select(ProblemStep.action).where(ProblemStep.problem_id == problem.id)) is (
            StepAction.CREATE
        )
        db.session.rollback()


# ---- the quarterly report's 问题整改 section ----------------------------------------------------------------------


def test_report_section_counts_the_ledger_as_it_stood_at_the_cutoff(w):
    from datetime import UTC, datetime

    from registry.kernel.periods import Quarter
    from registry.problems.figures import report_section
    from registry.reports.queries import quarter_figures

    closed = make_problem(w.zhaojue, deadline=date(2024, 12, 31), description="项目资产未明确管护主体")
    _progress(closed, w.county, entry_on=date(2024, 10, 10))
    services.request_close(closed, actor=w.county)
    services.sign_off(closed, actor=w.county2)
    services.sign_off(closed, actor=w.prefecture)
    later = make_problem(w.zhaojue, found_on=date(2025, 1, 5), year=2025, deadline=date(2025, 6, 30))
    days = iter([(2024, 3, 20), (2024, 10, 10), (2024, 11, 1), (2024, 11, 5), (2024, 11, 6), (2024, 11, 6)])
    for step in closed.steps:
        step.at = datetime(*next(days), 3, 0, tzinfo=UTC)
    for step in w.problem_a.steps + later.steps:
        step.at = datetime(2024, 3, 20, tzinfo=UTC) if step.problem is w.problem_a else datetime(2025, 1, 5, tzinfo=UTC)
    db.session.flush()
    section = report_section(w.zhaojue, date(2024, 10, 1), date(2024, 12, 31))
    assert dict(section.by_state) == {"未整改": 1, "已销号": 1} and section.total == 2
    assert [r.id for r in section.closed_in_quarter] == [closed.id]
    assert section.closed_in_quarter[0].closed_on == date(2024, 11, 6)
    assert [r.id for r in section.overdue] == [w.problem_a.id]  # deadline 2024-09-30
    # At the end of Q3 the closed one was still open and not overdue; the prefecture's report counts its counties.
    q3 = report_section(w.liangshan, date(2024, 7, 1), date(2024, 9, 30))
    assert dict(q3.by_state) == {"未整改": 2} and q3.closed_in_quarter == () and q3.overdue == ()
    assert (q3.rectified_fen, section.rectified_fen) == (0, 300_000_00)  # reported on 2024-10-10
    # A liaison's report counts only their pairings' problems; the hook puts the section in the figures.
    figures = quarter_figures(w.zhaojue, Quarter.of(2024, 4))
    assert figures.problems.total == 2


def test_a_record_is_linked_by_finding_it_not_by_its_number(app, world, as_user):
    """Issue 26 item 4: 关联记录 finds records by code, name or person among those the user may see."""
    import re

    from registry.projects.models import Project

    client = as_user("county")
    pid = world.problem_a
    with app.app_context():
        project = db.session.get(Project, world.done_a)
        name = project.name
    page = client.get(f"/problems/{pid}?link_type=projects&link_q={name}").get_data(as_text=True)
    found = re.search(r'name="link-record_id" value="(\d+)"', page)
    assert found is not None and name in page and int(found.group(1)) == world.done_a
    token = re.search(r'name="link-csrf_token"[^>]*value="([^"]*)"', page)
    data = {"link-record_type": "projects", "link-record_id": found.group(1)}
    if token:
        data["link-csrf_token"] = token.group(1)
    assert client.post(f"/problems/{pid}/links", data=data).status_code in (302, 303)
    assert name in client.get(f"/problems/{pid}").get_data(as_text=True)
    # Another county's records are not found, however they are asked for.
    other = client.get(f"/problems/{pid}?link_type=projects&link_q=产业路").get_data(as_text=True)
    assert "没有找到您可查看的“产业路”项目记录" in other
    # A search finding as many as the picker lists says that a closer keyword finds the others.
    from registry.problems import views

    original, views.LINK_PICKS = views.LINK_PICKS, 1
    try:
        capped = client.get(f"/problems/{pid}?link_type=projects&link_q=XM").get_data(as_text=True)
    finally:
        views.LINK_PICKS = original
    assert "只列出最新的 1 条" in capped and capped.count('type="hidden" name="link-record_id"') == 1
