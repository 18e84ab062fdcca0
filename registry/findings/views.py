"""Proposals from the data checks: the list, a run on demand, and each proposal's acceptance or dismissal."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.findings import queries, services
from registry.findings.forms import AcceptForm, DismissForm, RunForm
from registry.findings.models import Proposal, ProposalState
from registry.findings.rules import RULES
from registry.kernel.exports import stream_table
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.kernel.web import int_arg, paginate
from registry.permissions import WriteScope, can, get_visible_or_404, may_write, requires

bp = Blueprint("findings", __name__, url_prefix="/problems/findings")


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in queries.FILTER_KEYS}
    args["state"] = args["state"] or ProposalState.PROPOSED.value
    stmt = queries.filtered(args, current_user).options(joinedload(Proposal.unit), joinedload(Proposal.decided_by))
    page = paginate(stmt.order_by(Proposal.found_at.desc(), Proposal.id.desc()), args=args)
    shown = queries.preview(current_user, [p.id for p in page.items], PREVIEW)
    rows = [(p, shown[p.id]) for p in page.items]
    return render_template(
        "findings/index.html", page=page, rows=rows, args=args, rules=RULES, states=ProposalState, preview=PREVIEW,
        counts=queries.counts(current_user), run_form=RunForm(), accept_form=AcceptForm(), dismiss_form=DismissForm(),
        writable=_writable(page.items),
    )  # fmt: skip


#: Records shown under each proposal on the list (the proposal's page lists them all, a page at a time).
PREVIEW = 10
#: Records per page of a proposal's page.
PER_PAGE = 50


@bp.route("/<int:proposal_id>")
@requires("records.view")
def detail(proposal_id):
    """One proposal with its records, a page at a time, or all of them as CSV or XLSX (``?export=csv``)."""
    proposal = get_visible_or_404(Proposal, proposal_id)
    kind = request.args.get("export")
    if kind in ("csv", "xlsx"):
        headers, rows = queries.download(current_user, proposal.id)
        return stream_table(kind, headers, rows, f"核查线索{proposal.id}", title="核查线索")
    page = max(1, int_arg("page"))
    sections = queries.sections(current_user, proposal.id, page=page, per_page=PER_PAGE)
    pages = max([1, *(-(-s.total // PER_PAGE) for s in sections)])
    return render_template(
        "findings/detail.html", p=proposal, sections=sections, page=min(page, pages), pages=pages, rules=RULES,
        accept_form=AcceptForm(), dismiss_form=DismissForm(), writable=may_write(current_user, proposal),
    )  # fmt: skip


def _writable(proposals) -> set[int]:
    """Ids of those the user may decide on (``may_write`` for each, with the write scope loaded once)."""
    if not can(current_user, "problems.edit"):
        return set()
    scope = WriteScope(current_user)
    return {p.id for p in proposals if scope.allows(p.unit_id, None)}


def _back():
    return redirect(url_for(".index"))


def _refused(form) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(str(error), "danger")


@bp.route("/run", methods=["POST"])
@requires("problems.edit")
def run():
    form = RunForm()
    if not form.validate_on_submit():
        _refused(form)
        return _back()
    new, total = services.run_checks(actor=current_user)
    db.session.commit()
    flash(f"核查完成：发现 {total} 条线索，其中新增 {new} 条。", "success")
    return _back()


def _proposal(proposal_id) -> Proposal:
    proposal = get_visible_or_404(Proposal, proposal_id)
    if not may_write(current_user, proposal):
        abort(403)
    return proposal


@bp.route("/<int:proposal_id>/accept", methods=["POST"])
@requires("problems.edit")
def accept(proposal_id):
    proposal = _proposal(proposal_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        _refused(form)
        return _back()
    try:
        problem = services.accept(proposal, form.data, actor=current_user, version=form.version.data)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _back()
    db.session.commit()
    flash(f"已纳入整改台账（问题 {problem.id}）。", "success")
    return redirect(url_for("problems.detail", problem_id=problem.id))


@bp.route("/<int:proposal_id>/dismiss", methods=["POST"])
@requires("problems.edit")
def dismiss(proposal_id):
    proposal = _proposal(proposal_id)
    form = DismissForm()
    if not form.validate_on_submit():
        _refused(form)
        return _back()
    try:
        services.dismiss(proposal, form.reason.data, actor=current_user, version=form.version.data)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
        return _back()
    db.session.commit()
    flash("已排除该线索。", "success")
    return _back()
