"""Unit pages: the county list, a county's partners over time, and organisations added below counties."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.agreements.queries import visible_agreements
from registry.agreements.services import agreements_for, progress
from registry.counties import services
from registry.counties.forms import CategoryForm, LocalUnitForm
from registry.counties.models import (
    CATEGORIES_2021,
    UNIT_KIND_LABELS,
    Side,
    Unit,
    UnitKind,
)
from registry.directory import queries
from registry.kernel.audit.queries import history_of
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.periods import Quarter
from registry.kernel.services import ServiceError
from registry.kernel.web import paginate, save, sort_clause
from registry.pairings.services import partners_during
from registry.permissions import (
    can_manage_unit,
    get_visible_or_404,
    pairing_filter,
    report_visible,
    requires,
    scope_filter,
    unit_filter,
    visible_divisions,
)
from registry.projects.models import FundStage, Project
from registry.projects.queries import county_year_projects
from registry.projects.services import totals_for

bp = Blueprint("counties", __name__, url_prefix="/units")


@bp.route("/")
@requires("records.view")
def index():
    """Units in scope; by default Sichuan county-level units, the registry's main subject."""
    args = {k: request.args.get(k, "").strip() for k in ("q", "side", "kind", "prefecture", "category", "paired")}
    if args["side"] not in Side._value2member_map_:
        args["side"] = "west"  # empty or unknown (?side=x): the Sichuan side, as on first visit
    args["kind"] = args["kind"] or "county"
    today = date.today()
    stmt = queries.filtered_units(args, unit_filter(current_user), today)
    sort, order = sort_clause(
        {
            "code": (Unit.code, Unit.id),
            "name": (Unit.name, Unit.id),
            "category": (Unit.category, Unit.code),
        },
        "code",
    )
    page = paginate(
        stmt.options(joinedload(Unit.prefecture)).order_by(*order),
        args={**args, "sort": sort},
    )
    partners = queries.current_partners([u.id for u in page.items], today, pairing_filter(current_user))
    prefectures = visible_divisions(current_user, UnitKind.PREFECTURE, Side(args["side"]))
    return render_template(
        "counties/index.html",
        page=page,
        args=args,
        sort=sort,
        partners=partners,
        prefectures=prefectures,
        categories={c: c.label for c in CATEGORIES_2021},
        kinds=UNIT_KIND_LABELS,
    )


@bp.route("/<int:unit_id>")
@requires("records.view")
def detail(unit_id):
    """A unit with its partners over time, the partners of a chosen quarter, and its organisations."""
    unit = get_visible_or_404(Unit, unit_id, unit_filter(current_user))
    pairings = queries.pairings_of(unit.id, pairing_filter(current_user))
    quarter_text = request.args.get("quarter", "").strip()
    quarter, quarter_error, quarter_partners = None, None, []
    if quarter_text:
        try:
            quarter = Quarter.parse(quarter_text)
        except ValueError as exc:
            quarter_error = str(exc)
        else:
            quarter_partners = partners_during(
                unit.id,
                quarter,
                include_parents=True,
                where=pairing_filter(current_user),
            )
    children = queries.children_of(unit.id, unit_filter(current_user))
    year_info = _year_section(unit) if unit.side is Side.WEST and unit.kind is UnitKind.COUNTY else None
    category_form = CategoryForm(
        data={
            "category": unit.category.value if unit.category else "",
            "valid_from": date.today(),
            "version": unit.version_id,
        }
    )
    return render_template(
        "counties/detail.html",
        unit=unit,
        pairings=pairings,
        children=children,
        quarter=quarter,
        quarter_text=quarter_text,
        quarter_error=quarter_error,
        quarter_partners=quarter_partners,
        category_form=category_form,
        category_history=services.history_of_category(unit.id),
        can_add_unit=unit.kind in (UnitKind.COUNTY, UnitKind.TOWNSHIP) and can_manage_unit(current_user, unit),
        can_edit_unit=not unit.is_division and can_manage_unit(current_user, unit.parent),
        history=history_of(unit),
        year_info=year_info,
    )


