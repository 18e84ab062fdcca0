"""Purchase pages: list with totals by channel and counting type, detail, edits, import/export; channels."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.audit.queries import history_of
from registry.counties.models import Side, Unit, UnitKind
from registry.exports import csv_bytes, download, xlsx_bytes
from registry.extensions import db
from registry.forms import BLANK, choice, unit_choice
from registry.money import yuan
from registry.permissions import (
    can,
    get_visible_or_404,
    may_write,
    requires,
    scope_filter,
    unit_filter,
    writable_counties,
)
from registry.purchases import services
from registry.purchases.forms import ChannelForm, PurchaseForm
from registry.purchases.models import Channel, CountingType, ProductCategory, Purchase, PurchaseTotals
from registry.purchases.transfer import HEADERS, import_purchases_steps
from registry.transfer.forms import import_page, template_download
from registry.web import is_id, is_year, like_pattern, paginate, save, sort_clause

bp = Blueprint("purchases", __name__, url_prefix="/purchases")

FILTER_KEYS = ("q", "county", "channel", "counting_type", "category", "year")


def _by_columns(args: dict, table) -> list:
    """WHERE clauses of the filters Purchase and PurchaseTotals share by column name, so the list and its totals
    cannot select different records."""
    where = []
    if is_id(args.get("county")):
        where.append(table.seller_county_id == int(args["county"]))
    if is_id(args.get("channel")):
        where.append(table.channel_id == int(args["channel"]))
    if args.get("counting_type") in CountingType._value2member_map_:
        where.append(table.counting_type == args["counting_type"])
    if args.get("category") in ProductCategory._value2member_map_:
        where.append(table.product_category == args["category"])
    return where


def filtered(args: dict):
    stmt = sa.select(Purchase).where(scope_filter(current_user, Purchase), *_by_columns(args, Purchase))
    if args.get("q"):
        pattern = like_pattern(args["q"])
        stmt = stmt.where(sa.or_(Purchase.seller_name.like(pattern), Purchase.buyer_name.like(pattern),
                                 Purchase.product.like(pattern), Purchase.evidence_no.like(pattern)))  # fmt: skip
    if is_year(args.get("year")):
        year = int(args["year"])
        stmt = stmt.where(Purchase.purchased_on.between(date(year, 1, 1), date(year, 12, 31)))
    return stmt


def totals_filter(args: dict) -> list:
    """The WHERE clauses on PurchaseTotals selecting the rows of exactly the purchases ``filtered(args)`` lists
    (every filter but the keyword, which the totals cannot answer)."""
    where = [scope_filter(current_user, PurchaseTotals), *_by_columns(args, PurchaseTotals)]
    if is_year(args.get("year")):
        where.append(PurchaseTotals.year == int(args["year"]))
    return where


@bp.route("/")
@requires("records.view")
def index():
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt = filtered(args)
    # The totals by channel and counting type and, summed, the list's count and amount, in one grouped query;
    # channel names are looked up afterwards.
    if args["q"]:
        # Sellers, buyers, products and evidence numbers are not in PurchaseTotals: a keyword search sums its
        # (fewer) purchases themselves.
        sums = db.session.execute(
            stmt.with_only_columns(Purchase.channel_id, Purchase.counting_type, sa.func.count(Purchase.id),
                                   sa.func.sum(Purchase.amount_fen))
            .group_by(Purchase.channel_id, Purchase.counting_type)
            .order_by(None)
        ).all()  # fmt: skip
    else:
        sums = db.session.execute(
            sa.select(PurchaseTotals.channel_id, PurchaseTotals.counting_type, sa.func.sum(PurchaseTotals.purchases),
                      sa.func.sum(PurchaseTotals.amount_fen))
            .where(*totals_filter(args))
            .group_by(PurchaseTotals.channel_id, PurchaseTotals.counting_type)
        ).all()  # fmt: skip
    count, total = sum(int(row[2]) for row in sums), sum(int(row[3]) for row in sums)
    names = dict(db.session.execute(sa.select(Channel.id, Channel.name)).all())
    by_channel = sorted(((names[c], kind, amount) for c, kind, _, amount in sums), key=lambda row: (row[0], row[1]))
    sort, order = sort_clause(
        {"date": (Purchase.purchased_on, Purchase.id), "amount": (Purchase.amount_fen, Purchase.id)}, "-date"
    )
    page = paginate(
        stmt.options(joinedload(Purchase.seller_county), joinedload(Purchase.channel)).order_by(*order),
        args={**args, "sort": sort}, total=count,
    )  # fmt: skip
    in_scope = sa.and_(Unit.kind == UnitKind.COUNTY, Unit.side == Side.WEST, unit_filter(current_user))
    return render_template(
        "purchases/index.html", page=page, args=args, sort=sort, total=int(total),
        by_channel=[(name, CountingType(kind), int(amount)) for name, kind, amount in by_channel],
        counties=db.session.scalars(sa.select(Unit).where(in_scope).order_by(Unit.code)).all(),
        channels=db.session.scalars(sa.select(Channel).order_by(Channel.sort_order, Channel.id)).all(),
        counting_types=CountingType, categories=ProductCategory,
    )  # fmt: skip


@bp.route("/export.<any(xlsx, csv):kind>")
@requires("records.view")
def export(kind):
    """The filtered list as XLSX or CSV (text that a spreadsheet would run is neutralised)."""
    args = {k: request.args.get(k, "").strip() for k in FILTER_KEYS}
    stmt = filtered(args).options(joinedload(Purchase.seller_county), joinedload(Purchase.channel))
    rows = [
        [p.purchased_on, p.buyer_name, p.buyer_kind.label, p.buyer_province, p.buyer_city, p.seller_name,
         p.seller_kind.label, p.seller_county.code, p.seller_county.name, p.product, p.product_category.label,
         yuan(p.amount_fen).replace(",", ""), p.channel.name, p.counting_type.label, p.evidence_no, p.note]
        for p in db.session.scalars(stmt.order_by(Purchase.purchased_on, Purchase.id))
    ]  # fmt: skip
    name = f"消费帮扶-{date.today().isoformat()}"
    if kind == "csv":
        return download(csv_bytes(HEADERS, rows), name, "csv")
    return download(xlsx_bytes(HEADERS, rows, title="消费帮扶"), name, "xlsx")


@bp.route("/<int:purchase_id>")
@requires("records.view")
def detail(purchase_id):
    purchase = get_visible_or_404(Purchase, purchase_id, scope_filter(current_user, Purchase))
    return render_template("purchases/detail.html", purchase=purchase, history=history_of(purchase))


def _choices(form):
    form.seller_county_id.choices = [BLANK] + [unit_choice(u) for u in writable_counties(current_user)]
    channels = db.session.scalars(sa.select(Channel).order_by(Channel.sort_order, Channel.id)).all()
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
    rows = db.session.scalars(sa.select(Channel).order_by(Channel.sort_order, Channel.id)).all()
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
    return template_download(HEADERS, "消费帮扶")


@bp.route("/import", methods=["GET", "POST"])
@requires("purchases.edit")
def import_():
    """Upload a filled template or an edited export; rows are matched by evidence number."""
    return import_page(
        import_purchases_steps, user=current_user, title="导入消费帮扶记录", back_label="消费帮扶", rules=IMPORT_RULES
    )
