"""The workflow kit (registry/kernel/workflow.py) itself: a refused step writes nothing, a return without its 意见
is refused, the hooks are called once per committed step and never for a refused or rolled-back one, and the
database refuses a state no workflow declares."""

from datetime import date

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from registry import create_app
from registry.assets import services as assets
from registry.assets.models import WORKFLOW as ASSETS
from registry.closing import services as closing
from registry.closing.models import WORKFLOW as REPORTS
from registry.closing.models import QuarterReport, ReportState, ReportStep
from registry.disclosure import services as disclosure
from registry.disclosure.models import WORKFLOW as NOTICES
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError
from registry.kernel.workflow import Opinion, StepRefused, Transition, Workflow, on_step, workflow
from registry.permissions import OutOfScope
from registry.problems import services as problems
from registry.problems.models import WORKFLOW as PROBLEMS
from registry.problems.models import ProblemStep, State
from tests.conftest import make_test_config

Q = Quarter.of(2024, 2)


def _counts() -> tuple[int, int, int]:
    db.session.flush()
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (AuditEvent, ProblemStep, ReportStep)
    )


def _requested(w):
    problem = w.problem_a
    problems.add_progress(problem, {"entry_on": date(2024, 5, 1), "text": "已督促拨付"}, actor=w.county)
    problems.request_close(problem, actor=w.county)
    return problem


@pytest.fixture
def steps():
    """The events the committed and the written hooks of every workflow saw, unregistered afterwards."""
    seen = {"committed": [], "written": []}

    hooks = [
        on_step(name)(lambda event: seen["committed"].append(event))
        for name in ("problem", "quarter_report", "asset", "notice")
    ] + [on_step("problem", committed=False)(lambda event, record: seen["written"].append((event, record)))]
    yield seen
    for hook in hooks:
        hook.hook.remove()


# ---- refusals write nothing ---------------------------------------------------------------------------------------


def test_a_refused_step_writes_nothing(world_records):
    w = world_records
    problem = _requested(w)
    before, state = _counts(), problem.state
    with pytest.raises(ServiceError, match="请填写退回理由"):
        problems.return_problem(problem, actor=w.prefecture, reason="   ")
    assert not db.session.new and not db.session.dirty and not db.session.deleted
    assert problem.state is state and _counts() == before
    # Who: a reader may not take the step; the state: a problem asking for 销号 takes no progress.
    with pytest.raises(StepRefused, match="不能退回"):
        PROBLEMS.take(problem, "return", actor=w.liaison, opinion="理由")
    with pytest.raises(ServiceError, match="不能再报送进展"):
        PROBLEMS.take(problem, "progress", actor=w.county)
    assert not db.session.new and not db.session.dirty and problem.state is state and _counts() == before


def test_a_refused_report_step_writes_nothing_not_even_the_report_row(world_records):
    w = world_records
    before = _counts()
    with pytest.raises(OutOfScope, match="只有本单位的协作办"):
        closing.submit(w.zhaojue, Q, actor=w.prefecture)
    with pytest.raises(ServiceError, match="该报表当前为“草稿”，不能审定"):
        closing.approve(w.zhaojue, Q, actor=w.province)
    assert _counts() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(QuarterReport)) == 0


@pytest.mark.parametrize("kind", ["report by the prefecture", "report by the province", "problem", "notice"])
def test_a_return_without_its_opinion_is_refused(world_records, kind):
    w = world_records
    if kind.startswith("report"):
        closing.submit(w.zhaojue, Q, actor=w.county)
        if kind.endswith("province"):
            closing.review(w.zhaojue, Q, passed=True, comment="", actor=w.prefecture)
            refuse = lambda: closing.approve(w.zhaojue, Q, passed=False, comment=" \r\n ", actor=w.province)  # noqa: E731
        else:
            refuse = lambda: closing.review(w.zhaojue, Q, passed=False, comment="", actor=w.prefecture)  # noqa: E731
        message = "请填写退回意见"
    elif kind == "problem":
        problem = _requested(w)
        refuse = lambda: problems.return_problem(problem, actor=w.county, reason="")  # noqa: E731
        message = "请填写退回理由"
    else:
        disclosure.publish(w.notice_a, actor=w.county)
        refuse = lambda: disclosure.withdraw(w.notice_a, "", actor=w.county)  # noqa: E731
        message = "请填写撤回原因"
    before = _counts()
    with pytest.raises(StepRefused, match=message) as refused:
        refuse()
    assert refused.value.field in ("comment", "reason")
    assert _counts() == before


