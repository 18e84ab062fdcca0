"""Login sessions: the user loader, default-deny login, absolute session age and forced password change."""

from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from registry.auth.models import User
from registry.kernel.extensions import db, login_manager

#: Endpoints a user who must change their password may still reach.
PASSWORD_CHANGE_ALLOWED = {"auth.change_password", "auth.logout", "static"}


@login_manager.user_loader
def load_user(session_id: str):
    """Resolve ``id:token``; a rotated token or a disabled account logs the cookie out."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.scalar(sa.select(User).where(User.id == int(user_id)))
    if user is None or not user.is_active or user.session_token != token:
        return None
    return user


def init_app(app):
    app.before_request(require_login)


def require_login():
    """Every endpoint needs a login unless its view is marked public (permissions.public)."""
    view = current_app.view_functions.get(request.endpoint)
    if request.endpoint == "static" or getattr(view, "is_public", False):
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    login_at = session.get("login_at")
    max_age = current_app.config["LOGIN_MAX_AGE"]
    if login_at is None or datetime.now(UTC).timestamp() - login_at > max_age.total_seconds():
        logout_user()
        session.clear()
        flash("登录已超过有效期，请重新登录。", "warning")
        return redirect(
            url_for(
                "auth.login",
                next=request.full_path if request.method == "GET" else None,
            )
        )
    if current_user.must_change_password and request.endpoint not in PASSWORD_CHANGE_ALLOWED:
        flash("请先设置新密码。", "warning")
        return redirect(url_for("auth.change_password"))
    return None
