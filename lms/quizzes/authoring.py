"""Writing quizzes — the editor's services (no HTTP) — and per-question statistics.

A quiz is what docs/content-format.md describes (lms/quizzes/format.py): a pass mark, optionally how
many questions an attempt draws (`ask`) from its pool, and single choice, multiple choice and true/false
questions, each with an explanation and optionally an anti-fraud scenario.

Editing never rewrites a past attempt. Attempts store their draw and answers by a question's `position`
and its choices' positions (lms/quizzes/services.py), so:
- a question keeps its `position` for ever; the editor orders questions by `sort_order`;
- a question that learners have answered is never changed or deleted: saving a change retires it and
  writes the new version as a new question (a new position), and removing it retires it. A question
  nobody answered is changed in place or deleted;
- an open attempt that drew a question which then changed is dropped when next opened (it never
  counted) and the learner starts afresh with the current questions.

Every change is checked whole before anything is written (QuizEditError names the field) and writes an
audit row in the same transaction. `write_questions` is the same rule for a package's re-import.
"""
from __future__ import annotations

import json

from flask_babel import gettext as _
from sqlalchemy import exists, func, update
from sqlalchemy.exc import IntegrityError

from lms.courses.models import Lesson
from lms.extensions import db
from lms.quizzes import format as quiz_format, stats
from lms.quizzes.models import QUESTION_KINDS, Choice, Question, Quiz, QuizAnswer, QuizAttempt
from lms.records.audit import audit


class QuizEditError(ValueError):
    """A change refused, naming the form field it is about ("pass_score", "ask", "kind", "text",
    "choices", "answer", "explanation", "scenario", or "quiz" for the quiz as a whole)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


def kind_names() -> dict[str, str]:
    return {"single": _("单选题"), "multiple": _("多选题"), "truefalse": _("判断题")}


# ---- reading ------------------------------------------------------------------------------------

def quiz_of(lesson: Lesson) -> Quiz | None:
    """The lesson's quiz, also when it is not (or no longer) asked (`Lesson.quiz` skips those)."""
    return Quiz.query.filter_by(lesson_id=lesson.id).first()


def answered(question: Question) -> bool:
    """Has any learner committed an answer to this question — in a submitted attempt (counted in the
    statistics), in one still open (长辈版 看答案), or in an attempt from before answers were stored one
    by one (no draw; it may have answered any question of the quiz)?"""
    if stats.submitted_answers(question.quiz_id, question.position):
        return True
    in_open = (db.session.query(QuizAnswer.id).join(QuizAttempt, QuizAttempt.id == QuizAnswer.attempt_id)
               .filter(QuizAttempt.quiz_id == question.quiz_id, QuizAttempt.finished_at.is_(None),
                       QuizAnswer.question_position == question.position).exists())
    legacy = exists().where(QuizAttempt.quiz_id == question.quiz_id, QuizAttempt.draw_json.is_(None))
    return db.session.query(in_open).scalar() or db.session.query(legacy).scalar()


# ---- checking -----------------------------------------------------------------------------------

def check_question(spec: dict) -> None:
    """QuizEditError for the first thing wrong with a question spec (format.py's shape)."""
    if spec.get("kind") not in QUESTION_KINDS:
        raise QuizEditError("kind", _("请选择题型：单选题、多选题或判断题"))
    if not (spec.get("text") or "").strip():
        raise QuizEditError("text", _("请填写题目"))
    choices = spec.get("choices") or []
    if any(not (text or "").strip() for text, _correct in choices):
        raise QuizEditError("choices", _("选项的文字不能为空"))
    problem = quiz_format.choices_problem(spec["kind"], choices)
    if problem:
        raise QuizEditError("choices", problem)
    if spec["kind"] == "truefalse" and len(choices) != 2:
        raise QuizEditError("answer", _("请选择判断题的正确答案：正确还是错误"))
    if not (spec.get("explanation") or "").strip():
        raise QuizEditError("explanation", _("请填写解析：告诉学员为什么这样答"))
    scenario = spec.get("scenario")
    if scenario is not None:
        if scenario.get("kind") not in quiz_format.SCENARIO_KINDS:
            raise QuizEditError("scenario", _("请选择情景类型：来电、短信或微信聊天"))
        messages = scenario.get("messages") or []
        if not messages:
            raise QuizEditError("scenario", _("情景至少要有一条消息"))
        if any(m.get("who") not in quiz_format.SCENARIO_SPEAKERS or not (m.get("text") or "").strip()
               for m in messages):
            raise QuizEditError("scenario", _("情景里每条消息都要有文字"))


