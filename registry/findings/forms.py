"""What staff fill in when they decide on a proposal."""

from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from registry.kernel.forms import BaseForm, ChineseDateField, VersionField


class AcceptForm(BaseForm):
    responsible_unit = StringField("责任单位", validators=[Optional(), Length(max=200)])
    deadline = ChineseDateField("整改时限", validators=[Optional()])
    measures = TextAreaField("整改措施", validators=[Optional(), Length(max=4000)])
    version = VersionField()


class DismissForm(BaseForm):
    reason = StringField("排除理由", validators=[DataRequired("请填写排除理由。"), Length(max=500)])
    version = VersionField()


class RunForm(BaseForm):
    """立即核查: the CSRF token only."""
