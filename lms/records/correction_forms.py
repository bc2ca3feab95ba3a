"""Forms of corrections and year closing (lms/records/correction_routes.py). The length rules of reasons
live in the services (corrections.py, closing.py), which name the field; these only bound the input."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp


class ReverseForm(FlaskForm):
    reason = TextAreaField(_l("更正原因"), validators=[DataRequired(_l("请写明更正原因")),
                                                     Length(max=500, message=_l("更正原因最多 500 个字"))],
                           description=_l("例如：重复登记、误记到他人名下。原因会写入审计日志。"))
    submit = SubmitField(_l("确认更正（撤销这条记录）"))


class CloseYearForm(FlaskForm):
    unit = StringField(_l("单位"), validators=[DataRequired(_l("请选择单位")), Length(max=64, message=_l("单位编码太长"))],
                       description=_l("关账对这个单位及其全部下级单位生效"))
    year = StringField(_l("年度"), validators=[DataRequired(_l("请填写年度（如 2025）")),
                                             Regexp(r"^\s*[0-9]{4}\s*$", message=_l("年度应是四位数字，如 2025"))])
    submit = SubmitField(_l("关账"))


class ReopenForm(FlaskForm):
    reason = TextAreaField(_l("重新开放的原因"), validators=[DataRequired(_l("请写明重新开放的原因")),
                                                      Length(max=500, message=_l("原因最多 500 个字"))])
    submit = SubmitField(_l("重新开放"))
