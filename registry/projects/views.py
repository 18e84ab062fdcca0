"""Project pages: the filtered list with totals and exports, the project page with funds and status, edits."""

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import aliased, joinedload

from registry.counties.models import Unit, UnitKind
from registry.kernel.audit.queries import history_of
from registry.kernel.exports import stream_table
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, choice, posted_version, unit_choice
from registry.kernel.money import rate
from registry.kernel.services import ServiceError
from registry.kernel.transfer.forms import import_page, template_download
from registry.kernel.web import paginate, save, sort_clause
from registry.pairings.models import Pairing
from registry.permissions import (
    get_visible_or_404,
    requires,
    scope_filter,
    visible_divisions,
    visible_partners,
    writable_counties,
)
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

FILTER_KEYS = ("q", "county", "prefecture", "partner", "programme", "year", "status", "category", "source")


SORTS = {"code": Project.code, "year": Project.year, "name": Project.name, "status": Project.status}


def _filter_choices():
    return {
        "counties": visible_divisions(current_user, UnitKind.COUNTY),
        "prefectures": visible_divisions(current_user, UnitKind.PREFECTURE),
        "partners": visible_partners(current_user),
        "programmes": queries.programmes(),
    }


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt = queries.filtered_projects(args, current_user)
    summary = services.list_summary(stmt)
    county = aliased(Unit)
    sort, order = sort_clause({**SORTS, "county": (county.code, Project.code)}, "-year")
    if sort.lstrip("-") == "county":
        stmt = stmt.join(county, Project.county_id == county.id)
    page = paginate(
        stmt.options(joinedload(Project.county), joinedload(Project.pairing).joinedload(Pairing.east_unit))
        .order_by(*order, Project.id),
        args={**args, "sort": sort},
        total=summary.count,
    )  # fmt: skip
    return render_template(
        "projects/index.html",
        page=page,
        args=args,
        sort=sort,
        summary=summary,
        stages=FundStage,
        statuses=ProjectStatus,
        categories=ProjectCategory,
        sources=FundSource,
        **_filter_choices(),
    )


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered list (every page), as XLSX or CSV."""
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt = queries.filtered_projects(args, current_user)
    name = f"帮扶项目-{date.today().isoformat()}"
    widths = [22, 36, 12, 12, 18, 18, 6, 10, 8, 8, 10, 12, 12, 12, 10, 24, 10, 11, 11, 11, 11, 8, 10]
    return stream_table(kind, EXPORT_HEADERS, export_rows(stmt), name, title="帮扶项目", widths=widths)


@bp.route("/funds/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export_funds(kind):
    """The fund transactions of the filtered list's projects; re-importing the file adds nothing."""
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    # Streamed: ten years of a prefecture's fund ledger is tens of thousands of rows.
    rows = transaction_rows(queries.filtered_projects(args, current_user))
    name = f"项目资金记录-{date.today().isoformat()}"
    widths = [22, 36, 18, 8, 11, 14, 24, 30]
    return stream_table(kind, FUND_EXPORT_HEADERS, rows, name, title="项目资金记录", widths=widths)


@bp.route("/template.xlsx")
@requires("records.view")
def template():
    """The project import template (counties and partners limited to the user's scope)."""
    return template_download(project_columns(current_user), "帮扶项目", PROJECT_RULES)


@bp.route("/import", methods=["GET", "POST"])
@requires("projects.edit")
def import_():
    """Upload a filled template or an edited export; rows are matched by 项目编号."""
    return import_page(
        import_projects_steps, user=current_user, title="导入帮扶项目", back_label="帮扶项目", rules=PROJECT_RULES
    )


@bp.route("/funds/template.xlsx")
@requires("records.view")
def funds_template():
    """The fund transactions import template."""
    return template_download(transaction_columns(current_user), "项目资金记录", FUND_RULES)


@bp.route("/funds/import", methods=["GET", "POST"])
@requires("projects.edit")
def import_funds():
    """Upload fund transactions of existing projects; rows equal to a registered transaction are not added."""
    return import_page(
        import_transactions_steps, user=current_user, title="导入项目资金记录", back_label="帮扶项目",
        rules=FUND_RULES, template=url_for(".funds_template"),
    )  # fmt: skip


@bp.route("/<int:project_id>")
@requires("records.view")
def detail(project_id):
    project = get_visible_or_404(Project, project_id, scope_filter(current_user, Project))
    totals = services.totals_for([project.id])
    allowed = services.allowed_transitions(project)
    status_form = StatusForm(data={"changed_on": date.today(), "version": project.version_id})
    status_form.to_status.choices = [choice(s.value, s.label) for s in allowed]
    return render_template(
        "projects/detail.html",
        project=project,
        totals=totals,
        usage=rate(totals.disbursed, totals.arrived),
        transactions=project.transactions,
        status_form=status_form,
        allowed=allowed,
        transaction_form=TransactionForm(data={"occurred_on": date.today()}),
        history=history_of(project),
    )


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


@bp.route("/new", methods=["GET", "POST"])
@requires("projects.edit")
def create():
    form = ProjectForm(data={"year": date.today().year} if request.method == "GET" else None)
    _location_choices(form)
    if form.validate_on_submit():
        data = _data_with_code(form)
        response = save(
            form,
            lambda: services.create_project(data, actor=current_user),
            lambda project: f"项目 {project.code} 已登记（状态：储备）。",
            lambda project: url_for(".detail", project_id=project.id),
        )
        if response:
            return response
    return render_template("projects/form.html", form=form, project=None)


@bp.route("/<int:project_id>/edit", methods=["GET", "POST"])
@requires("projects.edit")
def edit(project_id):
    project = get_visible_or_404(Project, project_id, scope_filter(current_user, Project))
    form = ProjectForm(obj=project, data={"version": project.version_id} if request.method == "GET" else None)
    _location_choices(form)
    if form.validate_on_submit():
        data = _data_with_code(form)
        response = save(
            form,
            lambda: services.update_project(project, data, actor=current_user, version=form.version.data),
            "项目已保存。",
            url_for(".detail", project_id=project.id),
        )
        if response:
            return response
    return render_template("projects/form.html", form=form, project=project)


@bp.route("/<int:project_id>/status", methods=["POST"])
@requires("projects.edit")
def change_status(project_id):
    project = get_visible_or_404(Project, project_id, scope_filter(current_user, Project))
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
    project = get_visible_or_404(Project, project_id, scope_filter(current_user, Project))
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
    totals = services.totals_for([project.id])
    allowed = services.allowed_transitions(project)
    status_form = StatusForm(data={"changed_on": date.today(), "version": project.version_id})
    status_form.to_status.choices = [choice(s.value, s.label) for s in allowed]
    return render_template(
        "projects/detail.html", project=project, totals=totals, usage=rate(totals.disbursed, totals.arrived),
        transactions=project.transactions, status_form=status_form, allowed=allowed, transaction_form=form,
        history=history_of(project),
    ), 422  # fmt: skip


def _transaction_or_404(project_id, transaction_id):
    project = get_visible_or_404(Project, project_id, scope_filter(current_user, Project))
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
