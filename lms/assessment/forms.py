"""Forms of the self-assessment. The learner's forms carry only the CSRF token through Flask-WTF: their
fields (sitting token, question place, choice places) are read by the routes and judged by the services,
which know the sitting. The report's filters are a GET form without CSRF (they change nothing)."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from lms.audiences import AUDIENCES

QUARTER = re.compile(r"^\d{4}Q[1-4]$")


class ActionForm(FlaskForm):
    """Start, answer, hand in: a CSRF token only."""


class ReportForm(FlaskForm):
    class Meta:
        csrf = False

    quarter = StringField(_l("季度"), validators=[Optional(), Length(max=8)],
                          description=_l("例如 2026Q4；留空：每人最近一次自测"))
    audience = SelectField(_l("人群"), choices=[("", _l("全部"))] + list(AUDIENCES.items()), validate_choice=False)
    unit = StringField(_l("单位编码"), validators=[Optional(), Length(max=64)])

    def validate_quarter(self, field):
        if field.data and not QUARTER.match(field.data.strip()):
            raise ValidationError(_l("季度应写成 年份 + Q + 1 到 4，例如 2026Q4。"))

    def validate_audience(self, field):
        if field.data and field.data not in AUDIENCES:
            raise ValidationError(_l("没有这个人群，请从列表中选择。"))