def _check_settings(pass_score, ask, pool: int) -> None:
    if not isinstance(pass_score, int) or not quiz_format.PASS_SCORE_MIN <= pass_score <= quiz_format.PASS_SCORE_MAX:
        raise QuizEditError("pass_score", _("及格分必须是 %(lo)d 到 %(hi)d 之间的整数",
                                            lo=quiz_format.PASS_SCORE_MIN, hi=quiz_format.PASS_SCORE_MAX))
    if ask is not None and (not isinstance(ask, int) or ask < 1):
        raise QuizEditError("ask", _("每次抽题数必须是正整数；留空表示每次考全部题目"))
    if ask is not None and ask > pool:
        raise QuizEditError("ask", _("每次抽题数（%(ask)d）不能多于题库里的题数（现有 %(n)d 道）：请先添加题目，或把抽题数改小",
                                     ask=ask, n=pool))


def _setting_text(ask) -> str:
    return _("全部") if ask is None else str(ask)


# ---- the quiz -----------------------------------------------------------------------------------

def save_settings(actor, lesson: Lesson, pass_score: int, ask: int | None) -> Quiz:
    """Create the lesson's quiz (not yet asked: it has no question) or change its pass mark and how
    many questions an attempt draws. Finished attempts keep their score and verdict."""
    quiz = quiz_of(lesson)
    _check_settings(pass_score, ask, len(quiz.active_questions) if quiz else 0)
    if quiz is None:
        quiz = Quiz(lesson_id=lesson.id, pass_score=pass_score, ask=ask, retired=True)
        db.session.add(quiz)
        audit(actor, "quiz.create", quiz, _("《%(lesson)s》的测验（未启用）：及格分 %(p)d，每次抽题 %(ask)s",
                                           lesson=lesson.title, p=pass_score, ask=_setting_text(ask)))
    else:
        changes = []
        if quiz.pass_score != pass_score:
            changes.append(_("及格分 %(old)d → %(new)d", old=quiz.pass_score, new=pass_score))
        if quiz.ask != ask:
            changes.append(_("每次抽题 %(old)s → %(new)s", old=_setting_text(quiz.ask), new=_setting_text(ask)))
        if not changes:
            return quiz
        quiz.pass_score, quiz.ask = pass_score, ask
        audit(actor, "quiz.update", quiz, "；".join(changes))
    db.session.commit()
    return quiz


def set_enabled(actor, quiz: Quiz, enabled: bool) -> None:
    """Start or stop asking the quiz in its lesson. Attempts stay either way."""
    if enabled == (not quiz.retired):
        return
    if enabled:
        pool = len(quiz.active_questions)
        if pool == 0:
            raise QuizEditError("quiz", _("测验还没有题目：至少添加一道题才能启用"))
        _check_settings(quiz.pass_score, quiz.ask, pool)
    quiz.retired = not enabled
    audit(actor, "quiz.enable" if enabled else "quiz.disable", quiz,
          _("《%(lesson)s》的测验", lesson=quiz.lesson.title))
    db.session.commit()


# ---- questions ----------------------------------------------------------------------------------

