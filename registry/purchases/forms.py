"""Purchase and channel forms."""

from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from registry.kernel.forms import BaseForm, ChineseDateField, IdSelectField, VersionField, blank_means, choice
from registry.kernel.money import MoneyField
from registry.purchases.models import BuyerKind, CountingType, ProductCategory, SellerKind


def _choices(enum):
    return [choice(m.value, m.label) for m in enum]


class PurchaseForm(BaseForm):
    purchased_on = ChineseDateField("日期", validators=[InputRequired("请填写日期。")])
    buyer_name = StringField("购买方", validators=[DataRequired("请填写购买方。"), Length(max=200)])
    buyer_kind = SelectField("购买方类型", choices=_choices(BuyerKind), coerce=BuyerKind)
    buyer_province = StringField("购买方省份", validators=[Optional(), Length(max=20)])
    buyer_city = StringField("购买方城市", validators=[Optional(), Length(max=30)])
    seller_name = StringField("销售方（企业或合作社）", validators=[DataRequired("请填写销售方。"), Length(max=200)])
    seller_kind = SelectField("销售方类型", choices=_choices(SellerKind), coerce=SellerKind)
    seller_county_id = IdSelectField("销售方所在县", validators=[DataRequired("请选择销售方所在县。")])
    product = StringField("产品", validators=[DataRequired("请填写产品。"), Length(max=200)])
    product_category = SelectField("产品类别", choices=_choices(ProductCategory), coerce=ProductCategory)
    amount_fen = MoneyField("金额（元）", validators=[InputRequired("请填写金额。")])
    channel_id = IdSelectField("渠道", validators=[DataRequired("请选择渠道。")])
    counting_type = SelectField("计入方式", choices=_choices(CountingType), coerce=CountingType)
    evidence_no = StringField(
        "发票号/合同号", validators=[DataRequired("请填写发票号或合同号。"), Length(max=100)],
        description="同一凭证在所有渠道中只能计入一次。",
    )  # fmt: skip
    note = TextAreaField("备注", validators=[Optional(), Length(max=2000)])
    version = VersionField()


class ChannelForm(BaseForm):
    name = StringField("渠道名称", validators=[DataRequired("请填写渠道名称。"), Length(max=50)])
    sort_order = IntegerField("排序", default=100, validators=[Optional()], filters=[blank_means(100)])
    is_active = BooleanField("启用", default=True)
