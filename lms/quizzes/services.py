"""Taking a quiz as a real check.

Opening a quiz starts (or resumes) the learner's one open attempt, which holds its draw: which
questions (drawn at random when the quiz asks fewer than its pool holds) and the order each question's
choices are shown in. Pages name a choice by its place in that order and only the attempt maps it back,
so a position sent by a client means nothing outside its attempt. An answer is committed into the
attempt once — by 看答案 in 长辈版 or by submitting — and the first committed answer is the one graded.
A verdict is shown only for a committed answer; explanations and right answers in a strict course only
once an attempt is passed; after a failed attempt in a strict course the next one waits
QUIZ_RETRY_WAIT_SECONDS.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from lms.accounts.models import utcnow
from lms.extensions import add_once, db
from lms.quizzes import grading, stats
from lms.quizzes.models import Question, Quiz, QuizAnswer, QuizAttempt

_random = random.SystemRandom()  # one draw tells nothing about the next


class InvalidAnswers(ValueError):
    """Questions (their index on the page) without a usable answer."""

    def __init__(self, missing: list[int]):
        super().__init__("unanswered questions")
        self.missing = missing


class AttemptNotOpen(LookupError):
    """The form names no open attempt of this learner and quiz (never opened, finished, someone else's,
    or dropped because the quiz was re-imported with other questions)."""


class RetryTooSoon(Exception):
    """The last attempt failed a strict course's quiz; the next one opens at `at` (naive UTC)."""

    def __init__(self, last: QuizAttempt, at: datetime):
        super().__init__(f"next attempt at {at:%Y-%m-%d %H:%M:%S}")
        self.last, self.at = last, at


# --- attempts -------------------------------------------------------------------------------------

def _open_key(user_id: int, quiz_id: int) -> str:
    return f"quiz:{quiz_id}:user:{user_id}"


def _finished(user_id: int, quiz_id: int):
    return QuizAttempt.query.filter(QuizAttempt.user_id == user_id, QuizAttempt.quiz_id == quiz_id,
                                    QuizAttempt.finished_at.isnot(None))


def first_attempt(user_id: int, quiz_id: int) -> QuizAttempt | None:
    """The first finished attempt: the score the end-of-course bonus counts."""
    return _finished(user_id, quiz_id).order_by(QuizAttempt.finished_at, QuizAttempt.id).first()


def last_attempt(user_id: int, quiz_id: int) -> QuizAttempt | None:
    return _finished(user_id, quiz_id).order_by(QuizAttempt.finished_at.desc(), QuizAttempt.id.desc()).first()


def finished_count(user_id: int, quiz_id: int) -> int:
    return _finished(user_id, quiz_id).count()


def next_try_at(quiz: Quiz, last: QuizAttempt | None, now: datetime | None = None) -> datetime | None:
    """When the learner whose latest finished attempt is `last` may start another; None = now."""
    if last is None or last.passed or not quiz.lesson.course.strict:
        return None
    at = last.finished_at + timedelta(seconds=current_app.config["QUIZ_RETRY_WAIT_SECONDS"])
    return at if at > (now or utcnow()) else None


def _shown_order(question: Question) -> list[int]:
    order = [c.position for c in question.choices]
    if question.kind != "truefalse":  # 正确 / 错误 name themselves: their order hides nothing
        _random.shuffle(order)
    return order


def new_draw(quiz: Quiz) -> list[dict]:
    """The questions of a new attempt (all, or `ask` drawn from the pool, kept in authored order) and
    each one's choice order. Retired questions are never drawn."""
    questions = quiz.active_questions
    if quiz.ask and quiz.ask < len(questions):
        questions = sorted(_random.sample(questions, quiz.ask), key=lambda q: (q.sort_order, q.position))
    return [{"q": q.position, "c": _shown_order(q)} for q in questions]


def _draw_fits(quiz: Quiz, attempt: QuizAttempt) -> bool:
    by_position = {q.position: q for q in quiz.questions}
    for item in attempt.draw:
        question = by_position.get(item["q"])
        if question is None or question.retired or sorted(item["c"]) != sorted(c.position for c in question.choices):
            return False
    return bool(attempt.draw)


