"""Notifications at the moment a step is taken (issue 26 item 2): the people of the next step are told, in the app
(通知) and by e-mail where SMTP is configured, with the opinion quoted where the step sent something back.

Each rule is a workflow hook (``registry/kernel/workflow.on_step``) that runs inside the step's transaction, so a
notification commits or rolls back with the step it tells of; who is told is the gate's answer to "who may take the
next step" (the same predicates the to-dos and the workflow ask), never the person who took this one. E-mail goes
out after the commit, through the task queue (``send_step_emails``), so a slow mail server never holds a request.
"""

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from flask import current_app, has_request_context, url_for

from registry.auth.models import User
from registry.closing.models import QuarterReport, ReportState
from registry.counties.models import UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError
from registry.kernel.workflow import StepEvent, on_step
from registry.permissions import (
    OFFICE_AT,
    can_answer_dispute,
    can_approve_report,
    can_review_problem,
    can_review_report,
    can_submit_report,
    confirmable_pairings,
    may_write,
)
from registry.problems.models import Problem
from registry.tasks import reminders
from registry.tasks.models import Notification
from registry.tasks.queue import QueueUnavailable, app_task, enqueue


def _users(who: Callable[[User], bool], *, besides: int | None) -> list[int]:
    """Active users for whom ``who`` says yes, but not the person who took the step."""
    users = db.session.scalars(sa.select(User).where(User.is_active.is_(True)).order_by(User.id)).all()
    found = []
    for user in users:
        if user.id == besides:
            continue
        try:
            if who(user):
                found.append(user.id)
        except ServiceError:  # a gate predicate that refuses by raising answers no
            continue
    return found


def _link(endpoint: str, anchor: str = "", **values) -> str:
    if has_request_context():
        return url_for(endpoint, **values) + anchor
    with current_app.test_request_context():
        return url_for(endpoint, **values) + anchor


def _tell(user_ids: Iterable[int], event: StepEvent, title: str, link: str) -> None:
    key = f"step:{event.workflow}:{event.record_id}:{event.step}:{event.at.isoformat(timespec='microseconds')}"
    with db.session.no_autoflush:
        for user_id in dict.fromkeys(user_ids):
            db.session.add(Notification(user_id=user_id, key=key[:120], title=title[:300], link=link[:300]))
    db.session.info["step_notifications"] = True


def _quoted(text: str) -> str:
    text = (text or "").strip()
    return f"。意见：“{text[:120]}{'…' if len(text) > 120 else ''}”" if text else "。"


# ---- the quarter close ---------------------------------------------------------------------------------------------

#: step -> (who is told, what they are told)
REPORT_STEPS = {
    "submit": ("next", "已提交，请审核"),
    "review": ("approvers", "已审核通过，请审定"),
    "return_review": ("unit", "被退回，请修改后重新提交"),
    "return": ("unit", "被退回，请修改后重新提交"),
    "approve": ("unit", "已审定"),
    "dispute": ("answerers", "东部前方工作组提出异议，请答复"),
    "answer": ("liaisons", "的异议已答复"),
    "request_unlock": ("approvers", "申请解锁，请审批"),
    "grant_unlock": ("unit", "的解锁申请已同意，可修改后重新提交"),
    "refuse_unlock": ("unit", "的解锁申请未获同意"),
}


@on_step("quarter_report", *REPORT_STEPS, committed=False)
def report_step(event: StepEvent, report: QuarterReport) -> None:
    unit, quarter = report.unit, Quarter.of(report.year, report.quarter)
    audience, text = REPORT_STEPS[event.step]
    if audience == "next":  # a county's report goes to its prefecture and the East liaisons; the others' to approval
        if unit.kind is UnitKind.COUNTY:
            who = lambda u: can_review_report(u, unit) or bool(confirmable_pairings(u, unit, quarter))  # noqa: E731
        else:
            who = lambda u: can_approve_report(u, unit)  # noqa: E731
    elif audience == "approvers":
        who = lambda u: can_approve_report(u, unit)  # noqa: E731
    elif audience == "answerers":  # raised after approval, the province office is told too
        approved = report.state is ReportState.APPROVED
        who = lambda u: can_answer_dispute(u, unit) or (approved and can_approve_report(u, unit))  # noqa: E731
    elif audience == "liaisons":
        who = lambda u: bool(confirmable_pairings(u, unit, quarter))  # noqa: E731
    else:
        who = lambda u: can_submit_report(u, unit)  # noqa: E731
    quoted = _quoted(event.opinion) if event.step in ("return_review", "return", "dispute", "refuse_unlock",
                                                        "request_unlock", "answer") else "。"  # fmt: skip
    title = f"{unit.name} {quarter.label}报表{text}{quoted}"
    link = _link("reports.dashboard", "#closing", unit_id=unit.id, quarter_text=str(quarter))
    _tell(_users(who, besides=event.actor_id), event, title, link)


# ---- the 整改台账 ---------------------------------------------------------------------------------------------------


def _office(problem: Problem) -> Callable[[User], bool]:
    """The office at the problem's own level that works on it."""
    return lambda u: OFFICE_AT.get(problem.unit.kind) is u.role and may_write(u, problem)


PROBLEM_STEPS = {
    "request": "申请销号，请审核",
    "return": "销号被退回，请整改后重新申请",
    "close": "已销号",
}


@on_step("problem", *PROBLEM_STEPS, committed=False)
def problem_step(event: StepEvent, problem: Problem) -> None:
    who = (lambda u: can_review_problem(u, problem)) if event.step == "request" else _office(problem)
    quoted = _quoted(event.opinion) if event.step == "return" else "。"
    description = problem.description if len(problem.description) <= 40 else problem.description[:40] + "…"
    title = f"{problem.unit.name}整改问题“{description}”{PROBLEM_STEPS[event.step]}{quoted}"
    _tell(_users(who, besides=event.actor_id), event, title, _link("problems.detail", problem_id=problem.id))


# ---- e-mail, after the commit ----------------------------------------------------------------------------------


@app_task("registry.send_step_emails", retries=3, retry_delay=60)
def send_step_emails():
    """E-mail the notifications not yet sent (a mail server that fails is tried again by the queue)."""
    reminders.send_emails()


@on_step("quarter_report", *REPORT_STEPS)
@on_step("problem", *PROBLEM_STEPS)
def mail_after_commit(event: StepEvent) -> None:
    if not current_app.config.get("MAIL_SERVER"):
        return
    try:
        enqueue(send_step_emails)
    except QueueUnavailable:
        current_app.logger.warning("通知邮件未能排队（任务队列不可用）；下次提醒任务运行时会补发。")
