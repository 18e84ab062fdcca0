"""Pairing, end-of-pairing and programme forms."""

from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from registry.counties.models import UnitKind
from registry.kernel.forms import (
    BaseForm,
    ChineseDateField,
    IdSelectField,
    VersionField,
    choice,
    not_after,
)


class PairingForm(BaseForm):
    east_unit_id = IdSelectField("东部单位", validators=[DataRequired("请选择东部单位。")])
    west_unit_id = IdSelectField("四川单位", validators=[DataRequired("请选择四川单位。")])
    level = SelectField("结对层级", choices=[choice(k.value, k.label) for k in UnitKind], coerce=UnitKind)
    programme_id = IdSelectField("协作类型", validators=[DataRequired("请选择协作类型。")])
    valid_from = ChineseDateField("起始日期", validators=[InputRequired("请填写起始日期。")])
    valid_to = ChineseDateField(
        "终止日期",
        validators=[Optional(), not_after("valid_from", "终止日期不能早于起始日期。")],
        description="留空表示仍然有效。",
    )
    source = StringField("依据文件", validators=[Optional(), Length(max=300)])
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
    version = VersionField()


class EndPairingForm(BaseForm):
    valid_to = ChineseDateField("终止日期（最后有效日）", validators=[InputRequired("请填写终止日期。")])
    version = VersionField()


class ProgrammeForm(BaseForm):
    name = StringField("名称", validators=[DataRequired("请填写名称。"), Length(max=100)])
    east_province_id = IdSelectField("东部省份", validators=[Optional()])
    starts_on = ChineseDateField("开始日期", validators=[Optional()])
    ends_on = ChineseDateField(
        "结束日期",
        validators=[Optional(), not_after("starts_on", "结束日期不能早于开始日期。")],
    )
    is_active = BooleanField("启用", default=True)
    description = TextAreaField("说明", validators=[Optional(), Length(max=2000)])
    version = VersionField()
