"""Course domain operations: visibility, progress heartbeats, lesson and course completion."""
from __future__ import annotations

import functools

from sqlalchemy import Integer, Text, and_, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from flask import current_app

from lms.accounts.models import utcnow
from lms.audiences import AUDIENCE_CODES
from lms.courses import completion, heartbeat_batch
from lms.courses import progress as crediting
from lms.courses.models import Course, CourseAudience, Lesson, LessonProgress, WatchedIntervals
from lms.extensions import db
from lms.quizzes.models import QuizAttempt


class LessonNotVisible(LookupError):
    pass


def catalogue_for(user) -> list[tuple[str, list[Course]]]:
    """Published courses grouped by the five audiences, the learner's own audience first."""
    order = sorted(AUDIENCE_CODES, key=lambda code: code != getattr(user, "audience", None))
    rows = (
        db.session.query(CourseAudience.audience, Course)
        .join(Course)
        .filter(Course.published.is_(True))
        .order_by(Course.id)
        .all()
    )
    grouped = {code: [] for code in order}
    for audience, course in rows:
        grouped.setdefault(audience, []).append(course)
    return [(code, grouped[code]) for code in order]


def visible_course(slug: str) -> Course:
    course = Course.query.filter_by(slug=slug, published=True).first()
    if course is None:
        raise LessonNotVisible(slug)
    return course


def visible_lesson(lesson_id: int) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None or lesson.retired or not lesson.course.published:
        raise LessonNotVisible(lesson_id)
    return lesson


def visible_quiz_lesson(lesson_id: int) -> Lesson:
    """A visible lesson that has a quiz; LessonNotVisible otherwise."""
    lesson = visible_lesson(lesson_id)
    if lesson.quiz is None:
        raise LessonNotVisible(lesson_id)
    return lesson


def progress_for(user_id: int, lesson_id: int) -> LessonProgress:
    progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson_id).first()
    if progress is None:
        progress = LessonProgress(user_id=user_id, lesson_id=lesson_id)
        db.session.add(progress)
        try:
            db.session.flush()
        except IntegrityError:  # another request created it first
            db.session.rollback()
            progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson_id).one()
    return progress


class LeaseLost(Exception):
    """Another player of this account holds the study lease; this heartbeat credits nothing."""


def _today_local(now):
    from lms.records.services import to_local

    return to_local(now).date()


_PROGRESS_COLUMNS = ("id", "video_asset_id", "intervals_json", "watched_seconds", "furthest_position",
                     "last_position", "last_heartbeat_at", "completed_at", "version")
_LEASE_COLUMNS = ("token", "lesson_id", "acquired_at", "last_heartbeat_at", "clock_started_at", "clock_credited",
                  "last_seq", "day", "day_credited", "version")


class _Row:
    """A plain copy of a row for the pure crediting functions (lms/courses/progress.py) to change."""

    def __init__(self, values):
        self.__dict__.update(values)


class _ProgressRow(WatchedIntervals, _Row):
    pass