def _build_question(spec: dict, position: int, sort_order: int) -> Question:
    scenario = spec.get("scenario")
    return Question(position=position, sort_order=sort_order, kind=spec["kind"], text=spec["text"],
                    explanation=spec["explanation"],
                    scenario_json=json.dumps(scenario, ensure_ascii=False) if scenario else None,
                    choices=[Choice(position=n, text=text, correct=correct)
                             for n, (text, correct) in enumerate(spec["choices"])])


def _next_position(quiz: Quiz) -> int:
    """A position no question of this quiz ever had (retired ones included)."""
    highest = db.session.query(func.max(Question.position)).filter(Question.quiz_id == quiz.id).scalar()
    return 0 if highest is None else highest + 1


def _renumber(quiz: Quiz) -> None:
    for order, question in enumerate(sorted(quiz.active_questions, key=lambda q: (q.sort_order, q.position))):
        question.sort_order = order


def _summary(spec: dict) -> str:
    text = spec["text"].strip().replace("\n", " ")
    return f"{kind_names()[spec['kind']]}：{text[:40]}{'…' if len(text) > 40 else ''}"


def _commit_new_question(actor, quiz: Quiz, spec: dict, sort_order: int, action: str, detail: str,
                         before=None) -> Question:
    """Write `spec` as a new question of `quiz` with its audit row, in one commit (after `before()`, a
    change that must go with it). A racing editor that took the same position first makes the UNIQUE
    (quiz, position) refuse the flush; then it is all tried again with the next position."""
    for _attempt in range(3):
        try:
            if before is not None:
                before()
            question = _build_question(spec, _next_position(quiz), sort_order)
            quiz.questions.append(question)
            audit(actor, action, question, detail)  # flushes: the position is claimed here
            db.session.commit()
            return question
        except IntegrityError:
            db.session.rollback()
    raise QuizEditError("quiz", _("有人正在同时修改这个测验，请刷新页面后再试"))


def add_question(actor, quiz: Quiz, spec: dict) -> Question:
    check_question(spec)
    spec = _normalised(spec)
    return _commit_new_question(actor, quiz, spec, len(quiz.active_questions), "question.create", _summary(spec))


def _changed_parts(old: dict, new: dict) -> str:
    names = {"kind": _("题型"), "text": _("题目"), "choices": _("选项"), "explanation": _("解析"), "scenario": _("情景")}
    return "、".join(str(label) for key, label in names.items() if old.get(key) != new.get(key))


def _normalised(spec: dict) -> dict:
    return {"kind": spec["kind"], "text": spec["text"], "explanation": spec["explanation"],
            "choices": [(text, bool(correct)) for text, correct in spec["choices"]],
            "scenario": spec.get("scenario") or None}


def update_question(actor, question: Question, spec: dict) -> Question:
    """Save a changed question; returns the question now asked in its place (a new one when learners had
    answered the old, which is retired and kept for their attempts)."""
    check_question(spec)
    if question.retired:
        raise QuizEditError("quiz", _("这道题已经停用（可能刚被别人修改过）：请回到测验页面重新打开"))
    spec = _normalised(spec)
    old = quiz_format.question_spec(question)
    if old == spec:
        return question
    changed = _changed_parts(old, spec)
    if not answered(question):
        question.kind, question.text, question.explanation = spec["kind"], spec["text"], spec["explanation"]
        question.scenario_json = json.dumps(spec["scenario"], ensure_ascii=False) if spec["scenario"] else None
        question.choices = [Choice(position=n, text=text, correct=correct)
                            for n, (text, correct) in enumerate(spec["choices"])]
        audit(actor, "question.update", question, _("改了%(parts)s", parts=changed))
        db.session.commit()
        return question
    quiz, old_id, sort_order = question.quiz, question.id, question.sort_order

    def retire_old():
        # one editor wins: the answered version is retired only while it is still the one asked
        if db.session.execute(update(Question).where(Question.id == old_id, Question.retired.is_(False))
                              .values(retired=True)).rowcount != 1:
            db.session.rollback()
            raise QuizEditError("quiz", _("这道题刚被别人修改过：请回到测验页面重新打开"))
        db.session.expire(question, ["retired"])

    return _commit_new_question(
        actor, quiz, spec, sort_order, "question.revise",
        _("已有学员答过 question:%(old)d，旧版本停用并保留；新版本改了%(parts)s", old=old_id, parts=changed),
        before=retire_old)


