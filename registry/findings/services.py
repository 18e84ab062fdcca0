"""Running the checks, and what staff decide on each proposal: accept it into the ledger, or dismiss it."""

from datetime import date

import sqlalchemy as sa

from registry.audit.services import record
from registry.database import utcnow
from registry.extensions import db
from registry.findings.models import Proposal, ProposalState
from registry.findings.rules import RULES
from registry.permissions import WriteScope, authorize_write, scope_of, visible_record
from registry.problems import services as problems
from registry.problems.models import Category, Problem, Source
from registry.services import ServiceError, check_version


def own_counties(actor) -> set | None:
    """The units an office's run looks at (None: everything, for the system, administrators and the province)."""
    if actor is None or scope_of(actor).is_all:
        return None
    return WriteScope(actor).counties


def run_checks(*, actor=None, today: date | None = None) -> tuple[int, int]:
    """Run every rule (over the actor's own counties); add the proposals not found before. Returns (new, found).
    A proposal already there (whatever its state) is only marked as seen again: nothing is proposed twice."""
    today = today or date.today()
    counties = own_counties(actor)
    known = {(p.rule, p.key): p for p in db.session.scalars(sa.select(Proposal))}
    new = total = 0
    now = utcnow()
    for rule, (check, _label) in RULES.items():
        for item in check(today, counties):
            total += 1
            proposal = known.get((rule, item.key))
            if proposal is not None:
                proposal.seen_at = now
                if proposal.state is ProposalState.PROPOSED:
                    proposal.title, proposal.records, proposal.amount_fen = item.title, item.records, item.amount_fen
                continue
            proposal = Proposal(rule=rule, key=item.key, unit_id=item.unit_id, title=item.title[:500],
                                amount_fen=item.amount_fen, records=item.records, seen_at=now)  # fmt: skip
            db.session.add(proposal)
            known[(rule, item.key)] = proposal
            new += 1
    db.session.flush()
    record("check", None, actor=actor, entity_type="problem_proposals",
           summary=f"数据核查：发现 {total} 条线索，其中新增 {new} 条")  # fmt: skip
    return new, total


#: The ledger's category of each rule's problems.
CATEGORIES = {"funds_idle": Category.FUNDS, "projects_late": Category.PROJECT, "counted_twice": Category.LABOUR,
              "assets_without_caretaker": Category.ASSET, "purchase_no_evidence": Category.CONSUMPTION}  # fmt: skip


def _decided(proposal: Proposal, actor, version) -> None:
    check_version(proposal, version)
    if proposal.state is not ProposalState.PROPOSED:
        raise ServiceError(f"该线索{proposal.state.label}，不能再处理。")
    authorize_write(actor, Proposal, proposal, before=proposal)
    proposal.decided_by_id = getattr(actor, "id", None)
    proposal.decided_at = utcnow()


def accept(proposal: Proposal, data: dict, *, actor, version=None, today: date | None = None) -> Problem:
    """纳入台账: a problem (自查, this year's 数据核查 batch) made from the proposal, linked to the records that
    triggered it which the actor may see."""
    today = today or date.today()
    _decided(proposal, actor, version)
    problem = problems.create_problem(
        {"source": Source.SELF_CHECK, "year": today.year, "batch": f"{today.year}年数据核查", "found_on": today,
         "description": proposal.title, "category": CATEGORIES.get(proposal.rule, Category.OTHER),
         "amount_fen": proposal.amount_fen, "unit_id": proposal.unit_id,
         "responsible_unit": data.get("responsible_unit") or "", "deadline": data.get("deadline"),
         "measures": data.get("measures") or ""},
        actor=actor,
    )  # fmt: skip
    for table, record_id in proposal.records:
        if visible_record(actor, table, record_id) is not None:
            problems.add_link(problem, table, record_id, actor=actor)
    proposal.state, proposal.problem_id = ProposalState.ACCEPTED, problem.id
    db.session.flush()
    record("accept", proposal, actor=actor, summary=f"核查线索纳入整改台账（问题 {problem.id}）：{proposal.title[:80]}",
           changes={"state": ["proposed", "accepted"], "problem_id": [None, problem.id]})  # fmt: skip
    return problem


def dismiss(proposal: Proposal, reason: str, *, actor, version=None) -> Proposal:
    """排除: not a problem, with the reason (a check finding it again leaves it dismissed)."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("请填写排除理由。", "reason")
    if len(reason) > 500:
        raise ServiceError("排除理由不能超过 500 个字。", "reason")
    _decided(proposal, actor, version)
    proposal.state, proposal.reason = ProposalState.DISMISSED, reason
    db.session.flush()
    record("dismiss", proposal, actor=actor, summary=f"排除核查线索（{reason[:60]}）：{proposal.title[:80]}",
           changes={"state": ["proposed", "dismissed"], "reason": ["", reason]})  # fmt: skip
    return proposal
