"""Per-question statistics of a quiz: attempts, share right, how often each choice was picked and the
most chosen wrong choice, weakest questions first — so authors can mend weak questions.

Counted as attempts are submitted, not recounted per page view. When `services.finish_attempt`
finishes an attempt (one guarded UPDATE, so once), `count_submitted` adds its score to ScoreTally (one
row per quiz, score and pass) and its answers to AnswerTally — one row per (quiz, question position,
exact choices picked, right or not) — in the same commit. A
question position names one version of a question for ever (lms/quizzes/authoring.py), so a row never
needs correcting, and finished attempts are never deleted. The page then reads a handful of rows per
question whatever the number of attempts; `tally_from_answers` is the same figure as one aggregate over
the committed answers (what the migration filled the table from, and what tests check it against) —
about 4.5 s at 100,000 attempts on SQLite, against 2 ms for the tally (scripts/bench/quiz_stats.py).

Answers committed in an attempt still open (长辈版 看答案) count once the attempt is submitted; an open
attempt dropped because its questions changed never counts.
"""
from __future__ import annotations

import importlib
import json
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import case, func
from sqlalchemy.orm import selectinload

from lms.extensions import db
from lms.quizzes.models import AnswerTally, Choice, Question, Quiz, QuizAnswer, QuizAttempt, ScoreTally

WEAK_SHARE = 0.5  # fewer than half right: the question (or the lesson's teaching of it) needs mending


def _add(model, key: dict, column: str, n: int) -> None:
    """UPSERT: the row of `model` with this primary key gets `n` more in `column`."""
    # imported here: SQLAlchemy's PostgreSQL dialect is ~25 ms of start-up (issue 12)
    module = {"sqlite": "sqlalchemy.dialects.sqlite", "postgresql": "sqlalchemy.dialects.postgresql"}[
        db.session.get_bind().dialect.name]
    insert = importlib.import_module(module).insert
    statement = insert(model).values(**key, **{column: n})
    db.session.execute(statement.on_conflict_do_update(index_elements=list(key),
                                                       set_={column: getattr(model, column) + n}))


def count_submitted(attempt: QuizAttempt, answers: list[QuizAnswer]) -> None:
    """Add a just-finished attempt (its score) and its answers to the tallies. No commit: the caller's
    commit finishing the attempt writes both. Rows are upserted in key order, so concurrent submits on
    PostgreSQL lock them in the same order and cannot deadlock."""
    _add(ScoreTally, {"quiz_id": attempt.quiz_id, "score": attempt.score, "passed": bool(attempt.passed)},
         "attempts", 1)
    counted = Counter((a.question_position, a.choices_json, bool(a.correct)) for a in answers)
    for (position, choices, correct), n in sorted(counted.items()):
        _add(AnswerTally, {"quiz_id": attempt.quiz_id, "question_position": position, "choices_json": choices,
                           "correct": correct}, "answers", n)


def tally_from_answers(quiz_id: int | None = None):
    """The tally recomputed: committed answers of finished attempts grouped by the tally's key (one
    aggregate query; all quizzes when `quiz_id` is None)."""
    query = (db.session.query(QuizAttempt.quiz_id, QuizAnswer.question_position, QuizAnswer.choices_json,
                              QuizAnswer.correct, func.count())
             .join(QuizAttempt, QuizAttempt.id == QuizAnswer.attempt_id)
             .filter(QuizAttempt.finished_at.isnot(None))
             .group_by(QuizAttempt.quiz_id, QuizAnswer.question_position, QuizAnswer.choices_json, QuizAnswer.correct))
    if quiz_id is not None:
        query = query.filter(QuizAttempt.quiz_id == quiz_id)
    return query


def scores_from_attempts(quiz_id: int | None = None):
    """The score tally recomputed from the finished attempts (one aggregate query)."""
    query = (db.session.query(QuizAttempt.quiz_id, QuizAttempt.score, QuizAttempt.passed, func.count())
             .filter(QuizAttempt.finished_at.isnot(None))
             .group_by(QuizAttempt.quiz_id, QuizAttempt.score, QuizAttempt.passed))
    if quiz_id is not None:
        query = query.filter(QuizAttempt.quiz_id == quiz_id)
    return query


