import hashlib
import json

from lms.accounts.models import utcnow
from lms.extensions import db

QUESTION_KINDS = ("single", "multiple", "truefalse")


class Quiz(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id"), nullable=False, unique=True)
    pass_score = db.Column(db.Integer, nullable=False, default=60)  # percent
    # dropped from its package but kept for its attempts; Lesson.quiz skips it (lms/courses/importer.py)
    retired = db.Column(db.Boolean, nullable=False, default=False)
    # how many questions an attempt draws at random from the pool (the questions); None = all of them
    ask = db.Column(db.Integer)

    lesson = db.relationship("Lesson", back_populates="quiz")
    # every question ever written, retired ones too (finished attempts show the version they answered)
    questions = db.relationship(
        "Question", order_by=lambda: [Question.sort_order, Question.position], cascade="all, delete-orphan",
        back_populates="quiz",
    )

    @property
    def active_questions(self) -> list["Question"]:
        """The questions an attempt draws from (the pool), in the order authored."""
        return [q for q in self.questions if not q.retired]


def _same_as_position(context):
    return context.get_current_parameters()["position"]


class Question(db.Model):
    """`position` is the question's identity within its quiz: attempts store their draw and answers by
    it, so it never changes and is never reused. Changing a question that learners have answered
    retires it and writes the new wording as a new question (lms/quizzes/authoring.py), so a past
    attempt always shows, and its statistics count, the version that was answered."""

    id = db.Column(db.Integer, primary_key=True)
    quiz_id = db.Column(db.Integer, db.ForeignKey("quiz.id"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False)
    # where the question stands in the quiz (the editor reorders this, never `position`)
    sort_order = db.Column(db.Integer, nullable=False, default=_same_as_position)
    # no longer asked; kept because attempts answered it (lms/quizzes/authoring.py)
    retired = db.Column(db.Boolean, nullable=False, default=False)
    kind = db.Column(db.String(20), nullable=False)
    text = db.Column(db.Text, nullable=False)
    explanation = db.Column(db.Text, nullable=False)
    # optional anti-fraud scenario shown above the question: {"kind": "call|sms|chat", "from": ..., "messages": [...]}
    scenario_json = db.Column(db.Text)

    quiz = db.relationship(Quiz, back_populates="questions")

    @property
    def scenario(self) -> dict | None:
        return json.loads(self.scenario_json) if self.scenario_json else None
    # loaded with their questions (one query for all of them): every page that shows a question shows its choices
    choices = db.relationship(
        "Choice", order_by="Choice.position", cascade="all, delete-orphan", back_populates="question", lazy="selectin"
    )

    __table_args__ = (db.UniqueConstraint("quiz_id", "position", name="uq_question_quiz_position"),)


class Choice(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    question_id = db.Column(db.Integer, db.ForeignKey("question.id"), nullable=False, index=True)
    position = db.Column(db.Integer, nullable=False)
    text = db.Column(db.Text, nullable=False)
    correct = db.Column(db.Boolean, nullable=False, default=False)

    question = db.relationship(Question, back_populates="choices")


class QuizAttempt(db.Model):
    """One sitting of a quiz. Opening the quiz starts it with its own draw (which questions, each
    question's choice order); answers are committed into it one by one (QuizAnswer) and the first
    committed answer is the one that counts; submitting finishes and grades it.

    An open attempt has finished_at NULL, score NULL and passed False, so `passed=True` keeps meaning
    "finished and passed" and aggregates over `score` skip it.
    """

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    quiz_id = db.Column(db.Integer, db.ForeignKey("quiz.id"), nullable=False, index=True)
    score = db.Column(db.Integer)  # percent; NULL while open
    passed = db.Column(db.Boolean, nullable=False, default=False)
    # {"question position": [chosen choice positions]} — positions survive a re-import; set when finished
    answers_json = db.Column(db.Text, nullable=False, default="{}")
    # [{"q": question position, "c": [choice positions in the order shown]}, ...] in the order shown
    draw_json = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    finished_at = db.Column(db.DateTime)
    # "quiz:<id>:user:<id>" while open, NULL once finished: the database allows one open attempt each
    open_key = db.Column(db.String(64), unique=True)

    quiz = db.relationship(Quiz)
    answers_given = db.relationship("QuizAnswer", cascade="all, delete-orphan", back_populates="attempt",
                                    order_by="QuizAnswer.id")

    @property
    def answers(self) -> dict:
        return json.loads(self.answers_json)

    @property
    def draw(self) -> list[dict]:
        return json.loads(self.draw_json) if self.draw_json else []

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def form_token(self) -> str:
        """What a quiz form names its attempt by: the id and its draw, so a form outlives neither (an id
        SQLite reuses after a dropped attempt names another draw)."""
        return f"{self.id}-{hashlib.sha256((self.draw_json or '').encode()).hexdigest()[:16]}"


class QuizAnswer(db.Model):
    """A committed answer to one question of an attempt; unique per question, so the first one stays."""

    id = db.Column(db.Integer, primary_key=True)
    attempt_id = db.Column(db.Integer, db.ForeignKey("quiz_attempt.id"), nullable=False)
    question_position = db.Column(db.Integer, nullable=False)
    choices_json = db.Column(db.Text, nullable=False)  # chosen choice positions (canonical order)
    correct = db.Column(db.Boolean, nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    attempt = db.relationship(QuizAttempt, back_populates="answers_given")
    __table_args__ = (db.UniqueConstraint("attempt_id", "question_position", name="uq_quiz_answer_question"),)

    @property
    def choices(self) -> set[int]:
        return set(json.loads(self.choices_json))


class AnswerTally(db.Model):
    """The statistics of submitted answers, counted once as each attempt is submitted
    (lms/quizzes/stats.py): how many answers to the question at `question_position` picked exactly
    `choices_json` (its choice positions, as QuizAnswer stores them), and whether that was right.
    A question's position names one version of it for ever, so these rows never need correcting."""

    quiz_id = db.Column(db.Integer, db.ForeignKey("quiz.id"), primary_key=True)
    question_position = db.Column(db.Integer, primary_key=True)
    choices_json = db.Column(db.String(200), primary_key=True)
    correct = db.Column(db.Boolean, primary_key=True)
    answers = db.Column(db.Integer, nullable=False, default=0)


class ScoreTally(db.Model):
    """How many submitted attempts of a quiz scored `score` (and passed or not), counted with AnswerTally:
    the quiz's attempts, pass rate and average without reading its attempts."""

    quiz_id = db.Column(db.Integer, db.ForeignKey("quiz.id"), primary_key=True)
    score = db.Column(db.Integer, primary_key=True)
    passed = db.Column(db.Boolean, primary_key=True)
    attempts = db.Column(db.Integer, nullable=False, default=0)
