"""Users with a role and a scope, and the login failure counters that throttle password guessing."""

import secrets
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.kernel.database import (
    TimestampMixin,
    UTCDateTime,
    VersionedMixin,
    enum_column,
)
from registry.kernel.extensions import db

# Roles live in the kernel (the permission gate reads them without importing auth); re-exported here.
from registry.kernel.roles import ROLE_LABELS as ROLE_LABELS
from registry.kernel.roles import Role as Role


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, TimestampMixin, VersionedMixin, db.Model):
    """An account. ``scope_unit`` bounds what the user sees (see permissions.Scope)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(50), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(50))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role, 20))
    #: Prefecture or county (Sichuan) for office staff; East province or city for liaisons; optional for readers.
    scope_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("units.id"), index=True)
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    #: Part of the login cookie; rotating it ends every session of the user (logout, password change, disable).
    session_token: Mapped[str] = mapped_column(sa.String(64), default=new_session_token)
    #: Set by an administrator's reset: the user must choose a new password at next login.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    scope_unit: Mapped["Unit | None"] = relationship()  # noqa: F821

    AUDIT_LABELS = {
        "username": "用户名",
        "display_name": "姓名",
        "role": "角色",
        "scope_unit_id": "管辖范围",
        "phone": "电话",
        "is_active": "启用",
        "must_change_password": "须修改密码",
    }

    def __repr__(self):
        return f"<User {self.id} {self.username} {self.role}>"

    def __str__(self):
        return self.display_name or self.username

    def get_id(self):
        """Flask-Login session id: the token makes old cookies worthless once it is rotated."""
        return f"{self.id}:{self.session_token}"


#: The ``username`` of an address's counter over every username (the login form never lets a username be empty).
ANY_USERNAME = ""


class LoginThrottle(db.Model):
    """Recent login failures of one username from one address, or of a whole address (ANY_USERNAME), and the
    delay they earned. One row per pair, counted in place: a guessing attacker adds no rows per attempt."""

    __tablename__ = "login_throttles"
    __table_args__ = (sa.UniqueConstraint("username", "ip"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(50))
    ip: Mapped[str] = mapped_column(sa.String(64))
    #: Failures since the count last started over.
    failures: Mapped[int] = mapped_column(default=0)
    #: Delays imposed since then; the next one is twice as long as the last.
    delays: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: No attempt from this pair is checked before this time.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the row lapses: a quiet window after the last failure and any delay. Stale rows count as empty and
    #: are purged.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