def submitted_answers(quiz_id: int, position: int) -> int:
    return db.session.query(func.coalesce(func.sum(AnswerTally.answers), 0)).filter(
        AnswerTally.quiz_id == quiz_id, AnswerTally.question_position == position).scalar()


def answer_counts(quiz: Quiz) -> dict[int, int]:
    """Question position → submitted answers."""
    rows = (db.session.query(AnswerTally.question_position, func.sum(AnswerTally.answers))
            .filter(AnswerTally.quiz_id == quiz.id).group_by(AnswerTally.question_position))
    return {position: int(n) for position, n in rows}


@dataclass
class ChoiceTally:
    choice: Choice
    picked: int      # answers that ticked this choice
    share: float     # of all answers to the question


@dataclass
class QuestionStats:
    question: Question
    number: int | None   # its place among the questions asked; None when retired
    answers: int = 0
    right: int = 0
    tallies: list[ChoiceTally] = field(default_factory=list)

    @property
    def share_right(self) -> float | None:
        return self.right / self.answers if self.answers else None

    @property
    def weak(self) -> bool:
        return self.answers > 0 and self.share_right < WEAK_SHARE

    @property
    def top_wrong(self) -> ChoiceTally | None:
        """The wrong choice picked most often (None when no wrong choice was ever picked)."""
        wrong = [t for t in self.tallies if not t.choice.correct and t.picked]
        return max(wrong, key=lambda t: (t.picked, -t.choice.position)) if wrong else None


@dataclass
class QuizStats:
    attempts: int          # submitted attempts
    passed: int
    average: float | None  # mean score of submitted attempts
    questions: list[QuestionStats]

    @property
    def answers(self) -> int:
        return sum(q.answers for q in self.questions)


def quiz_stats(quiz: Quiz) -> QuizStats:
    """The quiz's figures and its questions' — the ones asked and retired ones that were answered —
    weakest first (lowest share right, then most answered), then those nobody answered yet. Four
    queries whatever the number of attempts: the two tallies, the questions, their choices."""
    attempts, passed, score_total = (
        db.session.query(func.coalesce(func.sum(ScoreTally.attempts), 0),
                         func.coalesce(func.sum(case((ScoreTally.passed, ScoreTally.attempts), else_=0)), 0),
                         func.coalesce(func.sum(ScoreTally.score * ScoreTally.attempts), 0))
        .filter(ScoreTally.quiz_id == quiz.id).one())
    questions = (Question.query.options(selectinload(Question.choices)).filter(Question.quiz_id == quiz.id)
                 .order_by(Question.sort_order, Question.position).all())
    numbers = {q.position: n for n, q in enumerate((q for q in questions if not q.retired), start=1)}
    by_position = {q.position: QuestionStats(q, numbers.get(q.position)) for q in questions}
    picks: dict[int, Counter] = {}
    for row in AnswerTally.query.filter(AnswerTally.quiz_id == quiz.id):
        stats = by_position.get(row.question_position)
        if stats is None:
            continue
        stats.answers += row.answers
        stats.right += row.answers if row.correct else 0
        for choice in json.loads(row.choices_json):
            picks.setdefault(row.question_position, Counter())[choice] += row.answers
    for position, stats in by_position.items():
        counted = picks.get(position, Counter())
        stats.tallies = [ChoiceTally(c, counted[c.position], counted[c.position] / stats.answers if stats.answers else 0.0)
                         for c in stats.question.choices]
    shown = [s for s in by_position.values() if s.number is not None or s.answers]
    shown.sort(key=lambda s: (s.answers == 0, s.share_right if s.answers else 0, -s.answers,
                              s.number if s.number is not None else 10 ** 6))
    return QuizStats(attempts=int(attempts), passed=int(passed), average=score_total / attempts if attempts else None,
                     questions=shown)