def _year_section(county: Unit) -> dict:
    """The chosen year's projects, fund flows and agreement progress of a Sichuan county (all scoped)."""
    today = date.today()
    year = request.args.get("year", type=int) or today.year
    year = min(max(year, 2000), 2100)
    cutoff = min(today, date(year, 12, 31))
    projects = county_year_projects(county.id, year, current_user)
    mine = sa.and_(Project.county_id == county.id, scope_filter(current_user, Project))
    flows = totals_for(where=mine, since=date(year, 1, 1), until=cutoff)
    cumulative = totals_for(where=mine, until=cutoff)
    visible = {a.id for a in db.session.scalars(visible_agreements(current_user))}
    agreements = [a for a in agreements_for(county, year) if a.id in visible]
    quarters = [Quarter.of(year, n) for n in range(1, 5) if date(year, 3 * n - 2, 1) <= today]
    return {
        "year": year,
        "cutoff": cutoff,
        "quarters": [q for q in quarters if report_visible(current_user, county, q)],
        "projects": projects,
        "flows": flows,
        "cumulative": cumulative,
        "progress": [(a, progress(a, county, cutoff)) for a in agreements],
        "stages": FundStage,
    }


@bp.route("/<int:unit_id>/category", methods=["POST"])
@requires("units.categorise")
def set_category(unit_id):
    unit = db.get_or_404(Unit, unit_id)
    form = CategoryForm()
    if not form.validate_on_submit():
        flash(
            "帮扶类别无效：" + "；".join(e for errors in form.errors.values() for e in errors),
            "danger",
        )
        return redirect(url_for(".detail", unit_id=unit.id))
    try:
        services.set_category(
            unit,
            form.category.data,
            valid_from=form.valid_from.data,
            note=form.note.data or "",
            actor=current_user,
            version=form.version.data,
        )
    except ServiceError as exc:
        flash(str(exc), "danger")
    else:
        db.session.commit()
        flash("帮扶类别已保存。", "success")
    return redirect(url_for(".detail", unit_id=unit.id))


def _parent_choices():
    """Counties and townships the user may add organisations under."""
    units = [u for u in queries.parent_candidates(unit_filter(current_user)) if can_manage_unit(current_user, u)]
    return [BLANK] + [unit_choice(u) for u in units]


@bp.route("/new", methods=["GET", "POST"])
@requires("units.manage")
def create():
    form = LocalUnitForm(
        data={"parent_id": request.args.get("parent_id", type=int)} if request.method == "GET" else None
    )
    form.parent_id.choices = _parent_choices()
    if form.validate_on_submit():
        parent = db.session.get(Unit, form.parent_id.data)
        if not can_manage_unit(current_user, parent):
            abort(404)
        response = save(
            form,
            lambda: services.create_local_unit(form.data, actor=current_user),
            lambda unit: f"已添加 {unit.full_name}。",
            lambda unit: url_for(".detail", unit_id=unit.id),
        )
        if response:
            return response
    return render_template("counties/form.html", form=form, unit=None)


@bp.route("/<int:unit_id>/edit", methods=["GET", "POST"])
@requires("units.manage")
def edit(unit_id):
    unit = get_visible_or_404(Unit, unit_id, unit_filter(current_user))
    if unit.is_division or not can_manage_unit(current_user, unit.parent):
        abort(403)
    form = LocalUnitForm(obj=unit, data={"version": unit.version_id} if request.method == "GET" else None)
    form.parent_id.choices = _parent_choices()
    if form.validate_on_submit():
        parent = db.session.get(Unit, form.parent_id.data)
        if not can_manage_unit(current_user, parent):
            abort(404)
        response = save(
            form,
            lambda: services.update_local_unit(unit, form.data, actor=current_user, version=form.version.data),
            "单位已保存。",
            url_for(".detail", unit_id=unit.id),
        )
        if response:
            return response
    return render_template("counties/form.html", form=form, unit=unit)