def test_an_opinion_too_long_is_refused_with_its_length():
    opinion = Opinion("退回意见", limit=5)
    assert opinion.clean("  好的\r\n  ") == "好的"
    with pytest.raises(StepRefused, match=r"退回意见不能超过 5 字（现为 6 字）"):
        opinion.clean("一二三四五六")
    assert Opinion("说明", required=False).clean(None) == ""


# ---- hooks ----------------------------------------------------------------------------------------------------------


def test_the_hook_is_called_once_per_committed_step_and_never_for_a_refused_one(world_records, steps):
    w = world_records
    problem_id = w.problem_a.id
    _requested(w)
    assert steps["committed"] == []  # nothing is committed yet
    assert [e.step for e, _ in steps["written"]] == ["progress", "request"]
    db.session.commit()
    assert [(e.workflow, e.step, e.record_id) for e in steps["committed"]] == [
        ("problem", "progress", problem_id),
        ("problem", "request", problem_id),
    ]
    request = steps["committed"][1]
    assert (request.from_state, request.to_state, request.record_type) == ("in_progress", "requested", "problems")
    assert request.actor_id == w.county.id and request.action == "request" and request.label == "申请销号"

    # A refused step: no hook, neither in the transaction nor after the rollback.
    problem = db.session.get(type(w.problem_a), problem_id)
    with pytest.raises(ServiceError):
        problems.return_problem(problem, actor=w.prefecture, reason="")
    db.session.rollback()
    assert len(steps["committed"]) == 2 and len(steps["written"]) == 2

    # A step taken and then rolled back (the request failed later): written hook ran, committed hook never does.
    problem = db.session.get(type(w.problem_a), problem_id)
    problems.return_problem(problem, actor=w.prefecture, reason="佐证不全")
    assert len(steps["written"]) == 3
    db.session.rollback()
    db.session.commit()
    assert len(steps["committed"]) == 2

    # Taken again and committed: once, with the 意见.
    problem = db.session.get(type(w.problem_a), problem_id)
    problems.return_problem(problem, actor=w.prefecture, reason="佐证不全")
    db.session.commit()
    db.session.commit()  # a second commit of an empty transaction calls nothing again
    assert [e.step for e in steps["committed"]] == ["progress", "request", "return"]
    assert steps["committed"][-1].opinion == "佐证不全" and steps["committed"][-1].to_state == "returned"


def test_a_step_in_a_savepoint_rolled_back_calls_no_hook(world_records, steps):
    w = world_records
    db.session.commit()
    savepoint = db.session.begin_nested()
    problems.add_progress(w.problem_a, {"entry_on": date(2024, 5, 1), "text": "进展"}, actor=w.county)
    savepoint.rollback()
    db.session.commit()
    assert steps["committed"] == []
    # A record created within the transaction (an import's row, flushed late) is named by its id after the commit.
    problem = w.problem_a.__class__
    created = problems.create_problem(
        {k: getattr(db.session.get(problem, w.problem_a.id), k) for k in problems.FIELDS}, actor=w.county
    )
    db.session.commit()
    assert [(e.step, e.record_id) for e in steps["committed"]] == [("create", created.id)]


