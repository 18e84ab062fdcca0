"""Writing the ledger: problems, their links, progress, and the way to 销号 (双销号) or back (退回).

Every write passes the gate and leaves an audit event; each step of the way is also kept as a ``ProblemStep`` shown
on the problem's page. Services never commit.

The quarterly report counts the ledger as it stood at its cut-off (``problems.figures``), so the quarter lock holds
it as it holds every stream: a problem is dated by the day it was found (``RecordScope.date``), and creating,
changing or re-importing one found in a locked quarter is refused (``authorize_write``); a progress entry is dated
by its own day and the steps by the day they are taken (``authorize_step``), so work on a problem found in a locked
quarter goes on in later quarters, but no entry is dated into a locked one.
"""

from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app

from registry.counties.models import DIVISION_KINDS, Side, Unit, UnitKind
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import CHINA
from registry.kernel.services import ServiceError, check_version
from registry.kernel.transfer import Batch, written
from registry.kernel.transfer import cache_of as _cache
from registry.pairings.services import county_pairing_id
from registry.permissions import (
    authorize_step,
    authorize_write,
    can_close_as_supervisor,
    can_close_locally,
    linkable_model,
    visible_record,
)
from registry.problems.models import (
    WORKFLOW,
    Problem,
    ProblemLink,
    ProblemStep,
    ProgressEntry,
    State,
    StepAction,
    office_of,
)

FIELDS = (
    "source", "year", "batch", "found_on", "description", "category", "amount_fen", "unit_id", "lead_unit",
    "responsible_unit", "responsible_person", "measures", "deadline",
)  # fmt: skip
TEXTS = {"batch": 100, "lead_unit": 200, "responsible_unit": 200, "responsible_person": 50}
#: Records a problem may name, by table (``__tablename__``), with what each is called.
LINK_TYPES = {
    "projects": "项目",
    "fund_transactions": "资金往来",
    "placements": "劳务协作",
    "purchases": "消费帮扶",
    "indicator_entries": "指标登记",
    "exchanges": "人才交流",
    "assets": "项目资产",
}


def _check(data: dict, batch: Batch | None = None) -> None:
    for key in ("batch", "lead_unit", "responsible_unit", "responsible_person", "measures"):
        data[key] = (data.get(key) or "").strip()
    for key, limit in TEXTS.items():
        if len(data[key]) > limit:
            raise ServiceError(f"不能超过 {limit} 个字。", key)
    data["description"] = (data.get("description") or "").strip()
    if not data["description"]:
        raise ServiceError("请填写问题描述。", "description")
    for key, label in (("source", "问题来源"), ("category", "问题类别")):
        if data.get(key) is None:
            raise ServiceError(f"请选择{label}。", key)
    if not isinstance(data.get("year"), int) or not 2000 <= data["year"] <= 2100:
        raise ServiceError("年度应在 2000 至 2100 之间。", "year")
    if data.get("found_on") is None:
        raise ServiceError("请填写发现日期。", "found_on")
    amount = data.get("amount_fen")
    data["amount_fen"] = amount = 0 if amount is None else amount
    if amount < 0:
        raise ServiceError("涉及金额不能为负数。", "amount_fen")
    if data.get("deadline") is not None and data["deadline"] < data["found_on"]:
        raise ServiceError("整改时限早于发现日期。", "deadline")
    unit = db.session.get(Unit, data.get("unit_id") or 0)
    if unit is None or unit.side is not Side.WEST or unit.kind not in DIVISION_KINDS:
        raise ServiceError("请选择问题涉及的四川县(市、区)、市(州)或省。", "unit_id")
    # A county's problem belongs to the county's pairing on the day it was found (its East partner sees it).
    data["pairing_id"] = (
        county_pairing_id(unit.id, data["found_on"], _cache(batch)) if unit.kind is UnitKind.COUNTY else None
    )


def _today() -> date:
    """Today in China: the day a step taken now is counted in (``figures`` reads step times in China time)."""
    return datetime.now(CHINA).date()


def create_problem(data: dict, *, actor, batch: Batch | None = None) -> Problem:
    """Register a problem (未整改) in the writer's scope."""
    data = {k: data.get(k) for k in FIELDS}
    _check(data, batch)
    authorize_write(actor, Problem, data, cache=_cache(batch))
    problem = Problem(**data)
    db.session.add(problem)
    WORKFLOW.start(problem, "create", actor=actor)
    if batch is None:
        db.session.flush()
    written("create", problem, actor=actor, batch=batch, changes=snapshot(problem, FIELDS),
            summary=f"登记整改问题：{problem.title}")  # fmt: skip
    return problem


