"""Pairing pages (list, detail, create, edit, end) and the programme list administrators maintain."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.counties.models import UNIT_KIND_LABELS, Side, Unit, UnitKind
from registry.directory import queries
from registry.kernel.audit.queries import history_of
from registry.kernel.extensions import db
from registry.kernel.forms import BLANK, choice, unit_choice
from registry.kernel.services import ServiceError
from registry.kernel.web import attach_error, paginate, save, sort_clause
from registry.pairings import services
from registry.pairings.forms import EndPairingForm, PairingForm, ProgrammeForm
from registry.pairings.models import Pairing, Programme
from registry.permissions import (
    PAIRING_LEVELS,
    can_manage_pairing,
    get_visible_or_404,
    pairing_filter,
    requires,
    unit_in_scope,
    visible_divisions,
)

bp = Blueprint("pairings", __name__)

STATUS_LABELS = {"current": "有效", "ended": "已终止", "future": "未生效"}


@bp.route("/pairings/")
@requires("records.view")
def index():
    keys = (
        "q",
        "programme",
        "level",
        "status",
        "east_province",
        "west_prefecture",
        "on",
    )
    args = {k: request.args.get(k, "").strip() for k in keys}
    stmt, columns, on_error = services.filtered_pairings(args, pairing_filter(current_user))
    sort, order = sort_clause(columns, "-from")
    page = paginate(stmt.order_by(*order), args={**args, "sort": sort})
    return render_template(
        "pairings/index.html",
        page=page,
        args=args,
        sort=sort,
        on_error=on_error,
        programmes=services.programmes(),
        levels=UNIT_KIND_LABELS,
        statuses=STATUS_LABELS,
        east_provinces=visible_divisions(current_user, UnitKind.PROVINCE, Side.EAST),
        west_prefectures=visible_divisions(current_user, UnitKind.PREFECTURE),
        can_create=bool(PAIRING_LEVELS.get(current_user.role)),
    )


@bp.route("/pairings/<int:pairing_id>")
@requires("records.view")
def detail(pairing_id):
    pairing = get_visible_or_404(Pairing, pairing_id, pairing_filter(current_user))
    end_form = EndPairingForm(data={"valid_to": date.today(), "version": pairing.version_id})
    manageable = can_manage_pairing(current_user, level=pairing.level, west_unit=pairing.west_unit)
    return render_template(
        "pairings/detail.html",
        pairing=pairing,
        history=history_of(pairing),
        end_form=end_form,
        manageable=manageable,
    )


def _unit_choices(side: Side):
    """Units of one side the user may pick: for Sichuan, those within the user's own scope."""
    stmt = sa.select(Unit).options(joinedload(Unit.parent)).where(Unit.side == side, Unit.is_active.is_(True))
    units = db.session.scalars(stmt.order_by(Unit.code, Unit.full_name)).all()
    if side is Side.WEST:
        units = [u for u in units if unit_in_scope(current_user, u)]
    return [BLANK] + [unit_choice(u) for u in units]


def _prepare(form):
    form.east_unit_id.choices = _unit_choices(Side.EAST)
    form.west_unit_id.choices = _unit_choices(Side.WEST)
    form.programme_id.choices = [BLANK] + [
        choice(p.id, p.name)
        for p in db.session.scalars(sa.select(Programme).order_by(Programme.name))
        if p.is_active or p.id == form.programme_id.data
    ]
    allowed = PAIRING_LEVELS.get(current_user.role, frozenset())
    form.level.choices = [choice(k.value, k.label) for k in UnitKind if k in allowed]


def _allowed(data) -> bool:
    west = db.session.get(Unit, data["west_unit_id"]) if data.get("west_unit_id") else None
    return can_manage_pairing(current_user, level=data["level"], west_unit=west)


