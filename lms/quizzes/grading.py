"""Grading: a question scores only when exactly the correct choices are picked."""
from __future__ import annotations

from lms.quizzes.models import Question


def correct_choices(question: Question) -> set[int]:
    return {c.position for c in question.choices if c.correct}


def is_correct(question: Question, picked: set[int]) -> bool:
    """`picked` holds choice positions in the question's own (canonical) order."""
    return picked == correct_choices(question)


def percent(right: int, asked: int) -> int:
    return round(100 * right / asked) if asked else 0
