from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from lms.audiences import AUDIENCES


class RequirementForm(FlaskForm):
    course = SelectField(_l("课程"), coerce=int, validators=[DataRequired(_l("请选择课程"))])
    due_date = DateField(_l("截止日期"), validators=[DataRequired(_l("请填写截止日期（年-月-日）"))],
                         format="%Y-%m-%d")
    # labels stay lazy so each request renders them in its own language
    audience = SelectField(_l("人群"), choices=[("", _l("不限"))] + [(k, v) for k, v in AUDIENCES.items()],
                           validators=[Optional()])
    unit = StringField(_l("单位编码（含下级单位）"), validators=[Optional(), Length(max=64)])
    usernames = TextAreaField(_l("指定人员账号（可选，用逗号或换行分开；填写后只指派给这些人）"),
                              validators=[Optional(), Length(max=20000)])
    note = StringField(_l("说明"), validators=[Optional(), Length(max=200)])


class TargetForm(FlaskForm):
    """One field per audience: the yearly online 学时 target."""


for _code, _label in AUDIENCES.items():
    setattr(TargetForm, f"target_{_code}", DecimalField(
        _label, places=2,
        # InputRequired, not DataRequired: 0 (no target) is falsy but a real answer
        validators=[InputRequired(_l("请填写年度目标")), NumberRange(0, 1000, _l("应在 0 到 1000 之间"))]))
