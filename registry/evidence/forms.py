from flask_wtf.file import FileField
from wtforms import HiddenField

from registry.kernel.forms import BaseForm


class UploadForm(BaseForm):
    file = FileField("选择文件")
    next = HiddenField()


class DeleteForm(BaseForm):
    next = HiddenField()
