"""Forms of the quiz editor (lms/quizzes/authoring_routes.py). Field checks here; the rules of a
question as a whole (its right answers, its scenario) are lms/quizzes/authoring.py's, reported on the
field they are about."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, FieldList, Form, FormField, IntegerField, RadioField, SelectField, StringField,
                     SubmitField, TextAreaField)
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from lms.quizzes import format as quiz_format

CHOICE_ROWS = 4        # rows shown for a new question (blank rows are ignored)
MAX_CHOICES = 8
SPEAKER_ME = ("我：", "我:")
SPEAKER_THEM = ("对方：", "对方:")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class WholeNumberField(IntegerField):
    """An integer field whose "not a number" message is ours (names the field), not WTForms' English."""

    def __init__(self, label=None, validators=None, not_a_number=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.not_a_number = not_a_number

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0].strip() == "":
            self.data = None
            return
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(self.not_a_number) from None


class QuizSettingsForm(FlaskForm):
    pass_score = WholeNumberField(
        _l("及格分"), validators=[InputRequired(_l("请填写及格分（1 到 100）"))],
        not_a_number=_l("及格分必须是 1 到 100 之间的整数"),
        description=_l("百分制：答对的题占这么多分才算通过。"))
    ask = WholeNumberField(
        _l("每次抽题数"), validators=[Optional()], not_a_number=_l("每次抽题数必须是整数；留空表示每次考全部题目"),
        description=_l("留空：每次考全部题目。填一个数：每次从题库里随机抽这么多道题（不能多于题库的题数）。"))
    submit = SubmitField(_l("保存测验设置"))

    def validate_pass_score(self, field):
        if field.data is not None and not quiz_format.PASS_SCORE_MIN <= field.data <= quiz_format.PASS_SCORE_MAX:
            raise ValidationError(_l("及格分必须是 1 到 100 之间的整数"))

    def validate_ask(self, field):
        if field.data is not None and field.data < 1:
            raise ValidationError(_l("每次抽题数至少是 1；留空表示每次考全部题目"))


class ChoiceRow(Form):
    """One choice: its text and whether it is right. A row left blank is no choice."""

    text = StringField(_l("选项文字"), filters=[_strip],
                       validators=[Length(max=500, message=_l("选项最多 500 个字"))])
    correct = BooleanField(_l("正确"))


