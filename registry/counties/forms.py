"""Forms for organisations below a county and for a county's assistance category."""

from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from registry.counties.models import (
    CATEGORY_LABELS,
    LOCAL_KINDS,
    CountyCategory,
    UnitKind,
)
from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, choice


class LocalUnitForm(BaseForm):
    name = StringField(
        "名称",
        validators=[
            DataRequired("请填写名称。"),
            Length(max=100, message="名称不能超过 100 个字。"),
        ],
    )
    kind = SelectField("类型", choices=[choice(k.value, k.label) for k in LOCAL_KINDS], coerce=UnitKind)
    parent_id = IdSelectField("所在县(市、区)或乡镇", validators=[DataRequired("请选择上级单位。")])
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
    version = VersionField()


class CategoryForm(BaseForm):
    """An administrator's dated category change (the period before it is kept in the history)."""

    category = SelectField(
        "帮扶类别",
        choices=[choice("", "（请选择）")] + [choice(c.value, label) for c, label in CATEGORY_LABELS.items()],
        coerce=lambda v: CountyCategory(v) if v else None,
        validators=[DataRequired("请选择帮扶类别。")],
    )
    valid_from = ChineseDateField("生效日期", validators=[InputRequired("请填写生效日期。")])
    note = StringField("依据", validators=[Optional(), Length(max=200, message="依据不能超过 200 个字。")])
    version = VersionField()
