"""The ledger: crediting a completed course exactly once, yearly totals, export queries."""
from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import in_subtree
from lms.courses.models import Course, LessonProgress
from lms.extensions import db
from lms.quizzes.models import QuizAttempt
from lms.records.audit import audit
from lms.records.models import AuditLog, TrainingRecord

SHANGHAI = ZoneInfo("Asia/Shanghai")


def credit_hours_for_minutes(minutes: float, tiers=None) -> Decimal:
    """学时 from video minutes by the configured tiers (≥30 min → 1, 15–30 → 0.5, <15 → 0.25)."""
    tiers = tiers or current_app.config["CREDIT_TIERS"]
    for threshold, hours in tiers:
        if minutes >= threshold:
            return Decimal(hours)
    return Decimal(tiers[-1][1])


def completion_key(user_id: int, course_id: int) -> str:
    return f"course:{course_id}:user:{user_id}"


def bonus_key(user_id: int, course_id: int) -> str:
    return f"bonus:{course_id}:user:{user_id}"


def certificate_number(user_id: int, course_id: int, earned_at: datetime) -> str:
    """Unique by construction: a learner is credited a course once (completion_key is UNIQUE) and
    the number names that pair; the random tail (48 bits) keeps numbers unguessable for /verify."""
    return f"KP{to_local(earned_at):%Y}-{course_id}-{user_id}-{secrets.token_hex(6).upper()}"


def course_completion_record(user_id: int, course: Course, now: datetime, rules=None) -> TrainingRecord:
    """The ledger record of a completed course, not yet added to the session: its 学时 are those of the
    rules the learner is credited by (lms/courses/rules.py: the version they started under; the course's
    current ones when `rules` is None), and it names that version."""
    lesson_ids = [lesson.id for lesson in course.active_lessons]
    watched = (
        db.session.query(func.coalesce(func.sum(LessonProgress.watched_seconds), 0.0))
        .filter(LessonProgress.user_id == user_id, LessonProgress.lesson_id.in_(lesson_ids))
        .scalar()
    )
    quiz_ids = [lesson.quiz.id for lesson in course.active_lessons if lesson.quiz]
    best_scores = [
        score
        for (score,) in db.session.query(func.max(QuizAttempt.score))
        .filter(QuizAttempt.user_id == user_id, QuizAttempt.quiz_id.in_(quiz_ids))
        .group_by(QuizAttempt.quiz_id)
    ]
    return TrainingRecord(
        user_id=user_id,
        course_id=course.id,
        title=course.title,
        kind="course",
        hours=rules.credit_hours if rules is not None else course.credit_hours,
        course_version=rules.version if rules is not None else course.version,
        watched_minutes=Decimal(str(round(float(watched) / 60, 1))),
        quiz_score=round(sum(best_scores) / len(best_scores)) if best_scores else None,
        earned_at=now,
        source="online",
        certificate_no=certificate_number(user_id, course.id, now),
        completion_key=completion_key(user_id, course.id),
    )


def credit_audit(record: TrainingRecord) -> AuditLog:
    """Add the audit row of a course credit to the session (the caller commits both)."""
    return audit(record.user_id, "record.credit", f"course:{record.course_id}", f"{record.hours} 学时")


