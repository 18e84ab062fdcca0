"""The upload form."""

from flask_wtf.file import FileAllowed, FileField, FileRequired

from registry.forms import BaseForm


class ImportForm(BaseForm):
    file = FileField(
        "文件",
        validators=[
            FileRequired("请选择要导入的文件。"),
            FileAllowed(["xlsx", "csv"], "只能导入 .xlsx 或 .csv 文件。"),
        ],
    )
