"""The upload form and the one place an upload turns into an import result for the page."""

import base64

import sqlalchemy as sa
from flask import Response, current_app, get_template_attribute, render_template, stream_with_context, url_for
from flask_wtf.file import FileAllowed, FileField, FileRequired

from registry.kernel.exports import download, xlsx_bytes
from registry.kernel.extensions import db
from registry.kernel.forms import BaseForm
from registry.kernel.services import ServiceError
from registry.kernel.transfer import release_write_lock
from registry.kernel.transfer.reader import importable, read_table
from registry.kernel.transfer.template import template_workbook


class ImportForm(BaseForm):
    file = FileField(
        "文件",
        validators=[
            FileRequired("请选择要导入的文件。"),
            FileAllowed(["xlsx", "csv"], "只能导入 .xlsx 或 .csv 文件。"),
        ],
    )


def stream_upload(form, steps_function, *, user, page: dict):
    """Answer an import POST with a page that shows progress while the rows are checked, then the outcome.

    The page is streamed: its top half first, a line every PROGRESS_EVERY rows, then the result and the rest.
    The request's one commit happens only when every row passed. ``page`` holds the template's variables.
    Whatever happens once streaming has begun (a database busy with another writer, a record another import
    committed first, a fault), the import is rolled back and the page still ends with an outcome that says so:
    the status line cannot change any more, so an exception must never cut the page short.
    """
    upload = form.file.data
    data, filename = upload.read(), upload.filename
    # Above the threshold a background task imports it (registry/tasks registers the hook): the page redirects. A
    # file of another type is not queued: the page says so at once (read_table's refusal).
    background = current_app.extensions.get("registry.background_import")
    large = len(data) > current_app.config["IMPORT_BACKGROUND_BYTES"]
    if background is not None and large and importable(data[:4], filename):
        response = background(data, filename, steps_function, user=user, page=page)
        if response is not None:
            return response
    head, tail = render_template("transfer/import.html", form=form, **page).split("<!--progress-->")
    show_result = get_template_attribute("transfer/_result.html", "import_result")

    def stream():
        yield head
        yield '<section class="card" id="progress"><h2>正在检查…</h2>'
        result, message, errors_file = None, None, None
        try:
            release_write_lock()
            headers, rows = read_table(data, filename)
            steps = steps_function(headers, rows, user=user, filename=filename)
            while True:
                try:
                    done = next(steps)
                except StopIteration as stop:
                    result = stop.value
                    break
                yield f'<p class="progress-line">已检查 {done} 行…</p>\n'
            if not result.errors:
                db.session.commit()
        except ServiceError as exc:
            result, message = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure must still end the page with an outcome
            current_app.logger.exception("import of %s failed", filename)
            result, message = None, unfinished(exc)
        if result is None or result.errors:
            _rollback()
            if result is not None:
                table = [[e.row, e.column, e.value, e.reason] for e in result.errors]
                report = xlsx_bytes(["行号", "列", "内容", "原因"], table, title="导入错误", widths=[8, 14, 24, 60])
                errors_file = base64.b64encode(report).decode()
        yield "<p>检查完毕。</p></section>"
        yield str(show_result(result, errors_file, message))
        yield tail

    return Response(stream_with_context(stream()), mimetype="text/html")


def unfinished(exc: Exception) -> str:
    """The outcome shown for an import that failed for a reason other than its rows (all of it was undone)."""
    if isinstance(exc, sa.exc.IntegrityError):
        reason = "其他用户同时登记了相同的记录"
        advice = "请重新导入（已登记的记录将按更新处理）"
    elif isinstance(exc, sa.exc.OperationalError) and "locked" in str(exc.orig).lower():
        reason = "数据库正忙于其他用户的写入"
        advice = "请稍后重新导入"
    else:
        reason = "处理时发生意外错误"
        advice = "请重新导入；如仍失败，请联系系统管理员"
    return f"导入未完成：{reason}，没有写入任何记录。{advice}。"


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a connection that broke: drop it, nothing was committed
        current_app.logger.exception("rollback after a failed import failed")
        db.session.remove()


def import_page(steps_function, *, user, title: str, back_label: str, rules: list[str], back=None, template=None):
    """The whole import endpoint of a blueprint that also has ``.index`` and ``.template`` views (or says which
    pages are its ``back`` and ``template`` URLs)."""
    form = ImportForm()
    page = {
        "title": title,
        "back": back or url_for(".index"),
        "back_label": back_label,
        "template_url": template or url_for(".template"),
        "rules": rules,
    }
    if form.validate_on_submit():
        return stream_upload(form, steps_function, user=user, page=page)
    return render_template("transfer/import.html", form=form, **page)


def template_download(columns, name: str, rules=()):
    """The import template: the stream's columns with drop-downs, text formats and a 填表说明 sheet."""
    return download(template_workbook(columns, title=name, rules=rules), f"{name}-导入模板", "xlsx")
