"""The home page each role lands on, and a public health check for deployments."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, render_template, url_for
from flask_login import current_user

from registry.kernel.extensions import db
from registry.main import home
from registry.permissions import public

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    """Home: what the user's role asks first (report card, 完成率 against 序时进度, ranking), then the pairings."""
    today = date.today()
    return render_template(
        "main/index.html",
        home=home.build(current_user, today),
        summary=home.pairing_summary(current_user, today),
        recent=home.recent_changes(current_user),
        today=today,
        county_link=lambda row: url_for("counties.detail", unit_id=row.unit_id, year=today.year),
    )


@bp.route("/healthz")
@public
def healthz():
    """Load balancers and monitoring ask here; it answers only whether the database responds."""
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
