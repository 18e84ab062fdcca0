"""Posting pages: who is in post in a period, by type and direction; detail and edits."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.audit.queries import history_of
from registry.counties.models import Side, Unit, UnitKind
from registry.exchanges import services
from registry.exchanges.forms import ExchangeForm
from registry.exchanges.models import Direction, Exchange, PersonType
from registry.exchanges.transfer import HEADERS, export_row, import_exchanges_steps
from registry.exports import csv_bytes, download, xlsx_bytes
from registry.extensions import db
from registry.forms import BLANK, unit_choice
from registry.periods import Period
from registry.permissions import get_visible_or_404, may_write, requires, scope_filter, unit_filter, writable_counties
from registry.transfer.forms import import_page, template_download
from registry.web import is_id, like_pattern, paginate, save, sort_clause

bp = Blueprint("exchanges", __name__, url_prefix="/exchanges")


FILTER_KEYS = ("q", "county", "direction", "person_type", "on", "unit", "linked")


def filtered(args: dict):
    """Scope first, then the user's filters; returns the statement and an error for an unreadable date."""
    stmt = sa.select(Exchange).where(scope_filter(current_user, Exchange))
    if args["q"]:
        pattern = like_pattern(args["q"])
        stmt = stmt.where(sa.or_(Exchange.person_name.like(pattern), Exchange.receiving_unit.like(pattern),
                                 Exchange.sending_unit.like(pattern)))  # fmt: skip
    if is_id(args["county"]):
        stmt = stmt.where(Exchange.county_id == int(args["county"]))
    if is_id(args["unit"]):
        # Either end: an office asks "who did 余姚市 send, and who did it receive".
        unit = int(args["unit"])
        stmt = stmt.where(sa.or_(Exchange.sending_unit_id == unit, Exchange.receiving_unit_id == unit))
    if args["linked"] == "no":
        # Older records whose text named no unit: to be completed by the office.
        stmt = stmt.where(sa.or_(Exchange.sending_unit_id.is_(None), Exchange.receiving_unit_id.is_(None)))
    if args["direction"] in Direction._value2member_map_:
        stmt = stmt.where(Exchange.direction == args["direction"])
    if args["person_type"] in PersonType._value2member_map_:
        stmt = stmt.where(Exchange.person_type == args["person_type"])
    on_error = None
    if args["on"]:
        try:
            day = date.fromisoformat(args["on"])
        except ValueError:
            on_error = "“在岗日期”格式应为 YYYY-MM-DD。"
        else:
            stmt = stmt.where(services.in_post(Period(day, day)))
    return stmt, on_error


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt, on_error = filtered(args)
    today = Period(date.today(), date.today())
    counts = db.session.execute(
        stmt.where(services.in_post(today))
        .with_only_columns(Exchange.direction, Exchange.person_type, sa.func.count(Exchange.id))
        .group_by(Exchange.direction, Exchange.person_type).order_by(None)
    ).all()  # fmt: skip
    sort, order = sort_clause(
        {"arrival": (Exchange.arrival_date, Exchange.id), "name": (Exchange.person_name, Exchange.id)}, "-arrival"
    )
    page = paginate(stmt.options(joinedload(Exchange.county)).order_by(*order), args={**args, "sort": sort})
    in_scope = sa.and_(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST, unit_filter(current_user))
    return render_template(
        "exchanges/index.html", page=page, args=args, sort=sort, on_error=on_error,
        counts=[(Direction(d), PersonType(t), n) for d, t, n in counts],
        counties=db.session.scalars(sa.select(Unit).where(in_scope).order_by(Unit.code)).all(),
        directions=Direction, person_types=PersonType,
    )  # fmt: skip


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered list as XLSX or CSV."""
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt, _ = filtered(args)
    stmt = stmt.options(joinedload(Exchange.county)).order_by(Exchange.arrival_date, Exchange.id)
    rows = [export_row(e) for e in db.session.scalars(stmt)]
    name = f"人才交流-{date.today().isoformat()}"
    if kind == "csv":
        return download(csv_bytes(HEADERS, rows), name, "csv")
    return download(xlsx_bytes(HEADERS, rows, title="人才交流"), name, "xlsx")


@bp.route("/<int:exchange_id>")
@requires("records.view")
def detail(exchange_id):
    exchange = get_visible_or_404(Exchange, exchange_id, scope_filter(current_user, Exchange))
    return render_template("exchanges/detail.html", exchange=exchange, history=history_of(exchange))


def _choices(form):
    counties = writable_counties(current_user)
    form.county_id.choices = [BLANK] + [unit_choice(u) for u in counties]
    # Either end may be any East unit, or a Sichuan unit in (or the prefecture above) a county the user writes in.
    ids = [c.id for c in counties]
    west = sa.and_(
        Unit.side == Side.WEST,
        sa.or_(Unit.county_id.in_(ids), Unit.id.in_({c.prefecture_id for c in counties if c.prefecture_id})),
    )
    units = db.session.scalars(
        sa.select(Unit)
        .options(joinedload(Unit.parent))
        .where(Unit.is_active.is_(True), sa.or_(Unit.side == Side.EAST, west))
        .order_by(Unit.side, Unit.full_name)
    )
    form.sending_unit_id.choices = form.receiving_unit_id.choices = [BLANK] + [unit_choice(u) for u in units]


@bp.route("/new", methods=["GET", "POST"])
@requires("exchanges.edit")
def create():
    form = ExchangeForm()
    _choices(form)
    if form.validate_on_submit():
        response = save(
            form, lambda: services.create_exchange(form.data, actor=current_user), "人才交流记录已登记。",
            lambda exchange: url_for(".detail", exchange_id=exchange.id),
        )  # fmt: skip
        if response:
            return response
    return render_template("exchanges/form.html", form=form, exchange=None)


@bp.route("/<int:exchange_id>/edit", methods=["GET", "POST"])
@requires("exchanges.edit")
def edit(exchange_id):
    exchange = get_visible_or_404(Exchange, exchange_id, scope_filter(current_user, Exchange))
    if not may_write(current_user, exchange):
        abort(403)
    form = ExchangeForm(obj=exchange, data={"version": exchange.version_id} if request.method == "GET" else None)
    _choices(form)
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_exchange(exchange, form.data, actor=current_user, version=form.version.data),
            "人才交流记录已保存。",
            url_for(".detail", exchange_id=exchange.id),
        )
        if response:
            return response
    return render_template("exchanges/form.html", form=form, exchange=exchange)


IMPORT_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入。",
    "有“编号”的行更新该条记录，没有编号的行新增记录。",
    "空白单元格不会覆盖已有内容。",
]


@bp.route("/template.xlsx")
@requires("records.view")
def template():
    """The import template: the export's columns, no rows."""
    return template_download(HEADERS, "人才交流")


@bp.route("/import", methods=["GET", "POST"])
@requires("exchanges.edit")
def import_():
    """Upload a filled template or an edited export."""
    return import_page(
        import_exchanges_steps, user=current_user, title="导入人才交流记录", back_label="人才交流", rules=IMPORT_RULES
    )