def test_every_ported_workflow_feeds_the_hooks(world_records, steps):
    w = world_records
    closing.submit(w.zhaojue, Q, actor=w.county)
    closing.review(w.zhaojue, Q, passed=False, comment="请补充佐证", actor=w.prefecture)
    idle = {"to_state": ASSETS.states.IDLE, "changed_on": date.today(), "note": "停产"}
    assets.change_state(w.asset_a, idle, actor=w.county)
    disclosure.publish(w.notice_a, actor=w.county)
    db.session.commit()
    assert [(e.workflow, e.step, e.to_state) for e in steps["committed"]] == [
        ("quarter_report", "submit", "submitted"),
        ("quarter_report", "return_review", "returned"),
        ("asset", "idle", "idle"),
        ("notice", "publish", "published"),
    ]
    assert steps["committed"][1].opinion == "请补充佐证" and steps["committed"][1].action == "return"


def test_a_hook_for_named_steps_only_and_one_that_fails_after_commit(world_records, caplog):
    w = world_records
    seen = []
    only = on_step("problem", "request")(lambda event: seen.append(event.step))
    failing = on_step("problem", "progress")(lambda event: 1 / 0)
    try:
        _requested(w)
        db.session.commit()  # the failing hook is logged; the step stays committed
    finally:
        only.hook.remove()
        failing.hook.remove()
    assert seen == ["request"]
    assert "workflow hook" in caplog.text
    assert db.session.get(type(w.problem_a), w.problem_a.id).state is State.REQUESTED


def test_a_disposal_by_an_office_is_checked_without_flushing_its_disposal_record(world_records):
    """The asset's service sets the disposal record before ``take`` checks again; the gate's reads must not flush
    it ahead of the state (the database accepts 已处置 and its date only together)."""
    w = world_records
    data = {"to_state": ASSETS.states.DISPOSED, "changed_on": date.today(), "note": "报废", "disposal_method": "报废",
            "disposal_decision": "村民代表大会决议"}  # fmt: skip
    assets.change_state(w.asset_a, data, actor=w.county)
    db.session.flush()
    assert w.asset_a.state is ASSETS.states.DISPOSED and w.asset_a.state_changes[-1].to_state is ASSETS.states.DISPOSED


# ---- declarations --------------------------------------------------------------------------------------------------


def test_a_workflow_declares_each_step_once_and_pages_ask_it(world_records):
    with pytest.raises(ValueError, match="two transitions named a"):
        Workflow("x", State, [Transition("a", "甲"), Transition("a", "乙")])
    w = world_records
    problem = _requested(w)
    assert PROBLEMS.allows(problem, "return", w.prefecture)
    assert not PROBLEMS.allows(problem, "return", w.liaison)
    assert not PROBLEMS.allows(problem, "progress", w.county)
    # A gate that raises is read as no by a page, and refuses with its own message in a step.
    assert NOTICES.allows(w.notice_a, "publish", w.county)
    assert not NOTICES.allows(w.notice_b, "publish", w.county)
    with pytest.raises(OutOfScope, match="不在您的管辖范围内"):
        NOTICES.check(w.notice_b, "publish", w.county)
    # The report of a unit-quarter nobody has touched is a 草稿: the province may not approve it yet.
    assert REPORTS.state_of(None) is ReportState.DRAFT
    assert REPORTS.allows(None, "submit", w.county, subject=w.zhaojue)
    assert not REPORTS.allows(None, "approve", w.province, subject=w.zhaojue)

    # What a hook finds from its event alone: the workflow, and the steps (so the people) that come next.
    assert workflow("problem") is PROBLEMS and workflow("quarter_report") is REPORTS
    assert [t.name for t in PROBLEMS.next_steps(State.REQUESTED)] == ["sign_local", "sign_supervisor", "return"]
    assert [t.name for t in REPORTS.next_steps(ReportState.SUBMITTED)] == [
        "review", "return_review", "approve", "return", "answer", "grant_unlock", "refuse_unlock"
    ]  # fmt: skip


