from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from lms.audiences import AUDIENCES


class ExportForm(FlaskForm):
    """GET form (no state change), so CSRF is off; validation still names every bad field."""

    class Meta:
        csrf = False

    date_from = DateField("开始日期", validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField("结束日期", validators=[Optional()], format="%Y-%m-%d")
    unit = StringField("单位编码", validators=[Optional(), Length(max=64)])
    audience = SelectField("人群", choices=[("", "全部")] + [(k, str(v)) for k, v in AUDIENCES.items()],
                           validators=[Optional()])
    summary = BooleanField("按人汇总")
    fmt = SelectField("格式", choices=[("csv", "CSV"), ("xlsx", "Excel (xlsx)")], default="csv")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("结束日期不能早于开始日期")
