"""Asset forms: the register entry, a state change (with the disposal record), a 管护 check, 核实."""

from wtforms import DecimalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from registry.assets.models import AssetClass, AssetState, Condition, OperationMode, OwnerLevel
from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice, not_after
from registry.kernel.money import MoneyField


def _choices(enum):
    return [choice(m.value, m.label) for m in enum]


class AssetForm(BaseForm):
    number = StringField("资产编号", validators=[DataRequired("请填写资产编号。"), Length(max=50)],
                         description="如 ZC-513431-2024-003-01（项目编号加序号）。")  # fmt: skip
    name = StringField("资产名称", validators=[DataRequired("请填写资产名称。"), Length(max=200)])
    sources = TextAreaField(
        "来源项目",
        validators=[DataRequired("请填写来源项目。"), Length(max=2000)],
        description="每行一个项目：项目编号:东部财政援助形成的金额(元):其他资金形成的金额(元)。原值为各项之和。",
    )
    asset_class = SelectField("资产类别", choices=_choices(AssetClass), coerce=AssetClass)
    quantity = DecimalField(
        "数量",
        places=2,
        default=1,
        validators=[InputRequired("请填写数量。"), NumberRange(0.01, 10**11, "数量须大于 0。")],
    )
    quantity_unit = StringField("计量单位", default="项", validators=[Optional(), Length(max=20)])
    township_id = IdSelectField("乡镇", validators=[Optional()])
    village_id = IdSelectField("村", validators=[Optional()])
    location = StringField("坐落位置", validators=[Optional(), Length(max=200)])
    completed_on = ChineseDateField("竣工日期", validators=[InputRequired("请填写竣工日期。")])
    handed_over_on = ChineseDateField(
        "移交日期", validators=[Optional(), not_after("completed_on", "移交日期不能早于竣工日期。")],
        description="移交给所有权人的日期；填写后项目才能变更为“资产已移交”。",
    )  # fmt: skip
    owner_level = SelectField("确权层级", choices=_choices(OwnerLevel), coerce=OwnerLevel)
    owner_name = StringField("所有权人", validators=[DataRequired("请填写所有权人。"), Length(max=500)],
                             description="单位名称，或到户资产的农户姓名（如 吉克阿呷等 12 户）。")  # fmt: skip
    caretaker = StringField("管护主体", validators=[DataRequired("请填写管护主体。"), Length(max=200)])
    caretaker_person = StringField("管护责任人", validators=[DataRequired("请填写管护责任人。"), Length(max=50)])
    caretaker_phone = StringField("联系电话", validators=[Optional(), Length(max=30)])
    operation_mode = SelectField("运营方式", choices=_choices(OperationMode), coerce=OperationMode)
    income_year = IntegerField(
        "收益年度", validators=[Optional(), NumberRange(2000, 2100, "年度应在 2000–2100 之间。")]
    )
    annual_income_fen = MoneyField("年收益（元）", validators=[Optional()])
    to_households_fen = MoneyField("其中分配给脱贫户（元）", validators=[Optional()])
    to_collective_fen = MoneyField("其中分配给村集体（元）", validators=[Optional()])
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
    version = VersionField()


class StateForm(BaseForm):
    to_state = SelectField("变更为", choices=_choices(AssetState), coerce=AssetState)
    changed_on = ChineseDateField("变更日期", validators=[InputRequired("请填写变更日期。")])
    note = StringField("原因", validators=[DataRequired("请说明状态变更的原因。"), Length(max=500)])
    disposal_method = StringField("处置方式（已处置时填写）", validators=[Optional(), Length(max=200)])
    disposal_decision = StringField("决策程序/批准文号（已处置时填写）", validators=[Optional(), Length(max=200)])
    disposal_proceeds_fen = MoneyField("处置收入（元）", validators=[Optional()])
    version = VersionField()


class CheckForm(BaseForm):
    checked_on = ChineseDateField("检查日期", validators=[InputRequired("请填写检查日期。")])
    condition = SelectField("状况", choices=_choices(Condition), coerce=Condition)
    problems = TextAreaField("发现的问题", validators=[Optional(), Length(max=2000)])
    checker = StringField("检查人", validators=[Optional(), Length(max=50)])


class ConfirmForm(BaseForm):
    version = VersionField()
