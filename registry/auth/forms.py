"""Login, password and user administration forms."""

from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from registry.auth.models import ROLE_LABELS
from registry.kernel.forms import BaseForm, IdSelectField, VersionField, choice


class LoginForm(BaseForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名。"), Length(max=50)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码。"), Length(max=128)])


class ChangePasswordForm(BaseForm):
    current_password = PasswordField("当前密码", validators=[DataRequired("请输入当前密码。")])
    new_password = PasswordField("新密码", validators=[DataRequired("请输入新密码。")])
    confirm = PasswordField(
        "再次输入新密码",
        validators=[
            DataRequired("请再次输入新密码。"),
            EqualTo("new_password", "两次输入的新密码不一致。"),
        ],
    )


class UserForm(BaseForm):
    """Create or edit a user; ``password`` is only shown on create."""

    username = StringField("用户名", validators=[DataRequired("请输入用户名。"), Length(max=50)])
    display_name = StringField("姓名", validators=[DataRequired("请输入姓名。"), Length(max=50)])
    role = SelectField("角色", choices=[choice(r.value, label) for r, label in ROLE_LABELS.items()])
    scope_unit_id = IdSelectField("管辖范围")
    phone = StringField("联系电话", validators=[Optional(), Length(max=30)])
    is_active = BooleanField("启用", default=True)
    #: Only on create (the edit view deletes the field), where a missing value is a form error, not a crash.
    password = PasswordField("初始密码", validators=[DataRequired("请输入初始密码。")])
    version = VersionField()
