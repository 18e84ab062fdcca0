"""The ledger's forms: a problem, a progress entry, the steps to 销号, a link to a record."""

from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice, not_after
from registry.kernel.money import MoneyField
from registry.problems.models import Category, Source
from registry.problems.services import LINK_TYPES


class ProblemForm(BaseForm):
    source = SelectField("问题来源", choices=[choice(s.value, s.label) for s in Source], coerce=Source)
    year = IntegerField(
        "年度", validators=[InputRequired("请填写年度。"), NumberRange(2000, 2100, "年度应在 2000 至 2100 之间。")]
    )
    batch = StringField("批次", validators=[Optional(), Length(max=100)], description="如：2023年度国家考核反馈")
    found_on = ChineseDateField("发现日期", validators=[InputRequired("请填写发现日期。")])
    category = SelectField("问题类别", choices=[choice(c.value, c.label) for c in Category], coerce=Category)
    unit_id = IdSelectField("涉及单位", validators=[DataRequired("请选择问题涉及的县(市、区)、市(州)或省。")])
    description = TextAreaField("问题描述", validators=[DataRequired("请填写问题描述。"), Length(max=4000)])
    amount_fen = MoneyField("涉及金额（元）", validators=[Optional()])
    lead_unit = StringField("牵头单位", validators=[Optional(), Length(max=200)])
    responsible_unit = StringField("责任单位", validators=[Optional(), Length(max=200)])
    responsible_person = StringField("责任人", validators=[Optional(), Length(max=50)])
    measures = TextAreaField("整改措施", validators=[Optional(), Length(max=4000)])
    deadline = ChineseDateField(
        "整改时限", validators=[Optional(), not_after("found_on", "整改时限不能早于发现日期。")]
    )
    version = VersionField()


class ProgressForm(BaseForm):
    entry_on = ChineseDateField("进展日期", validators=[InputRequired("请填写进展日期。")])
    text = TextAreaField("整改进展", validators=[DataRequired("请填写整改进展。"), Length(max=4000)])
    rectified_fen = MoneyField("本次整改到位资金（元）", validators=[Optional()])
    version = VersionField()


class StepForm(BaseForm):
    """申请销号 and 审核销号: an optional comment."""

    comment = StringField("说明", validators=[Optional(), Length(max=500)])
    version = VersionField()


class ReturnForm(BaseForm):
    reason = StringField("退回理由", validators=[DataRequired("请填写退回理由。"), Length(max=500)])
    version = VersionField()


class LinkForm(BaseForm):
    record_type = SelectField("记录类型", choices=[choice(k, v) for k, v in LINK_TYPES.items()])
    record_id = IntegerField("记录编号", validators=[InputRequired("请填写记录编号。")])


class ButtonForm(BaseForm):
    """A button with nothing to fill in (取消关联): the CSRF token only."""
