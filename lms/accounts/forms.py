from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField("账号", validators=[DataRequired("请输入账号"), Length(max=64, message="账号太长")])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=128, message="密码太长")])
    submit = SubmitField("登录")