class QuestionForm(FlaskForm):
    kind = SelectField(_l("题型"), choices=[("single", _l("单选题（一个正确选项）")),
                                           ("multiple", _l("多选题（两个或更多正确选项）")),
                                           ("truefalse", _l("判断题（正确 / 错误）"))])
    text = TextAreaField(_l("题目"), filters=[_strip], validators=[
        InputRequired(_l("请填写题目")), Length(max=2000, message=_l("题目最多 2000 个字"))])
    choices = FieldList(FormField(ChoiceRow), label=_l("选项"), min_entries=0, max_entries=MAX_CHOICES)
    answer = RadioField(_l("判断题的正确答案"), choices=[("true", _l("正确")), ("false", _l("错误"))],
                        validators=[Optional()])
    explanation = TextAreaField(_l("解析"), filters=[_strip], validators=[
        InputRequired(_l("请填写解析：告诉学员为什么这样答")), Length(max=2000, message=_l("解析最多 2000 个字"))],
        description=_l("答题后给学员看的说明。防诈骗题请写明安全的做法：挂断、不转账、拨打 96110 核实。"))
    scenario_kind = SelectField(_l("情景（可选）"), choices=[("", _l("无：普通题目")), ("call", _l("来电（通话记录）")),
                                                          ("sms", _l("短信")), ("chat", _l("微信聊天"))],
                                description=_l("防诈骗练习：把一段通话、短信或聊天记录显示在题目上方。"))
    scenario_from = StringField(_l("来电号码或对方名字"), filters=[_strip], validators=[
        Length(max=100, message=_l("来电号码或对方名字最多 100 个字"))])
    scenario_messages = TextAreaField(_l("对话内容"), validators=[
        Length(max=4000, message=_l("对话内容最多 4000 个字"))],
        description=_l("一行一条消息，按先后顺序。我说的话以“我：”开头，其余都是对方说的。"))
    submit = SubmitField(_l("保存题目"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices_errors: list[str] = []
        self.scenario_errors: list[str] = []

    # ---- to and from a question spec (lms/quizzes/format.py) ---------------------------------------

    def fill(self, spec: dict, rows: int = CHOICE_ROWS) -> None:
        """Show a question (a spec) in the form, with blank rows to add choices."""
        self.kind.data = spec["kind"]
        self.text.data = spec["text"]
        self.explanation.data = spec["explanation"]
        if spec["kind"] == "truefalse":
            right = next((text for text, correct in spec["choices"] if correct), None)
            self.answer.data = {quiz_format.TRUE_FALSE[0]: "true", quiz_format.TRUE_FALSE[1]: "false"}.get(right)
            choices = []
        else:
            choices = spec["choices"]
        while self.choices.entries:
            self.choices.pop_entry()
        for text, correct in choices:
            self.choices.append_entry({"text": text, "correct": correct})
        self.pad_choices(rows)
        scenario = spec.get("scenario")
        if scenario:
            self.scenario_kind.data = scenario["kind"]
            self.scenario_from.data = scenario.get("from", "")
            self.scenario_messages.data = "\n".join(_message_line(m) for m in scenario["messages"])

    def pad_choices(self, rows: int = CHOICE_ROWS) -> None:
        """Blank rows after the choices written (two more, at least `rows` in all, at most MAX_CHOICES)."""
        wanted = min(MAX_CHOICES, max(rows, len(self.choices.entries) + 2))
        while len(self.choices.entries) < wanted:
            self.choices.append_entry({"text": "", "correct": False})

    def spec(self) -> dict | None:
        """The question the form describes (format.py's shape), or None with the problem put on its
        field (`choices_errors` / `scenario_errors` for the choice rows and the scenario)."""
        kind = self.kind.data
        if kind == "truefalse":
            if self.answer.data not in ("true", "false"):
                self.answer.errors.append(_l("请选择判断题的正确答案：正确还是错误"))
                return None
            choices = quiz_format.truefalse_choices(self.answer.data == "true")
        else:
            choices = []
            for number, row in enumerate(self.choices.entries, start=1):
                text, correct = row.form.text.data or "", bool(row.form.correct.data)
                if not text and correct:
                    self.choices_errors.append(_l("第 %(n)d 个选项勾了“正确”，但没有填文字", n=number))
                    return None
                if text:
                    choices.append((text, correct))
        scenario = self._scenario()
        if scenario is False:
            return None
        return {"kind": kind, "text": self.text.data or "", "explanation": self.explanation.data or "",
                "choices": choices, "scenario": scenario}

    def _scenario(self):
        lines = [line.strip() for line in (self.scenario_messages.data or "").splitlines() if line.strip()]
        if not self.scenario_kind.data:
            if lines:
                self.scenario_errors.append(_l("写了对话内容，请选择情景类型：来电、短信或微信聊天"))
                return False
            return None
        if not lines:
            self.scenario_errors.append(_l("情景至少要有一条消息：在“对话内容”里一行写一条"))
            return False
        messages = []
        for line in lines:
            who, text = "them", line
            for prefix, speaker in [(p, "me") for p in SPEAKER_ME] + [(p, "them") for p in SPEAKER_THEM]:
                if line.startswith(prefix):
                    who, text = speaker, line[len(prefix):].strip()
                    break
            if not text:
                self.scenario_errors.append(_l("“%(line)s”这一行只有说话人，没有内容", line=line))
                return False
            messages.append({"who": who, "text": text})
        return {"kind": self.scenario_kind.data, "from": self.scenario_from.data or "", "messages": messages}


def _message_line(message: dict) -> str:
    if message["who"] == "me":
        return SPEAKER_ME[0] + message["text"]
    # a line of theirs that would read as one of mine keeps an explicit speaker
    starts_like_a_speaker = message["text"].startswith(SPEAKER_ME + SPEAKER_THEM)
    return (SPEAKER_THEM[0] if starts_like_a_speaker else "") + message["text"]


class ActionForm(FlaskForm):
    """A button that changes something (move, remove, restore, enable): only its CSRF token."""