@bp.route("/pairings/new", methods=["GET", "POST"])
@requires("pairings.manage")
def create():
    form = PairingForm(
        data={"west_unit_id": request.args.get("west_unit_id", type=int)} if request.method == "GET" else None
    )
    _prepare(form)
    if form.validate_on_submit():
        if not _allowed(form.data):
            abort(403)
        response = save(
            form,
            lambda: services.create_pairing(form.data, actor=current_user),
            "结对关系已保存。",
            lambda pairing: url_for(".detail", pairing_id=pairing.id),
        )
        if response:
            return response
    return render_template("pairings/form.html", form=form, pairing=None)


def _managed_or_abort(pairing_id):
    pairing = get_visible_or_404(Pairing, pairing_id, pairing_filter(current_user))
    if not can_manage_pairing(current_user, level=pairing.level, west_unit=pairing.west_unit):
        abort(403)
    return pairing


@bp.route("/pairings/<int:pairing_id>/edit", methods=["GET", "POST"])
@requires("pairings.manage")
def edit(pairing_id):
    pairing = _managed_or_abort(pairing_id)
    form = PairingForm(
        obj=pairing,
        data={"version": pairing.version_id} if request.method == "GET" else None,
    )
    _prepare(form)
    if form.validate_on_submit():
        if not _allowed(form.data):
            abort(403)
        response = save(
            form,
            lambda: services.update_pairing(pairing, form.data, actor=current_user, version=form.version.data),
            "结对关系已保存。",
            url_for(".detail", pairing_id=pairing.id),
        )
        if response:
            return response
    return render_template("pairings/form.html", form=form, pairing=pairing)


@bp.route("/pairings/<int:pairing_id>/end", methods=["POST"])
@requires("pairings.manage")
def end(pairing_id):
    pairing = _managed_or_abort(pairing_id)
    form = EndPairingForm()
    if form.validate_on_submit():
        try:
            services.end_pairing(
                pairing,
                form.valid_to.data,
                actor=current_user,
                version=form.version.data,
            )
        except ServiceError as exc:
            attach_error(form, exc)
        else:
            db.session.commit()
            flash(
                f"结对关系已终止，最后有效日为 {form.valid_to.data.isoformat()}。",
                "success",
            )
            return redirect(url_for(".detail", pairing_id=pairing.id))
    return render_template(
        "pairings/detail.html",
        pairing=pairing,
        history=history_of(pairing),
        end_form=form,
        manageable=True,
    ), 422


@bp.route("/programmes/")
@requires("records.view")
def programmes():
    rows = queries.programmes_with_counts(pairing_filter(current_user))
    return render_template("pairings/programmes.html", rows=rows)


def _province_choices():
    provinces = db.session.scalars(
        sa.select(Unit).where(Unit.kind == UnitKind.PROVINCE, Unit.side == Side.EAST).order_by(Unit.code)
    )
    return [choice("", "（不限）")] + [choice(u.id, u.name) for u in provinces]


@bp.route("/programmes/new", methods=["GET", "POST"])
@requires("programmes.manage")
def create_programme():
    form = ProgrammeForm()
    form.east_province_id.choices = _province_choices()
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.create_programme(form.data, actor=current_user),
            "协作类型已添加。",
            url_for(".programmes"),
        )
        if response:
            return response
    return render_template("pairings/programme_form.html", form=form, programme=None)


@bp.route("/programmes/<int:programme_id>/edit", methods=["GET", "POST"])
@requires("programmes.manage")
def edit_programme(programme_id):
    programme = db.get_or_404(Programme, programme_id)
    form = ProgrammeForm(
        obj=programme,
        data={"version": programme.version_id} if request.method == "GET" else None,
    )
    form.east_province_id.choices = _province_choices()
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_programme(programme, form.data, actor=current_user, version=form.version.data),
            "协作类型已保存。",
            url_for(".programmes"),
        )
        if response:
            return response
    return render_template(
        "pairings/programme_form.html",
        form=form,
        programme=programme,
        history=history_of(programme),
    )
