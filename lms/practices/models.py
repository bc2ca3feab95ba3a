import json

from lms.accounts.models import utcnow
from lms.extensions import db


class Practice(db.Model):
    """A lesson's practice as its package gives it (the normalised document, lms/practices/format.py).
    One row per lesson: dropped from the package it is retired, not deleted (progress points at it)."""

    id = db.Column(db.Integer, primary_key=True)
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id"), nullable=False, unique=True)
    title = db.Column(db.String(200), nullable=False)
    document_json = db.Column(db.Text, nullable=False)
    digest = db.Column(db.String(64), nullable=False)  # of the document: changed steps restart unfinished learners
    retired = db.Column(db.Boolean, nullable=False, default=False)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    lesson = db.relationship("Lesson")

    @property
    def document(self) -> dict:
        return json.loads(self.document_json)

    @property
    def steps(self) -> list[dict]:
        return self.document["steps"]


class PracticeProgress(db.Model):
    """One learner's way through one practice: the next step to do (every earlier one was done in
    order, judged by the server), wrong taps on it (the hint comes after two) and when it was finished."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    practice_id = db.Column(db.Integer, db.ForeignKey("practice.id"), nullable=False)
    digest = db.Column(db.String(64), nullable=False)  # the practice's steps this walk was on
    step = db.Column(db.Integer, nullable=False, default=0)
    wrong = db.Column(db.Integer, nullable=False, default=0)
    finished_at = db.Column(db.DateTime)  # once set, never cleared: practising again does not undo it
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    version = db.Column(db.Integer, nullable=False, default=1)

    practice = db.relationship(Practice)

    __table_args__ = (db.UniqueConstraint("user_id", "practice_id", name="uq_practice_progress_user_practice"),)
    # two taps at once (a double tap, two tablets) cannot both move the step
    __mapper_args__ = {"version_id_col": version}
