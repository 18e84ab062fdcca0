"""Forms of disclosure notices: drafting one, publishing and withdrawing it, postings, complaints and answers."""

import re

from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import HiddenInput

from registry.disclosure.models import ComplaintChannel, NoticeType
from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice

#: A telephone number as printed on a notice: digits with dashes, spaces or brackets (0834-1234567, (028)12345678).
PHONE = re.compile(r"^[0-9()（）\- ]{5,40}$")


class NoticeForm(BaseForm):
    county_id = IdSelectField("县(市、区)", validators=[DataRequired("请选择县(市、区)。")])
    year = IntegerField(
        "年度", validators=[InputRequired("请填写年度。"), NumberRange(2000, 2100, "年度应在 2000–2100 之间。")]
    )
    type = SelectField(
        "公告类型",
        choices=[choice(t.value, t.label) for t in NoticeType],
        description="年度计划与项目安排列出已立项的项目；资金分配结果列出已到位或拨付资金的项目；实施结果列出已完工的项目。",
    )
    title = StringField("标题", validators=[Optional(), Length(max=200)], description="留空则按县、年度和类型生成。")
    issuing_unit = StringField(
        "发布单位",
        validators=[DataRequired("请填写发布单位。"), Length(max=200)],
        description="谁分配、谁使用、谁公开：分配或使用资金的单位，如 昭觉县乡村振兴局。",
    )
    local_phone = StringField(
        "本地监督电话",
        validators=[Optional(), Length(max=40), Regexp(PHONE, message="电话号码只能包含数字、括号、空格和连字符。")],
        description="与 12317 一并印在公告上；留空则用系统配置的号码。",
    )
    window_start = ChineseDateField("公示开始", validators=[InputRequired("请填写公示开始日期。")])
    window_end = ChineseDateField(
        "公示结束", validators=[InputRequired("请填写公示结束日期。")], description="公示期不少于 10 天（含首尾两日）。"
    )


class PublishForm(BaseForm):
    version = VersionField()


class WithdrawForm(BaseForm):
    reason = TextAreaField(
        "撤回原因", validators=[DataRequired("请填写撤回原因。"), Length(max=2000, message="不能超过 2000 字。")]
    )
    version = VersionField()


class PostingForm(BaseForm):
    place = StringField(
        "张贴地点",
        validators=[DataRequired("请填写张贴地点。"), Length(max=200)],
        description="如 某村村务公开栏、某乡镇政务公开栏、县政府门户网站。",
    )
    posted_on = ChineseDateField("张贴日期", validators=[InputRequired("请填写张贴日期。")])
    note = StringField("说明", validators=[Optional(), Length(max=500)])


class ComplaintForm(BaseForm):
    received_on = ChineseDateField("收到日期", validators=[InputRequired("请填写收到日期。")])
    channel = SelectField("渠道", choices=[choice(c.value, c.label) for c in ComplaintChannel])
    content = TextAreaField(
        "反映内容", validators=[DataRequired("请填写反映内容。"), Length(max=4000, message="不能超过 4000 字。")]
    )


class AnswerForm(BaseForm):
    complaint_id = IntegerField(widget=HiddenInput(), validators=[Optional()])
    answered_on = ChineseDateField("答复日期", validators=[InputRequired("请填写答复日期。")])
    answer = TextAreaField(
        "答复内容", validators=[DataRequired("请填写答复内容。"), Length(max=4000, message="不能超过 4000 字。")]
    )
    version = VersionField()
