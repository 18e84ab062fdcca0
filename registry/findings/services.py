"""Running the checks, and what staff decide on each proposal: accept it into the ledger, or dismiss it.

A run is set-based from end to end (``run_checks``): the rules stage what they find (``rules.stage``), the
records a decided proposal of the same group already named are taken out, and the open proposals and their
records are brought in line by a few ``INSERT … SELECT`` / ``DELETE … WHERE NOT EXISTS`` statements — the Python
side handles groups (a few thousand at a province's volume), never records.
"""

from datetime import date

import sqlalchemy as sa

from registry.findings import rules as checks
from registry.findings.models import Proposal, ProposalRecord, ProposalState
from registry.findings.queries import visible_record_ids
from registry.findings.rules import RULES
from registry.findings.staging import FOUND, Staging
from registry.kernel.audit.services import record
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError, check_version
from registry.permissions import WriteScope, authorize_write, scope_of
from registry.problems import services as problems
from registry.problems.models import Category, Problem, Source

OPEN = ProposalState.PROPOSED.value


def own_counties(actor) -> set | None:
    """The units an office's run looks at (None: everything, for the system, administrators and the province)."""
    if actor is None or scope_of(actor).is_all:
        return None
    return WriteScope(actor).counties


def _in_scope(counties):
    return sa.true() if counties is None else Proposal.unit_id.in_(list(counties))


def _lock_run(conn) -> None:
    """One run at a time on PostgreSQL (two would both add the same new group); SQLite's write lock does it."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(23008)")


def _drop_decided(staging: Staging) -> None:
    """Take out the records a decided proposal of the same group named (they stay decided), then what was staged
    aside for them alone, so that a decided group comes back only with records it did not name."""
    f, p, r = FOUND.c, Proposal.__table__.c, ProposalRecord.__table__.c
    decided = sa.exists().where(
        p.rule == f.rule, p.key == f.key, p.state != OPEN,
        r.proposal_id == p.id, r.record_type == f.record_type, r.record_id == f.record_id,
    )  # fmt: skip
    if not staging.execute(sa.delete(FOUND).where(f.aside == 0, decided)).rowcount:
        return
    kept = FOUND.alias("kept")
    staging.execute(sa.delete(FOUND).where(f.aside == 1, ~sa.exists().where(
        kept.c.rule == f.rule, kept.c.key == f.key, kept.c.aside == 0,
        sa.or_(f.subject.is_(None), kept.c.subject == f.subject),
    )))  # fmt: skip


def run_checks(*, actor=None, today: date | None = None) -> tuple[int, int]:
    """Run every rule (over the actor's own counties) and bring the open proposals in line with what they find:
    a group found with records no decided proposal named is one open proposal (updated if there, added if not);
    its records are exactly those found now (fixed ones drop out); an open proposal whose group is no longer
    found goes. Decided proposals are never changed. Returns (new proposals, open proposals found)."""
    today = today or date.today()
    counties = own_counties(actor)
    now = utcnow()
    db.session.flush()
    proposals, records = Proposal.__table__, ProposalRecord.__table__
    p, r, f = proposals.c, records.c, FOUND.c
    with Staging(db.session) as staging:
        _lock_run(staging.conn)
        checks.stage(staging, RULES.values(), today, counties)
        _drop_decided(staging)
        found = checks.groups(staging)
        titles = checks.titles(found, today)

        scope = sa.and_(p.state == OPEN, _in_scope(counties))
        open_ = {(rule, key): (pid, title, amount, count) for pid, rule, key, title, amount, count in staging.execute(
            sa.select(p.id, p.rule, p.key, p.title, p.amount_fen, p.record_count).where(scope))}  # fmt: skip
        added, changed, seen = [], [], []
        for g in found:
            title = titles[(g.rule, g.key)]
            there = open_.get((g.rule, g.key))
            if there is None:
                added.append({"rule": g.rule, "key": g.key, "unit_id": g.unit_id, "title": title, "amount_fen":
                              g.amount_fen, "record_count": g.count, "state": OPEN, "reason": "", "found_at": now,
                              "seen_at": now, "created_at": now, "updated_at": now, "version_id": 1})  # fmt: skip
            elif there[1:] != (title, g.amount_fen, g.count):
                changed.append({"pid": there[0], "t": title, "a": g.amount_fen, "n": g.count})
            else:
                seen.append(there[0])
        if added:
            staging.execute(proposals.insert(), added)
        if changed:
            staging.execute(
                proposals.update().where(p.id == sa.bindparam("pid"), p.state == OPEN).values(
                    title=sa.bindparam("t"), amount_fen=sa.bindparam("a"), record_count=sa.bindparam("n"),
                    seen_at=now, updated_at=now, version_id=p.version_id + 1),
                changed,
            )  # fmt: skip
        for start in range(0, len(seen), 5000):
            staging.execute(
                proposals.update().where(p.id.in_(seen[start : start + 5000]), p.state == OPEN).values(seen_at=now)
            )

        # The open proposals' records made exactly those staged for their group.
        same_group = sa.and_(p.rule == f.rule, p.key == f.key)
        still = sa.exists().where(p.id == r.proposal_id, same_group, f.record_type == r.record_type,
                                  f.record_id == r.record_id)  # fmt: skip
        staging.execute(sa.delete(records).where(r.proposal_id.in_(sa.select(p.id).where(scope)), ~still))
        staging.execute(records.insert().from_select(
            ["proposal_id", "record_type", "record_id"],
            sa.select(p.id, f.record_type, f.record_id).distinct()
            .select_from(FOUND).join(proposals, sa.and_(same_group, p.state == OPEN))
            .where(~sa.exists().where(r.proposal_id == p.id, r.record_type == f.record_type,
                                      r.record_id == f.record_id)),
        ))  # fmt: skip
        # Open proposals whose group is no longer found: every record fixed, nothing left to decide.
        found_keys = {(g.rule, g.key) for g in found}
        gone_ids = [there[0] for group, there in open_.items() if group not in found_keys]
        for start in range(0, len(gone_ids), 5000):
            chunk = gone_ids[start : start + 5000]
            staging.execute(sa.delete(records).where(r.proposal_id.in_(sa.select(p.id).where(p.id.in_(chunk), scope))))
            staging.execute(sa.delete(proposals).where(p.id.in_(chunk), scope))
    db.session.expire_all()
    new, total = len(added), len(found)
    record("check", None, actor=actor, entity_type="problem_proposals",
           summary=f"数据核查：发现 {total} 条线索，其中新增 {new} 条，{len(gone_ids)} 条已全部纠正")  # fmt: skip
    return new, total


#: The ledger's category of each rule's problems.
CATEGORIES = {name: rule.category for name, rule in RULES.items()}


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
    for table, record_id in visible_record_ids(actor, proposal.id):
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
