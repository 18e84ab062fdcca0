"""Login, logout, own password, and the administrators' user pages."""

from datetime import UTC, datetime

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from registry.auth import services, throttle
from registry.auth.forms import ChangePasswordForm, LoginForm, UserForm
from registry.auth.models import ROLE_LABELS, Role, User
from registry.kernel.audit.queries import history_of
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.forms import BaseForm, choice, unit_choice
from registry.kernel.periods import local_datetime
from registry.kernel.services import ServiceError
from registry.kernel.web import attach_error, paginate, safe_next, save, sort_clause
from registry.permissions import public, requires

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Sign in; a throttled or failed attempt is recorded and answered without saying which part was wrong."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.username.data, form.password.data, request.remote_addr or "")
        except throttle.LoginThrottled as exc:
            db.session.rollback()
            form.form_errors.append(
                f"登录失败次数过多，请 {exc.minutes} 分钟后（{local_datetime(exc.until, '%H:%M')} 以后）再试；"
                "忘记密码请联系系统管理员。"
            )
            response = make_response(render_template("auth/login.html", form=form), 429)
            response.headers["Retry-After"] = str(exc.minutes * 60)
            return response
        db.session.commit()
        if user is None:
            form.form_errors.append("用户名或密码错误。")
            return render_template("auth/login.html", form=form), 200
        session.clear()  # no session fixation: the new login starts a fresh session
        login_user(user)
        session.permanent = True
        session["login_at"] = datetime.now(UTC).timestamp()
        return redirect(safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """End this and every other session of the user (the token is rotated server-side)."""
    services.end_sessions(current_user._get_current_object(), actor=current_user, reason="退出登录")
    db.session.commit()
    logout_user()
    session.clear()
    flash("已退出登录。", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            services.change_password(user, form.current_password.data, form.new_password.data, actor=user)
        except ServiceError as exc:
            attach_error(form, exc)
        else:
            db.session.commit()
            # The token rotated, so this session is logged in again with the new one.
            login_user(user)
            session["login_at"] = datetime.now(UTC).timestamp()
            flash("密码已修改，其他设备上的登录已失效。", "success")
            return redirect(url_for("main.index"))
    return render_template("auth/password.html", form=form)


def _scope_choices():
    return [choice("", "（无，全省）")] + [unit_choice(u) for u in services.scope_units()]


@bp.route("/admin/users/")
@requires("users.manage")
def users():
    q = request.args.get("q", "").strip()
    role = request.args.get("role", "")
    stmt = services.filtered_users(q, role)
    sort, order = sort_clause(
        {
            "username": User.username,
            "role": (User.role, User.username),
            "last_login": User.last_login_at,
        },
        "username",
    )
    page = paginate(stmt.order_by(*order), args={"q": q, "role": role, "sort": sort})
    return render_template("auth/users.html", page=page, q=q, role=role, sort=sort, roles=ROLE_LABELS)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@requires("users.manage")
def create_user():
    # A new account starts with the least privilege (只读用户); the administrator chooses more deliberately.
    form = UserForm(data={"role": Role.READER.value} if request.method == "GET" else None)
    form.scope_unit_id.choices = _scope_choices()
    if form.validate_on_submit():
        data = {**form.data, "must_change_password": True}
        response = save(
            form,
            lambda: services.create_user(data, actor=current_user),
            lambda user: f"已创建用户 {user.username}，首次登录时须修改密码。",
            lambda user: url_for(".user_detail", user_id=user.id),
        )
        if response:
            return response
    return render_template("auth/user_form.html", form=form, user=None)


@bp.route("/admin/users/<int:user_id>")
@requires("users.manage")
def user_detail(user_id):
    user = db.get_or_404(User, user_id)
    return render_template(
        "auth/user_detail.html",
        user=user,
        throttles=throttle.throttles_of(user.username),
        now=utcnow(),
        history=history_of(user),
        action_form=BaseForm(),
    )


@bp.route("/admin/users/<int:user_id>/edit", methods=["GET", "POST"])
@requires("users.manage")
def edit_user(user_id):
    user = db.get_or_404(User, user_id)
    form = UserForm(obj=user, data={"version": user.version_id} if request.method == "GET" else None)
    form.scope_unit_id.choices = _scope_choices()
    del form.password
    if form.validate_on_submit():
        data = {k: v for k, v in form.data.items() if k in services.USER_FIELDS}
        response = save(
            form,
            lambda: services.update_user(user, data, actor=current_user, version=form.version.data),
            "用户已保存。",
            url_for(".user_detail", user_id=user.id),
        )
        if response:
            return response
    return render_template("auth/user_form.html", form=form, user=user)


@bp.route("/admin/users/<int:user_id>/reset-password", methods=["POST"])
@requires("users.manage")
def reset_password(user_id):
    user = db.get_or_404(User, user_id)
    if not BaseForm().validate_on_submit():
        abort(400)
    temporary = services.reset_password(user, actor=current_user)
    db.session.commit()
    flash(
        f"已为 {user.username} 生成临时密码：{temporary}（仅显示一次，请当面或电话告知）。",
        "success",
    )
    return redirect(url_for(".user_detail", user_id=user.id))


@bp.route("/admin/users/<int:user_id>/end-sessions", methods=["POST"])
@requires("users.manage")
def end_user_sessions(user_id):
    user = db.get_or_404(User, user_id)
    if not BaseForm().validate_on_submit():
        abort(400)
    services.end_sessions(user, actor=current_user, reason=f"管理员结束 {user.username} 的全部登录")
    db.session.commit()
    if user.id == current_user.id:
        logout_user()
        return redirect(url_for(".login"))
    flash(f"{user.username} 的全部登录已结束。", "success")
    return redirect(url_for(".user_detail", user_id=user.id))


@bp.route("/admin/users/<int:user_id>/unlock-login", methods=["POST"])
@requires("users.manage")
def unlock_login(user_id):
    """Lift the login delays of the user's username from every address (after a forgotten password, say)."""
    user = db.get_or_404(User, user_id)
    if not BaseForm().validate_on_submit():
        abort(400)
    cleared = services.unlock_login(user, actor=current_user)
    db.session.commit()
    if cleared:
        flash(f"已解除 {user.username} 的登录限制（{cleared} 个地址）。", "success")
    else:
        flash(f"{user.username} 目前没有登录限制。", "info")
    return redirect(url_for(".user_detail", user_id=user.id))
