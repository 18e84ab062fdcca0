"""Ledger pages: the county's and the province's ledger (filters, counts per unit and state, the share closed by
the deadline), a problem with its links, progress and steps, and the forms of each step to 销号."""

from datetime import date

from flask import Blueprint, abort, current_app, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry import permissions
from registry.counties.models import UnitKind
from registry.kernel.exports import csv_bytes, download
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.pages import StreamPages
from registry.kernel.web import sort_clause
from registry.kernel.workflow import post_step
from registry.permissions import (
    linkable_model,
    may_write,
    requires,
    visible_divisions,
)
from registry.problems import queries, services, todos  # noqa: F401 - todos registers its source
from registry.problems.forms import ButtonForm, LinkForm, ProblemForm, ProgressForm, ReturnForm, StepForm
from registry.problems.models import WORKING, Category, Problem, Source, State
from registry.problems.transfer import (
    HEADERS,
    IMPORT_RULES,
    columns,
    export_rows,
    import_problems_steps,
    ledger_xlsx,
    writable_units,
)

bp = Blueprint("problems", __name__, url_prefix="/problems")
pages = StreamPages(bp, gate=permissions, model=Problem, name="problem", label="整改台账", edit="problems.edit")

#: Where a linked record's own page is: table -> (endpoint, URL argument, attribute giving its value).
LINK_PAGES = {
    "projects": ("projects.detail", "project_id", "id"),
    "fund_transactions": ("projects.detail", "project_id", "project_id"),
    "placements": ("placements.detail", "placement_id", "id"),
    "purchases": ("purchases.detail", "purchase_id", "id"),
    "exchanges": ("exchanges.detail", "exchange_id", "id"),
    "assets": ("assets.detail", "asset_id", "id"),
}


def _header(args, stmt):
    """The ledger's counts per state and unit, the share closed by the deadline, and the filters' choices."""
    units = visible_divisions(current_user, UnitKind.PREFECTURE) + visible_divisions(current_user, UnitKind.COUNTY)
    return None, {
        "today": date.today(), "summary": queries.summary(stmt), "counts": queries.counts_by_unit(stmt),
        "states": State, "sources": Source, "categories": Category, "batches": queries.batches(current_user),
        "units": units,
    }  # fmt: skip


