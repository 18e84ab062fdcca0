"""Project, status-step and fund-transaction forms."""

from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice, not_after
from registry.kernel.money import MoneyField
from registry.projects.models import DeliveryMode, FundingLevel, FundSource, FundStage, ProjectCategory, ProjectStatus


def _choices(enum):
    return [choice(m.value, m.label) for m in enum]


class ProjectForm(BaseForm):
    code = StringField(
        "项目编号", validators=[Optional(), Length(max=40)], description="留空则自动生成，如 ZC-513431-2024-001。"
    )
    name = StringField("项目名称", validators=[DataRequired("请填写项目名称。"), Length(max=200)])
    county_id = IdSelectField("所在县(市、区)", validators=[DataRequired("请选择所在县(市、区)。")])
    township_id = IdSelectField("乡镇", validators=[Optional()])
    village_id = IdSelectField("村", validators=[Optional()])
    pairing_id = IdSelectField(
        "结对关系",
        validators=[DataRequired("请选择结对关系。")],
        description="须为该县（或所在市州）在计划开工日有效的结对；协作类型随结对关系确定。",
    )
    year = IntegerField(
        "年度", validators=[InputRequired("请填写年度。"), NumberRange(2000, 2100, "年度应在 2000–2100 之间。")]
    )
    category = SelectField("项目类别", choices=_choices(ProjectCategory), coerce=ProjectCategory)
    delivery_mode = SelectField("实施方式", choices=_choices(DeliveryMode), coerce=DeliveryMode)
    funding_level = SelectField("资金层级", choices=_choices(FundingLevel), coerce=FundingLevel)
    implementing_unit = StringField("实施单位", validators=[Optional(), Length(max=200)])
    responsible_person = StringField("责任人", validators=[Optional(), Length(max=50)])
    planned_start = ChineseDateField("计划开工", validators=[InputRequired("请填写计划开工日期。")])
    planned_finish = ChineseDateField(
        "计划完工", validators=[Optional(), not_after("planned_start", "计划完工日期不能早于计划开工日期。")]
    )
    actual_start = ChineseDateField("实际开工", validators=[Optional()])
    actual_finish = ChineseDateField(
        "实际完工", validators=[Optional(), not_after("actual_start", "实际完工日期不能早于实际开工日期。")]
    )
    beneficiaries = IntegerField(
        "带动人数", default=0, validators=[Optional(), NumberRange(0, 10_000_000, "人数无效。")]
    )
    beneficiaries_lifted = IntegerField(
        "其中脱贫人口", default=0, validators=[Optional(), NumberRange(0, 10_000_000, "人数无效。")]
    )
    farmer_benefit = TextAreaField("联农带农机制", validators=[Optional(), Length(max=4000)])
    performance_targets = TextAreaField("绩效目标", validators=[Optional(), Length(max=4000)])
    version = VersionField()


class StatusForm(BaseForm):
    to_status = SelectField("变更为", choices=_choices(ProjectStatus), coerce=ProjectStatus)
    changed_on = ChineseDateField("变更日期", validators=[InputRequired("请填写变更日期。")])
    note = StringField("说明", validators=[Optional(), Length(max=500)], description="如批复文号、验收结论。")
    version = VersionField()


class TransactionForm(BaseForm):
    source = SelectField("资金来源", choices=_choices(FundSource), coerce=FundSource)
    stage = SelectField("环节", choices=_choices(FundStage), coerce=FundStage)
    amount_fen = MoneyField(
        "金额（元）", validators=[InputRequired("请填写金额。")], description="精确到分，例如 1250000.00。"
    )
    occurred_on = ChineseDateField("日期", validators=[InputRequired("请填写日期。")])
    document_no = StringField("文号/凭证号", validators=[Optional(), Length(max=100)])
    note = StringField("备注", validators=[Optional(), Length(max=500)])
    version = VersionField()
