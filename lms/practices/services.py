"""练一练 as plain functions: finding a visible practice, judging a tap, keeping the learner's step,
writing a package's practice on import. Routes (lms/practices/routes.py) only parse and render."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from lms.accounts.models import utcnow
from lms.courses.models import Course, Lesson
from lms.extensions import db
from lms.practices import format as practice_format
from lms.practices.models import Practice, PracticeProgress


class PracticeNotVisible(LookupError):
    """No such practice, or its lesson or course is not shown to learners."""


class BadTap(ValueError):
    """A tap the server cannot read (no step number, no target id)."""


def visible_practice(slug: str, lesson_slug: str) -> tuple[Course, Lesson, Practice]:
    course = Course.query.filter_by(slug=slug, published=True).first()
    lesson = next((item for item in course.active_lessons if item.slug == lesson_slug), None) if course else None
    if lesson is None or lesson.practice is None:
        raise PracticeNotVisible(f"{slug}/{lesson_slug}")
    return course, lesson, lesson.practice


def visible_practice_by_id(practice_id: int) -> Practice:
    practice = db.session.get(Practice, practice_id)
    if practice is None or practice.retired or practice.lesson.retired or not practice.lesson.course.published:
        raise PracticeNotVisible(practice_id)
    return practice


@dataclass
class PracticeState:
    """Where a learner stands: the step to do now (== len(steps) once walked through), wrong taps on it,
    whether the practice ever was finished, and the places to highlight (after two wrong taps)."""

    step: int = 0
    wrong: int = 0
    finished: bool = False
    hint: list[str] = field(default_factory=list)
    outcome: str = ""  # after a tap: right | wrong | out_of_step
    credited_hours: object = None  # a course credited by this tap (its 学时)


def _current(progress: PracticeProgress | None, practice: Practice) -> tuple[int, int]:
    """The step and wrong taps that count now: a walk on steps since changed starts again."""
    if progress is None or progress.digest != practice.digest:
        return 0, 0
    return min(progress.step, len(practice.steps)), progress.wrong


def state_for(user_id: int, practice: Practice) -> PracticeState:
    progress = PracticeProgress.query.filter_by(user_id=user_id, practice_id=practice.id).first()
    step, wrong = _current(progress, practice)
    state = PracticeState(step=step, wrong=wrong, finished=bool(progress and progress.finished_at))
    if step < len(practice.steps) and wrong >= 2:
        state.hint = practice.steps[step]["targets"]
    return state


def _progress(user_id: int, practice: Practice) -> PracticeProgress:
    progress = PracticeProgress.query.filter_by(user_id=user_id, practice_id=practice.id).first()
    if progress is None:
        progress = PracticeProgress(user_id=user_id, practice_id=practice.id, digest=practice.digest)
        db.session.add(progress)
        try:
            db.session.flush()
        except IntegrityError:  # another request made it first
            db.session.rollback()
            progress = PracticeProgress.query.filter_by(user_id=user_id, practice_id=practice.id).one()
    if progress.digest != practice.digest:
        progress.digest, progress.step, progress.wrong = practice.digest, 0, 0
    return progress


def tap(user_id: int, practice: Practice, payload) -> PracticeState:
    """Judge one tap {step, target}. Only a tap on the step the learner is at counts: a right one moves
    them on (the last one finishes the practice and settles the lesson), a wrong one is counted for the
    hint. A tap for another step (a forged “finished”, a stale tablet) changes nothing: out_of_step."""
    if not isinstance(payload, dict):
        raise BadTap("payload")
    step, target = payload.get("step"), payload.get("target")
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(target, str) or len(target) > 40:
        raise BadTap("step/target")
    steps = practice.steps
    for _attempt in range(3):
        progress = _progress(user_id, practice)
        if step != progress.step or step >= len(steps):
            db.session.rollback()
            state = state_for(user_id, practice)
            state.outcome = "out_of_step"
            return state
        if target in steps[step]["targets"]:
            progress.step, progress.wrong, outcome = step + 1, 0, "right"
            if progress.step == len(steps) and progress.finished_at is None:
                progress.finished_at = utcnow()
        else:
            progress.wrong, outcome = progress.wrong + 1, "wrong"
        progress.updated_at = utcnow()
        try:
            db.session.commit()
        except (IntegrityError, StaleDataError):  # a tap at the same moment moved the step: judge again
            db.session.rollback()
            continue
        break
    else:
        raise StaleDataError("practice progress kept changing")
    state = state_for(user_id, practice)
    state.outcome = outcome
    if outcome == "right" and state.step == len(steps):
        from lms.courses import completion

        settled = completion.settle_completion(user_id, practice.lesson.course_id)
        if settled.record is not None and settled.record in settled.credited:
            state.credited_hours = settled.record.hours
    return state


def start_again(user_id: int, practice: Practice) -> None:
    """Practise once more from the first step; a finished practice stays finished."""
    progress = _progress(user_id, practice)
    progress.step, progress.wrong, progress.updated_at = 0, 0, utcnow()
    db.session.commit()


def finished_lesson_ids(user_id: int, lesson_ids: list[int]) -> set[int]:
    """Of these lessons, those whose (present) practice the learner has finished."""
    if not lesson_ids:
        return set()
    rows = (db.session.query(Practice.lesson_id)
            .join(PracticeProgress, PracticeProgress.practice_id == Practice.id)
            .filter(Practice.lesson_id.in_(lesson_ids), Practice.retired.is_(False),
                    PracticeProgress.user_id == user_id, PracticeProgress.finished_at.isnot(None)))
    return {lesson_id for (lesson_id,) in rows}


def practice_lesson_ids(lesson_ids: list[int]) -> set[int]:
    """Of these lessons, those that carry a practice (one query, for settling a whole course)."""
    if not lesson_ids:
        return set()
    rows = db.session.query(Practice.lesson_id).filter(Practice.lesson_id.in_(lesson_ids), Practice.retired.is_(False))
    return {lesson_id for (lesson_id,) in rows}


def practice_finished(user_id: int, lesson: Lesson) -> bool:
    return lesson.practice is not None and lesson.id in finished_lesson_ids(user_id, [lesson.id])


def write_practice(lesson: Lesson, document: dict | None) -> None:
    """On import: the lesson's practice as the package gives it; none → the old one is retired (kept for
    its learners' progress). A practice dropped earlier and now back is the same row again."""
    if lesson.id is None:
        db.session.flush()
    existing = Practice.query.filter_by(lesson_id=lesson.id).first()
    if document is None:
        if existing is not None and not existing.retired:
            existing.retired = True
    else:
        if existing is None:
            existing = Practice(lesson_id=lesson.id)
            db.session.add(existing)
        existing.title, existing.retired = document["title"], False
        existing.document_json = json.dumps(document, ensure_ascii=False, sort_keys=True)
        existing.digest = practice_format.digest(document)
    db.session.flush()
    db.session.expire(lesson, ["practice"])


def screens_of(practice: Practice) -> list[dict]:
    """Each step's screen, resolved, for drawing."""
    return [practice_format.resolved_screen(step) for step in practice.steps]
