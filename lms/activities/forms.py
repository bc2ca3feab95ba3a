"""Forms of the activities console (lms/activities/routes.py). Each field checks its own format here,
naming itself; the rules that need the database (the unit in the organiser's scope) are services'."""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from lms.activities.services import KINDS
from lms.audiences import AUDIENCES
from lms.courses.forms import CheckboxesField, HoursField

TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")


class LocalTimeField(StringField):
    """A local date and time (the browser's datetime-local input, or typed 2025-05-20 09:30)."""

    def __init__(self, label=None, validators=None, missing=None, **kwargs):
        kwargs.setdefault("render_kw", {"type": "datetime-local"})
        super().__init__(label, validators, **kwargs)
        self.missing = missing

    def process_formdata(self, valuelist):
        self.data = None
        text = (valuelist[0] if valuelist else "").strip()
        if not text:
            return
        for fmt in TIME_FORMATS:
            try:
                self.data = datetime.strptime(text, fmt)
                return
            except ValueError:
                continue
        raise ValueError(_l("%(field)s 应为 年-月-日 时:分，例如 2025-05-20 09:30", field=self.label.text))

    def _value(self):
        if self.data is not None:
            return self.data.strftime("%Y-%m-%dT%H:%M")
        return self.raw_data[0] if self.raw_data else ""


class ActivityForm(FlaskForm):
    title = StringField(_l("活动名称"), validators=[DataRequired(_l("请填写活动名称")),
                                                Length(max=200, message=_l("活动名称最多 200 个字"))])
    kind = SelectField(_l("活动类型"), choices=[SelectChoice(code, label) for code, label in KINDS.items()],
                       validators=[DataRequired(_l("请选择活动类型"))])
    starts_at = LocalTimeField(_l("开始时间"), description=_l("北京时间；只有活动时间内才能扫码签到"))
    ends_at = LocalTimeField(_l("结束时间"))
    place = StringField(_l("活动地点"), validators=[DataRequired(_l("请填写活动地点")),
                                                Length(max=200, message=_l("活动地点最多 200 个字"))])
    unit = StringField(_l("组织单位"), validators=[DataRequired(_l("请选择组织单位")),
                                               Length(max=64, message=_l("单位编码太长"))],
                       description=_l("输入单位名称或编码的一部分查找；本单位及下级单位的人可以签到"))
    audiences = CheckboxesField(_l("面向人群"), choices=[SelectChoice(code, label) for code, label in AUDIENCES.items()],
                                validate_choice=False, description=_l("至少选一个；只有这些人群的人能签到"))
    hours = HoursField(_l("学时"), description=_l("每人签到记的学时，大于 0、不超过 8"))
    submit = SubmitField(_l("保存"))


class RosterFilterForm(FlaskForm):
    """GET form (it changes nothing), so CSRF is off."""

    class Meta:
        csrf = False

    q = StringField(_l("查找"), validators=[Optional(), Length(max=80, message=_l("最多 80 个字"))],
                    description=_l("姓名、账号或手机号的一部分"))
    after_name = HiddenField()
    after_id = IntegerField(validators=[Optional(), NumberRange(min=1)])


class TickForm(FlaskForm):
    """签到 for one person on the roster (the CSRF token and who)."""

    user_id = IntegerField(validators=[DataRequired()])
    q = HiddenField()
    after_name = HiddenField()
    after_id = HiddenField()


class PaperImportForm(FlaskForm):
    file = FileField(_l("签到表（.csv 或 .xlsx）"), validators=[FileRequired(_l("请选择签到表文件"))])
    dry_run = BooleanField(_l("只检查，不签到"))
    submit = SubmitField(_l("检查并签到"))
