"""Placement pages: list with counts of people, detail with an audited reveal, edits, duplicates, import/export (the
stream kit's pages and the reveal and duplicates of its own)."""

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry import permissions
from registry.counties.models import UnitKind
from registry.kernel.audit.services import record
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.pages import StreamPages
from registry.kernel.web import sort_clause
from registry.permissions import can, requires, visible_divisions, writable_counties
from registry.placements import cells, queries, services
from registry.placements.forms import PlacementForm
from registry.placements.models import Destination, Household, Placement
from registry.placements.transfer import HEADERS, columns, export_count, import_placements_steps

bp = Blueprint("placements", __name__, url_prefix="/placements")
pages = StreamPages(bp, gate=permissions, model=Placement, name="placement", label="劳务协作", edit="placements.edit")


def _header(args, stmt):
    """Records, people counted once, 其中脱贫 and people per destination, from the placement cells."""
    if args["q"]:
        # Names and employers are not in the cells: a keyword search counts its placements, found through the
        # keyword index, in one pass.
        header = queries.keyword_header(stmt)
    else:
        header = cells.header_from_cells(*queries.cell_filter(args, current_user))
    return header.placements, {
        "persons": header.people,
        "lifted": header.lifted,
        "by_destination": header.by_destination,
        "counties": visible_divisions(current_user, UnitKind.COUNTY),
        "households": Household,
        "destinations": Destination,
    }


def _full(stmt) -> bool:
    """?full=1: identity numbers in full, for permitted roles only (403 otherwise), the export audited."""
    full = request.args.get("full") == "1"
    if full and not can(current_user, "idnumbers.view"):
        abort(403)
    if full:
        count = export_count(stmt)
        record("export_id", None, actor=current_user, entity_type="placements",
               summary=f"导出含完整身份证号的劳务协作记录 {count} 条")  # fmt: skip
        db.session.commit()
    return full


pages.listing(
    filters=queries.FILTER_KEYS,
    query=queries.filtered,
    sorting=lambda: sort_clause(
        {"start": (Placement.start_date, Placement.id), "name": (Placement.person_name, Placement.id)}, "-start"
    ),
    header=_header,
    load=(joinedload(Placement.origin_county),),
)
# Written as read: plain rows in keyset batches, per-column converters (a million rows in flat memory).
pages.export(
    headers=HEADERS,
    batches=queries.export_batches,
    widths=[8, 10, 20, 10, 10, 10, 10, 16, 10, 10, 24, 10, 10, 14, 12, 12, 12, 20],
    full=_full,
)
pages.detail(lambda placement: {"number": None})


def _choices(form):
    form.origin_county_id.choices = [BLANK] + [unit_choice(u) for u in writable_counties(current_user)]


pages.forms(
    PlacementForm,
    choices=_choices,
    create=services.create_placement,
    update=services.update_placement,
    created="劳务协作记录已登记。",
    saved="劳务协作记录已保存。",
)
pages.importing(
    steps=import_placements_steps,
    columns=columns,
    title="导入劳务协作记录",
    rules=[
        "所有行检查通过才会写入；任何一行有错，一条也不写入，并列出每个错误的行号、列和原因。",
        "有“编号”的行更新该条记录；没有编号的行按身份证号、户籍县和就业开始日期匹配已有记录，匹配不到则新增。",
        "空白单元格不会覆盖已有内容；脱敏的身份证号（如 5134**********1239）表示不修改。",
    ],
)


@bp.route("/duplicates")
@requires("records.view")
def duplicates():
    """People placed by two or more counties: the same identity number, for staff to resolve."""
    groups = queries.duplicate_groups(current_user)
    return render_template("placements/duplicates.html", groups=groups)


@bp.route("/<int:placement_id>/reveal", methods=["POST"])
@requires("idnumbers.view")
def reveal(placement_id):
    """Show the full identity number once; the view is recorded in the audit trail."""
    placement = pages.get(placement_id)
    number = services.reveal_number(placement, actor=current_user)
    db.session.commit()
    return pages.render_detail(placement, number=number), 200, {"Cache-Control": "no-store"}
