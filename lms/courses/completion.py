"""When a lesson and a course are complete: decided in one place, written in one transaction.

settle_completion(user_id, course_id) is the only code that marks lessons complete and credits a
course. It is idempotent: it looks at the learner's state in the course and writes whatever is
due and not yet written — lesson completions, the course's ledger record and its end-of-course
bonus — in one commit, so a failure part-way leaves nothing and the next call does it all. It is
called wherever the answer may have changed or a write may have been lost: a lesson or course
page view, a heartbeat on a watched video, a passed quiz (courses.services.update_completion),
a lesson marked read, and `lms records settle`.

A lesson is complete when
  * it has a video: the learner watched the course's share of that video — progress earned on
    another video (the one it replaced) does not count — and passed its quiz, if any;
  * it has only a quiz: the quiz is passed;
  * it has a practice (练一练, lms/practices), with or without video and quiz: all of those are done
    and the practice was finished (every step reached in order, judged by the server);
  * it has neither (text only): the learner marked it read, no sooner than the reading time
    after the server first served the page to them (reading_seconds).
A lesson once complete stays complete. A course is complete when the active lessons its rules
require are: retired lessons stop counting. The rules are those of the course version the learner
started under (lms/courses/rules.py: its credit hours, watch threshold and lessons), so editing a
course never changes how a learner already in progress is credited.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from lms.accounts.models import utcnow
from lms.courses import rules as course_rules
from lms.courses.models import Course, Lesson, LessonProgress
from lms.extensions import db
from lms.practices.services import finished_lesson_ids, practice_lesson_ids
from lms.quizzes.models import QuizAttempt
from lms.records import services as ledger
from lms.records.closing import YearClosed
from lms.records.models import TrainingRecord

SETTLE_ATTEMPTS = 10


def on_current_video(lesson: Lesson, progress: LessonProgress | None) -> bool:
    """Whether `progress` counts for the lesson's present video: it was earned on it, or on no
    video yet (a row from before the lesson had one, or one the first heartbeat has not yet tied)."""
    return progress is not None and progress.video_asset_id in (None, lesson.video_id)


def watched_seconds(lesson: Lesson, progress: LessonProgress | None) -> float:
    """Seconds watched of the lesson's present video (0 when earned on a video it replaced)."""
    return progress.watched_seconds if on_current_video(lesson, progress) else 0.0


def follow_present_video(progress: LessonProgress, video_id: int | None) -> bool:
    """Before a heartbeat: whether it may add to `progress`. An unfinished lesson whose video was
    replaced starts afresh on the new one (what was watched of the old one says nothing about it);
    a lesson completed on a video since replaced is left exactly as it is (False)."""
    if progress.video_asset_id in (None, video_id):
        progress.video_asset_id = video_id
        return True
    if progress.completed_at is not None:
        return False
    progress.video_asset_id = video_id
    progress.intervals = []
    progress.watched_seconds = progress.furthest_position = progress.last_position = 0.0
    return True


def video_done(lesson: Lesson, progress: LessonProgress | None, threshold: float | None = None) -> bool:
    """Whether the learner watched `threshold` (default: the course's) of the lesson's present video."""
    video = lesson.video
    if video is None:
        return True
    if not video.ready or not video.duration:
        return False
    share = lesson.course.watch_threshold if threshold is None else threshold
    return watched_seconds(lesson, progress) >= share * video.duration - 0.5


def reading_lesson(lesson: Lesson) -> bool:
    """A text-only lesson: nothing to watch or answer, so it is completed by marking it read."""
    return lesson.video_id is None and lesson.quiz is None and lesson.practice is None


def reading_seconds(lesson: Lesson) -> int:
    """The least time between first opening a text-only lesson and marking it read: its length at
    READING_CHARS_PER_MINUTE (a quick reader's pace, so nobody honest waits), kept within
    READING_MIN_SECONDS..READING_MAX_SECONDS."""
    config = current_app.config
    chars = len("".join((lesson.text_markdown or "").split()))
    seconds = chars * 60 / config["READING_CHARS_PER_MINUTE"]
    return round(min(config["READING_MAX_SECONDS"], max(config["READING_MIN_SECONDS"], seconds)))


def reading_seconds_left(lesson: Lesson, progress: LessonProgress | None, now: datetime) -> int:
    """How long the learner must still read before marking the lesson read (the full reading time
    when the server has not served them the page yet)."""
    wanted = reading_seconds(lesson)
    if progress is None or progress.opened_at is None:
        return wanted
    return max(0, int(wanted - (now - progress.opened_at).total_seconds() + 0.999))


def lesson_done(lesson: Lesson, progress: LessonProgress | None, quiz_passed: bool,
                threshold: float | None = None, practice_done: bool = True) -> bool:
    if progress is not None and progress.completed_at is not None:
        return True
    if reading_lesson(lesson):
        return progress is not None and progress.read_at is not None
    return video_done(lesson, progress, threshold) and quiz_passed and practice_done


def passed_quiz_ids(user_id: int, quiz_ids: list[int]) -> set[int]:
    if not quiz_ids:
        return set()
    rows = (db.session.query(QuizAttempt.quiz_id).distinct()
            .filter(QuizAttempt.user_id == user_id, QuizAttempt.quiz_id.in_(quiz_ids),
                    QuizAttempt.passed.is_(True)))
    return {quiz_id for (quiz_id,) in rows}


