from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from lms.audiences import AUDIENCES


class ExportForm(FlaskForm):
    """GET form (no state change), so CSRF is off; validation still names every bad field."""

    class Meta:
        csrf = False

    date_from = DateField(_l("开始日期"), validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField(_l("结束日期"), validators=[Optional()], format="%Y-%m-%d")
    unit = StringField(_l("单位编码"), validators=[Optional(), Length(max=64)])
    audience = SelectField(_l("人群"), choices=[("", _l("全部"))] + [(k, v) for k, v in AUDIENCES.items()],
                           validators=[Optional()])
    summary = BooleanField(_l("按人汇总"))
    fmt = SelectField(_l("格式"), choices=[("csv", "CSV"), ("xlsx", "Excel (xlsx)")], default="csv")

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("结束日期不能早于开始日期"))
