from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField(_l("账号"), validators=[DataRequired(_l("请输入账号")), Length(max=64, message=_l("账号太长"))])
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=128, message=_l("密码太长"))])
    submit = SubmitField(_l("登录"))
