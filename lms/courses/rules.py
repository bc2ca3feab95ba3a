"""A course's crediting rules — its 学时 rule and its versions — and which of them a learner is credited by.

The rules that decide what a completion is worth and when it is due are the course's credit hours,
its watch threshold, whether it is strict, and the lessons it requires (its active lessons). Every
change to a course or its lessons ends with `record_rules(course)` in the same transaction: it
recomputes the hours of a course on the video-length rule, and compares the rules with those kept for
the course's current version (CourseVersion). When they differ and a learner has already started
under that version, the course moves to a new version with the new rules; when nobody has, the
current version's rules are simply rewritten (a draft does not collect versions).

A learner has started a course once they have a progress row in it (a video heartbeat, a text lesson
opened, a lesson completed); each row records the course's version when it was made
(`_stamp_course_version`). The learner's earliest row fixes the version they are credited by:
`learner_rules` gives its credit hours, watch threshold and required lessons (of those, the ones still
active: a retired lesson stops counting for everyone, a lesson added later is not required of them).
Whether a course is strict is not kept per learner: it governs how the player may be used from the
next heartbeat on, for everyone, and never takes back time already earned (docs/architecture.md).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import event, exists, func, select

from lms.courses.models import Course, CourseVersion, Lesson, LessonProgress
from lms.extensions import db

CREDIT_RULES = ("tiers", "fixed")


@dataclass(frozen=True)
class Rules:
    """The crediting rules of one version of a course."""

    version: int
    credit_hours: Decimal
    watch_threshold: float
    strict: bool
    lesson_ids: frozenset[int]

    def required_lessons(self, course: Course) -> list[Lesson]:
        """The active lessons this version requires (every active lesson when none of its own is left)."""
        active = course.active_lessons
        required = [lesson for lesson in active if lesson.id in self.lesson_ids]
        return required or active


def video_minutes(course: Course) -> float:
    """Minutes of video of the course's active lessons (ready videos only)."""
    return sum(lesson.video.duration or 0.0 for lesson in course.active_lessons
               if lesson.video is not None and lesson.video.ready) / 60


def tiered_hours(course: Course) -> Decimal:
    """学时 by the length of the course's videos (Config.CREDIT_TIERS: ≥ 30 min → 1, 15–30 → 0.5, < 15 → 0.25)."""
    from lms.records.services import credit_hours_for_minutes

    return credit_hours_for_minutes(video_minutes(course))


def current_rules(course: Course) -> Rules:
    return Rules(version=course.version or 1, credit_hours=Decimal(str(course.credit_hours)).quantize(Decimal("0.01")),
                 watch_threshold=float(course.watch_threshold), strict=bool(course.strict),
                 lesson_ids=frozenset(lesson.id for lesson in course.active_lessons))


def _rules_of(row: CourseVersion) -> Rules:
    return Rules(version=row.version, credit_hours=Decimal(str(row.credit_hours)).quantize(Decimal("0.01")),
                 watch_threshold=float(row.watch_threshold), strict=bool(row.strict),
                 lesson_ids=frozenset(row.lesson_ids))


def version_started(course: Course, version: int) -> bool:
    """Whether any learner has started the course under `version` (a progress row made under it)."""
    lessons = select(Lesson.id).where(Lesson.course_id == course.id)
    return db.session.query(exists().where(LessonProgress.lesson_id.in_(lessons),
                                           LessonProgress.course_version == version)).scalar()


@dataclass
class RuleChange:
    """What record_rules did: the version before and after, and the rules that changed (for the audit log)."""

    old_version: int
    new_version: int
    changes: list[str]

    @property
    def bumped(self) -> bool:
        return self.new_version != self.old_version