def move_question(actor, question: Question, offset: int) -> bool:
    """Move a question up (-1) or down (+1) among the questions asked; False at either end."""
    quiz = question.quiz
    order = sorted(quiz.active_questions, key=lambda q: (q.sort_order, q.position))
    if question not in order:
        return False
    index = order.index(question)
    target = index + offset
    if offset not in (-1, 1) or not 0 <= target < len(order):
        return False
    order[index], order[target] = order[target], order[index]
    for n, item in enumerate(order):
        item.sort_order = n
    audit(actor, "question.move", question, _("第 %(a)d 题 → 第 %(b)d 题", a=index + 1, b=target + 1))
    db.session.commit()
    return True


def retire_question(actor, question: Question) -> str:
    """Stop asking a question: retired (kept) when learners answered it, else deleted. Returns
    "retired" or "deleted". Refused when the quiz would be left unable to draw an attempt."""
    quiz = question.quiz
    if question.retired:
        return "retired"
    remaining = len(quiz.active_questions) - 1
    if remaining == 0 and not quiz.retired:
        raise QuizEditError("quiz", _("这是测验里最后一道题：启用中的测验至少要有一道题。要去掉整个测验，请先停用测验"))
    if quiz.ask and quiz.ask > remaining:
        raise QuizEditError("ask", _("每次抽 %(ask)d 道题，去掉这道后题库只剩 %(n)d 道：请先把每次抽题数改小",
                                     ask=quiz.ask, n=remaining))
    summary = _summary(quiz_format.question_spec(question))
    if answered(question):
        question.retired = True
        outcome = "retired"
        audit(actor, "question.retire", question, _("已有学员作答，停用并保留：%(q)s", q=summary))
    else:
        audit(actor, "question.delete", question, _("没有学员作答，已删除：%(q)s", q=summary))
        quiz.questions.remove(question)
        outcome = "deleted"
    _renumber(quiz)
    db.session.commit()
    return outcome


def restore_question(actor, question: Question) -> None:
    """Ask a retired question again, at the end of the quiz."""
    if not question.retired:
        return
    quiz = question.quiz
    question.retired = False
    question.sort_order = len(quiz.active_questions)
    audit(actor, "question.restore", question, _summary(quiz_format.question_spec(question)))
    db.session.commit()


def write_questions(quiz: Quiz, specs: list[dict]) -> None:
    """Make `quiz` ask exactly `specs` (format.py's shape), in that order — what a package's re-import
    does. A question whose content is unchanged stays the same question (a retired one comes back);
    questions no longer wanted are retired when learners answered them, else deleted; new or changed
    ones are new questions. No commit: the caller's transaction writes it all or nothing."""
    wanted = [_normalised(spec) for spec in specs]
    candidates = quiz.active_questions + [q for q in quiz.questions if q.retired]
    matched: list[Question | None] = []
    for spec in wanted:
        match = next((q for q in candidates if quiz_format.question_spec(q) == spec), None)
        if match is not None:
            candidates.remove(match)
        matched.append(match)
    position = max((q.position for q in quiz.questions), default=-1) + 1
    for leftover in candidates:
        if leftover.retired:
            continue
        if leftover.id is not None and answered(leftover):
            leftover.retired = True
        else:
            quiz.questions.remove(leftover)
    for order, (spec, question) in enumerate(zip(wanted, matched)):
        if question is None:
            quiz.questions.append(_build_question(spec, position, order))
            position += 1
        else:
            question.retired, question.sort_order = False, order
