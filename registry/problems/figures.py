"""The ledger's part of the quarterly report (问题整改): the unit's problems by state at the cut-off, those closed
in the quarter, and those overdue at the cut-off.

The state at the cut-off is read from the problem's steps (each records the state it led to and when), so a report
of an earlier quarter shows the ledger as it stood then, not as it stands today.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from registry.counties.models import Unit, UnitKind
from registry.kernel.database import among
from registry.kernel.extensions import db
from registry.problems.models import Problem, State, StepAction

#: Beijing time: a step taken on the evening of the last day (UTC) still belongs to that day.
CHINA = timedelta(hours=8)


@dataclass(frozen=True)
class ProblemRow:
    id: int
    unit: str
    title: str
    source: str
    deadline: date | None
    closed_on: date | None
    #: 整改到位资金 reported by the cut-off (not the problem's total today).
    rectified_fen: int


@dataclass(frozen=True)
class ProblemsSection:
    #: (state label, number) at the cut-off, in the ledger's order, states with none left out.
    by_state: tuple[tuple[str, int], ...]
    total: int
    amount_fen: int
    #: 整改到位资金 reported by the cut-off (progress entries dated by then).
    rectified_fen: int
    closed_in_quarter: tuple[ProblemRow, ...]
    overdue: tuple[ProblemRow, ...]

    @property
    def is_empty(self) -> bool:
        return self.total == 0


def _within(unit: Unit):
    column = {UnitKind.PROVINCE: Unit.province_id, UnitKind.PREFECTURE: Unit.prefecture_id}.get(unit.kind, Unit.id)
    return sa.select(Unit.id).where(column == unit.id)


def _state_at(problem: Problem, until: datetime) -> tuple[State | None, date | None]:
    """(state, day closed) as the problem's steps stood at ``until``; None if it was not yet registered."""
    state, closed = None, None
    for step in problem.steps:
        at = step.at if step.at.tzinfo else step.at.replace(tzinfo=UTC)
        if at > until:
            break
        state = step.to_state
        if step.action is StepAction.CLOSE:
            closed = (at + CHINA).date()
        elif state is not State.CLOSED:
            closed = None
    return state, closed


def _row(p: Problem, closed: date | None, rectified: int) -> ProblemRow:
    return ProblemRow(p.id, p.unit.name, p.title, p.source.label, p.deadline, closed, rectified)


def report_section(unit: Unit, start: date, cutoff: date, pairings=None) -> ProblemsSection:
    """The problems concerning ``unit`` (and the units within it) found by ``cutoff``; ``pairings`` (an East
    liaison's) limits them to their pairings' problems."""
    until = datetime.combine(cutoff, time.max, tzinfo=UTC) - CHINA
    stmt = (
        sa.select(Problem)
        .options(joinedload(Problem.unit), selectinload(Problem.steps), selectinload(Problem.progress))
        .where(Problem.unit_id.in_(_within(unit)), Problem.found_on <= cutoff, among(Problem.pairing_id, pairings))
        .order_by(Problem.deadline, Problem.id)
    )
    counts = dict.fromkeys(State, 0)
    closed_rows, overdue_rows, amount, rectified, total = [], [], 0, 0, 0
    for problem in db.session.scalars(stmt):
        state, closed = _state_at(problem, until)
        if state is None:
            continue
        total += 1
        counts[state] += 1
        amount += problem.amount_fen
        reported = sum(e.rectified_fen for e in problem.progress if e.entry_on <= cutoff)
        rectified += reported
        if state is State.CLOSED and closed is not None and start <= closed <= cutoff:
            closed_rows.append(_row(problem, closed, reported))
        if state is not State.CLOSED and problem.deadline is not None and problem.deadline < cutoff:
            overdue_rows.append(_row(problem, None, reported))
    return ProblemsSection(
        by_state=tuple((s.label, n) for s, n in counts.items() if n), total=total, amount_fen=amount,
        rectified_fen=rectified, closed_in_quarter=tuple(closed_rows), overdue=tuple(overdue_rows),
    )  # fmt: skip