def update_problem(problem: Problem, data: dict, *, actor, version=None, batch: Batch | None = None) -> dict:
    """Change a problem's particulars; a problem closed (已销号) is kept as it was closed."""
    check_version(problem, version)
    merged = {k: data.get(k, getattr(problem, k)) for k in FIELDS}
    _check(merged, batch)
    if problem.state is State.CLOSED:
        if any(merged[k] != getattr(problem, k) for k in FIELDS):
            raise ServiceError("已销号的问题不能修改。")
        return {}
    if all(merged[k] == getattr(problem, k) for k in (*FIELDS, "pairing_id")):
        # Nothing to write (a ledger imported back as exported): the scope is asked, not the lock of its quarter.
        authorize_step(actor, Problem, problem, cache=_cache(batch))
        return {}
    authorize_write(actor, Problem, merged, before=problem, cache=_cache(batch))
    changes = apply_changes(problem, merged, (*FIELDS, "pairing_id"))
    if changes:
        written("update", problem, actor=actor, batch=batch, changes=changes,
                summary=f"修改整改问题：{problem.title}")  # fmt: skip
    return changes


def add_progress(problem: Problem, data: dict, *, actor, version=None) -> ProgressEntry:
    """A dated progress report; the first one moves 未整改 (or 退回) to 整改中. Neither its day nor today may lie in a
    locked quarter (its 整改到位资金 counts from its day, the state it leads to from today)."""
    check_version(problem, version)
    authorize_step(actor, Problem, problem, data.get("entry_on"), _today(), field="entry_on")
    WORKFLOW.check(problem, "progress", actor)
    text = (data.get("text") or "").strip()
    if not text:
        raise ServiceError("请填写整改进展。", "text")
    if data.get("entry_on") is None:
        raise ServiceError("请填写进展日期。", "entry_on")
    if data["entry_on"] < problem.found_on:
        raise ServiceError("进展日期早于问题发现日期。", "entry_on")
    amount = data.get("rectified_fen") or 0
    if amount < 0:
        raise ServiceError("整改到位资金不能为负数。", "rectified_fen")
    entry = ProgressEntry(
        entry_on=data["entry_on"], text=text, rectified_fen=amount, actor_id=getattr(actor, "id", None)
    )
    problem.progress.append(entry)
    problem.rectified_fen += amount
    changes = {"state": [problem.state.value, State.IN_PROGRESS.value],  # audited even when it stays 整改中
               "rectified_fen": [problem.rectified_fen - amount, problem.rectified_fen]}  # fmt: skip
    WORKFLOW.take(problem, "progress", actor=actor, opinion=text[:200], summary=f"报送整改进展（{entry.entry_on}）",
                  changes=changes)  # fmt: skip
    return entry


def request_close(problem: Problem, *, actor, comment: str = "", version=None) -> Problem:
    """申请销号: the responsible unit says the problem is rectified; needs at least one progress entry."""
    check_version(problem, version)
    authorize_step(actor, Problem, problem, _today())
    WORKFLOW.check(problem, "request", actor)
    if not problem.progress:
        raise ServiceError("请先报送整改进展，再申请销号。")
    _clear_signoffs(problem)
    WORKFLOW.take(problem, "request", actor=actor, opinion=comment)
    return problem


def _clear_signoffs(problem: Problem) -> None:
    problem.local_signed_by_id = problem.local_signed_at = None
    problem.supervisor_signed_by_id = problem.supervisor_signed_at = None


def sides_for(user, problem: Problem) -> list[str]:
    """The sign-offs ``user`` may still give on this problem now ("local", "supervisor")."""
    if problem.state is not State.REQUESTED or user is None:
        return []
    sides = []
    if can_close_locally(user, problem.unit) and problem.local_signed_at is None:
        sides.append("local")
    if can_close_as_supervisor(user, problem.unit) and problem.supervisor_signed_at is None:
        sides.append("supervisor")
    signed = {problem.local_signed_by_id, problem.supervisor_signed_by_id} - {None}
    if user.id in signed:
        return []
    if "local" in sides and not requester_may_sign() and requester_of(problem) == user.id:
        sides.remove("local")
    return sides


def requester_may_sign() -> bool:
    return bool(current_app.config.get("PROBLEM_REQUESTER_MAY_SIGN", False))


def requester_of(problem: Problem) -> int | None:
    """Who asked for the problem's current 销号 (the last 申请销号 step's actor)."""
    return db.session.scalar(
        sa.select(ProblemStep.actor_id)
        .where(ProblemStep.problem_id == problem.id, ProblemStep.action == StepAction.REQUEST)
        .order_by(ProblemStep.at.desc(), ProblemStep.id.desc())
        .limit(1)
    )