def _usable_open(attempt: QuizAttempt | None) -> QuizAttempt | None:
    """The open attempt, unless a re-import or the editor changed the questions under it (a question
    gone, retired or with other choices): then it is dropped (an open attempt never counted) and the
    learner starts afresh."""
    if attempt is None or _draw_fits(attempt.quiz, attempt):
        return attempt
    db.session.delete(attempt)
    db.session.commit()
    return None


def start_or_resume(user_id: int, quiz: Quiz, now: datetime | None = None) -> QuizAttempt:
    """The learner's open attempt, or a new one with a fresh draw; RetryTooSoon while a failed strict
    attempt's wait runs. One open attempt per learner and quiz, whatever the concurrency."""
    key = _open_key(user_id, quiz.id)
    attempt = _usable_open(QuizAttempt.query.filter_by(open_key=key).first())
    if attempt is not None:
        return attempt
    last = last_attempt(user_id, quiz.id)
    wait_until = next_try_at(quiz, last, now)
    if wait_until is not None:
        raise RetryTooSoon(last, wait_until)
    attempt = QuizAttempt(user_id=user_id, quiz_id=quiz.id, draw_json=json.dumps(new_draw(quiz)),
                          open_key=key, answers_json="{}", created_at=now or utcnow())
    # another request of this learner may open it first: then theirs
    return add_once(attempt, lambda: QuizAttempt.query.filter_by(open_key=key).one())


def attempt_for_form(user_id: int, quiz: Quiz, token: str, open_only: bool = False) -> QuizAttempt:
    """The attempt a posted form belongs to (its form_token) — this learner's, of this quiz;
    AttemptNotOpen otherwise."""
    raw_id = token.split("-", 1)[0]
    attempt = db.session.get(QuizAttempt, int(raw_id)) if raw_id.isdigit() else None
    if attempt is None or attempt.form_token != token or attempt.user_id != user_id or attempt.quiz_id != quiz.id:
        raise AttemptNotOpen(token)
    if attempt.finished:
        if open_only:
            raise AttemptNotOpen(token)
        return attempt
    if _usable_open(attempt) is None:
        raise AttemptNotOpen(token)
    return attempt


# --- answers --------------------------------------------------------------------------------------

def _question(quiz: Quiz, position: int) -> Question:
    return next(q for q in quiz.questions if q.position == position)


def _picked(question: Question, item: dict, shown: set[int]) -> set[int]:
    """Shown places → the question's own choice positions; a forged second answer to a single-choice
    or true/false question makes it unanswered."""
    picked = {item["c"][value] for value in shown if 0 <= value < len(item["c"])}
    if question.kind != "multiple" and len(picked) > 1:
        return set()
    return picked


def _committed(attempt_id: int, position: int) -> QuizAnswer | None:
    return QuizAnswer.query.filter_by(attempt_id=attempt_id, question_position=position).first()


def commit_answer(attempt: QuizAttempt, index: int, shown: set[int]) -> QuizAnswer:
    """Commit the answer to the attempt's `index`-th question; a question already answered keeps its
    first answer (also when two requests race: the database keeps one per question)."""
    if attempt.finished:
        raise AttemptNotOpen(attempt.id)
    draw = attempt.draw
    if not 0 <= index < len(draw):
        raise InvalidAnswers([index])
    item = draw[index]
    existing = _committed(attempt.id, item["q"])
    if existing is not None:
        return existing
    question = _question(attempt.quiz, item["q"])
    picked = _picked(question, item, shown)
    if not picked:
        raise InvalidAnswers([index])
    answer = QuizAnswer(attempt_id=attempt.id, question_position=item["q"], choices_json=json.dumps(sorted(picked)),
                        correct=grading.is_correct(question, picked))
    try:
        with db.session.begin_nested():
            db.session.add(answer)
        db.session.commit()
        return answer
    except IntegrityError:
        db.session.rollback()
        return _committed(attempt.id, item["q"])


