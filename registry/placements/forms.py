"""The placement form; the identity number is typed, validated by the service and never prefilled."""

from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice, not_after
from registry.kernel.money import MoneyField
from registry.placements.models import Destination, Household


class PlacementForm(BaseForm):
    person_name = StringField("姓名", validators=[DataRequired("请填写姓名。"), Length(max=50)])
    id_number = StringField(
        "身份证号", validators=[Optional(), Length(max=30)], description="18 位，最后一位可为 X；修改时留空表示不变。"
    )
    household = SelectField("户类型", choices=[choice(h.value, h.label) for h in Household], coerce=Household)
    origin_county_id = IdSelectField("户籍县(市、区)", validators=[DataRequired("请选择户籍县(市、区)。")])
    origin_township = StringField("乡镇", validators=[Optional(), Length(max=50)])
    destination_class = SelectField(
        "就业去向", choices=[choice(d.value, d.label) for d in Destination], coerce=Destination
    )
    destination_province = StringField("就业省份", validators=[Optional(), Length(max=20)])
    destination_city = StringField("就业城市", validators=[Optional(), Length(max=30)])
    employer = StringField("就业单位", validators=[Optional(), Length(max=200)])
    industry = StringField("行业", validators=[Optional(), Length(max=50)])
    organised = BooleanField("有组织转移")
    training = StringField("培训情况", validators=[Optional(), Length(max=200)])
    start_date = ChineseDateField("就业开始", validators=[InputRequired("请填写就业开始日期。")])
    end_date = ChineseDateField(
        "就业结束", validators=[Optional(), not_after("start_date", "结束日期不能早于开始日期。")]
    )
    monthly_wage_fen = MoneyField("月工资（元）", validators=[Optional()])
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
    version = VersionField()
