"""Forms of contests: the organiser's contest form, and the learner's start and answer forms (CSRF
on every one). Each field checks its own format here; the rules that need the database (units in
the organiser's scope, the pool large enough) are services'."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from lms.activities.forms import LocalTimeField
from lms.audiences import AUDIENCES
from lms.contests.services import RULES
from lms.courses.forms import CheckboxesField, HoursField


class ContestForm(FlaskForm):
    title = StringField(_l("竞赛名称"), validators=[DataRequired(_l("请填写竞赛名称")),
                                                Length(max=200, message=_l("竞赛名称最多 200 个字"))])
    description = TextAreaField(_l("竞赛说明"), validators=[Optional(), Length(max=5000, message=_l("竞赛说明最多 5000 个字"))],
                                description=_l("参赛的人在开始答题前看到"))
    starts_at = LocalTimeField(_l("开始时间"), description=_l("北京时间"))
    ends_at = LocalTimeField(_l("结束时间"), description=_l("北京时间；结束后不能再开始答题"))
    audiences = CheckboxesField(_l("面向人群"), choices=[SelectChoice(code, label) for code, label in AUDIENCES.items()],
                                validate_choice=False, description=_l("至少选一个；只有这些人群的人能参赛"))
    units = StringField(_l("参赛单位"), validators=[Length(max=2000, message=_l("单位编码太多"))],
                        description=_l("单位编码，多个用逗号或空格分开；这些单位及其下级单位的人能参赛"))
    courses = CheckboxesField(_l("题库（课程）"), coerce=int, validate_choice=False,
                              description=_l("所选课程各课测验里的单选、多选和判断题组成题库"))
    question_count = IntegerField(_l("每次答题的题目数量"), validators=[Optional()],
                                  description=_l("从题库随机抽取，不能多于题库的题数"))
    seconds_per_question = IntegerField(_l("每题限时（秒）"), validators=[Optional()],
                                        description=_l("由服务器计时；超时作答不得分"))
    attempts_per_day = IntegerField(_l("每人每天答题次数"), validators=[Optional()])
    score_rule = RadioField(_l("计分方式"), choices=[SelectChoice(code, label) for code, label in RULES.items()],
                            validate_choice=False)
    hours = HoursField(_l("记入学时"), description=_l("0 表示不记学时；达到最低分的人记一次"))
    min_score = IntegerField(_l("记学时的最低分"), validators=[Optional()], description=_l("0 到 100 分"))
    submit = SubmitField(_l("保存"))


class StartForm(FlaskForm):
    submit = SubmitField(_l("开始答题"))


class DeleteForm(FlaskForm):
    submit = SubmitField(_l("删除竞赛"))


class AnswerForm(FlaskForm):
    """Only the CSRF token is a field: which question (`index`) and the picked places (`c`) are read from
    the request, and checked against the attempt by services.answer."""