def finish_attempt(attempt: QuizAttempt, shown: dict[int, set[int]], now: datetime | None = None) -> QuizAttempt:
    """Commit the answers not yet committed, then grade and close the attempt. InvalidAnswers (and
    nothing committed) when a question is left without an answer."""
    draw = attempt.draw
    quiz = attempt.quiz
    committed = {a.question_position for a in QuizAnswer.query.filter_by(attempt_id=attempt.id)}
    missing = [index for index, item in enumerate(draw) if item["q"] not in committed
               and not _picked(_question(quiz, item["q"]), item, shown.get(index, set()))]
    if missing:
        raise InvalidAnswers(missing)
    try:
        for index, item in enumerate(draw):
            if item["q"] not in committed:
                commit_answer(attempt, index, shown[index])
    except AttemptNotOpen:  # a racing submit of this attempt finished it: its grading stands
        db.session.refresh(attempt)
        return attempt
    answers = {a.question_position: a for a in QuizAnswer.query.filter_by(attempt_id=attempt.id)}
    score = grading.percent(sum(answers[item["q"]].correct for item in draw), len(draw))
    finished = db.session.execute(
        update(QuizAttempt)
        .where(QuizAttempt.id == attempt.id, QuizAttempt.finished_at.is_(None))  # a racing submit finished it
        .values(finished_at=now or utcnow(), score=score, passed=score >= quiz.pass_score, open_key=None,
                answers_json=json.dumps({str(item["q"]): sorted(answers[item["q"]].choices) for item in draw}))
    ).rowcount == 1
    if finished:  # this request finished it: it joins the statistics, once, in the same commit
        db.session.refresh(attempt)
        stats.count_submitted(attempt, [answers[item["q"]] for item in draw])
    db.session.commit()
    db.session.refresh(attempt)
    return attempt


# --- what the page shows --------------------------------------------------------------------------

@dataclass
class ShownChoice:
    value: int               # its place in this attempt's order: what the form sends
    text: str
    picked: bool
    correct: bool | None     # None unless the right answers may be shown


@dataclass
class ShownQuestion:
    index: int
    question: Question
    choices: list[ShownChoice]
    committed: bool
    verdict: bool | None     # right or wrong: only for a committed answer
    explanation: str | None  # only when it may be shown

    @property
    def number(self) -> int:
        return self.index + 1


def explanations_shown(attempt: QuizAttempt) -> bool:
    """Explanations and right answers (of committed answers): outside strict courses always; in a
    strict course once the attempt is finished and passed, so a failed one teaches nothing to retry with."""
    return not attempt.quiz.lesson.course.strict or (attempt.finished and attempt.passed)


def shown_questions(attempt: QuizAttempt, echo: dict[int, set[int]] | None = None) -> list[ShownQuestion]:
    """The attempt as its page shows it. `echo` (index → shown places) keeps a learner's uncommitted
    picks on a re-rendered form; they get no verdict."""
    reveal = explanations_shown(attempt)
    answers = {a.question_position: a for a in attempt.answers_given}
    by_position = {q.position: q for q in attempt.quiz.questions}
    shown = []
    for index, item in enumerate(attempt.draw):
        question = by_position.get(item["q"])
        if question is None:  # a finished attempt of questions re-imported away
            continue
        choices = {c.position: c for c in question.choices}
        answer = answers.get(item["q"])
        picked = answer.choices if answer else _picked(question, item, (echo or {}).get(index, set()))
        show_right = answer is not None and reveal
        shown.append(ShownQuestion(
            index=index, question=question, committed=answer is not None,
            verdict=answer.correct if answer else None,
            explanation=question.explanation if show_right else None,
            choices=[ShownChoice(value=value, text=choices[position].text, picked=position in picked,
                                 correct=choices[position].correct if show_right else None)
                     for value, position in enumerate(item["c"]) if position in choices],
        ))
    return shown
