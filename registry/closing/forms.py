"""Forms of the closing steps: each a few words, checked by the services (who, which state, what is required)."""

from flask_wtf.file import FileField
from wtforms import HiddenField, IntegerField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from registry.kernel.forms import BaseForm

LONG = [Optional(), Length(max=2000, message="不能超过 2000 字。")]


class StepForm(BaseForm):
    """提交, 审核 and 审定: a decision (通过 / 退回), an 意见 and the province's reason to override a dispute."""

    decision = HiddenField(default="pass")
    comment = TextAreaField("意见", validators=LONG)
    override = TextAreaField("越过异议的理由", validators=LONG)


class ConfirmForm(BaseForm):
    pairing_id = IntegerField("结对关系", validators=[Optional()])
    decision = HiddenField(default="confirm")
    disputed_figures = TextAreaField("有异议的数据", validators=LONG)
    reason = TextAreaField("异议理由", validators=LONG)


class AnswerForm(BaseForm):
    confirmation_id = IntegerField(validators=[Optional()])
    answer = TextAreaField("答复", validators=LONG)


class UnlockForm(BaseForm):
    reason = TextAreaField("解锁理由", validators=LONG)


class DecideUnlockForm(BaseForm):
    request_id = IntegerField(validators=[Optional()])
    decision = HiddenField(default="grant")
    note = TextAreaField("审批意见", validators=LONG)


class VerifyForm(BaseForm):
    file = FileField("PDF 文件")
    #: The cover's 核验码 (12 hex digits, dashes and spaces as typed) or the whole 64-digit fingerprint.
    figures_hash = StringField(
        "核验码或数据指纹",
        validators=[Optional(), Length(max=200, message="输入过长：核验码为 12 位，数据指纹为 64 位。")],
    )
