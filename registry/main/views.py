"""The home page each role lands on, and a public health check for deployments."""

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy.orm import joinedload

from registry.audit.models import AuditEvent
from registry.audit.queries import to_rows
from registry.auth.models import Role, User
from registry.counties.models import CATEGORY_LABELS, Side, Unit, UnitKind
from registry.extensions import db
from registry.pairings.models import Pairing, Programme
from registry.periods import overlaps
from registry.permissions import can, pairing_filter, public, scope_of, unit_filter

bp = Blueprint("main", __name__)


@bp.route("/")
def index():
    """Home: the user's scope, its current pairings by programme and level, and recent changes for admins."""
    today = date.today()
    scope = scope_of(current_user)
    current = sa.and_(
        pairing_filter(current_user),
        overlaps(Pairing.valid_from, Pairing.valid_to, today, today),
    )
    by_programme = db.session.execute(
        sa.select(Programme.name, Pairing.level, sa.func.count(Pairing.id))
        .join(Pairing.programme)
        .where(current)
        .group_by(Programme.name, Pairing.level)
        .order_by(Programme.name, Pairing.level)
    ).all()
    paired_counties = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Pairing.west_unit_id))).where(current, Pairing.level == UnitKind.COUNTY)
    )
    categories = db.session.execute(
        sa.select(Unit.category, sa.func.count(Unit.id))
        .where(
            unit_filter(current_user),
            Unit.side == Side.WEST,
            Unit.kind == UnitKind.COUNTY,
        )
        .group_by(Unit.category)
    ).all()
    my_pairings = []
    if not scope.is_all:
        my_pairings = db.session.scalars(
            sa.select(Pairing)
            .options(
                joinedload(Pairing.east_unit),
                joinedload(Pairing.west_unit),
                joinedload(Pairing.programme),
            )
            .where(current, Pairing.level.in_((UnitKind.PREFECTURE, UnitKind.COUNTY)))
            .order_by(Pairing.level, Pairing.valid_from)
            .limit(50)
        ).all()
    recent = []
    if can(current_user, "audit.view"):
        events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(10)).all()
        recent = to_rows(events)
    stats = {}
    if current_user.role is Role.ADMIN:
        stats = {
            "users": db.session.scalar(sa.select(sa.func.count(User.id)).where(User.is_active.is_(True))),
            "units": db.session.scalar(sa.select(sa.func.count(Unit.id))),
            "pairings": db.session.scalar(sa.select(sa.func.count(Pairing.id))),
        }
    return render_template(
        "main/index.html",
        scope_unit=current_user.scope_unit if not scope.is_all else None,
        by_programme=by_programme,
        paired_counties=paired_counties,
        categories=[(CATEGORY_LABELS.get(c, "未分类"), n) for c, n in categories],
        my_pairings=my_pairings,
        recent=recent,
        stats=stats,
        today=today,
    )


@bp.route("/healthz")
@public
def healthz():
    """Load balancers and monitoring ask here; it answers only whether the database responds."""
    db.session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