@functools.cache
def _heartbeat_statements(many: bool = False):
    """The hot path's statements, built once: one SELECT of everything a heartbeat needs (the lesson's
    facts, read fresh every time so an edit is seen at once — no cache to go stale; the progress row;
    the lease; the user's session version and state, for lms/courses/fast_heartbeat.py), and one
    UPDATE each of the lease and the progress row, both checking the version they read.
    With `many`: the SELECT for a batch of heartbeats (lms/courses/heartbeat_batch.py, PostgreSQL), its
    keys given as two integer[] literals, user_ids and lesson_ids, each row numbered `n` by its key's place."""
    from lms.accounts.models import User
    from lms.courses.lease import StudyLease
    from lms.media.models import VideoAsset

    lesson, course, video = Lesson.__table__, Course.__table__, VideoAsset.__table__
    progress, lease, user = LessonProgress.__table__, StudyLease.__table__, User.__table__
    if many:
        keys = func.unnest(cast(bindparam("user_ids", type_=Text), ARRAY(Integer)),
                           cast(bindparam("lesson_ids", type_=Text), ARRAY(Integer)),
                           ).table_valued("user_id", "lesson_id", with_ordinality="n").render_derived(name="k")
        user_id, first, where = keys.c.user_id, keys.join(lesson, lesson.c.id == keys.c.lesson_id), ()
    else:
        user_id, first, where = bindparam("user_id"), lesson, (lesson.c.id == bindparam("lesson_id"),)
    read = (
        select(*((keys.c.n,) if many else ()),
               lesson.c.retired, lesson.c.video_id, lesson.c.course_id, course.c.published, course.c.strict,
               course.c.watch_threshold, video.c.status, video.c.duration,
               user.c.session_version.label("u_session_version"), user.c.active.label("u_active"),
               user.c.must_change_password.label("u_must_change_password"),
               *(progress.c[name].label("p_" + name) for name in _PROGRESS_COLUMNS),
               *(lease.c[name].label("l_" + name) for name in _LEASE_COLUMNS))
        .select_from(first.join(course, lesson.c.course_id == course.c.id)
                     .outerjoin(video, lesson.c.video_id == video.c.id)
                     .outerjoin(user, user.c.id == user_id)
                     .outerjoin(progress, and_(progress.c.lesson_id == lesson.c.id, progress.c.user_id == user_id))
                     .outerjoin(lease, lease.c.user_id == user_id))
        .where(*where)
    )
    if many:
        return read
    write_lease = (update(lease)
                   .where(lease.c.user_id == bindparam("l_user_id"), lease.c.version == bindparam("l_version"))
                   .values({**{name: bindparam("l_" + name) for name in _LEASE_COLUMNS[:-1]},
                            "version": lease.c.version + 1}))
    write_progress = (update(progress)
                      .where(progress.c.id == bindparam("p_id"), progress.c.version == bindparam("p_version"))
                      .values({**{name: bindparam("p_" + name) for name in _PROGRESS_COLUMNS[1:-1]},
                               "version": progress.c.version + 1}))
    return read, (write_lease, write_progress)


class RawStatement:
    """A Core statement compiled once for one database, run on the driver's own cursor.

    SQLAlchemy's execution (a context, a result object, parameter processing per call) cost more
    than the database's own work for the heartbeat's three statements; this keeps what matters of
    it — the SQL its compiler wrote and each column type's conversions (SQLite stores times as text)
    — and drops the rest. Only for the hot path."""

    def __init__(self, statement, dialect):
        self.compiled = compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup  # the parameters' order for a positional driver, else None
        converters = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for bind, name in compiled.bind_names.items()}
        self.converters = {name: convert for name, convert in converters.items() if convert is not None}
        self.dialect = dialect
        self.columns = list(statement.selected_columns) if hasattr(statement, "selected_columns") else []
        self.keys = [column.key for column in self.columns]
        self.results = None  # each column's conversion, known from the first result's type codes

    def execute(self, cursor, params: dict):
        values = self.compiled.construct_params(params)  # by the names in the SQL, literals included
        for name, convert in self.converters.items():
            values[name] = convert(values[name])
        cursor.execute(self.sql, [values[name] for name in self.order] if self.order is not None else values)
        return cursor

    def first(self, cursor, params: dict) -> dict | None:
        row = self.execute(cursor, params).fetchone()
        return None if row is None else self._as_dict(cursor, row)

    def all(self, cursor, params: dict) -> list[dict]:
        rows = self.execute(cursor, params).fetchall()
        return [self._as_dict(cursor, row) for row in rows]

    def _as_dict(self, cursor, row) -> dict:
        if self.results is None:
            self.results = [column.type.dialect_impl(self.dialect).result_processor(self.dialect, described[1])
                            for column, described in zip(self.columns, cursor.description)]
        return {key: (convert(value) if convert else value)
                for key, convert, value in zip(self.keys, self.results, row)}


_raw_statements_by_dialect: dict = {}


def _raw_heartbeat_statements(many: bool = False):
    """(the SELECT, the two UPDATEs) compiled for the database in use; with `many`, the batch's SELECT."""
    dialect = db.engine.dialect
    key = (dialect.name, many)
    compiled = _raw_statements_by_dialect.get(key)
    if compiled is None:
        if many:
            compiled = RawStatement(_heartbeat_statements(many=True), dialect)
        else:
            read, writes = _heartbeat_statements()
            compiled = (RawStatement(read, dialect), tuple(RawStatement(write, dialect) for write in writes))
        _raw_statements_by_dialect[key] = compiled
    return compiled


def heartbeat_batches() -> heartbeat_batch.HeartbeatBatches:
    """This app's heartbeat batches in this process."""
    return heartbeat_batch.batches(_judge, _raw_heartbeat_statements)