def _differences(old: Rules, new: Rules) -> list[str]:
    changes = []
    if old.credit_hours != new.credit_hours:
        changes.append(f"学时 {old.credit_hours} → {new.credit_hours}")
    if abs(old.watch_threshold - new.watch_threshold) > 1e-9:
        changes.append(f"观看比例 {round(old.watch_threshold * 100)}% → {round(new.watch_threshold * 100)}%")
    if old.strict != new.strict:
        changes.append(f"严格计时 {'是' if old.strict else '否'} → {'是' if new.strict else '否'}")
    if old.lesson_ids != new.lesson_ids:
        added, dropped = sorted(new.lesson_ids - old.lesson_ids), sorted(old.lesson_ids - new.lesson_ids)
        parts = ([f"加入 lesson:{', lesson:'.join(map(str, added))}"] if added else []) + \
                ([f"不再要求 lesson:{', lesson:'.join(map(str, dropped))}"] if dropped else [])
        changes.append("必学课时 " + "；".join(parts))
    return changes


def record_rules(course: Course) -> RuleChange:
    """After a change to `course` or its lessons, in the caller's transaction (the caller commits):
    apply its 学时 rule, then keep its rules under its version — a new version when they changed and a
    learner started under the current one. Returns what changed."""
    if course.credit_rule == "tiers":
        course.credit_hours = tiered_hours(course)
    db.session.flush()
    course.version = course.version or 1
    new = current_rules(course)
    row = db.session.get(CourseVersion, (course.id, course.version))
    if row is None:
        db.session.add(_version_row(course, new))
        db.session.flush()
        return RuleChange(course.version, course.version, [])
    changes = _differences(_rules_of(row), new)
    if not changes:
        return RuleChange(course.version, course.version, [])
    old_version = course.version
    if version_started(course, old_version):
        course.version = old_version + 1
        db.session.add(_version_row(course, current_rules(course)))
    else:
        row.credit_hours, row.watch_threshold, row.strict = new.credit_hours, new.watch_threshold, new.strict
        row.lesson_ids_json = json.dumps(sorted(new.lesson_ids))
    db.session.flush()
    return RuleChange(old_version, course.version, changes)


def _version_row(course: Course, rules: Rules) -> CourseVersion:
    return CourseVersion(course_id=course.id, version=course.version, credit_hours=rules.credit_hours,
                         watch_threshold=rules.watch_threshold, strict=rules.strict,
                         lesson_ids_json=json.dumps(sorted(rules.lesson_ids)))


def learner_version(user_id: int, course: Course) -> int | None:
    """The version the learner started the course under (their earliest progress row's), or None."""
    return (db.session.query(func.min(func.coalesce(LessonProgress.course_version, 1)))
            .join(Lesson, Lesson.id == LessonProgress.lesson_id)
            .filter(LessonProgress.user_id == user_id, Lesson.course_id == course.id).scalar())


def learner_rules(user_id: int, course: Course) -> Rules:
    """The rules the learner is credited by: those kept for the earlier version they started under; the
    course's own (current) rules when they started under the current version, or have not started."""
    version = learner_version(user_id, course)
    if version is None or version >= (course.version or 1):
        return current_rules(course)
    row = db.session.get(CourseVersion, (course.id, version))
    return _rules_of(row) if row is not None else current_rules(course)


def versions_of(course: Course) -> list[CourseVersion]:
    return CourseVersion.query.filter_by(course_id=course.id).order_by(CourseVersion.version.desc()).all()


def course_version_now(lesson_id):
    """The version of `lesson_id`'s course (a value or a bound parameter), as a subquery that the INSERT of
    a progress row evaluates: the row records the version of that moment."""
    course_id = select(Lesson.course_id).where(Lesson.id == lesson_id).scalar_subquery()
    return select(Course.version).where(Course.id == course_id).scalar_subquery()


@event.listens_for(LessonProgress, "before_insert")
def _stamp_course_version(mapper, connection, target: LessonProgress) -> None:
    """A new progress row records the course's version at that moment, in the INSERT itself (a first
    heartbeat's row, inserted without the ORM, is stamped the same way: services._first_rows)."""
    if target.course_version is None:
        target.course_version = course_version_now(target.lesson_id)
