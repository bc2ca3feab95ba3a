"""The self-assessment's item pool, sittings and answers.

An item's identity is its `key` (k001, written in the package); `version` counts changes to it. An item
that sittings have answered is never changed in place: a re-import with other wording retires that row
and writes the new version beside it, so an old sitting always shows (and was scored on) what it
answered. An item nobody answered is changed in place.
"""
import hashlib
import json

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint

from lms.accounts.models import utcnow
from lms.extensions import db

DIMENSIONS = ("knowledge", "methods", "thinking", "application")
# here rather than in pool.py (which imports the package importer and yaml) so that every page, whose
# templates get them from lms/assessment/routes.py, does not load those (issue 12, start-up)
DIMENSION_LABELS = {"knowledge": _l("科学知识"), "methods": _l("科学方法"), "thinking": _l("科学思维与精神"),
                    "application": _l("解决问题的能力")}


class AssessmentPool(db.Model):
    """The imported assessment.yaml: the rules a new sitting copies (draw, weights, minutes …)."""

    id = db.Column(db.Integer, primary_key=True)
    package_id = db.Column(db.String(64), nullable=False, unique=True)
    title = db.Column(db.String(200), nullable=False)
    minutes = db.Column(db.Integer, nullable=False)
    threshold = db.Column(db.Integer, nullable=False)
    retake_days = db.Column(db.Integer, nullable=False)
    # {"draw": {dimension: n}, "weights": {dimension: points}}
    rules_json = db.Column(db.Text, nullable=False)
    content_hash = db.Column(db.String(64), nullable=False, default="")
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    @property
    def rules(self) -> dict:
        return json.loads(self.rules_json)


class AssessmentItem(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    pool_id = db.Column(db.Integer, db.ForeignKey("assessment_pool.id"), nullable=False)
    key = db.Column(db.String(32), nullable=False)
    version = db.Column(db.Integer, nullable=False, default=1)
    # removed from the package, or replaced by a newer version: never drawn again, kept for old sittings
    retired = db.Column(db.Boolean, nullable=False, default=False)
    dimension = db.Column(db.String(20), nullable=False)
    benchmark = db.Column(db.String(100), nullable=False)
    difficulty = db.Column(db.Integer, nullable=False)
    kind = db.Column(db.String(20), nullable=False)
    text = db.Column(db.Text, nullable=False)
    explanation = db.Column(db.Text, nullable=False)
    choices_json = db.Column(db.Text, nullable=False)  # [[text, correct], ...] in the written order
    courses_json = db.Column(db.Text, nullable=False, default="[]")  # course slugs that help
    spec_hash = db.Column(db.String(64), nullable=False)  # of everything above: what a re-import compares

    __table_args__ = (
        db.UniqueConstraint("pool_id", "key", "version", name="uq_assessment_item_version"),
        CheckConstraint("dimension IN ('knowledge', 'methods', 'thinking', 'application')", name="dimension_known"),
        CheckConstraint("difficulty BETWEEN 1 AND 3", name="difficulty_range"),
    )

    @property
    def choices(self) -> list[tuple[str, bool]]:
        return [(text, bool(correct)) for text, correct in json.loads(self.choices_json)]

    @property
    def courses(self) -> list[str]:
        return json.loads(self.courses_json)


class AssessmentSitting(db.Model):
    """One sitting: its draw and rules fixed at the start, its deadline from the server's clock.

    Open while finished_at is NULL; `open_key` ("assessment:user:<id>") is unique while open, so a learner
    has at most one open sitting whatever the concurrency. The scores are written once, when it finishes.
    `unit_id` and `audience` are the learner's when they finished: the report counts a sitting where its
    person stood when assessed."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    pool_id = db.Column(db.Integer, db.ForeignKey("assessment_pool.id"), nullable=False)
    started_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    deadline_at = db.Column(db.DateTime, nullable=False)
    finished_at = db.Column(db.DateTime, index=True)
    open_key = db.Column(db.String(64), unique=True)
    # [{"i": item row id, "c": [choice positions in the order shown]}, ...] in the order shown
    draw_json = db.Column(db.Text, nullable=False)
    rules_json = db.Column(db.Text, nullable=False)  # the pool's rules when it started (+ threshold)
    # set when finished: {"knowledge": "40.00", ...} and the total out of 100
    scores_json = db.Column(db.Text)
    total = db.Column(db.Numeric(5, 2))
    qualified = db.Column(db.Boolean)  # total above the threshold: 具备科学素质
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), index=True)
    audience = db.Column(db.String(20))

    user = db.relationship("User")
    answers = db.relationship("AssessmentAnswer", cascade="all, delete-orphan", back_populates="sitting",
                              order_by="AssessmentAnswer.id")

    @property
    def draw(self) -> list[dict]:
        return json.loads(self.draw_json)

    @property
    def rules(self) -> dict:
        return json.loads(self.rules_json)

    @property
    def scores(self) -> dict:
        return json.loads(self.scores_json) if self.scores_json else {}

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def form_token(self) -> str:
        """What the page names its sitting by: the id and a digest of its draw, so a form names one sitting."""
        return f"{self.id}-{hashlib.sha256(self.draw_json.encode()).hexdigest()[:16]}"


class AssessmentAnswer(db.Model):
    """One committed answer; unique per sitting and item, so the first answer stays."""

    id = db.Column(db.Integer, primary_key=True)
    sitting_id = db.Column(db.Integer, db.ForeignKey("assessment_sitting.id"), nullable=False)
    item_id = db.Column(db.Integer, db.ForeignKey("assessment_item.id"), nullable=False)
    choices_json = db.Column(db.Text, nullable=False)  # the item's own choice positions picked
    correct = db.Column(db.Boolean, nullable=False)
    answered_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    sitting = db.relationship(AssessmentSitting, back_populates="answers")
    item = db.relationship(AssessmentItem)

    __table_args__ = (db.UniqueConstraint("sitting_id", "item_id", name="uq_assessment_answer_item"),)

    @property
    def picked(self) -> set[int]:
        return set(json.loads(self.choices_json))
