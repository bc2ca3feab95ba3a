import json

from lms.accounts.models import utcnow
from lms.extensions import db

QUESTION_KINDS = ("single", "multiple", "truefalse")


class Quiz(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id"), nullable=False, unique=True)
    pass_score = db.Column(db.Integer, nullable=False, default=60)  # percent

    lesson = db.relationship("Lesson", back_populates="quiz")
    questions = db.relationship(
        "Question", order_by="Question.position", cascade="all, delete-orphan", back_populates="quiz"
    )


class Question(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    quiz_id = db.Column(db.Integer, db.ForeignKey("quiz.id"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False)
    kind = db.Column(db.String(20), nullable=False)
    text = db.Column(db.Text, nullable=False)
    explanation = db.Column(db.Text, nullable=False)
    # optional anti-fraud scenario shown above the question: {"kind": "call|sms|chat", "from": ..., "messages": [...]}
    scenario_json = db.Column(db.Text)

    quiz = db.relationship(Quiz, back_populates="questions")

    @property
    def scenario(self) -> dict | None:
        return json.loads(self.scenario_json) if self.scenario_json else None
    choices = db.relationship(
        "Choice", order_by="Choice.position", cascade="all, delete-orphan", back_populates="question"
    )


class Choice(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    question_id = db.Column(db.Integer, db.ForeignKey("question.id"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False)
    text = db.Column(db.Text, nullable=False)
    correct = db.Column(db.Boolean, nullable=False, default=False)

    question = db.relationship(Question, back_populates="choices")


class QuizAttempt(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    quiz_id = db.Column(db.Integer, db.ForeignKey("quiz.id"), nullable=False, index=True)
    score = db.Column(db.Integer, nullable=False)
    passed = db.Column(db.Boolean, nullable=False)
    # {"question position": [chosen choice positions]} — positions survive a re-import
    answers_json = db.Column(db.Text, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    @property
    def answers(self) -> dict:
        return json.loads(self.answers_json)
