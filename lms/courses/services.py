"""Course domain operations: visibility, progress heartbeats, lesson and course completion."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from flask import current_app

from lms.accounts.models import utcnow
from lms.audiences import AUDIENCE_CODES
from lms.courses import progress as crediting
from lms.courses.models import Course, CourseAudience, Lesson, LessonProgress
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


def record_heartbeat(user, lesson_id: int, payload: dict, now=None, attempts: int = 60):
    """Apply one heartbeat under the account's study lease (lms/courses/lease.py).

    Raises LeaseLost (→ HTTP 409) when another player holds the lease and this is not a
    play/start heartbeat; HeartbeatRejected (→ 400) for malformed or impossible ones.
    Retries when a concurrent heartbeat updated the same rows first (optimistic locking).
    """
    from lms.courses.lease import StudyLease
    from lms.courses.models import VideoAsset

    # the hottest path: what the judge needs about the lesson, in one query
    facts = (
        db.session.query(Lesson.retired, Course.published, Course.strict, Course.watch_threshold,
                         VideoAsset.status, VideoAsset.duration)
        .select_from(Lesson)
        .join(Course, Lesson.course_id == Course.id)
        .outerjoin(VideoAsset, Lesson.video_id == VideoAsset.id)
        .filter(Lesson.id == lesson_id)
        .first()
    )
    if facts is None or facts.retired or not facts.published:
        raise LessonNotVisible(lesson_id)
    if facts.status != "ready" or not facts.duration:
        raise crediting.HeartbeatRejected("this lesson has no playable video")
    config = current_app.config
    tolerance = config["HEARTBEAT_TOLERANCE_SECONDS"]
    if not isinstance(payload, dict):
        raise crediting.HeartbeatRejected("heartbeat must be a JSON object")
    duration = facts.duration
    intervals = crediting.parse_intervals(payload.get("intervals"), duration, tolerance)
    position = crediting.parse_position(payload.get("position"), duration, tolerance)
    token, start, seq = crediting.parse_player(payload)
    cap_hours = config.get("DAILY_CAP_HOURS")
    user_id = user.id
    max_rate = 1.0 if facts.strict else config["HEARTBEAT_MAX_RATE"]
    threshold = facts.watch_threshold
    for attempt in range(attempts):
        try:
            progress = progress_for(user_id, lesson_id)
            lease = db.session.get(StudyLease, user_id)
            current = now or utcnow()
            take_over = False
            if lease is None:
                lease = StudyLease(user_id=user_id, token=token, lesson_id=lesson_id, acquired_at=current,
                                   clock_credited=0.0, day_credited=0.0)
                db.session.add(lease)
            elif lease.token != token:
                if not start:
                    db.session.rollback()
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
                progress, intervals, position, current, duration, max_rate, tolerance,
                clock=lease, take_over=take_over, in_sequence=in_sequence,
                offline_grace=config.get("HEARTBEAT_OFFLINE_GRACE_SECONDS", 0), update_position=newer,
                day_allowance=allowance,
            )
            if cap_hours:
                lease.day_credited = (lease.day_credited or 0.0) + result.credited_seconds
            result.video_done = progress.watched_seconds >= threshold * duration - 0.5
            result.lesson_completed = progress.completed_at is not None
            db.session.commit()
            break
        except (StaleDataError, IntegrityError):
            db.session.rollback()
            if attempt == attempts - 1:
                raise
    record = None
    if result.video_done and not result.lesson_completed:
        record = update_completion(user_id, lesson_id)
        result.lesson_completed = lesson_state(user_id, db.session.get(Lesson, lesson_id))["completed"]
    elif result.lesson_completed:
        record = course_record(user_id, db.session.get(Lesson, lesson_id).course)
    return result, record


def video_done(lesson: Lesson, progress: LessonProgress | None) -> bool:
    if lesson.video is None:
        return True
    if progress is None or not lesson.video.duration:
        return False
    return progress.watched_seconds >= lesson.course.watch_threshold * lesson.video.duration - 0.5


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
    duration = lesson.video.duration if lesson.video and lesson.video.duration else None
    return {
        "progress": progress,
        "watched_share": min(1.0, progress.watched_seconds / duration) if progress and duration else 0.0,
        "video_done": video_done(lesson, progress),
        "quiz_passed": quiz_passed(user_id, lesson),
        "completed": bool(progress and progress.completed_at),
    }


def update_completion(user_id: int, lesson_id: int):
    """Mark the lesson complete when its video and quiz are done; credit the course when all are.

    Returns the course's TrainingRecord when this call (or an earlier one) credited it, else None.
    """
    from lms.records.services import credit_course_completion, credit_final_test_bonus

    lesson = db.session.get(Lesson, lesson_id)
    state = lesson_state(user_id, lesson)
    if not (state["video_done"] and state["quiz_passed"]):
        return None
    progress = state["progress"] or progress_for(user_id, lesson_id)
    if progress.completed_at is None:
        for attempt in range(5):
            try:
                progress.completed_at = utcnow()
                db.session.commit()
                break
            except StaleDataError:
                db.session.rollback()
                progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson_id).one()
                if progress.completed_at:
                    break
    course = lesson.course
    if all(lesson_state(user_id, other)["completed"] for other in course.active_lessons):
        record = credit_course_completion(user_id, course)
        credit_final_test_bonus(user_id, course)
        return record
    return None


def resume_position(user_id: int, lesson: Lesson) -> float:
    progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson.id).first()
    if progress is None or progress.completed_at:
        return 0.0
    return progress.last_position or 0.0


def course_record(user_id: int, course: Course):
    from lms.records.models import TrainingRecord
    from lms.records.services import completion_key

    return TrainingRecord.query.filter_by(completion_key=completion_key(user_id, course.id)).first()


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
        "furthest": round(progress.furthest_position, 2) if progress else 0.0,
        "idle_seconds": config.get("STRICT_IDLE_SECONDS", 600),
        "idle_answer_seconds": config.get("STRICT_IDLE_ANSWER_SECONDS", 20),
    }
