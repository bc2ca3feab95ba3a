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


def max_rate_for(course: Course) -> float:
    return 1.0 if course.strict else current_app.config["HEARTBEAT_MAX_RATE"]


def record_heartbeat(user, lesson_id: int, payload: dict, now=None, attempts: int = 25):
    """Apply one heartbeat; retries when a concurrent heartbeat updated the same row first."""
    lesson = visible_lesson(lesson_id)
    video = lesson.video
    if video is None or not video.ready or not video.duration:
        raise crediting.HeartbeatRejected("this lesson has no playable video")
    tolerance = current_app.config["HEARTBEAT_TOLERANCE_SECONDS"]
    if not isinstance(payload, dict):
        raise crediting.HeartbeatRejected("heartbeat must be a JSON object")
    intervals = crediting.parse_intervals(payload.get("intervals"), video.duration, tolerance)
    position = crediting.parse_position(payload.get("position"), video.duration, tolerance)
    user_id, course_id = user.id, lesson.course_id
    for attempt in range(attempts):
        try:
            progress = progress_for(user_id, lesson_id)
            result = crediting.apply_heartbeat(
                progress,
                intervals,
                position,
                now or utcnow(),
                video.duration,
                max_rate_for(lesson.course),
                tolerance,
            )
            db.session.commit()
            break
        except StaleDataError:
            db.session.rollback()
            lesson = visible_lesson(lesson_id)
            if attempt == attempts - 1:
                raise
    completed = update_completion(user_id, lesson_id)
    return result, completed


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
    from lms.records.services import credit_course_completion

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
        return credit_course_completion(user_id, course)
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
