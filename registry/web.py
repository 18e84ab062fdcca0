"""Small helpers views share: safe redirects, form errors from services, list pages (filter, sort, paginate)."""

from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, flash, redirect, request, url_for
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from registry.extensions import db
from registry.services import ServiceError


def safe_next(target: str | None, default_endpoint: str = "main.index") -> str:
    """Return ``target`` if it is a path on this site, else the default page (no open redirects)."""
    if target:
        parts = urlsplit(target)
        # Refuse absolute URLs, scheme-relative //host and backslash tricks browsers normalise to //host.
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith(("//", "/\\")):
            if "\\" not in target and not any(ord(c) < 32 for c in target):
                return target
    return url_for(default_endpoint)


def save(form, call, success, target):
    """Run the service ``call`` for a validated form.

    A rule violation (ServiceError) is shown on the form and None returned, so the view re-renders it;
    otherwise the request's one commit happens here, ``success`` is flashed and a redirect to ``target`` is
    returned. ``success`` and ``target`` may be functions of the service's result (a new record's id).
    """
    try:
        result = call()
    except ServiceError as exc:
        attach_error(form, exc)
        return None
    db.session.commit()
    flash(success(result) if callable(success) else success, "success")
    return redirect(target(result) if callable(target) else target)


def attach_error(form, exc) -> None:
    """Show a service's error next to the field it names, or at the top of the form."""
    field = getattr(form, exc.field, None) if getattr(exc, "field", None) else None
    if field is not None:
        field.errors = [*field.errors, str(exc)]
    else:
        form.form_errors.append(str(exc))


@dataclass
class Page:
    """One page of a list: rows, totals and the links the template prints."""

    items: list
    total: int
    page: int
    per_page: int
    args: dict

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def url(self, page: int) -> str:
        return url_for(request.endpoint, **{**request.view_args, **self.args, "page": page})

    def window(self, size: int = 2):
        """Page numbers around the current one, with None for gaps."""
        shown, last = [], 0
        for n in range(1, self.pages + 1):
            if n in (1, self.pages) or abs(n - self.page) <= size:
                if last and n - last > 1:
                    shown.append(None)
                shown.append(n)
                last = n
        return shown


def int_arg(name: str, default: int = 1, minimum: int = 1) -> int:
    try:
        return max(minimum, int(request.args.get(name, default)))
    except (TypeError, ValueError):
        return default


def paginate(stmt, *, args: dict, per_page: int | None = None, total: int | None = None) -> Page:
    """Run ``stmt`` for the requested page; the count runs over the same filtered statement unless given."""
    per_page = per_page or current_app.config["ITEMS_PER_PAGE"]
    if total is None:
        total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    pages = max(1, -(-total // per_page))
    page = min(int_arg("page"), pages)
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).unique().all()
    return Page(items=items, total=total, page=page, per_page=per_page, args=args)


def sort_clause(sorts: dict, default: str):
    """Map ``?sort=key`` or ``?sort=-key`` to ORDER BY expressions; unknown keys fall back to the default.

    The key names the direction, once: a table's columns are bare (``Asset.original_value_fen``, never
    ``….desc()``), and a list that opens highest first says so in its default (``"-value"``). A column that
    already carries a direction would read ``DESC ASC`` in SQL, an error on every engine, so it is refused here
    on the list's first request, whichever key that request asks for."""
    for name, columns in sorts.items():
        for column in columns if isinstance(columns, tuple | list) else (columns,):
            if _ordered(column):
                raise TypeError(f"sort key {name!r}: give the bare column, the key's sign names the direction")
    key = request.args.get("sort", default)
    descending = key.startswith("-")
    columns = sorts.get(key[1:] if descending else key)
    if columns is None:
        key, descending = default, default.startswith("-")
        columns = sorts[default[1:] if descending else default]
    if not isinstance(columns, tuple | list):
        columns = (columns,)
    return key, [c.desc() if descending else c.asc() for c in columns]


#: Modifiers that make a column an ORDER BY term (``.desc()``, ``.asc()``, ``.nulls_first()``, ``.nulls_last()``).
_ORDERINGS = frozenset({operators.asc_op, operators.desc_op, operators.nulls_first_op, operators.nulls_last_op})


def _ordered(column) -> bool:
    """True if ``column`` already names an order (a direction, or where NULLs go)."""
    return isinstance(column, UnaryExpression) and column.modifier in _ORDERINGS


#: Largest id a URL filter may name: PostgreSQL's INTEGER, so a longer number filters nothing instead of failing.
MAX_ID = 2**31 - 1


def is_id(value) -> bool:
    """True if a URL argument is a record id: ASCII digits (not ² or ١), within the database's integer range."""
    text = value if isinstance(value, str) else ""
    return text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID


def is_year(value) -> bool:
    """True if a URL argument is a year the registry can hold (2000–2100, as every form allows)."""
    text = value if isinstance(value, str) else ""
    return text.isascii() and text.isdigit() and 2000 <= int(text) <= 2100


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with the wildcards in the user's text escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