@dataclass
class Settlement:
    """What settle_completion did (or, in a dry run, would do)."""

    completed_lessons: list[Lesson] = field(default_factory=list)  # marked complete by this call
    credited: list[TrainingRecord] = field(default_factory=list)  # ledger records written by this call
    record: TrainingRecord | None = None  # the course's completion record, written now or before


def settle_completion(user_id: int, course_id: int, *, dry_run: bool = False) -> Settlement:
    """Mark complete every lesson of the course the learner has finished, and credit the course
    (and its bonus) when all its active lessons are — whatever of that is not yet written, in one
    transaction. Safe to call any time, from any number of requests at once: a concurrent call
    that wrote first makes this one's commit fail (UNIQUE completion_key, progress row versions),
    and it decides again from what that one wrote. `dry_run`: decide, write nothing."""
    course = db.session.get(Course, course_id)
    settled = Settlement()
    credit = True
    for attempt in range(SETTLE_ATTEMPTS):
        try:
            step = _settle_once(user_id, course, dry_run, credit)
        except YearClosed:
            # the year is closed for the learner's unit (lms/records/closing.py): their lessons and progress
            # are kept, the course is simply not credited
            db.session.rollback()
            credit = False
            continue
        except (IntegrityError, StaleDataError):
            db.session.rollback()
            if attempt == SETTLE_ATTEMPTS - 1:
                raise
            continue
        settled.completed_lessons += step.completed_lessons
        settled.credited += step.credited
        settled.record = step.record
        if dry_run or not step.completed_lessons or step.record is not None:
            return settled
        # Lessons were completed but not the course. A concurrent call may have completed the
        # other lessons, deciding before this commit: look once more now that this one is in,
        # so whichever commits last credits the course.
    return settled


def _settle_once(user_id: int, course: Course, dry_run: bool, credit: bool = True) -> Settlement:
    now = utcnow()
    lessons = course.active_lessons
    rules = course_rules.learner_rules(user_id, course)
    required = rules.required_lessons(course)
    progress = {row.lesson_id: row for row in LessonProgress.query.filter(
        LessonProgress.user_id == user_id, LessonProgress.lesson_id.in_([lesson.id for lesson in lessons]))}
    passed = passed_quiz_ids(user_id, [lesson.quiz.id for lesson in lessons if lesson.quiz])
    with_practice = practice_lesson_ids([lesson.id for lesson in lessons])
    practised = finished_lesson_ids(user_id, sorted(with_practice))
    done = {lesson.id for lesson in lessons
            if lesson_done(lesson, progress.get(lesson.id), lesson.quiz is None or lesson.quiz.id in passed,
                           rules.watch_threshold, lesson.id not in with_practice or lesson.id in practised)}
    step = Settlement(completed_lessons=[lesson for lesson in lessons if lesson.id in done and (
        lesson.id not in progress or progress[lesson.id].completed_at is None)])
    if credit and required and all(lesson.id in done for lesson in required):
        written = {row.completion_key: row for row in TrainingRecord.query.filter(TrainingRecord.completion_key.in_(
            [ledger.completion_key(user_id, course.id), ledger.bonus_key(user_id, course.id)]))}
        step.record = written.get(ledger.completion_key(user_id, course.id))
        if step.record is None:
            step.record = ledger.course_completion_record(user_id, course, now, rules)
            step.credited.append(step.record)
        bonus = ledger.final_test_bonus_record(user_id, course)
        if bonus is not None and bonus.completion_key not in written:
            bonus.course_version = rules.version
            step.credited.append(bonus)
    else:
        step.record = TrainingRecord.query.filter_by(
            completion_key=ledger.completion_key(user_id, course.id)).first()
    if dry_run or not (step.completed_lessons or step.credited):
        return step
    for lesson in step.completed_lessons:
        row = progress.get(lesson.id)
        if row is None:  # a quiz-only lesson has no progress row until now
            row = LessonProgress(user_id=user_id, lesson_id=lesson.id, video_asset_id=lesson.video_id)
            db.session.add(row)
        row.completed_at = now
    for record in step.credited:
        db.session.add(record)
        ledger.credit_audit(record)
    db.session.commit()
    return step


def settle_candidates() -> list[tuple[int, int]]:
    """(user_id, course_id) pairs `lms records settle` looks at: a learner who has progress or a
    passed quiz in a course that is not yet credited to them (or that carries a bonus)."""
    from lms.practices.models import Practice, PracticeProgress
    from lms.quizzes.models import Quiz

    studied = (db.session.query(LessonProgress.user_id, Lesson.course_id)
               .join(Lesson, Lesson.id == LessonProgress.lesson_id)
               .union(db.session.query(QuizAttempt.user_id, Lesson.course_id)
                      .join(Quiz, Quiz.id == QuizAttempt.quiz_id).join(Lesson, Lesson.id == Quiz.lesson_id)
                      .filter(QuizAttempt.passed.is_(True)))
               .union(db.session.query(PracticeProgress.user_id, Lesson.course_id)  # a finished 练一练
                      .join(Practice, Practice.id == PracticeProgress.practice_id)
                      .join(Lesson, Lesson.id == Practice.lesson_id)
                      .filter(PracticeProgress.finished_at.isnot(None))))
    credited = {key for (key,) in db.session.query(TrainingRecord.completion_key)
                .filter(TrainingRecord.completion_key.like("course:%"))}
    with_bonus = {course_id for (course_id,) in db.session.query(Course.id).filter(Course.bonus_hours > 0)}
    return sorted((user_id, course_id) for user_id, course_id in studied
                  if course_id in with_bonus or ledger.completion_key(user_id, course_id) not in credited)