def _drop_heartbeat_connection() -> None:
    """The connection this process's heartbeat batches are written on is closed; the next batch opens one."""
    found = current_app.extensions.get("heartbeat_batches")
    if found is not None:
        found.drop_connection()


@functools.cache
def _first_rows_statements(dialect_name: str):
    """(the progress row's INSERT, the lease's INSERT), each doing nothing where another request made the row
    first. The progress row is stamped with the course's version as the ORM stamps it (lms/courses/rules.py)."""
    from sqlalchemy.dialects import postgresql, sqlite

    from lms.courses.lease import StudyLease
    from lms.courses.rules import course_version_now

    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert
    lesson_id = bindparam("first_lesson_id")
    make_progress = (insert(LessonProgress.__table__)
                     .values(user_id=bindparam("first_user_id"), lesson_id=lesson_id,
                             course_version=course_version_now(lesson_id))
                     .on_conflict_do_nothing(index_elements=["user_id", "lesson_id"]))
    make_lease = (insert(StudyLease.__table__)
                  .values(user_id=bindparam("first_user_id"), token=bindparam("first_token"), lesson_id=lesson_id,
                          acquired_at=bindparam("first_acquired_at"))
                  .on_conflict_do_nothing(index_elements=["user_id"]))
    return make_progress, make_lease


def _first_rows(user_id: int, lesson_id: int, token: str, current) -> None:
    """A learner's first heartbeat on a lesson (or ever): the progress row and the lease this player takes,
    made in one commit. Two INSERTs, not the ORM: 1,000 viewers starting at once send 100 of these a second,
    and through the ORM each cost ~6 ms of CPU, 13 times a heartbeat (p99 of those first heartbeats 265–300
    ms at the real pace, where the later ones took 27–30 ms: scripts/bench/heartbeat.py --paced)."""
    params = {"first_user_id": user_id, "first_lesson_id": lesson_id, "first_token": token,
              "first_acquired_at": current}
    for statement in _first_rows_statements(db.engine.dialect.name):
        db.session.execute(statement, params)
    db.session.commit()


class NotVerified(Exception):
    """The fast path's check of the user (lms/courses/fast_heartbeat.py) failed: nothing was written."""


def record_heartbeat(user, lesson_id: int, payload: dict, now=None, attempts: int = 60, verify_user=None):
    """Apply one heartbeat under the account's study lease (lms/courses/lease.py).

    Raises LeaseLost (→ HTTP 409) when another player holds the lease and this is not a
    play/start heartbeat; HeartbeatRejected (→ 400) for malformed or impossible ones; with
    `verify_user` (called with the user's session version, active and must-change-password as read),
    NotVerified when it says no. Every refusal comes before anything is written.
    Reads again when a concurrent request changed the same rows first (optimistic locking).
    The hottest path of the site: read, judged and written with the other heartbeats of the moment in
    one transaction (lms/courses/heartbeat_batch.py).
    """
    user_id = user.id
    if db.session.registry.has() and db.session().in_transaction():
        # the caller's own changes first, and its connection back to the pool
        db.session.commit()
    for _attempt in range(attempts):
        outcome = heartbeat_batches().submit(heartbeat_batch.Beat(user_id, lesson_id, payload, now, verify_user))
        if outcome == heartbeat_batch.FIRST:  # a first heartbeat: its rows are made (or found made), then read again
            _first_rows(user_id, lesson_id, crediting.parse_player(payload)[0], now or utcnow())
            continue
        if outcome != heartbeat_batch.STALE:
            break
    else:
        raise StaleDataError("heartbeat: the progress row kept changing (%d attempts)" % attempts)
    result, facts = outcome
    record = course_record(user_id, facts["course_id"]) if result.video_done or result.lesson_completed else None
    if result.video_done and record is None:  # the video may have finished the lesson, or the course
        settled = completion.settle_completion(user_id, facts["course_id"])
        record = settled.record
        result.lesson_completed |= any(lesson.id == lesson_id for lesson in settled.completed_lessons)
    return result, record


def _judge(beat, facts):
    """A heartbeat of a batch judged on what was read: (result, the UPDATEs' parameters), None for a first
    heartbeat, or a refusal raised. Pure: nothing is written here."""
    if beat.verify_user is not None and (facts is None or not beat.verify_user(
            facts["u_session_version"], facts["u_active"], facts["u_must_change_password"])):
        raise NotVerified(beat.user_id)
    return _credit(facts, beat.payload, beat.user_id, beat.lesson_id, beat.now or utcnow(), current_app.config)