# ---- the database holds the states ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE quarter_reports SET state = 'lost' WHERE id = :report",
        "UPDATE report_steps SET to_state = 'lost' WHERE report_id = :report",
        "UPDATE report_steps SET from_state = 'lost' WHERE report_id = :report",
        "UPDATE assets SET state = 'lost' WHERE id = :asset",
        "UPDATE asset_state_changes SET to_state = 'lost' WHERE asset_id = :asset",
        "UPDATE asset_state_changes SET from_state = 'lost' WHERE asset_id = :asset",
        "UPDATE problems SET state = 'lost' WHERE id = :problem",
        "UPDATE problem_steps SET to_state = 'lost' WHERE problem_id = :problem",
        "UPDATE disclosure_notices SET state = 'lost' WHERE id = :notice",
    ],
)
def test_the_database_refuses_a_state_no_workflow_declares(world_records, sql):
    w = world_records
    closing.submit(w.zhaojue, Q, actor=w.county)
    report = closing.report_of(w.zhaojue, Q)
    db.session.flush()
    ids = {"report": report.id, "asset": w.asset_a.id, "problem": w.problem_a.id, "notice": w.notice_a.id}
    # Each statement touches a row (a from_state of NULL is allowed, so the registration's row is set first).
    db.session.execute(sa.text("UPDATE asset_state_changes SET from_state = 'normal' WHERE asset_id = :asset"), ids)
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.text(sql), ids)


def test_the_database_accepts_every_declared_state(world_records):
    w = world_records
    db.session.flush()
    for state in ASSETS.states:
        if state is not ASSETS.states.DISPOSED:  # 已处置 needs its disposal date (another rule)
            with db.session.begin_nested():
                db.session.execute(
                    sa.text("UPDATE assets SET state = :s WHERE id = :id"), {"s": state.value, "id": w.asset_a.id}
                )


def test_the_migration_keeps_every_row_and_then_refuses_an_unknown_state(empty_database):
    """b3f1c9d2e8a7 copies quarter_reports and assets on SQLite: the rows referencing them (steps, versions of
    record, sources) stay, which they did not while the migrations' connection kept its foreign keys on."""
    app = create_app(make_test_config(empty_database))
    with app.app_context():
        upgrade(revision="e2b7a9c4d1f3")
        now = "'2024-07-01'"
        statements = [
            "INSERT INTO units (id, code, name, full_name, kind, side, is_active, note, created_at, updated_at, "
            f"version_id) VALUES (1, '513431', '昭觉县', '昭觉县', 'county', 'west', true, '', {now}, {now}, 1)",
            "INSERT INTO quarter_reports (id, unit_id, year, quarter, state, needs_review, created_at, updated_at, "
            f"version_id) VALUES (7, 1, 2024, 2, 'approved', false, {now}, {now}, 1)",
            "INSERT INTO report_steps (report_id, action, from_state, to_state, comment, actor_name, actor_office, "
            f"at) VALUES (7, 'approve', 'reviewed', 'approved', '同意', '省协作办', '', {now})",
            "INSERT INTO report_steps (report_id, action, from_state, to_state, comment, actor_name, actor_office, "
            f"at) VALUES (7, 'confirm', NULL, NULL, '', '联络员', '', {now})",
            "INSERT INTO report_versions (report_id, number, figures_json, figures_sha256, pdf, pdf_sha256, token, "
            f"signer, approved_by_name, approved_at, approvers_json) VALUES (7, 1, '{{}}', 'f', :pdf, 'p', 't', '', "
            f"'', {now}, '[]')",
        ]
        with db.engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement), {"pdf": b"%PDF-1.7"})
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT id, state FROM quarter_reports")).all() == [(7, "approved")]
            steps = conn.execute(sa.text("SELECT action, from_state, to_state FROM report_steps ORDER BY id")).all()
            assert steps == [("approve", "reviewed", "approved"), ("confirm", None, None)]
            assert conn.execute(sa.text("SELECT pdf FROM report_versions")).scalar() == b"%PDF-1.7"
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text("UPDATE quarter_reports SET state = 'lost'"))
        db.engine.dispose()
