"""Project pages: the filtered list with totals and exports, the project page with funds and status, edits (the
stream kit's pages); status changes and the fund ledger of its own."""

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import aliased, joinedload

from registry import permissions
from registry.counties.models import Unit, UnitKind
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, choice, posted_version, unit_choice
from registry.kernel.money import rate
from registry.kernel.pages import StreamPages
from registry.kernel.services import ServiceError
from registry.kernel.web import save, sort_clause
from registry.pairings.models import Pairing
from registry.permissions import requires, visible_divisions, visible_partners, writable_counties
from registry.projects import queries, services
from registry.projects.forms import ProjectForm, StatusForm, TransactionForm
from registry.projects.models import (
    FundSource,
    FundStage,
    FundTransaction,
    Project,
    ProjectCategory,
    ProjectStatus,
)
from registry.projects.transfer import (
    EXPORT_HEADERS,
    FUND_EXPORT_HEADERS,
    FUND_RULES,
    PROJECT_RULES,
    export_rows,
    import_projects_steps,
    import_transactions_steps,
    project_columns,
    transaction_columns,
    transaction_rows,
)

bp = Blueprint("projects", __name__, url_prefix="/projects")
pages = StreamPages(bp, gate=permissions, model=Project, name="project", label="帮扶项目", edit="projects.edit")

SORTS = {"code": Project.code, "year": Project.year, "name": Project.name, "status": Project.status}
#: The county a list sorted by county is joined to (only then).
COUNTY = aliased(Unit)


def _header(args, stmt):
    """The filtered set's count and funds by stage (one query), and the filters' choices."""
    summary = services.list_summary(stmt)
    return summary.count, {
        "summary": summary,
        "stages": FundStage,
        "statuses": ProjectStatus,
        "categories": ProjectCategory,
        "sources": FundSource,
        "counties": visible_divisions(current_user, UnitKind.COUNTY),
        "prefectures": visible_divisions(current_user, UnitKind.PREFECTURE),
        "partners": visible_partners(current_user),
        "programmes": queries.programmes(),
    }


pages.listing(
    filters=("q", "county", "prefecture", "partner", "programme", "year", "status", "category", "source"),
    query=queries.filtered_projects,
    sorting=lambda: sort_clause({**SORTS, "county": (COUNTY.code, Project.code)}, "-year"),
    header=_header,
    load=(joinedload(Project.county), joinedload(Project.pairing).joinedload(Pairing.east_unit)),
    then=(Project.id,),
    joins={"county": lambda stmt: stmt.join(COUNTY, Project.county_id == COUNTY.id)},
)
pages.export(
    headers=EXPORT_HEADERS,
    rows=export_rows,
    widths=[22, 36, 12, 12, 18, 18, 6, 10, 8, 8, 10, 12, 12, 12, 10, 24, 10, 11, 11, 11, 11, 8, 10],
)
# The fund transactions of the filtered list's projects, streamed (ten years of a prefecture's fund ledger is tens
# of thousands of rows); re-importing the file adds nothing.
pages.export(
    headers=FUND_EXPORT_HEADERS,
    rows=transaction_rows,
    label="项目资金记录",
    widths=[22, 36, 18, 8, 11, 14, 24, 30],
    path="/funds/export.",
    endpoint="export_funds",
)
# Projects are matched by 项目编号; fund rows equal to a registered transaction are not added again.
pages.importing(steps=import_projects_steps, columns=project_columns, rules=PROJECT_RULES, title="导入帮扶项目")
pages.importing(
    steps=import_transactions_steps,
    columns=transaction_columns,
    rules=FUND_RULES,
    title="导入项目资金记录",
    label="项目资金记录",
    path="/funds",
    endpoints=("funds_template", "import_funds"),
)


def _detail(project, transaction_form=None) -> dict:
    """The project page's funds by source, status form and fund form (a refused fund entry's, with its errors)."""
    totals = services.totals_for([project.id])
    allowed = services.allowed_transitions(project)
    # formdata=None: a form the page shows, never bound to another form's POST (a refused fund entry re-renders this
    # page; bound to that post, the status form lost its version and the next status change read as a conflict).
    status_form = StatusForm(formdata=None, data={"changed_on": date.today(), "version": project.version_id})
    status_form.to_status.choices = [choice(s.value, s.label) for s in allowed]
    return {
        "totals": totals,
        "usage": rate(totals.disbursed, totals.arrived),
        "transactions": project.transactions,
        "status_form": status_form,
        "allowed": allowed,
        "transaction_form": transaction_form or TransactionForm(formdata=None, data={"occurred_on": date.today()}),
    }


pages.detail(_detail)


