"""Forms of course and lesson authoring (lms/courses/authoring_routes.py). Each field checks its own
format here, naming itself in its message; the rules of a course as a whole (fixed hours need a note,
publishing needs lessons) are lms/courses/authoring.py's, reported on the field they are about."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from lms.audiences import AUDIENCES
from lms.courses import authoring


class ActionForm(FlaskForm):
    """The small POST buttons (publish, retire, restore): only the CSRF token."""


class MoveForm(FlaskForm):
    direction = HiddenField(validators=[AnyOf(["up", "down"])])


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class HoursField(StringField):
    """学时 as a decimal with at most two places; a message of ours (naming the field) when it is not one."""

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist or not valuelist[0].strip():
            return
        try:
            value = Decimal(valuelist[0].strip())
        except InvalidOperation:
            raise ValueError(_l("学时必须是数字，例如 0.5 或 1")) from None
        if not value.is_finite() or value.as_tuple().exponent < -2:
            raise ValueError(_l("学时必须是数字，最多两位小数"))
        self.data = value

    def _value(self):
        return str(self.data) if self.data is not None else (self.raw_data[0] if self.raw_data else "")


class PercentField(IntegerField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("观看比例必须是 50 到 100 之间的整数")) from None


CREDIT_RULES = [SelectChoice("tiers", _l("按视频总时长自动计算（默认满 30 分钟 1 学时，15–30 分钟 0.5 学时，不足 15 分钟 0.25 学时）")),
                SelectChoice("fixed", _l("固定学时（需写明依据）"))]


class CourseForm(FlaskForm):
    title = StringField(_l("课程名称"), validators=[InputRequired(_l("请填写课程名称")),
                                                    Length(max=200, message=_l("课程名称最多 200 个字"))])
    summary = TextAreaField(_l("课程简介"), validators=[Length(max=2000, message=_l("课程简介最多 2000 个字"))],
                            description=_l("学员在课程目录和课程页上看到的一两句话"))
    audiences = CheckboxesField(_l("面向人群"), choices=[SelectChoice(code, label) for code, label in AUDIENCES.items()],
                                validate_choice=False, description=_l("至少选一个；学员只在自己人群的目录里看到课程"))
    mandatory = BooleanField(_l("必修课程"))
    strict = BooleanField(_l("严格计时（不能快进、不能倍速，一段时间没有操作会询问“还在学习吗？”）"))
    credit_rule = RadioField(_l("学时怎么算"), choices=CREDIT_RULES, default="tiers",
                             validators=[InputRequired(_l("请选择学时怎么算"))])
    credit_hours = HoursField(_l("固定学时"), description=_l("选“固定学时”时填写，大于 0、不超过 100"))
    credit_note = TextAreaField(_l("固定学时的依据"), validators=[Length(max=1000, message=_l("依据最多 1000 个字"))],
                                description=_l("选“固定学时”时必填：为什么给这么多学时（管理员会看到）"))
    watch_threshold = PercentField(_l("观看比例（%）"), default=95,
                                   validators=[InputRequired(_l("请填写观看比例")),
                                               NumberRange(50, 100, _l("观看比例必须是 50 到 100 之间的整数"))],
                                   description=_l("每节视频至少看完这个比例才算学完"))
    cover = FileField(_l("封面图片（可选）"), validators=[
        Optional(), FileAllowed(["png", "jpg", "jpeg", "webp"], _l("封面图片必须是 PNG、JPEG 或 WebP 图片"))],
        description=_l("PNG、JPEG 或 WebP，最大 5 MB；会缩小为 640×360 以内"))

    def fields_data(self, published: bool = False) -> authoring.CourseFields:
        return authoring.CourseFields(
            title=self.title.data or "", summary=self.summary.data or "", audiences=list(self.audiences.data or []),
            mandatory=bool(self.mandatory.data), strict=bool(self.strict.data), credit_rule=self.credit_rule.data,
            credit_hours=self.credit_hours.data, credit_note=self.credit_note.data or "",
            watch_threshold=(self.watch_threshold.data or 0) / 100, published=published)

    def fill_from(self, course) -> None:
        """A GET of the edit page: the course as it is."""
        self.title.data, self.summary.data = course.title, course.summary
        self.audiences.data = course.audiences
        self.mandatory.data, self.strict.data = course.mandatory, course.strict
        self.credit_rule.data, self.credit_note.data = course.credit_rule, course.credit_note or ""
        self.credit_hours.data = course.credit_hours if course.credit_rule == "fixed" else None
        self.watch_threshold.data = round(course.watch_threshold * 100)
        if "published" in self._fields:
            self.published.data = course.published


class NewCourseForm(CourseForm):
    slug = StringField(_l("网址标识（可选）"), validators=[Optional(), Length(max=80)],
                       description=_l("课程网址里的英文名，如 anti-fraud；不填则自动生成，创建后不能改"))


class EditCourseForm(CourseForm):
    published = BooleanField(_l("已发布（学员可以看到并学习）"))


class NewLessonForm(FlaskForm):
    title = StringField(_l("新课时名称"), validators=[InputRequired(_l("请填写课时名称")),
                                                       Length(max=200, message=_l("课时名称最多 200 个字"))])


class LessonForm(FlaskForm):
    title = StringField(_l("课时名称"), validators=[InputRequired(_l("请填写课时名称")),
                                                    Length(max=200, message=_l("课时名称最多 200 个字"))])
    text = TextAreaField(_l("课文（Markdown）"), validators=[
        Length(max=authoring.MAX_TEXT_CHARS, message=_l("课文太长：最多 50000 个字符"))],
        description=_l("用 ## 写小标题，- 写列表，**加粗**；脚本和网页代码会被去掉，下方预览就是学员看到的样子"))


class SlidesForm(FlaskForm):
    script = TextAreaField(_l("幻灯片脚本（YAML）"), validators=[InputRequired(_l("请填写幻灯片脚本"))],
                           description=_l("每张幻灯片写 title（标题）、最多 3 条 points（要点）和 caption（字幕，也决定这一张放多久）"))


class CaptionsForm(FlaskForm):
    captions = FileField(_l("字幕文件（.vtt）"), validators=[
        FileRequired(_l("请选择字幕文件")), FileAllowed(["vtt"], _l("字幕只支持 WebVTT（.vtt）文件"))])


SLIDES_EXAMPLE = """slides:
  - title: 第一张的标题
    points:
      - 第一条要点
      - 第二条要点
    caption: 这一张的字幕，也是朗读的内容。
  - title: 第二张的标题
    caption: 第二张的字幕。
"""
