"""Purchase pages: list with totals by channel and counting type, detail, edits, import/export (the stream kit's
pages); channels."""

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry import permissions
from registry.counties.models import UnitKind
from registry.kernel.forms import BLANK, choice, unit_choice
from registry.kernel.pages import StreamPages
from registry.kernel.web import save, sort_clause
from registry.permissions import can, requires, visible_divisions, writable_counties
from registry.purchases import queries, services
from registry.purchases.forms import ChannelForm, PurchaseForm
from registry.purchases.models import CountingType, ProductCategory, Purchase
from registry.purchases.transfer import HEADERS, columns, import_purchases_steps

bp = Blueprint("purchases", __name__, url_prefix="/purchases")
pages = StreamPages(bp, gate=permissions, model=Purchase, name="purchase", label="消费帮扶", edit="purchases.edit")


def _header(args, stmt):
    """The filtered list's count and amount, by channel, read from the kept totals."""
    count, total, by_channel = queries.sums(args, stmt, current_user)
    return count, {
        "total": int(total),
        "by_channel": by_channel,
        "counties": visible_divisions(current_user, UnitKind.COUNTY),
        "channels": queries.channels(),
        "counting_types": CountingType,
        "categories": ProductCategory,
    }


pages.listing(
    filters=("q", "county", "channel", "counting_type", "category", "year"),
    query=queries.filtered,
    sorting=lambda: sort_clause(
        {"date": (Purchase.purchased_on, Purchase.id), "amount": (Purchase.amount_fen, Purchase.id)}, "-date"
    ),
    header=_header,
    load=(joinedload(Purchase.seller_county), joinedload(Purchase.channel)),
)
pages.export(headers=HEADERS, batches=queries.export_batches)
pages.detail()


def _choices(form):
    form.seller_county_id.choices = [BLANK] + [unit_choice(u) for u in writable_counties(current_user)]
    channels = queries.channels()
    form.channel_id.choices = [BLANK] + [
        choice(c.id, c.name) for c in channels if c.is_active or c.id == form.channel_id.data
    ]


pages.forms(
    PurchaseForm,
    choices=_choices,
    create=services.create_purchase,
    update=services.update_purchase,
    created="消费帮扶记录已登记。",
    saved="消费帮扶记录已保存。",
)
pages.importing(
    steps=import_purchases_steps,
    columns=columns,
    title="导入消费帮扶记录",
    rules=[
        "所有行检查通过才会写入；任何一行有错，一条也不写入。",
        "发票号/合同号是每条记录的唯一标识：已有的凭证号更新该记录，新的凭证号新增记录。",
        "空白单元格不会覆盖已有内容。",
    ],
)


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
