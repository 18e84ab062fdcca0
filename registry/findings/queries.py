"""Reading proposals: the list a user sees (their scope), by state and rule."""

import sqlalchemy as sa

from registry.extensions import db
from registry.findings.models import Proposal, ProposalState
from registry.findings.rules import RULES
from registry.permissions import scope_filter, visible_record

FILTER_KEYS = ("state", "rule")


def filtered(args: dict, user) -> sa.Select:
    stmt = sa.select(Proposal).where(scope_filter(user, Proposal))
    state = args.get("state") or ProposalState.PROPOSED.value
    if state in ProposalState._value2member_map_:
        stmt = stmt.where(Proposal.state == state)
    if args.get("rule") in RULES:
        stmt = stmt.where(Proposal.rule == args["rule"])
    return stmt


def counts(user) -> dict:
    rows = db.session.execute(
        sa.select(Proposal.state, sa.func.count()).where(scope_filter(user, Proposal)).group_by(Proposal.state)
    )
    return {ProposalState(s): n for s, n in rows}


def visible_records(user, proposal: Proposal) -> list[tuple[str, object]]:
    """(table, record) of the triggering records ``user`` may see."""
    shown = []
    for table, record_id in proposal.records:
        record = visible_record(user, table, record_id)
        if record is not None:
            shown.append((table, record))
    return shown
