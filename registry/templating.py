"""Jinja filters and globals: dates in China time, permission checks, sort and page links, and the one display
rule for money (``money`` with the unit ``money_unit`` chose for the table's level) and counts (``count``)."""

from flask import request, url_for

from registry.kernel import money
from registry.kernel.periods import CHINA, local_datetime  # noqa: F401 - the templates' filter
from registry.permissions import can


def sort_url(key: str, current: str) -> str:
    """Link that sorts by ``key``, toggling direction when it is already the sort key."""
    new = f"-{key}" if current == key else key
    args = {**request.args.to_dict(), "sort": new, "page": 1}
    return url_for(request.endpoint, **{**(request.view_args or {}), **args})


def init_app(app):
    app.jinja_env.filters.update(
        localtime=local_datetime, wan=money.wan, yuan=money.yuan, yi=money.yi, percent=money.percent,
        money=money.money, count=money.count, part_label=money.part_label,
    )  # fmt: skip
    app.jinja_env.globals.update(
        can=can, sort_url=sort_url, org_name=lambda: app.config["ORG_NAME"], money_unit=money.money_unit
    )
