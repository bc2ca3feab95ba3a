"""Grading: a question scores only when exactly the correct choices are picked."""
from __future__ import annotations

import json

from lms.extensions import db
from lms.quizzes.models import Quiz, QuizAttempt


class InvalidAnswers(ValueError):
    def __init__(self, missing: list[int]):
        super().__init__("unanswered questions")
        self.missing = missing


def grade(quiz: Quiz, picked: dict[int, set[int]]) -> tuple[int, dict[int, bool]]:
    """`picked` maps question position → chosen choice positions. Returns (percent, per-question result)."""
    results = {}
    for question in quiz.questions:
        correct = {c.position for c in question.choices if c.correct}
        results[question.position] = picked.get(question.position, set()) == correct
    score = round(100 * sum(results.values()) / len(results)) if results else 0
    return score, results


def submit_attempt(user_id: int, quiz: Quiz, picked: dict[int, set[int]]) -> tuple[QuizAttempt, dict[int, bool]]:
    missing = [q.position for q in quiz.questions if not picked.get(q.position)]
    if missing:
        raise InvalidAnswers(missing)
    score, results = grade(quiz, picked)
    attempt = QuizAttempt(
        user_id=user_id,
        quiz_id=quiz.id,
        score=score,
        passed=score >= quiz.pass_score,
        answers_json=json.dumps({str(k): sorted(v) for k, v in picked.items()}),
    )
    db.session.add(attempt)
    db.session.commit()
    return attempt, results