def _credit(facts: dict | None, payload, user_id: int, lesson_id: int, current, config):
    """The heartbeat judged on what was read: (result, the UPDATEs' parameters), or None when the
    learner has no progress row or lease yet. Pure: raises before anything is written."""
    if facts is None or facts["retired"] or not facts["published"]:
        raise LessonNotVisible(lesson_id)
    if facts["status"] != "ready" or not facts["duration"]:
        raise crediting.HeartbeatRejected("this lesson has no playable video")
    if not isinstance(payload, dict):
        raise crediting.HeartbeatRejected("heartbeat must be a JSON object")
    duration = facts["duration"]
    tolerance = config["HEARTBEAT_TOLERANCE_SECONDS"]
    cap_hours = config.get("DAILY_CAP_HOURS")
    intervals = crediting.parse_intervals(payload.get("intervals"), duration, tolerance)
    position = crediting.parse_position(payload.get("position"), duration, tolerance)
    token, start, seq = crediting.parse_player(payload)
    if facts["p_id"] is None or facts["l_version"] is None:
        return None
    progress = _ProgressRow({name: facts["p_" + name] for name in _PROGRESS_COLUMNS})
    lease = _Row({name: facts["l_" + name] for name in _LEASE_COLUMNS})
    # seconds count only on the video they were earned on; a lesson completed on a video
    # since replaced stays as it is and earns nothing more
    accrues = completion.follow_present_video(progress, facts["video_id"])
    take_over = False
    if lease.token != token:
        if not start:
            raise LeaseLost(lesson_id)
        take_over = True
        lease.token, lease.lesson_id, lease.acquired_at, lease.last_seq = token, lesson_id, current, None
    elif lease.lesson_id != lesson_id:
        take_over = True
        lease.lesson_id, lease.acquired_at = lesson_id, current
    in_sequence = (not take_over and seq is not None and lease.last_seq is not None
                   and seq == lease.last_seq + 1)
    newer = seq is None or lease.last_seq is None or seq > lease.last_seq
    if seq is not None and newer:
        lease.last_seq = seq
    allowance = None
    if cap_hours:
        today = _today_local(current)
        if lease.day != today:
            lease.day, lease.day_credited = today, 0.0
        allowance = cap_hours * 3600 - (lease.day_credited or 0.0)
    result = crediting.apply_heartbeat(
        progress, intervals if accrues else [], position, current, duration,
        1.0 if facts["strict"] else config["HEARTBEAT_MAX_RATE"], tolerance,
        clock=lease, take_over=take_over, in_sequence=in_sequence,
        offline_grace=config.get("HEARTBEAT_OFFLINE_GRACE_SECONDS", 0), update_position=newer,
        day_allowance=allowance,
    )
    if cap_hours:
        lease.day_credited = (lease.day_credited or 0.0) + result.credited_seconds
    result.video_done = accrues and progress.watched_seconds >= facts["watch_threshold"] * duration - 0.5
    result.lesson_completed = progress.completed_at is not None
    # both rows as read, or neither: a concurrent heartbeat or settle changed one first → read again
    params = {"l_user_id": user_id, **{"l_" + name: value for name, value in lease.__dict__.items()},
              **{"p_" + name: value for name, value in progress.__dict__.items()}}
    return result, params


def quiz_passed(user_id: int, lesson: Lesson) -> bool:
    if lesson.quiz is None:
        return True
    return (
        db.session.query(QuizAttempt.id)
        .filter_by(user_id=user_id, quiz_id=lesson.quiz.id, passed=True)
        .first()
        is not None
    )


def lesson_state(user_id: int, lesson: Lesson) -> dict:
    progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson.id).first()
    return state_of(lesson, progress, quiz_passed(user_id, lesson))


def state_of(lesson: Lesson, progress: LessonProgress | None, passed: bool) -> dict:
    """What the course and lesson pages show of one lesson for a learner with this progress (None: a
    learner who has not started it, as the authors' preview shows)."""
    duration = lesson.video.duration if lesson.video and lesson.video.duration else None
    reading = completion.reading_lesson(lesson)
    return {
        "progress": progress,
        "watched_share": min(1.0, completion.watched_seconds(lesson, progress) / duration) if duration else 0.0,
        "video_done": completion.video_done(lesson, progress),
        "quiz_passed": passed,
        "completed": bool(progress and progress.completed_at),
        "reading": reading,
        "reading_seconds": completion.reading_seconds(lesson) if reading else 0,
    }