def may_return(user, problem: Problem) -> bool:
    return user is not None and WORKFLOW.allows(problem, "return", user)


def sign_off(problem: Problem, *, actor, comment: str = "", version=None) -> str:
    """审核销号 by one side of 双销号; the second side's sign-off closes the problem (已销号). Returns the side."""
    check_version(problem, version)
    WORKFLOW.check(problem, "sign_local", actor)
    sides = sides_for(actor, problem)
    if not sides:
        if actor is not None and actor.id in {problem.local_signed_by_id, problem.supervisor_signed_by_id}:
            raise ServiceError("您已审核过这个问题的销号；双销号须由责任单位和主管部门两方分别审核。")
        if actor is not None and requester_of(problem) == actor.id and can_close_locally(actor, problem.unit):
            raise ServiceError("销号由您申请，责任单位一方的审核须由本单位另一位审核人（如协作办负责人）办理。")
        raise ServiceError("您不是这个问题的责任单位审核人或主管部门审核人，不能审核销号。")
    authorize_step(actor, Problem, problem, _today())
    side, now = sides[0], utcnow()
    if side == "local":
        problem.local_signed_by_id, problem.local_signed_at = actor.id, now
    else:
        problem.supervisor_signed_by_id, problem.supervisor_signed_at = actor.id, now
    WORKFLOW.take(problem, f"sign_{side}", actor=actor, opinion=comment, audited=False)
    changes = {f"{side}_signed": [None, office_of(actor)]}
    summary = WORKFLOW[f"sign_{side}"].label
    if problem.local_signed_at is not None and problem.supervisor_signed_at is not None:
        problem.closed_on = date.today()
        WORKFLOW.take(problem, "close", actor=actor, audited=False)
        changes["state"] = [State.REQUESTED.value, State.CLOSED.value]
        summary += "，已销号"
    WORKFLOW.audit(problem, f"sign_{side}", actor, summary=summary, changes=changes)
    return side


def return_problem(problem: Problem, *, actor, reason: str, version=None) -> Problem:
    """退回 by either reviewer, with the reason; both sign-offs are cleared."""
    check_version(problem, version)
    WORKFLOW.check(problem, "return", actor)
    reason = WORKFLOW.opinion("return", reason)
    authorize_step(actor, Problem, problem, _today())
    problem.return_reason = reason
    _clear_signoffs(problem)
    WORKFLOW.take(problem, "return", actor=actor, opinion=reason, summary=f"退回（{reason[:60]}）")
    return problem


def add_link(problem: Problem, record_type: str, record_id, *, actor) -> ProblemLink:
    """Name a record the problem concerns; the writer must see it (else it does not exist for them). Links are in no
    report: the scope is asked, not a quarter."""
    authorize_step(actor, Problem, problem)
    if problem.state is State.CLOSED:
        raise ServiceError("已销号的问题不能修改。")
    if record_type not in LINK_TYPES or linkable_model(record_type) is None:
        raise ServiceError("请选择记录类型。", "record_type")
    if visible_record(actor, record_type, record_id) is None:
        raise ServiceError(
            f"没有编号为 {record_id} 的{LINK_TYPES[record_type]}记录，或不在您的管辖范围内。", "record_id"
        )
    if any(link.record_type == record_type and link.record_id == record_id for link in problem.links):
        raise ServiceError("已关联这条记录。", "record_id")
    link = ProblemLink(record_type=record_type, record_id=record_id)
    problem.links.append(link)
    db.session.flush()
    _event(problem, "link", actor, f"关联{LINK_TYPES[record_type]} {record_id}")
    return link


def remove_link(problem: Problem, link_id, *, actor) -> None:
    authorize_step(actor, Problem, problem)
    if problem.state is State.CLOSED:
        raise ServiceError("已销号的问题不能修改。")
    link = next((k for k in problem.links if k.id == link_id), None)
    if link is None:
        raise ServiceError("没有这条关联。")
    problem.links.remove(link)
    db.session.flush()
    _event(problem, "unlink", actor, f"取消关联{LINK_TYPES.get(link.record_type, link.record_type)} {link.record_id}")


def _event(problem: Problem, action: str, actor, summary: str) -> None:
    record(action, problem, actor=actor, summary=f"{summary}：{problem.title}", changes={})


def overdue_clause(today: date):
    """SQL: not closed, and past its deadline."""
    return sa.and_(Problem.state != State.CLOSED, Problem.deadline.is_not(None), Problem.deadline < today)
