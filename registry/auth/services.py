"""Authenticate, throttle, create and change users. Every change is audited; callers commit."""

import re
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from registry.auth import throttle
from registry.auth.models import Role, User, new_session_token
from registry.auth.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from registry.counties.models import DIVISION_KINDS, Unit
from registry.kernel.audit.services import apply_changes, record, snapshot
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError, check_version
from registry.kernel.web import like_pattern
from registry.permissions import SCOPE_RULES

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,50}$")
USER_FIELDS = (
    "username",
    "display_name",
    "role",
    "scope_unit_id",
    "phone",
    "is_active",
)
# A real hash to verify against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = None


def authenticate(username: str, password: str, ip: str) -> User | None:
    """Return the user if the credentials are right, else None; count a failure against the pair and the address.

    :raise throttle.LoginThrottled: while the (username, address) pair or the address is delayed; the password
        is then not checked at all.
    """
    global _DUMMY_HASH
    username = username.strip()
    throttle.check(username, ip)
    user = db.session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        verify_password(_DUMMY_HASH, password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and user.is_active
    if not ok:
        throttle.count_failure(username, ip, user)
        return None
    throttle.clear_pair(username, ip)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    record("login", user, actor=user, summary="登录")
    return user


def unlock_login(user: User, *, actor) -> int:
    """An administrator clears the login delays of ``user``'s username from every address (audited when there
    was any); return the number of addresses cleared."""
    cleared = throttle.clear_username(user.username)
    if cleared:
        summary = f"管理员解除 {user.username} 的登录限制（{cleared} 个地址）"
        record("login_unlocked", user, actor=actor, summary=summary)
    return cleared


def end_sessions(user, *, actor, reason: str):
    """Rotate the session token: every cookie issued to ``user`` stops working."""
    user.session_token = new_session_token()
    record("sessions_ended", user, actor=actor, summary=reason)


def validate_user_data(data: dict, *, user: User | None = None):
    """Check username, role and scope together; raise ServiceError naming the field."""
    username = data.get("username", user.username if user else "")
    if not USERNAME_RE.match(username or ""):
        raise ServiceError("用户名须为 3–50 位字母、数字或 _ . -。", "username")
    clash = db.session.scalar(sa.select(User.id).where(User.username == username))
    if clash is not None and (user is None or clash != user.id):
        raise ServiceError(f"用户名 {username} 已被使用。", "username")
    role = Role(data.get("role", user.role if user else None))
    scope_id = data.get("scope_unit_id", user.scope_unit_id if user else None)
    scope = db.session.get(Unit, scope_id) if scope_id else None
    if scope_id and scope is None:
        raise ServiceError("所选管辖范围不存在。", "scope_unit_id")
    if role in SCOPE_RULES:
        side, kinds = SCOPE_RULES[role]
        if scope is None or scope.side is not side or scope.kind not in kinds:
            wanted = "、".join(k.label for k in kinds)
            raise ServiceError(
                f"{role.label}须指定{side.label}的{wanted}作为管辖范围。",
                "scope_unit_id",
            )
    elif role in (Role.ADMIN, Role.PROVINCE) and scope is not None:
        raise ServiceError(f"{role.label}管辖全省，不应指定管辖范围。", "scope_unit_id")
    elif role is Role.READER and scope is not None and not scope.is_division:
        raise ServiceError("只读用户的管辖范围须为省、市(州)或县。", "scope_unit_id")


def create_user(data: dict, *, actor) -> User:
    """Create a user with the given password (already confirmed by the caller)."""
    validate_user_data(data)
    problem = password_problem(data.get("password"), username=data["username"])
    if problem:
        raise ServiceError(problem, "password")
    user = User(
        **{name: data[name] for name in USER_FIELDS if name in data},
        password_hash=hash_password(data["password"]),
        password_changed_at=utcnow(),
        must_change_password=data.get("must_change_password", False),
    )
    db.session.add(user)
    db.session.flush()
    record(
        "create",
        user,
        actor=actor,
        summary=f"新建用户 {user.username}",
        changes=snapshot(user, USER_FIELDS),
    )
    return user


def update_user(user: User, data: dict, *, actor, version=None) -> dict:
    """Change profile, role, scope or active flag; disabling or changing role/scope ends the user's sessions."""
    check_version(user, version)
    validate_user_data(data, user=user)
    if (
        actor is not None
        and actor.id == user.id
        and (data.get("is_active") is False or data.get("role", user.role) != user.role)
    ):
        raise ServiceError("不能停用自己的账号或修改自己的角色。", "role")
    changes = apply_changes(user, data, USER_FIELDS)
    if changes:
        record(
            "update",
            user,
            actor=actor,
            summary=f"修改用户 {user.username}",
            changes=changes,
        )
        if {"is_active", "role", "scope_unit_id"} & changes.keys():
            user.session_token = new_session_token()
    return changes


def change_password(user: User, current: str, new: str, *, actor) -> None:
    """The user changes their own password; all their other sessions end."""
    if not verify_password(user.password_hash, current):
        raise ServiceError("当前密码不正确。", "current_password")
    if current == new:
        raise ServiceError("新密码不能与当前密码相同。", "new_password")
    _set_password(user, new, actor=actor, summary="修改密码")
    user.must_change_password = False


def reset_password(user: User, *, actor) -> str:
    """An administrator issues a one-time password; the user must change it at next login."""
    temporary = "Tmp-" + secrets.token_urlsafe(9)
    while password_problem(temporary, username=user.username):  # 72 random bits; practically never repeats
        temporary = "Tmp-" + secrets.token_urlsafe(9)
    _set_password(user, temporary, actor=actor, summary=f"管理员重置 {user.username} 的密码")
    user.must_change_password = True
    return temporary


def _set_password(user, password, *, actor, summary):
    problem = password_problem(password, username=user.username)
    if problem:
        raise ServiceError(problem, "new_password")
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.session_token = new_session_token()
    record("password_change", user, actor=actor, summary=summary)


def filtered_users(q: str, role: str) -> sa.Select:
    """Accounts matching a keyword (username or display name) and a role, for the administrators' list."""
    stmt = sa.select(User)
    if q:
        stmt = stmt.where(sa.or_(User.username.like(like_pattern(q)), User.display_name.like(like_pattern(q))))
    if role in Role.__members__.values():
        stmt = stmt.where(User.role == role)
    return stmt


def scope_units() -> list[Unit]:
    """The divisions an account's scope may be (province, prefectures, counties), in code order."""
    stmt = sa.select(Unit).options(joinedload(Unit.parent)).where(Unit.kind.in_(DIVISION_KINDS)).order_by(Unit.code)
    return db.session.scalars(stmt).all()


def county_staff() -> dict[int, list[int]]:
    """{county id: ids of the active county-office users scoped to that county}: who a county's reminders reach."""
    staff: dict[int, list[int]] = {}
    rows = db.session.execute(
        sa.select(User.scope_unit_id, User.id).where(
            User.is_active.is_(True), User.role == Role.COUNTY, User.scope_unit_id.is_not(None)
        )
    )
    for county_id, user_id in rows:
        staff.setdefault(county_id, []).append(user_id)
    return staff
