"""Placement pages: list with counts of people, detail with an audited reveal, edits, duplicates, import/export."""

from datetime import date

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.counties.models import UnitKind
from registry.kernel.audit.queries import history_of
from registry.kernel.audit.services import record
from registry.kernel.exports import background_export, stream_batches
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.transfer.forms import import_page, template_download
from registry.kernel.web import paginate, save, sort_clause
from registry.permissions import (
    can,
    get_visible_or_404,
    may_write,
    requires,
    scope_filter,
    visible_divisions,
    writable_counties,
)
from registry.placements import cells, queries, services
from registry.placements.forms import PlacementForm
from registry.placements.models import Destination, Household, Placement
from registry.placements.transfer import HEADERS, columns, export_count, import_placements_steps

EXPORT_WIDTHS = [8, 10, 20, 10, 10, 10, 10, 16, 10, 10, 24, 10, 10, 14, 12, 12, 12, 20]

bp = Blueprint("placements", __name__, url_prefix="/placements")


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in queries.FILTER_KEYS}
    stmt = queries.filtered(args, current_user)
    if args["q"]:
        # Names and employers are not in the cells: a keyword search counts its placements, found through the
        # keyword index, in one pass.
        header = queries.keyword_header(stmt)
    else:
        header = cells.header_from_cells(*queries.cell_filter(args, current_user))
    sort, order = sort_clause(
        {"start": (Placement.start_date, Placement.id), "name": (Placement.person_name, Placement.id)}, "-start"
    )
    page = paginate(
        stmt.options(joinedload(Placement.origin_county)).order_by(*order),
        args={**args, "sort": sort},
        total=header.placements,
    )
    counties = visible_divisions(current_user, UnitKind.COUNTY)
    return render_template(
        "placements/index.html", page=page, args=args, sort=sort, persons=header.people, lifted=header.lifted,
        by_destination=header.by_destination, counties=counties, households=Household, destinations=Destination,
    )  # fmt: skip


@bp.route("/duplicates")
@requires("records.view")
def duplicates():
    """People placed by two or more counties: the same identity number, for staff to resolve."""
    groups = queries.duplicate_groups(current_user)
    return render_template("placements/duplicates.html", groups=groups)


@bp.route("/<int:placement_id>")
@requires("records.view")
def detail(placement_id):
    placement = get_visible_or_404(Placement, placement_id, scope_filter(current_user, Placement))
    return render_template("placements/detail.html", placement=placement, number=None, history=history_of(placement))


@bp.route("/<int:placement_id>/reveal", methods=["POST"])
@requires("idnumbers.view")
def reveal(placement_id):
    """Show the full identity number once; the view is recorded in the audit trail."""
    placement = get_visible_or_404(Placement, placement_id, scope_filter(current_user, Placement))
    number = services.reveal_number(placement, actor=current_user)
    db.session.commit()
    response = render_template(
        "placements/detail.html", placement=placement, number=number, history=history_of(placement)
    )
    return response, 200, {"Cache-Control": "no-store"}


def _choices(form):
    form.origin_county_id.choices = [BLANK] + [unit_choice(u) for u in writable_counties(current_user)]


@bp.route("/new", methods=["GET", "POST"])
@requires("placements.edit")
def create():
    form = PlacementForm()
    _choices(form)
    if form.validate_on_submit():
        response = save(
            form, lambda: services.create_placement(form.data, actor=current_user), "劳务协作记录已登记。",
            lambda placement: url_for(".detail", placement_id=placement.id),
        )  # fmt: skip
        if response:
            return response
    return render_template("placements/form.html", form=form, placement=None)


@bp.route("/<int:placement_id>/edit", methods=["GET", "POST"])
@requires("placements.edit")
def edit(placement_id):
    placement = get_visible_or_404(Placement, placement_id, scope_filter(current_user, Placement))
    if not may_write(current_user, placement):
        abort(403)
    form = PlacementForm(obj=placement, data={"version": placement.version_id} if request.method == "GET" else None)
    _choices(form)
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_placement(placement, form.data, actor=current_user, version=form.version.data),
            "劳务协作记录已保存。",
            url_for(".detail", placement_id=placement.id),
        )
        if response:
            return response
    return render_template("placements/form.html", form=form, placement=placement)


IMPORT_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
    "有“编号”的行更新该条记录；没有编号的行按身份证号、户籍县和就业开始日期匹配已有记录，匹配不到则新增。",
    "空白单元格不会覆盖已有内容；脱敏的身份证号（如 5134**********1239）表示不修改。",
]


@bp.route("/template.xlsx")
@requires("records.view")
def template():
    """The import template: the export's columns, no rows."""
    return template_download(columns(current_user), "劳务协作", IMPORT_RULES)


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered list; identity numbers in full only for permitted roles asking for them (audited)."""

    args = {k: request.args.get(k, "").strip() for k in queries.FILTER_KEYS}
    full = request.args.get("full") == "1"
    if full and not can(current_user, "idnumbers.view"):
        abort(403)
    stmt = queries.filtered(args, current_user)
    if full:
        count = export_count(stmt)
        record("export_id", None, actor=current_user, entity_type="placements",
               summary=f"导出含完整身份证号的劳务协作记录 {count} 条")  # fmt: skip
        db.session.commit()
    # Above EXPORT_BACKGROUND_ROWS the file is made by a background job (the page shows its progress).
    job = background_export("placements", kind, args, stmt, user=current_user, full=full)
    if job is not None:
        return job
    # Written as read: plain rows in keyset batches, per-column converters (a million rows in flat memory).
    batches = queries.export_batches(stmt, kind, reveal=full)
    name = f"劳务协作-{date.today().isoformat()}"
    return stream_batches(kind, HEADERS, batches, name, title="劳务协作", widths=EXPORT_WIDTHS)


@bp.route("/import", methods=["GET", "POST"])
@requires("placements.edit")
def import_():
    """Upload a filled template or an edited export: every row is checked before anything is written."""

    return import_page(
        import_placements_steps, user=current_user, title="导入劳务协作记录", back_label="劳务协作", rules=IMPORT_RULES
    )
