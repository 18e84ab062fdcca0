"""The upload form and the one place an upload turns into an import result for the page."""

import base64

from flask_wtf.file import FileAllowed, FileField, FileRequired

from registry.exports import xlsx_bytes
from registry.extensions import db
from registry.forms import BaseForm
from registry.services import ServiceError
from registry.transfer.reader import read_table
from registry.web import attach_error


class ImportForm(BaseForm):
    file = FileField(
        "文件",
        validators=[
            FileRequired("请选择要导入的文件。"),
            FileAllowed(["xlsx", "csv"], "只能导入 .xlsx 或 .csv 文件。"),
        ],
    )


def run_upload(form, importer, *, user):
    """Import the uploaded file with ``importer``; commit only when every row passed.

    Returns (result or None, the error list as a base64 XLSX for the page's download link, or None).
    """
    if not form.validate_on_submit():
        return None, None
    upload = form.file.data
    try:
        headers, rows = read_table(upload.read(), upload.filename)
        result = importer(headers, rows, user=user, filename=upload.filename)
    except ServiceError as exc:
        db.session.rollback()
        attach_error(form, exc)
        return None, None
    if not result.errors:
        db.session.commit()
        return result, None
    db.session.rollback()
    table = [[e.row, e.column, e.value, e.reason] for e in result.errors]
    data = xlsx_bytes(["行号", "列", "内容", "原因"], table, title="导入错误", widths=[8, 14, 24, 60])
    return result, base64.b64encode(data).decode()