def _location_choices(form):
    """Counties (in scope), their townships and villages, and the pairings the user may attach."""
    counties = writable_counties(current_user)
    locals_ = queries.places_in([u.id for u in counties])
    pairings = queries.attachable_pairings(current_user)
    form.county_id.choices = [BLANK] + [unit_choice(u) for u in counties]
    form.township_id.choices = [choice("", "（不指定）")] + [
        unit_choice(u) for u in locals_ if u.kind is UnitKind.TOWNSHIP
    ]
    form.village_id.choices = [choice("", "（不指定）")] + [
        unit_choice(u) for u in locals_ if u.kind is UnitKind.VILLAGE
    ]
    form.pairing_id.choices = [BLANK] + [
        choice(
            p.id,
            f"{p.east_unit.display_name} ↔ {p.west_unit.name}（{p.valid_from} 至 {p.valid_to or '今'}）",
            p.programme.name,
        )
        for p in pairings
    ]


PREFIXES = {"浙川东西部协作": "ZC", "粤川东西部扶贫协作": "YC", "对口支援": "DK"}


def _data_with_code(form):
    data = dict(form.data)
    if not data.get("code") and data.get("county_id") and data.get("pairing_id"):
        county = db.session.get(Unit, data["county_id"])
        pairing = db.session.get(Pairing, data["pairing_id"])
        if county and pairing:
            data["code"] = services.next_code(PREFIXES.get(pairing.programme.name, "XM"), county, data["year"] or 0)
    return data


# An edit the user may not make is refused by the service (authorize_write), not before the form is shown.
pages.forms(
    ProjectForm,
    choices=_location_choices,
    initial=lambda: {"year": date.today().year},
    data=_data_with_code,
    create=services.create_project,
    update=services.update_project,
    created=lambda project: f"项目 {project.code} 已登记（状态：储备）。",
    saved="项目已保存。",
    check_write=False,
)


@bp.route("/<int:project_id>/status", methods=["POST"])
@requires("projects.edit")
def change_status(project_id):
    project = pages.get(project_id)
    form = StatusForm()
    form.to_status.choices = [choice(s.value, s.label) for s in ProjectStatus]
    if form.validate_on_submit():
        try:
            services.change_status(
                project, form.to_status.data, form.changed_on.data, form.note.data, actor=current_user,
                version=form.version.data,
            )  # fmt: skip
        except ServiceError as exc:
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(f"项目状态已变更为“{project.status.label}”。", "success")
    else:
        flash("状态变更未保存：" + "；".join(e for errors in form.errors.values() for e in errors), "danger")
    return redirect(url_for(".detail", project_id=project.id))


@bp.route("/<int:project_id>/funds", methods=["POST"])
@requires("projects.edit")
def add_transaction(project_id):
    project = pages.get(project_id)
    form = TransactionForm()
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.add_transaction(project, form.data, actor=current_user),
            "资金记录已登记。",
            url_for(".detail", project_id=project.id) + "#funds",
        )
        if response:
            return response
    flash("资金记录未登记：请按“资金记录”表单中标出的提示修改后重新提交。", "danger")
    return pages.render_detail(project, **_detail(project, transaction_form=form)), 422


def _transaction_or_404(project_id, transaction_id):
    project = pages.get(project_id)
    transaction = db.session.get(FundTransaction, transaction_id)
    if transaction is None or transaction.project_id != project.id:
        abort(404)
    return project, transaction


@bp.route("/<int:project_id>/funds/<int:transaction_id>/edit", methods=["GET", "POST"])
@requires("projects.edit")
def edit_transaction(project_id, transaction_id):
    project, transaction = _transaction_or_404(project_id, transaction_id)
    form = TransactionForm(
        obj=transaction, data={"version": transaction.version_id} if request.method == "GET" else None
    )
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_transaction(transaction, form.data, actor=current_user, version=form.version.data),
            "资金记录已保存。",
            url_for(".detail", project_id=project.id) + "#funds",
        )
        if response:
            return response
    return render_template("projects/transaction_form.html", form=form, project=project, transaction=transaction)


@bp.route("/<int:project_id>/funds/<int:transaction_id>/delete", methods=["POST"])
@requires("projects.edit")
def delete_transaction(project_id, transaction_id):
    project, transaction = _transaction_or_404(project_id, transaction_id)
    try:
        services.delete_transaction(transaction, actor=current_user, version=posted_version())
    except ServiceError as exc:
        flash(f"不能删除：{exc}", "danger")
    else:
        db.session.commit()
        flash("资金记录已删除。", "success")
    return redirect(url_for(".detail", project_id=project.id) + "#funds")
