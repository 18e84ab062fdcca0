"""Purchase pages: list with totals by channel and counting type, detail, edits, import/export; channels."""

from datetime import date

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.counties.models import UnitKind
from registry.kernel.audit.queries import history_of
from registry.kernel.exports import background_export, stream_batches
from registry.kernel.forms import BLANK, choice, unit_choice
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
from registry.purchases import queries, services
from registry.purchases.forms import ChannelForm, PurchaseForm
from registry.purchases.models import CountingType, ProductCategory, Purchase
from registry.purchases.transfer import HEADERS, columns, import_purchases_steps

bp = Blueprint("purchases", __name__, url_prefix="/purchases")

FILTER_KEYS = ("q", "county", "channel", "counting_type", "category", "year")


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt = queries.filtered(args, current_user)
    count, total, by_channel = queries.sums(args, stmt, current_user)
    sort, order = sort_clause(
        {"date": (Purchase.purchased_on, Purchase.id), "amount": (Purchase.amount_fen, Purchase.id)}, "-date"
    )
    page = paginate(
        stmt.options(joinedload(Purchase.seller_county), joinedload(Purchase.channel)).order_by(*order),
        args={**args, "sort": sort}, total=count,
    )  # fmt: skip
    return render_template(
        "purchases/index.html", page=page, args=args, sort=sort, total=int(total),
        by_channel=by_channel,
        counties=visible_divisions(current_user, UnitKind.COUNTY), channels=queries.channels(),
        counting_types=CountingType, categories=ProductCategory,
    )  # fmt: skip


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered list as XLSX or CSV (text that a spreadsheet would run is neutralised)."""
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt = queries.filtered(args, current_user)
    # Above EXPORT_BACKGROUND_ROWS the file is made by a background job (the page shows its progress).
    job = background_export("purchases", kind, args, stmt, user=current_user)
    if job is not None:
        return job
    name = f"消费帮扶-{date.today().isoformat()}"
    # Written as read: plain rows in keyset batches, per-column converters (a decade of records in flat memory).
    return stream_batches(kind, HEADERS, queries.export_batches(stmt, kind), name, title="消费帮扶")


@bp.route("/<int:purchase_id>")
@requires("records.view")
def detail(purchase_id):
    purchase = get_visible_or_404(Purchase, purchase_id, scope_filter(current_user, Purchase))
    return render_template("purchases/detail.html", purchase=purchase, history=history_of(purchase))


def _choices(form):
    form.seller_county_id.choices = [BLANK] + [unit_choice(u) for u in writable_counties(current_user)]
    channels = queries.channels()
    form.channel_id.choices = [BLANK] + [
        choice(c.id, c.name) for c in channels if c.is_active or c.id == form.channel_id.data
    ]


@bp.route("/new", methods=["GET", "POST"])
@requires("purchases.edit")
def create():
    form = PurchaseForm()
    _choices(form)
    if form.validate_on_submit():
        response = save(
            form, lambda: services.create_purchase(form.data, actor=current_user), "消费帮扶记录已登记。",
            lambda purchase: url_for(".detail", purchase_id=purchase.id),
        )  # fmt: skip
        if response:
            return response
    return render_template("purchases/form.html", form=form, purchase=None)


@bp.route("/<int:purchase_id>/edit", methods=["GET", "POST"])
@requires("purchases.edit")
def edit(purchase_id):
    purchase = get_visible_or_404(Purchase, purchase_id, scope_filter(current_user, Purchase))
    if not may_write(current_user, purchase):
        abort(403)
    form = PurchaseForm(obj=purchase, data={"version": purchase.version_id} if request.method == "GET" else None)
    _choices(form)
    if form.validate_on_submit():
        response = save(
            form,
            lambda: services.update_purchase(purchase, form.data, actor=current_user, version=form.version.data),
            "消费帮扶记录已保存。",
            url_for(".detail", purchase_id=purchase.id),
        )
        if response:
            return response
    return render_template("purchases/form.html", form=form, purchase=purchase)


@bp.route("/channels", methods=["GET", "POST"])
@requires("records.view")
def channels():
    """The channel list; administrators add channels here."""
    form = ChannelForm()
    if request.method == "POST":
        if not can(current_user, "channels.manage"):
            abort(403)
        if form.validate_on_submit():
            response = save(
                form,
                lambda: services.create_channel(form.data, actor=current_user),
                "渠道已添加。",
                url_for(".channels"),
            )
            if response:
                return response
    rows = queries.channels()
    return render_template("purchases/channels.html", rows=rows, form=form)


IMPORT_RULES = [
    "所有行检查通过才会写入；任何一行有错，一条也不写入。",
    "发票号/合同号是每条记录的唯一标识：已有的凭证号更新该记录，新的凭证号新增记录。",
    "空白单元格不会覆盖已有内容。",
]


@bp.route("/template.xlsx")
@requires("records.view")
def template():
    """The import template: the export's columns, no rows."""
    return template_download(columns(current_user), "消费帮扶", IMPORT_RULES)


@bp.route("/import", methods=["GET", "POST"])
@requires("purchases.edit")
def import_():
    """Upload a filled template or an edited export; rows are matched by evidence number."""
    return import_page(
        import_purchases_steps, user=current_user, title="导入消费帮扶记录", back_label="消费帮扶", rules=IMPORT_RULES
    )