def credit_course_completion(user_id: int, course: Course) -> TrainingRecord:
    """Write a course's completion record now, without looking at the learner's progress (for
    callers that decided it elsewhere; learners are credited by lms.courses.completion, which
    decides when it is due). A concurrent second call gets the first's record: the unique
    completion_key makes the database, not this check, the guarantee."""
    key = completion_key(user_id, course.id)
    existing = TrainingRecord.query.filter_by(completion_key=key).first()
    if existing:
        return existing
    record = course_completion_record(user_id, course, utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(record)
        credit_audit(record)
        db.session.commit()
        return record
    except IntegrityError:
        db.session.rollback()
        return TrainingRecord.query.filter_by(completion_key=key).one()


def final_test_bonus_record(user_id: int, course: Course) -> TrainingRecord | None:
    """The package's extra 学时 for a completed course whose end-of-course test (the last lesson's
    quiz) was passed at the FIRST attempt with at least bonus_min_score (retries cannot raise it),
    not yet added to the session; None when not earned. lms.courses.completion writes it with the
    completion, once (its own completion_key)."""
    from lms.quizzes.services import first_attempt

    lessons = course.active_lessons
    if not course.bonus_hours or not lessons or lessons[-1].quiz is None:
        return None
    first = first_attempt(user_id, lessons[-1].quiz.id)
    if first is None or not first.passed or first.score < (course.bonus_min_score or 0):
        return None
    return TrainingRecord(user_id=user_id, course_id=course.id, title=f"{course.title}（结业测验加分）",
                          kind="course", hours=course.bonus_hours, quiz_score=first.score, earned_at=utcnow(),
                          source="online", completion_key=bonus_key(user_id, course.id),
                          note=f"结业测验第一次 {first.score} 分，达到加分线 {course.bonus_min_score} 分")


def year_bounds_utc(year: int) -> tuple[datetime, datetime]:
    """A calendar year in Asia/Shanghai, as naive UTC bounds [start, end)."""
    return day_start_utc(date(year, 1, 1)), day_start_utc(date(year + 1, 1, 1))


def day_start_utc(day: date) -> datetime:
    local = datetime.combine(day, time.min, tzinfo=SHANGHAI)
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def to_local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(SHANGHAI)


def annual_target(audience: str) -> Decimal:
    """The audience's yearly 学时 target: set by an admin (AnnualTarget), else Config.ANNUAL_TARGETS."""
    from lms.records.requirements import AnnualTarget

    row = db.session.get(AnnualTarget, audience)
    if row is not None:
        return row.hours
    return Decimal(str(current_app.config["ANNUAL_TARGETS"].get(audience, 0)))


FIRST_RECORD_YEAR = 2000


class BadYear(ValueError):
    """A requested year outside first..last, or not a number."""

    def __init__(self, first: int, last: int):
        super().__init__(f"year must be {first}..{last}")
        self.first, self.last = first, last


def report_year(text: str | None) -> int:
    """The year a page asks for (?year=): this year when empty; BadYear unless ASCII digits within
    FIRST_RECORD_YEAR..next year (no records lie outside, and year 9999 has no end to compute)."""
    this_year = to_local(utcnow()).year
    if text is None or not text.strip():
        return this_year
    text = text.strip()
    if not (text.isascii() and text.isdigit() and FIRST_RECORD_YEAR <= int(text) <= this_year + 1):
        raise BadYear(FIRST_RECORD_YEAR, this_year + 1)
    return int(text)


def my_hours(user, year: int | None = None) -> dict:
    year = year or to_local(utcnow()).year
    start, end = year_bounds_utc(year)
    records = (
        TrainingRecord.query.filter(
            TrainingRecord.user_id == user.id,
            TrainingRecord.earned_at >= start,
            TrainingRecord.earned_at < end,
        )
        .order_by(TrainingRecord.earned_at.desc(), TrainingRecord.id.desc())
        .all()
    )
    total = sum((r.hours for r in records), Decimal("0"))
    target = annual_target(user.audience)
    return {
        "year": year,
        "records": records,
        "total": total,
        "target": target,
        "met": target > 0 and total >= target,
        "percent": min(100, int(total * 100 / target)) if target else 100,
    }


def _ledger_filters(query, date_from: date | None, date_to: date | None, unit: Unit | None,
                    audience: str | None):
    """The export filters on a query joining TrainingRecord, User and Unit; `date_to` is inclusive
    (local days) and `unit` covers its whole subtree."""
    if date_from:
        query = query.filter(TrainingRecord.earned_at >= day_start_utc(date_from))
    if date_to:
        query = query.filter(TrainingRecord.earned_at < day_start_utc(date_to + timedelta(days=1)))
    if unit is not None:
        query = query.filter(in_subtree(unit))
    if audience:
        query = query.filter(User.audience == audience)
    return query


def records_query(date_from: date | None = None, date_to: date | None = None,
                  unit: Unit | None = None, audience: str | None = None):
    """Ledger rows with their users and units, filtered, oldest first."""
    query = (
        db.session.query(TrainingRecord, User, Unit)
        .select_from(TrainingRecord)  # kept by with_entities (lms/records/export_sql.py)
        .join(User, TrainingRecord.user_id == User.id)
        .join(Unit, User.unit_id == Unit.id)
    )
    query = _ledger_filters(query, date_from, date_to, unit, audience)
    return query.order_by(TrainingRecord.earned_at, TrainingRecord.id)


def summary_query(date_from: date | None = None, date_to: date | None = None,
                  unit: Unit | None = None, audience: str | None = None):
    """One row per person with ledger records in the period (same filters as records_query):
    full_name, username, audience, unit_name, unit_code, total_hours — summed by the database."""
    query = (
        db.session.query(User.full_name, User.username, User.audience, Unit.name.label("unit_name"),
                         Unit.code.label("unit_code"), func.sum(TrainingRecord.hours).label("total_hours"))
        .select_from(TrainingRecord)
        .join(User, TrainingRecord.user_id == User.id)
        .join(Unit, User.unit_id == Unit.id)
    )
    query = _ledger_filters(query, date_from, date_to, unit, audience)
    return query.group_by(User.id, Unit.id).order_by(Unit.code, User.username)
