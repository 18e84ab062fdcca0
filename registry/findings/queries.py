"""Reading proposals: the list a user sees (their scope), by state and rule; each proposal's records as rows a
page at a time, a few on the list, all in the download — only those the user's scope shows (the gate's
``scope_filter`` on the record's own scope, or its project's for a fund transaction), identity numbers masked."""

from dataclasses import dataclass

import sqlalchemy as sa

from registry.assets.models import Asset
from registry.counties.models import Unit
from registry.findings.models import Proposal, ProposalRecord, ProposalState
from registry.findings.rules import RULES
from registry.kernel.extensions import db
from registry.permissions import scope_filter
from registry.placements.models import Placement
from registry.projects.models import FundTransaction, Project
from registry.purchases.models import Purchase

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


def _yuan(fen) -> str:
    return f"{fen / 100:,.2f}"


@dataclass(frozen=True)
class Kind:
    """How one record type a rule names is read and shown: its columns and headers, its order, its owner's scope."""

    label: str
    model: type
    headers: tuple
    #: record -> the row's cells (text only: a masked identity number, never the stored one)
    cells: object
    order: tuple
    #: the model whose ``__scope__`` decides who sees it, and how it is joined (None: the record's own)
    owner: type | None = None
    owner_join: object = None
    county: object = None


KINDS = {
    "placements": Kind(
        "劳务协作", Placement, ("姓名", "身份证号", "户籍县", "就业开始", "就业结束", "就业单位"),
        lambda p, county: (p.person_name, p.id_masked, county, str(p.start_date), str(p.end_date or "—"), p.employer),
        (Placement.person_id, Placement.start_date, Placement.id), county=Placement.origin_county_id,
    ),
    "purchases": Kind(
        "消费帮扶", Purchase, ("日期", "销售方", "产品", "金额（元）", "凭证号"),
        lambda p, county: (str(p.purchased_on), p.seller_name, p.product, _yuan(p.amount_fen), p.evidence_no),
        (Purchase.purchased_on, Purchase.id),
    ),
    "fund_transactions": Kind(
        "资金往来", FundTransaction, ("日期", "环节", "资金来源", "金额（元）", "文号"),
        lambda t, county: (str(t.occurred_on), t.stage.label, t.source.label, _yuan(t.amount_fen), t.document_no),
        (FundTransaction.occurred_on, FundTransaction.id), owner=Project,
        owner_join=FundTransaction.project_id == Project.id,
    ),
    "projects": Kind(
        "项目", Project, ("项目编号", "项目名称", "状态", "计划完工"),
        lambda p, county: (p.code, p.name, p.status.label, str(p.planned_finish or "—")), (Project.code,),
    ),
    "assets": Kind(
        "项目资产", Asset, ("资产编号", "资产名称", "原值（元）"),
        lambda a, county: (a.number, a.name, _yuan(a.original_value_fen)), (Asset.number,),
    ),
}  # fmt: skip


def _visible(user, kind: Kind, proposal_ids) -> sa.Select:
    """SELECT of (proposal id, record, county name or None) of ``kind`` named by these proposals that ``user``
    sees (``user`` None: all)."""
    model = kind.model
    county = Unit.name if kind.county is not None else sa.null()
    stmt = (
        sa.select(ProposalRecord.proposal_id, model, county)
        .join(model, model.id == ProposalRecord.record_id)
        .where(ProposalRecord.proposal_id.in_(proposal_ids), ProposalRecord.record_type == model.__tablename__)
    )
    if kind.county is not None:
        stmt = stmt.join(Unit, Unit.id == kind.county)
    if kind.owner is not None:
        stmt = stmt.join(kind.owner, kind.owner_join)
    if user is not None:
        stmt = stmt.where(scope_filter(user, kind.owner or model))
    return stmt


def _types(proposal_ids) -> list[str]:
    present = set(db.session.scalars(
        sa.select(ProposalRecord.record_type).where(ProposalRecord.proposal_id.in_(proposal_ids)).distinct()
    ))  # fmt: skip
    return [t for t in KINDS if t in present]


def visible_record_ids(user, proposal_id: int) -> list[tuple[str, int]]:
    """(table, id) of the proposal's records ``user`` may see, in the order they are shown."""
    out = []
    for record_type in _types([proposal_id]):
        kind = KINDS[record_type]
        stmt = _visible(user, kind, [proposal_id]).with_only_columns(kind.model.id).order_by(*kind.order)
        out += [(record_type, i) for i in db.session.scalars(stmt)]
    return out


def preview(user, proposal_ids: list[int], per_proposal: int = 10) -> dict[int, list[tuple[str, str]]]:
    """The first few records of each proposal (the list page): {proposal id: [(type label, text), …]}, by one
    query per record type, however many proposals the page shows."""
    out = {pid: [] for pid in proposal_ids}
    if not proposal_ids:
        return out
    for record_type in _types(proposal_ids):
        kind = KINDS[record_type]
        number = sa.func.row_number().over(partition_by=ProposalRecord.proposal_id, order_by=kind.order)
        ranked = (_visible(user, kind, proposal_ids)
                  .with_only_columns(ProposalRecord.proposal_id, kind.model.id.label("rid"), number.label("n"))
                  .subquery())  # fmt: skip
        county = Unit.name if kind.county is not None else sa.null()
        stmt = (sa.select(ranked.c.proposal_id, kind.model, county)
                .join(kind.model, kind.model.id == ranked.c.rid)
                .where(ranked.c.n <= per_proposal).order_by(ranked.c.proposal_id, ranked.c.n))  # fmt: skip
        if kind.county is not None:
            stmt = stmt.join(Unit, Unit.id == kind.county)
        for pid, record, county_name in db.session.execute(stmt):
            cells = kind.cells(record, county_name)
            out[pid].append((kind.label, " ".join(c for c in cells[:2] if c)))
    return out


@dataclass
class Section:
    """One record type of a proposal: its headers, the page's rows and how many the user sees in all."""

    label: str
    headers: tuple
    rows: list
    total: int


def sections(user, proposal_id: int, *, page: int = 1, per_page: int = 50) -> list[Section]:
    """The proposal's records the user sees, one section per record type, ``page`` of each (``per_page`` rows)."""
    out = []
    for record_type in _types([proposal_id]):
        kind = KINDS[record_type]
        stmt = _visible(user, kind, [proposal_id])
        total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
        rows = db.session.execute(stmt.order_by(*kind.order).limit(per_page).offset((page - 1) * per_page)).all()
        out.append(Section(kind.label, kind.headers, [kind.cells(r, c) for _pid, r, c in rows], total))
    return out


def download(user, proposal_id: int) -> tuple[list[str], object]:
    """(headers, rows) of every record of the proposal the user sees, for the download: one block per record
    type, the first type's headers on top and each further type's as a row above its block; read in batches (a
    group of thousands is never held at once)."""
    types = _types([proposal_id])
    headers = ["类别", *(KINDS[types[0]].headers if types else ())]

    def rows():
        for index, record_type in enumerate(types):
            kind = KINDS[record_type]
            if index:
                yield ("类别", *kind.headers)
            stmt = _visible(user, kind, [proposal_id]).order_by(*kind.order).execution_options(yield_per=2000)
            for _pid, record, county in db.session.execute(stmt):
                yield (kind.label, *kind.cells(record, county))

    return headers, rows()
