"""The home page each role lands on, and a public health check for deployments."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, render_template, request, url_for
from flask_login import current_user

from registry.kernel import todos as todo_kit
from registry.kernel.extensions import db
from registry.main import home
from registry.permissions import public, requires

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    """Home: what the user's role asks first (report card, 完成率 against 序时进度, ranking), then the pairings."""
    today = date.today()
    return render_template(
        "main/index.html",
        todos=todo_kit.todos_for(current_user, today),
        home=home.build(current_user, today),
        summary=home.pairing_summary(current_user, today),
        recent=home.recent_changes(current_user),
        today=today,
        county_link=lambda row: url_for("counties.detail", unit_id=row.unit_id, year=today.year),
    )


@bp.route("/todos/")
@requires("records.view")
def todos():
    """待办: every step waiting for the user, with filters by kind and overdue."""
    today = date.today()
    args = {k: request.args.get(k, "").strip() for k in ("kind", "overdue")}
    kinds = [(s.name, s.label) for s in todo_kit.SOURCES.values()]
    wanted = [args["kind"]] if args["kind"] in todo_kit.SOURCES else None
    found = todo_kit.todos_for(current_user, today, kinds=wanted)
    overdue_count = sum(t.overdue(today) for t in found)
    if args["overdue"] == "yes":
        found = [t for t in found if t.overdue(today)]
    return render_template(
        "main/todos.html", todos=found, today=today, args=args, kinds=kinds, overdue_count=overdue_count
    )


@bp.app_template_global()
def todo_count() -> int:
    """The navigation's count of the user's to-dos (once per page)."""
    return todo_kit.count_for(current_user, date.today()) if current_user.is_authenticated else 0


@bp.route("/healthz")
@public
def healthz():
    """Load balancers and monitoring ask here; it answers only whether the database responds."""
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
