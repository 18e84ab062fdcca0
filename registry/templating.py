"""Jinja filters and globals: dates in China time, permission checks, sort and page links."""

from datetime import datetime, timedelta, timezone

from flask import request, url_for

from registry import money
from registry.permissions import can

CHINA = timezone(timedelta(hours=8), "CST")


def local_datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a UTC timestamp in China Standard Time, where the offices are."""
    if value is None:
        return ""
    return value.astimezone(CHINA).strftime(fmt)


def sort_url(key: str, current: str) -> str:
    """Link that sorts by ``key``, toggling direction when it is already the sort key."""
    new = f"-{key}" if current == key else key
    args = {**request.args.to_dict(), "sort": new, "page": 1}
    return url_for(request.endpoint, **{**(request.view_args or {}), **args})


def init_app(app):
    app.jinja_env.filters.update(
        localtime=local_datetime, wan=money.wan, yuan=money.yuan, yi=money.yi, percent=money.percent
    )
    app.jinja_env.globals.update(can=can, sort_url=sort_url, org_name=lambda: app.config["ORG_NAME"])
