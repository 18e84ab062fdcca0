"""Forms for organisations below a county and for a county's assistance category."""

from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from registry.counties.models import (
    CATEGORY_LABELS,
    LOCAL_KINDS,
    CountyCategory,
    UnitKind,
)
from registry.forms import BaseForm, IdSelectField, VersionField, choice


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
    category = SelectField(
        "帮扶类别",
        choices=[choice("", "（未分类）")] + [choice(c.value, label) for c, label in CATEGORY_LABELS.items()],
        coerce=lambda v: CountyCategory(v) if v else None,
    )
    version = VersionField()
