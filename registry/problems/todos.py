"""To-dos of the 整改台账: a 销号 waiting for this person's sign-off, and, for the office responsible at the problem's
own level, a problem returned or whose 整改时限 is past or near."""

from datetime import date, timedelta

import sqlalchemy as sa
from flask import url_for
from sqlalchemy.orm import joinedload

from registry.kernel.extensions import db
from registry.kernel.todos import Todo, todo_source
from registry.permissions import OFFICE_AT, can, may_write, scope_filter
from registry.problems.models import WORKING, Problem, State
from registry.problems.services import sides_for

#: A problem still being worked on is a to-do of its office this many days before its deadline.
DEADLINE_NOTICE_DAYS = 14
SIDES = {"local": "责任单位", "supervisor": "主管部门"}


def _title(problem: Problem) -> str:
    text = problem.description if len(problem.description) <= 40 else problem.description[:40] + "…"
    return f"{problem.unit.name}：{text}"


def _url(problem: Problem) -> str:
    return url_for("problems.detail", problem_id=problem.id)


@todo_source("problem", "整改问题")
def problem_todos(user, today: date):
    if can(user, "problems.review"):
        requested = db.session.scalars(
            sa.select(Problem)
            .options(joinedload(Problem.unit))
            .where(Problem.state == State.REQUESTED, scope_filter(user, Problem))
            .order_by(Problem.deadline, Problem.id)
        ).all()
        for problem in requested:
            sides = sides_for(user, problem)
            if sides:
                side = "、".join(SIDES[s] for s in sides)
                yield Todo("待审核销号", _title(problem), _url(problem), due=problem.deadline, note=f"以{side}审核")
    if not can(user, "problems.edit"):
        return
    working = db.session.scalars(
        sa.select(Problem)
        .options(joinedload(Problem.unit))
        .where(
            Problem.state.in_(WORKING),
            scope_filter(user, Problem),
            sa.or_(
                Problem.state == State.RETURNED,
                Problem.deadline <= today + timedelta(days=DEADLINE_NOTICE_DAYS),
            ),
        )
        .order_by(Problem.deadline, Problem.id)
    ).all()
    for problem in working:
        # The office at the problem's own level works on it; the offices above see it on the ledger.
        if OFFICE_AT.get(problem.unit.kind) is not user.role or not may_write(user, problem):
            continue
        if problem.state is State.RETURNED:
            yield Todo("销号被退回，待整改后重新申请", _title(problem), _url(problem), due=problem.deadline,
                       note=f"退回理由：{problem.return_reason}" if problem.return_reason else "")  # fmt: skip
        elif problem.deadline is not None:
            action = "整改已逾期" if problem.deadline < today else "整改即将到期"
            yield Todo(action, _title(problem), _url(problem), due=problem.deadline)