def open_course(user_id: int, course: Course):
    """The course page: settle first (it credits what an earlier request failed to, or what a
    retired lesson no longer blocks), then each active lesson's state and the course's record."""
    record = completion.settle_completion(user_id, course.id).record
    return {lesson.id: lesson_state(user_id, lesson) for lesson in course.active_lessons}, record


def open_lesson(user_id: int, lesson: Lesson) -> dict:
    """The lesson page: a text-only lesson's reading clock starts at the first view; settle; its state."""
    if completion.reading_lesson(lesson):
        _stamp_once(user_id, lesson.id, "opened_at")
    completion.settle_completion(user_id, lesson.course_id)
    return lesson_state(user_id, lesson)


class NotReadingLesson(ValueError):
    """Only a text-only lesson is completed by marking it read (others by their video and quiz)."""


class ReadTooSoon(Exception):
    """Marked read before the reading time has passed; `seconds_left` says how long to go."""

    def __init__(self, seconds_left: int):
        super().__init__(seconds_left)
        self.seconds_left = seconds_left


def mark_read(user_id: int, lesson: Lesson) -> completion.Settlement:
    """The learner says they read a text-only lesson: accepted once the reading time since the
    server first served them the page has passed (ReadTooSoon otherwise), then settled."""
    if not completion.reading_lesson(lesson):
        raise NotReadingLesson(lesson.id)
    progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson.id).first()
    left = completion.reading_seconds_left(lesson, progress, utcnow())
    if left > 0:
        raise ReadTooSoon(left)
    if progress is None or progress.read_at is None:
        _stamp_once(user_id, lesson.id, "read_at")
    return completion.settle_completion(user_id, lesson.course_id)


def _stamp_once(user_id: int, lesson_id: int, name: str) -> None:
    """Set a progress time that is set once and never moves (first view, marked read): one UPDATE
    that only an unset value matches, so concurrent requests keep the first."""
    progress = progress_for(user_id, lesson_id)
    if getattr(progress, name) is None:
        column = getattr(LessonProgress, name)
        db.session.execute(update(LessonProgress)
                           .where(LessonProgress.id == progress.id, column.is_(None))
                           .values({name: utcnow(), "version": LessonProgress.version + 1}))
    db.session.commit()


def update_completion(user_id: int, lesson_id: int):
    """A quiz result (or anything else) may have finished this lesson: settle its course.

    Returns the course's TrainingRecord when this call (or an earlier one) credited it, else None.
    """
    lesson = db.session.get(Lesson, lesson_id)
    return completion.settle_completion(user_id, lesson.course_id).record


def resume_position(user_id: int, lesson: Lesson) -> float:
    progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson.id).first()
    if progress is None or progress.completed_at or not completion.on_current_video(lesson, progress):
        return 0.0
    return progress.last_position or 0.0


def course_record(user_id: int, course_id: int):
    from lms.records.models import TrainingRecord
    from lms.records.services import completion_key

    return TrainingRecord.query.filter_by(completion_key=completion_key(user_id, course_id)).first()


def set_data_saver(user, enabled: bool) -> None:
    user.data_saver = bool(enabled)
    db.session.commit()


def player_settings(user, lesson: Lesson) -> dict:
    """What the lesson page tells the player: renditions, the default one, strict rules."""
    video = lesson.video
    renditions = video.renditions if video else {}
    order = sorted(renditions, key=lambda name: int("".join(ch for ch in name if ch.isdigit()) or 0))
    progress = LessonProgress.query.filter_by(user_id=user.id, lesson_id=lesson.id).first()
    config = current_app.config
    from flask import url_for

    return {
        "renditions": order,
        "rendition_urls": {name: url_for("media.serve", relpath=renditions[name]) for name in order},
        "default_path": renditions[order[0]] if order else "",
        "data_saver": bool(getattr(user, "data_saver", False)),
        "furthest": round(progress.furthest_position, 2) if completion.on_current_video(lesson, progress) else 0.0,
        "idle_seconds": config.get("STRICT_IDLE_SECONDS", 600),
        "idle_answer_seconds": config.get("STRICT_IDLE_ANSWER_SECONDS", 20),
    }
