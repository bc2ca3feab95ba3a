import json

from lms.accounts.models import utcnow
from lms.extensions import db


class Course(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    slug = db.Column(db.String(80), unique=True, nullable=False)
    title = db.Column(db.String(200), nullable=False)
    summary = db.Column(db.Text, nullable=False, default="")
    credit_hours = db.Column(db.Numeric(6, 2), nullable=False)
    mandatory = db.Column(db.Boolean, nullable=False, default=False)
    strict = db.Column(db.Boolean, nullable=False, default=False)
    watch_threshold = db.Column(db.Float, nullable=False, default=0.95)
    # Extra 学时 for scoring at least bonus_min_score on the end-of-course test (the last lesson's quiz).
    bonus_hours = db.Column(db.Numeric(6, 2))
    bonus_min_score = db.Column(db.Integer)
    published = db.Column(db.Boolean, nullable=False, default=True)
    content_hash = db.Column(db.String(64))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    audience_rows = db.relationship(
        "CourseAudience", cascade="all, delete-orphan", back_populates="course", lazy="selectin"
    )
    lessons = db.relationship(
        "Lesson",
        back_populates="course",
        order_by="Lesson.position",
        cascade="all, delete-orphan",
    )

    @property
    def audiences(self) -> list[str]:
        return [row.audience for row in self.audience_rows]

    @property
    def active_lessons(self):
        return [lesson for lesson in self.lessons if not lesson.retired]


class CourseAudience(db.Model):
    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), primary_key=True)
    audience = db.Column(db.String(20), primary_key=True)
    course = db.relationship(Course, back_populates="audience_rows")


class VideoAsset(db.Model):
    """A video and its renditions. Playable only when status == 'ready'."""

    id = db.Column(db.Integer, primary_key=True)
    # The lesson this upload is for; it replaces lesson.video only once it is ready.
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id", use_alter=True), index=True)
    status = db.Column(db.String(20), nullable=False, default="pending")  # pending/processing/ready/failed
    original_name = db.Column(db.String(255))
    width = db.Column(db.Integer)
    height = db.Column(db.Integer)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    source_path = db.Column(db.String(500))
    source_sha256 = db.Column(db.String(64))
    duration = db.Column(db.Float)
    renditions_json = db.Column(db.Text, nullable=False, default="{}")  # {"360p": "videos/12/360p.mp4"}
    poster_path = db.Column(db.String(500))
    captions_path = db.Column(db.String(500))
    progress = db.Column(db.Integer, nullable=False, default=0)
    error = db.Column(db.Text)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    @property
    def renditions(self) -> dict:
        return json.loads(self.renditions_json or "{}")

    @renditions.setter
    def renditions(self, value: dict) -> None:
        self.renditions_json = json.dumps(value, sort_keys=True)

    @property
    def ready(self) -> bool:
        return self.status == "ready"


class Lesson(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), nullable=False, index=True)
    slug = db.Column(db.String(80), nullable=False)
    position = db.Column(db.Integer, nullable=False, default=0)
    title = db.Column(db.String(200), nullable=False)
    text_markdown = db.Column(db.Text, nullable=False, default="")
    text_html = db.Column(db.Text, nullable=False, default="")  # sanitised at import
    video_id = db.Column(db.Integer, db.ForeignKey("video_asset.id"))
    # A lesson dropped from its package stays (learners' progress points at it) but is hidden.
    retired = db.Column(db.Boolean, nullable=False, default=False)

    course = db.relationship(Course, back_populates="lessons")
    video = db.relationship(VideoAsset, foreign_keys=[video_id])
    quiz = db.relationship("Quiz", uselist=False, back_populates="lesson", cascade="all, delete-orphan")

    __table_args__ = (db.UniqueConstraint("course_id", "slug", name="uq_lesson_course_slug"),)


class LessonProgress(db.Model):
    """One learner's watching of one lesson: merged unique intervals and the crediting clock."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id"), nullable=False)
    intervals_json = db.Column(db.Text, nullable=False, default="[]")
    watched_seconds = db.Column(db.Float, nullable=False, default=0.0)
    furthest_position = db.Column(db.Float, nullable=False, default=0.0)
    last_position = db.Column(db.Float, nullable=False, default=0.0)
    last_heartbeat_at = db.Column(db.DateTime)
    clock_started_at = db.Column(db.DateTime)
    clock_credited = db.Column(db.Float, nullable=False, default=0.0)
    completed_at = db.Column(db.DateTime)
    version = db.Column(db.Integer, nullable=False, default=1)

    lesson = db.relationship(Lesson)

    __table_args__ = (db.UniqueConstraint("user_id", "lesson_id", name="uq_progress_user_lesson"),)
    # Optimistic locking: concurrent heartbeats for one row cannot both win.
    __mapper_args__ = {"version_id_col": version}

    @property
    def intervals(self) -> list[list[float]]:
        return json.loads(self.intervals_json or "[]")

    @intervals.setter
    def intervals(self, value) -> None:
        self.intervals_json = json.dumps([[round(s, 3), round(e, 3)] for s, e in value])
