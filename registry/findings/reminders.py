"""Overdue problems for the reminders: each office of the unit concerned (and the prefecture above a county) is
told once per problem, the day it passes its deadline unclosed."""

from datetime import date

import sqlalchemy as sa

from registry.auth.models import User
from registry.counties.models import UnitKind
from registry.kernel.extensions import db
from registry.kernel.roles import Role
from registry.permissions import OFFICE_AT
from registry.problems.models import Problem
from registry.problems.services import overdue_clause


def overdue_problems(today: date, link_of) -> list[tuple[int, str, str, str]]:
    """(user id, key, title, link) for every active county, prefecture or province office user responsible for an
    overdue problem: the unit's own office, and for a county the prefecture office above it.
    ``link_of(problem_id)`` gives the problem's page address."""
    problems = db.session.scalars(sa.select(Problem).where(overdue_clause(today)).order_by(Problem.id)).all()
    if not problems:
        return []
    staff = db.session.scalars(
        sa.select(User).where(User.is_active.is_(True), User.role.in_((Role.COUNTY, Role.PREFECTURE, Role.PROVINCE)))
    ).all()
    due = []
    for problem in problems:
        unit = problem.unit
        for user in staff:
            own = user.scope_unit_id == unit.id and user.role is OFFICE_AT[unit.kind]
            above = (
                user.role is Role.PREFECTURE
                and unit.kind is UnitKind.COUNTY
                and user.scope_unit_id == unit.prefecture_id
            )
            if own or above:
                due.append((user.id, f"problem-overdue:{problem.id}:{problem.deadline}",
                            f"{unit.name}整改问题“{problem.title}”已超过整改时限 {problem.deadline}，尚未销号。",
                            link_of(problem.id)))  # fmt: skip
    return due
