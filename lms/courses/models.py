import json

from lms.accounts.models import utcnow
from lms.extensions import db
from lms.media import models as _media_models  # noqa: F401  (VideoAsset, which lessons point at)


class Course(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    slug = db.Column(db.String(80), unique=True, nullable=False)
    # The `id:` of the package it was imported from: the course's identity across renames of its
    # folder or slug (docs/content-format.md). NULL for a course not (yet) imported with one.
    package_id = db.Column(db.String(64), unique=True)
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
    # 学时 rule: "tiers" — credit_hours follows the length of the lessons' videos (Config.CREDIT_TIERS);
    # "fixed" — credit_hours as set, with credit_note saying why (shown to administrators).
    credit_rule = db.Column(db.String(10), nullable=False, default="fixed")
    credit_note = db.Column(db.Text)
    # The package's `sources:` — [{title, publisher, date, url, lessons}] — what a reviewer checks it against
    sources = db.Column(db.JSON)
    # The crediting rules in force (credit hours, threshold, strict, required lessons): bumped when
    # they change once learners have started under them (lms/courses/rules.py, CourseVersion).
    version = db.Column(db.Integer, nullable=False, default=1)
    cover_path = db.Column(db.String(200))  # covers/<sha>.jpg under DATA_DIR, re-encoded (lms/courses/authoring.py)
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


class CourseVersion(db.Model):
    """The crediting rules of one version of a course, kept so that a learner who started under it
    is credited by them (lms/courses/rules.py). lesson_ids_json: the active lessons it requires."""

    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), primary_key=True)
    version = db.Column(db.Integer, primary_key=True)
    credit_hours = db.Column(db.Numeric(6, 2), nullable=False)
    watch_threshold = db.Column(db.Float, nullable=False)
    strict = db.Column(db.Boolean, nullable=False)
    lesson_ids_json = db.Column(db.Text, nullable=False, default="[]")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    @property
    def lesson_ids(self) -> list[int]:
        return json.loads(self.lesson_ids_json or "[]")


class CourseAuthor(db.Model):
    """An instructor who may replace this course's videos and see their processing (admins may always)."""

    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), primary_key=True, index=True)


class Lesson(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), nullable=False, index=True)
    slug = db.Column(db.String(80), nullable=False)
    position = db.Column(db.Integer, nullable=False, default=0)
    title = db.Column(db.String(200), nullable=False)
    text_markdown = db.Column(db.Text, nullable=False, default="")
    text_html = db.Column(db.Text, nullable=False, default="")  # sanitised at import
    video_id = db.Column(db.Integer, db.ForeignKey("video_asset.id"), index=True)
    # A lesson dropped from its package stays (learners' progress points at it) but is hidden.
    retired = db.Column(db.Boolean, nullable=False, default=False)

    course = db.relationship(Course, back_populates="lessons")
    video = db.relationship("VideoAsset", foreign_keys=[video_id])  # lms/media/models.py
    # A quiz dropped from the package is retired, not deleted (attempts point at it): the lesson no
    # longer asks it, so every reader of lesson.quiz sees None.
    quiz = db.relationship("Quiz", uselist=False, back_populates="lesson", cascade="all, delete-orphan",
                           primaryjoin="and_(Lesson.id == Quiz.lesson_id, Quiz.retired.is_(False))")
    # 练一练 (lms/practices): a practice dropped from the package is retired and no longer asked, like a quiz.
    practice = db.relationship("Practice", uselist=False, viewonly=True,
                               primaryjoin="and_(Lesson.id == Practice.lesson_id, Practice.retired.is_(False))")

    __table_args__ = (db.UniqueConstraint("course_id", "slug", name="uq_lesson_course_slug"),)


class WatchedIntervals:
    """`intervals`: intervals_json as [start, end] pairs — for LessonProgress and for the plain row the
    heartbeat works on (lms/courses/services.py record_heartbeat)."""

    @property
    def intervals(self) -> list[list[float]]:
        return json.loads(self.intervals_json or "[]")

    @intervals.setter
    def intervals(self, value) -> None:
        self.intervals_json = json.dumps([[round(s, 3), round(e, 3)] for s, e in value])


class LessonProgress(WatchedIntervals, db.Model):
    """One learner's watching of one lesson: merged unique intervals and the crediting clock."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id"), nullable=False)
    # The video the intervals were earned on: when the lesson gets another video, an unfinished
    # lesson starts afresh on it (lms/courses/completion.py).
    video_asset_id = db.Column(db.Integer, db.ForeignKey("video_asset.id"))
    # Text-only lessons: when the server first served the page to this learner, and when they
    # marked it read (no earlier than the reading time after opened_at).
    opened_at = db.Column(db.DateTime)
    read_at = db.Column(db.DateTime, index=True)
    intervals_json = db.Column(db.Text, nullable=False, default="[]")
    watched_seconds = db.Column(db.Float, nullable=False, default=0.0)
    furthest_position = db.Column(db.Float, nullable=False, default=0.0)
    last_position = db.Column(db.Float, nullable=False, default=0.0)
    last_heartbeat_at = db.Column(db.DateTime, index=True)  # indexed: the console counts who studied this week
    clock_started_at = db.Column(db.DateTime)
    clock_credited = db.Column(db.Float, nullable=False, default=0.0)
    completed_at = db.Column(db.DateTime)
    version = db.Column(db.Integer, nullable=False, default=1)
    # The course's version when this row was made: the learner's first row in a course says under
    # which rules they are credited (lms/courses/rules.py sets it on insert).
    course_version = db.Column(db.Integer)

    lesson = db.relationship(Lesson)

    __table_args__ = (db.UniqueConstraint("user_id", "lesson_id", name="uq_progress_user_lesson"),
                      db.Index("ix_lesson_progress_lesson_version", "lesson_id", "course_version"))
    # Optimistic locking: concurrent heartbeats for one row cannot both win.
    __mapper_args__ = {"version_id_col": version}
