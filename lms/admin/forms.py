from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional, ValidationError


class FieldError(ValueError):
    """Bad input to a console service, naming the form field it is about; nothing was saved."""

    def __init__(self, field_name: str, message):
        super().__init__(str(message))
        self.field = field_name
        self.message = message


def show_field_error(form, exc: FieldError, fallback: str = "title") -> None:
    """Put a service's FieldError under its field on the form (under `fallback` when the form has none)."""
    field = getattr(form, exc.field, None)
    field = field if field is not None else getattr(form, fallback)
    field.errors = list(field.errors) + [str(exc.message)]


class AuditFilterForm(FlaskForm):
    """GET form (it changes nothing), so CSRF is off; every bad field is still named."""

    class Meta:
        csrf = False

    actor = StringField(_l("操作人账号"), validators=[Optional(), Length(max=64)])
    action = StringField(_l("操作（开头）"), validators=[Optional(), Length(max=60)],
                         render_kw={"placeholder": _l("如 unit. 为所有单位操作")})
    target = StringField(_l("对象"), validators=[Optional(), Length(max=120)],
                         render_kw={"placeholder": _l("如 user:12 或 course:")})
    date_from = DateField(_l("开始日期"), validators=[Optional()], format="%Y-%m-%d")
    date_to = DateField(_l("结束日期"), validators=[Optional()], format="%Y-%m-%d")
    before = IntegerField(validators=[Optional(), NumberRange(min=1)])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("结束日期不能早于开始日期"))