pages.listing(
    filters=queries.FILTER_KEYS,
    query=queries.filtered,
    sorting=lambda: sort_clause(
        {
            "deadline": (Problem.deadline, Problem.id),
            "found": (Problem.found_on, Problem.id),
            "unit": (Problem.unit_id, Problem.id),
        },
        "deadline",
    ),  # fmt: skip
    header=_header,
    load=(joinedload(Problem.unit),),
)


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered ledger as XLSX (titled, as sent upward) or CSV."""
    rows = list(export_rows(queries.filtered(pages.args(), current_user)))
    scope = current_user.scope_unit.name if current_user.scope_unit is not None else "四川省"
    name = f"整改台账-{date.today().isoformat()}"
    if kind == "csv":
        return download(csv_bytes(HEADERS, rows), name, "csv")
    title = f"{scope}东西部协作发现问题整改台账"
    subtitle = f"填报日期：{date.today().isoformat()}　共 {len(rows)} 个问题"
    return download(ledger_xlsx(rows, title, subtitle), name, "xlsx")


pages.importing(steps=import_problems_steps, columns=columns, title="导入整改问题", rules=IMPORT_RULES)


def _problem(problem_id) -> Problem:
    return pages.get(problem_id)


def _writable(problem_id) -> Problem:
    problem = _problem(problem_id)
    if not may_write(current_user, problem):
        abort(403)
    return problem


def _link_rows(problem):
    rows = []
    for link, record, label in queries.visible_links(current_user, problem):
        page = LINK_PAGES.get(link.record_type)
        url = None
        if page is not None and page[0] in _endpoints():
            url = url_for(page[0], **{page[1]: getattr(record, page[2])})
        rows.append((link, label, queries.record_label(record), url))
    return rows


def _endpoints():
    """The pages this app has (a linked type's page may belong to a module not installed)."""
    return current_app.view_functions


def _link_form() -> LinkForm:
    form = LinkForm(prefix="link")
    form.record_type.choices = [(k, v) for k, v in services.LINK_TYPES.items() if linkable_model(k) is not None]
    return form


#: Records the picker lists for one search (newest first); more asks for a closer keyword.
LINK_PICKS = 20


def _link_search() -> dict:
    """关联记录's picker: records found by code, name or person (``?link_type=…&link_q=…``), each with its button."""
    kind, text = request.args.get("link_type", ""), request.args.get("link_q", "").strip()
    if kind not in services.LINK_TYPES:
        kind = next(iter(services.LINK_TYPES))
    found = queries.link_candidates(current_user, kind, text, LINK_PICKS) if text else []
    return {"link_type": kind, "link_q": text, "link_found": found, "link_types": services.LINK_TYPES,
            "link_more": len(found) == LINK_PICKS}  # fmt: skip


def _detail(problem) -> dict:
    """The problem page beyond the record and its history: its links, the sides that sign and each step's form."""
    version = {"version": problem.version_id}
    return {
        "links": _link_rows(problem), "writable": may_write(current_user, problem),
        "working": problem.state in WORKING, "today": date.today(),
        "sides": services.sides_for(current_user, problem), "may_return": services.may_return(current_user, problem),
        "requester_may_sign": services.requester_may_sign(),
        "progress_form": ProgressForm(formdata=None, data=version | {"entry_on": date.today()}),
        "step_form": StepForm(formdata=None, data=version),
        "return_form": ReturnForm(formdata=None, data=version), "link_form": _link_form(), "button": ButtonForm(),
        **_link_search(),
    }  # fmt: skip


def _units_choices(form):
    form.unit_id.choices = [BLANK] + [unit_choice(u) for u in writable_units(current_user)]


pages.detail(_detail)
pages.forms(
    ProblemForm,
    choices=_units_choices,
    initial=lambda: {"year": date.today().year, "found_on": date.today()},
    create=services.create_problem,
    update=services.update_problem,
    created="整改问题已登记。",
    saved="整改问题已保存。",
)


def _step_post(problem, form, call, success):
    """A step's POST: the service, one commit and back to the problem; a refusal is flashed there."""
    return post_step(form, call, success, url_for(".detail", problem_id=problem.id))


@bp.route("/<int:problem_id>/progress", methods=["POST"])
@requires("problems.edit")
def progress(problem_id):
    problem = _writable(problem_id)
    form = ProgressForm()
    return _step_post(problem, form, lambda: services.add_progress(
        problem, form.data, actor=current_user, version=form.version.data), "整改进展已报送。")  # fmt: skip


@bp.route("/<int:problem_id>/request", methods=["POST"])
@requires("problems.edit")
def request_close(problem_id):
    problem = _writable(problem_id)
    form = StepForm()
    comment = form.comment.data or ""
    return _step_post(problem, form, lambda: services.request_close(
        problem, actor=current_user, comment=comment, version=form.version.data), "已申请销号。")  # fmt: skip


@bp.route("/<int:problem_id>/sign", methods=["POST"])
@requires("problems.review")
def sign(problem_id):
    problem = _problem(problem_id)
    form = StepForm()

    comment = form.comment.data or ""
    return _step_post(problem, form, lambda: services.sign_off(
        problem, actor=current_user, comment=comment, version=form.version.data), "销号审核已记录。")  # fmt: skip


@bp.route("/<int:problem_id>/return", methods=["POST"])
@requires("problems.review")
def return_(problem_id):
    problem = _problem(problem_id)
    form = ReturnForm()
    return _step_post(problem, form, lambda: services.return_problem(
        problem, actor=current_user, reason=form.reason.data, version=form.version.data), "已退回。")  # fmt: skip


@bp.route("/<int:problem_id>/links", methods=["POST"])
@requires("problems.edit")
def add_link(problem_id):
    problem = _writable(problem_id)
    form = _link_form()
    return _step_post(problem, form, lambda: services.add_link(
        problem, form.record_type.data, form.record_id.data, actor=current_user), "已关联记录。")  # fmt: skip


@bp.route("/<int:problem_id>/links/<int:link_id>/delete", methods=["POST"])
@requires("problems.edit")
def remove_link(problem_id, link_id):
    problem = _writable(problem_id)
    return _step_post(problem, ButtonForm(), lambda: services.remove_link(problem, link_id, actor=current_user),
                      "已取消关联。")  # fmt: skip
