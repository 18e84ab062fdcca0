"""Posting pages: who is in post in a period, by type and direction; detail and edits (the stream kit's pages)."""

from datetime import date

from flask import Blueprint
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry import permissions
from registry.counties.models import UnitKind
from registry.exchanges import queries, services
from registry.exchanges.forms import ExchangeForm
from registry.exchanges.models import Direction, Exchange, PersonType
from registry.exchanges.transfer import HEADERS, columns, import_exchanges_steps
from registry.kernel.forms import BLANK, unit_choice
from registry.kernel.pages import StreamPages
from registry.kernel.web import sort_clause
from registry.permissions import visible_divisions, writable_counties

bp = Blueprint("exchanges", __name__, url_prefix="/exchanges")
pages = StreamPages(bp, gate=permissions, model=Exchange, name="exchange", label="人才交流", edit="exchanges.edit")


def _header(args, stmt):
    """Who is in post today, by direction and type; the unreadable 在岗于 date said."""
    return None, {
        "on_error": queries.filtered(args, current_user)[1],
        "counts": queries.in_post_counts(stmt, date.today()),
        "counties": visible_divisions(current_user, UnitKind.COUNTY),
        "directions": Direction,
        "person_types": PersonType,
    }


pages.listing(
    filters=queries.FILTER_KEYS,
    query=lambda args, user: queries.filtered(args, user)[0],
    sorting=lambda: sort_clause(
        {"arrival": (Exchange.arrival_date, Exchange.id), "name": (Exchange.person_name, Exchange.id)}, "-arrival"
    ),
    header=_header,
    load=(joinedload(Exchange.county),),
)
pages.export(headers=HEADERS, batches=queries.export_batches)
pages.detail()


def _choices(form):
    counties = writable_counties(current_user)
    form.county_id.choices = [BLANK] + [unit_choice(u) for u in counties]
    units = queries.end_choices(counties)
    form.sending_unit_id.choices = form.receiving_unit_id.choices = [BLANK] + [unit_choice(u) for u in units]


pages.forms(
    ExchangeForm,
    choices=_choices,
    create=services.create_exchange,
    update=services.update_exchange,
    created="人才交流记录已登记。",
    saved="人才交流记录已保存。",
)
pages.importing(
    steps=import_exchanges_steps,
    columns=columns,
    title="导入人才交流记录",
    rules=[
        "所有行检查通过才会写入；任何一行有错，一条也不写入。",
        "有“编号”的行更新该条记录，没有编号的行新增记录。",
        "空白单元格不会覆盖已有内容。",
    ],
)
