"""Contests, their audiences, units and courses (the question pool), attempts and served questions.

Times are naive UTC (entered and shown in Asia/Shanghai). Question and choice ids are stored in an
attempt's draw without foreign keys: a course re-import may retire questions, and a finished attempt
keeps its draw (its review simply leaves out a question that no longer exists)."""
from __future__ import annotations

import json

from sqlalchemy import CheckConstraint

from lms.accounts.models import utcnow
from lms.audiences import AUDIENCE_CODES
from lms.extensions import db

SCORE_RULES = ("first", "best")


class Contest(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    description = db.Column(db.Text, nullable=False, default="")
    starts_at = db.Column(db.DateTime, nullable=False)
    ends_at = db.Column(db.DateTime, nullable=False)
    question_count = db.Column(db.Integer, nullable=False)
    seconds_per_question = db.Column(db.Integer, nullable=False)
    attempts_per_day = db.Column(db.Integer, nullable=False)
    score_rule = db.Column(db.String(10), nullable=False, default="best")
    # 学时 credited once to whoever's counted score reaches min_score; 0 = no 学时
    hours = db.Column(db.Numeric(6, 2), nullable=False, default=0)
    min_score = db.Column(db.Integer, nullable=False, default=0)
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    created_by = db.relationship("User")
    audience_rows = db.relationship("ContestAudience", cascade="all, delete-orphan", lazy="selectin")
    unit_rows = db.relationship("ContestUnit", cascade="all, delete-orphan", lazy="selectin")
    course_rows = db.relationship("ContestCourse", cascade="all, delete-orphan", lazy="selectin")

    __table_args__ = (
        CheckConstraint(f"score_rule IN {SCORE_RULES!r}", name="score_rule_known"),
        CheckConstraint("ends_at > starts_at", name="window_order"),
        CheckConstraint("question_count > 0", name="count_positive"),
        CheckConstraint("seconds_per_question > 0", name="seconds_positive"),
        CheckConstraint("attempts_per_day > 0", name="attempts_positive"),
        CheckConstraint("hours >= 0 AND hours <= 8", name="hours_range"),
        CheckConstraint("min_score >= 0 AND min_score <= 100", name="min_score_range"),
        db.Index("ix_contest_window", "starts_at", "ends_at"),
    )

    @property
    def audiences(self) -> list[str]:
        chosen = {row.audience for row in self.audience_rows}
        return [code for code in AUDIENCE_CODES if code in chosen]

    @property
    def units(self) -> list:
        return sorted((row.unit for row in self.unit_rows), key=lambda unit: unit.path)

    @property
    def course_ids(self) -> list[int]:
        return sorted(row.course_id for row in self.course_rows)


class ContestAudience(db.Model):
    contest_id = db.Column(db.Integer, db.ForeignKey("contest.id"), primary_key=True)
    audience = db.Column(db.String(20), primary_key=True)


class ContestUnit(db.Model):
    """The contest is open to the people of this unit's subtree."""

    contest_id = db.Column(db.Integer, db.ForeignKey("contest.id"), primary_key=True)
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), primary_key=True)

    unit = db.relationship("Unit", lazy="joined")


class ContestCourse(db.Model):
    """The quiz questions of this course's lessons are in the contest's pool."""

    contest_id = db.Column(db.Integer, db.ForeignKey("contest.id"), primary_key=True)
    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), primary_key=True)


class ContestAttempt(db.Model):
    """One sitting. `day` (Asia/Shanghai) and `day_seq` (1..attempts_per_day) are unique per person and
    contest, so the database itself refuses an attempt beyond the daily limit, even when two starts race;
    `open_key` allows one open attempt per person and contest."""

    id = db.Column(db.Integer, primary_key=True)
    contest_id = db.Column(db.Integer, db.ForeignKey("contest.id"), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    day = db.Column(db.Date, nullable=False)
    day_seq = db.Column(db.Integer, nullable=False)
    # [{"q": question id, "c": [choice ids in the order shown]}, ...] in the order asked
    draw_json = db.Column(db.Text, nullable=False)
    started_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    finished_at = db.Column(db.DateTime)
    right_count = db.Column(db.Integer)  # NULL while open
    score = db.Column(db.Numeric(5, 2))  # right × 100 / N; NULL while open
    time_ms = db.Column(db.Integer)  # the sum of server-measured answer times
    open_key = db.Column(db.String(64), unique=True)  # "contest:<id>:user:<uid>" while open

    contest = db.relationship(Contest)
    user = db.relationship("User")
    answers = db.relationship("ContestAnswer", cascade="all, delete-orphan", back_populates="attempt",
                              order_by="ContestAnswer.position")

    __table_args__ = (
        db.UniqueConstraint("contest_id", "user_id", "day", "day_seq", name="uq_contest_attempt_day_seq"),
        db.Index("ix_contest_attempt_contest_finished", "contest_id", "finished_at"),
    )

    @property
    def draw(self) -> list[dict]:
        return json.loads(self.draw_json)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


class ContestAnswer(db.Model):
    """A question as served (served_at: when the server sent it) and, once answered, the answer.
    The row is written when the question is first served and answered by a conditional update
    (answered_at IS NULL), so the first answer is the one that counts."""

    id = db.Column(db.Integer, primary_key=True)
    attempt_id = db.Column(db.Integer, db.ForeignKey("contest_attempt.id"), nullable=False)
    position = db.Column(db.Integer, nullable=False)  # place in the draw
    question_id = db.Column(db.Integer, nullable=False)
    served_at = db.Column(db.DateTime, nullable=False)
    answered_at = db.Column(db.DateTime)
    choices_json = db.Column(db.Text)  # chosen choice ids
    correct = db.Column(db.Boolean, nullable=False, default=False)
    late = db.Column(db.Boolean, nullable=False, default=False)  # after the time: scores zero
    elapsed_ms = db.Column(db.Integer)

    attempt = db.relationship(ContestAttempt, back_populates="answers")

    __table_args__ = (db.UniqueConstraint("attempt_id", "position", name="uq_contest_answer_attempt_position"),)

    @property
    def chosen(self) -> set[int]:
        return set(json.loads(self.choices_json)) if self.choices_json else set()
