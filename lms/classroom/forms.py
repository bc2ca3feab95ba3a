from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from lms.audiences import AUDIENCES


class AddLearnerForm(FlaskForm):
    """A teacher adds a learner to their class's roster."""

    full_name = StringField(_l("姓名"), validators=[DataRequired(_l("请填写姓名")), Length(max=80, message=_l("姓名最多 80 个字"))])
    audience = SelectField(_l("人群"), choices=[SelectChoice(code, label) for code, label in AUDIENCES.items()],
                           default="elder")
    pin = StringField(_l("PIN（4 位数字，可以以后再设）"), validators=[Optional(), Regexp(r"^[0-9]{4}$", message=_l("PIN 必须是 4 位数字"))],
                      render_kw={"inputmode": "numeric", "maxlength": 4, "autocomplete": "off"})
