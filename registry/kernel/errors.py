"""Friendly error pages (400/403/404/405/409/413/429/500/503); a 500 rolls the transaction back."""

import sqlalchemy as sa
from flask import current_app, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from registry.kernel.extensions import db
from registry.kernel.forms import has_control_characters
from registry.kernel.services import StaleEdit

MESSAGES = {
    400: ("请求无效", "提交的内容无法处理，请返回上一页检查后重试。"),
    403: ("没有权限", "您的账号没有执行此操作的权限。如需开通，请联系系统管理员。"),
    404: ("页面不存在", "您要找的页面或记录不存在，或不在您的管辖范围内。"),
    405: ("操作方式不正确", "该页面不接受这种请求方式。"),
    409: (
        "记录已被他人修改",
        "您打开页面后，这条记录已被其他人修改。请刷新页面查看最新内容后再修改。",
    ),
    413: ("文件过大", "上传的文件超过了大小限制。"),
    429: ("请求过于频繁", "请稍后再试。"),
    503: ("系统繁忙", "数据库正忙于其他用户的写入，您的操作未生效。请稍等几秒后重试。"),
    500: (
        "系统错误",
        "服务器处理请求时出错，操作未生效。请稍后重试；如果问题持续，请联系系统管理员。",
    ),
}


def render_error(code: int, detail: str | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500])
    if request.accept_mimetypes.best == "application/json":
        return {"error": title, "message": detail or message}, code
    return render_template("errors/error.html", code=code, title=title, message=detail or message), code


def init_app(app):
    @app.before_request
    def refuse_control_characters_in_url():
        # PostgreSQL cannot hold NUL in text, so a search term carrying one would fail deep in a query (500) on one
        # engine and quietly match nothing on the other; no filter, search or page number legitimately has any.
        if any(has_control_characters(k) or has_control_characters(v) for k, v in request.args.items(multi=True)):
            return render_error(400, "网址的查询参数中含有控制字符（如 NUL），无法处理；请检查后重新输入。")
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if exc.code in MESSAGES:
            return render_error(exc.code)
        return exc

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_error(400, "表单已过期或缺少安全令牌，请刷新页面后重新提交。")

    @app.errorhandler(StaleEdit)
    @app.errorhandler(StaleDataError)
    def stale(exc):
        db.session.rollback()
        return render_error(409)

    @app.errorhandler(sa.exc.OperationalError)
    def database_busy(exc):
        # SQLite's write lock held past the busy timeout ("database is locked"): the writer is told in Chinese to
        # try again, never a 500. Any other operational error is a 500, logged.
        db.session.rollback()
        if "locked" in str(exc.orig).lower():
            response = render_error(503)
            return response[0], 503, {"Retry-After": "5"}
        current_app.logger.error("database error", exc_info=exc)
        return render_error(500)

    @app.errorhandler(500)
    def server_error(exc):
        db.session.rollback()
        return render_error(500)
