"""The posting form."""

from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from registry.exchanges.models import Direction, Field, PersonType
from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice, not_after


class ExchangeForm(BaseForm):
    person_name = StringField("姓名", validators=[DataRequired("请填写姓名。"), Length(max=50)])
    direction = SelectField("方向", choices=[choice(d.value, d.label) for d in Direction], coerce=Direction)
    person_type = SelectField("类型", choices=[choice(p.value, p.label) for p in PersonType], coerce=PersonType)
    field = SelectField(
        "领域（专业技术人才）",
        choices=[choice("", "（党政干部不填）")] + [choice(f.value, f.label) for f in Field],
        coerce=lambda v: Field(v) if v else None,
    )
    #: The registry units; which side each must be on follows from the direction (the service checks it).
    sending_unit_id = IdSelectField("派出单位", validators=[DataRequired("请选择派出单位。")])
    receiving_unit_id = IdSelectField("接收单位", validators=[DataRequired("请选择接收单位。")])
    sending_unit = StringField("派出机构名称（可不填）", validators=[Optional(), Length(max=200)])
    receiving_unit = StringField("接收机构名称（可不填）", validators=[Optional(), Length(max=200)])
    county_id = IdSelectField("涉及的四川县(市、区)", validators=[DataRequired("请选择县(市、区)。")])
    position = StringField("挂职岗位", validators=[Optional(), Length(max=100)])
    arrival_date = ChineseDateField("到岗日期", validators=[InputRequired("请填写到岗日期。")])
    departure_date = ChineseDateField(
        "离岗日期", validators=[Optional(), not_after("arrival_date", "离岗日期不能早于到岗日期。")]
    )
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
    version = VersionField()
