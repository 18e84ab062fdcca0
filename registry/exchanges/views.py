"""Posting pages: who is in post in a period, by type and direction; detail and edits."""

from datetime import date

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.counties.models import UnitKind
from registry.exchanges import queries, services
from registry.exchanges.forms import ExchangeForm
from registry.exchanges.models import Direction, Exchange, PersonType
from registry.exchanges.transfer import HEADERS, columns, import_exchanges_steps
from registry.kernel.audit.queries import history_of
from registry.kernel.exports import background_export, stream_batches
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.transfer.forms import import_page, template_download
from registry.kernel.web import paginate, save, sort_clause
from registry.permissions import (
    get_visible_or_404,
    may_write,
    requires,
    scope_filter,
    visible_divisions,
    writable_counties,
)

bp = Blueprint("exchanges", __name__, url_prefix="/exchanges")


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in queries.FILTER_KEYS}
    stmt, on_error = queries.filtered(args, current_user)
    counts = queries.in_post_counts(stmt, date.today())
    sort, order = sort_clause(
        {"arrival": (Exchange.arrival_date, Exchange.id), "name": (Exchange.person_name, Exchange.id)}, "-arrival"
    )
    page = paginate(stmt.options(joinedload(Exchange.county)).order_by(*order), args={**args, "sort": sort})
    return render_template(
        "exchanges/index.html", page=page, args=args, sort=sort, on_error=on_error,
        counts=counts, counties=visible_divisions(current_user, UnitKind.COUNTY),
        directions=Direction, person_types=PersonType,
    )  # fmt: skip


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered list as XLSX or CSV."""
    args = {k: request.args.get(k, "").strip() for k in queries.FILTER_KEYS}
    stmt = queries.filtered(args, current_user)[0]
    # Above EXPORT_BACKGROUND_ROWS the file is made by a background job (the page shows its progress).
    job = background_export("exchanges", kind, args, stmt, user=current_user)
    if job is not None:
        return job
    name = f"人才交流-{date.today().isoformat()}"
    # Written as read: plain rows in keyset batches, per-column converters (a decade of records in flat memory).
    return stream_batches(kind, HEADERS, queries.export_batches(stmt, kind), name, title="人才交流")


@bp.route("/<int:exchange_id>")
@requires("records.view")
def detail(exchange_id):
    exchange = get_visible_or_404(Exchange, exchange_id, scope_filter(current_user, Exchange))
    return render_template("exchanges/detail.html", exchange=exchange, history=history_of(exchange))


def _choices(form):
    counties = writable_counties(current_user)
    form.county_id.choices = [BLANK] + [unit_choice(u) for u in counties]
    units = queries.end_choices(counties)
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
    return template_download(columns(current_user), "人才交流", IMPORT_RULES)


@bp.route("/import", methods=["GET", "POST"])
@requires("exchanges.edit")
def import_():
    """Upload a filled template or an edited export."""
    return import_page(
        import_exchanges_steps, user=current_user, title="导入人才交流记录", back_label="人才交流", rules=IMPORT_RULES
    )
