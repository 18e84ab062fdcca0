"""What the dashboard's closing panel and the report list's overview show: plain data, fetched by the templates
through two globals (``closing_panel``, ``closing_overview``), so the reports pages need one include line each."""

import json
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from flask_login import current_user

from registry.closing import services
from registry.closing.models import (
    CONFIRMABLE,
    WORKFLOW,
    Confirmation,
    QuarterReport,
    ReportState,
    ReportStep,
    UnlockRequest,
    awaiting_approval,
)
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.permissions import can_approve_report, confirmable_pairings


@dataclass
class Panel:
    unit: Unit
    quarter: Quarter
    state: ReportState
    report: QuarterReport | None
    due: date
    overdue: bool
    steps: list[ReportStep] = field(default_factory=list)
    versions: list = field(default_factory=list)
    confirmations: list[Confirmation] = field(default_factory=list)
    unlocks: list[UnlockRequest] = field(default_factory=list)
    pending_unlock: UnlockRequest | None = None
    my_pairings: list = field(default_factory=list)
    open_disputes: int = 0
    may: dict = field(default_factory=dict)
    confirm_deadline: date | None = None
    #: The East side may still confirm or dispute (submitted, reviewed or approved, before the deadline).
    confirmations_open: bool = False
    #: The county's pairings of the quarter that have neither confirmed nor disputed yet, while the window is open.
    unconfirmed: list = field(default_factory=list)

    @property
    def awaiting_approval(self) -> bool:
        return self.state in awaiting_approval(self.unit)


def panel(unit_id: int, quarter: Quarter) -> Panel:
    """The closing state of one unit-quarter, its timeline, versions, confirmations, and what the user may do."""
    unit = db.session.get(Unit, unit_id)
    report = services.report_of(unit, quarter)
    state = report.state if report is not None else ReportState.DRAFT
    confirmations, unlocks = [], []
    if report is not None:
        confirmations = list(db.session.scalars(sa.select(Confirmation).where(Confirmation.report_id == report.id)))
        unlocks = list(
            db.session.scalars(
                sa.select(UnlockRequest).where(UnlockRequest.report_id == report.id).order_by(UnlockRequest.id)
            )
        )
    p = Panel(
        unit=unit, quarter=quarter, state=state, report=report, due=services.due_date(quarter),
        overdue=services.is_overdue(state, quarter), steps=list(report.steps) if report else [],
        versions=[
            {"number": v.number, "approved_at": v.approved_at, "by": v.approved_by_name, "sha": v.pdf_sha256,
             "figures_sha": v.figures_sha256, "approvers": json.loads(v.approvers_json)}
            for v in (report.versions if report else [])
        ],
        confirmations=confirmations, unlocks=unlocks, pending_unlock=services.pending_unlock(report),
    )  # fmt: skip
    p.open_disputes = sum(1 for c in confirmations if c.state.value == "disputed")
    user = current_user

    def may(step: str) -> bool:
        return WORKFLOW.allows(report, step, user, subject=unit)

    p.may = {
        "submit": may("submit"),
        "review": may("review"),
        "approve": may("approve"),
        "answer": p.open_disputes > 0 and may("answer"),
        "request_unlock": p.pending_unlock is None and may("request_unlock"),
        "decide_unlock": p.pending_unlock is not None and may("grant_unlock"),
    }
    p.confirm_deadline = services.confirm_deadline(quarter)
    p.confirmations_open = state in CONFIRMABLE and services.confirmations_open(quarter)
    if p.confirmations_open:
        p.my_pairings = confirmable_pairings(user, unit, quarter)
    if unit.kind is UnitKind.COUNTY and p.confirmations_open:
        # Who has still to speak for the East side (the province sees it before approving).
        spoken = {c.pairing_id for c in confirmations}
        p.unconfirmed = [pr for pr in services.pairings_of(unit, quarter) if pr.id not in spoken]
    return p


@dataclass
class OverviewRow:
    unit: Unit
    state: ReportState
    needs_review: bool
    overdue: bool


def overview(quarter: Quarter, units) -> dict:
    """States of the listed units for the report list, and for the province office a table of every paired
    county by state ({state: [rows]})."""
    units = list(units)
    ids = [u.id for u in units]
    rows = {
        r.unit_id: r
        for r in db.session.scalars(
            sa.select(QuarterReport).where(
                QuarterReport.year == quarter.year, QuarterReport.quarter == quarter.number,
                QuarterReport.unit_id.in_(ids) if ids else sa.false(),
            )
        )
    }  # fmt: skip
    listed = {}
    for u in units:
        r = rows.get(u.id)
        state = r.state if r else ReportState.DRAFT
        listed[u.id] = OverviewRow(u, state, bool(r and r.needs_review), services.is_overdue(state, quarter))
    by_state = {}
    if can_approve_report(current_user, _sichuan()):
        for row in listed.values():
            if row.unit.kind is UnitKind.COUNTY:
                by_state.setdefault(row.state, []).append(row)
    return {
        "rows": listed,
        "due": services.due_date(quarter),
        "by_state": [(s, by_state.get(s, [])) for s in ReportState] if by_state else [],
    }


def _sichuan():
    return db.session.scalar(sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind == UnitKind.PROVINCE).limit(1))
