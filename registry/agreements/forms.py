"""Agreement, target, indicator and indicator-entry forms."""

from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from registry.agreements.models import Measure
from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, blank_means, choice
from registry.kernel.money import MoneyError, parse_wan, wan


class AgreementForm(BaseForm):
    programme_id = IdSelectField("协作类型", validators=[DataRequired("请选择协作类型。")])
    year = IntegerField(
        "年度", validators=[InputRequired("请填写年度。"), NumberRange(2000, 2100, "年度应在 2000–2100 之间。")]
    )
    title = StringField("协议名称", validators=[DataRequired("请填写协议名称。"), Length(max=200)])
    signed_on = ChineseDateField("签订日期", validators=[Optional()])
    note = TextAreaField("备注", validators=[Optional(), Length(max=4000)])
    version = VersionField()


class WanField(StringField):
    """A target in 万元 whose data is 分; blank means no target."""

    def process_formdata(self, valuelist):
        self.data = None
        if valuelist and str(valuelist[0]).strip():
            try:
                self.data = parse_wan(valuelist[0])
            except MoneyError as exc:
                raise ValueError(str(exc)) from exc

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else wan(self.data, 6).replace(",", "").rstrip("0").rstrip(".")


def target_form(indicators, current: dict[int, int], formdata=None):
    """A form with one field per indicator, named ``t<id>``, prefilled with the current targets."""

    class TargetForm(BaseForm):
        pass

    for indicator in indicators:
        label = f"{indicator.name}（{'万元' if indicator.measure is Measure.MONEY else indicator.unit}）"
        if indicator.measure is Measure.MONEY:
            field = WanField(label)
        else:
            field = IntegerField(label, validators=[Optional(), NumberRange(0, 10**12, "目标不能为负数。")])
        setattr(TargetForm, f"t{indicator.id}", field)
    return TargetForm(formdata=formdata, data={f"t{i}": v for i, v in current.items()})


class IndicatorForm(BaseForm):
    code = StringField(
        "代码",
        validators=[
            DataRequired("请填写代码。"),
            Regexp(r"^[a-z][a-z0-9_]{1,39}$", message="代码须为小写字母开头的字母、数字或下划线。"),
        ],
    )
    name = StringField("名称", validators=[DataRequired("请填写名称。"), Length(max=100)])
    measure = SelectField("计量", choices=[choice("count", "数量"), choice("money", "金额")], coerce=Measure)
    unit = StringField(
        "单位", validators=[Optional(), Length(max=10)], description="数量指标的单位，如 人、个、家、人次。"
    )
    parent_id = IdSelectField("上级指标", validators=[Optional()], description="“其中”类指标选其上级。")
    sort_order = IntegerField("排序", default=100, validators=[Optional()], filters=[blank_means(100)])
    is_active = BooleanField("启用", default=True)
    description = TextAreaField("说明", validators=[Optional(), Length(max=2000)])
    version = VersionField()


class EntryForm(BaseForm):
    indicator_id = IdSelectField("指标", validators=[DataRequired("请选择指标。")])
    county_id = IdSelectField("县(市、区)", validators=[DataRequired("请选择县(市、区)。")])
    pairing_id = IdSelectField("结对关系", validators=[DataRequired("请选择结对关系。")])
    occurred_on = ChineseDateField("日期", validators=[InputRequired("请填写日期。")])
    value = StringField(
        "数值", validators=[InputRequired("请填写数值。")], description="金额指标填万元（如 1250.5），数量指标填整数。"
    )
    subject = StringField(
        "对象", validators=[Optional(), Length(max=200)], description="如企业名称；引导企业数按不同企业计。"
    )
    evidence = StringField("佐证", validators=[Optional(), Length(max=200)], description="合同号、文号等。")
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
