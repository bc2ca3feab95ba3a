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
from lms.courses.models import Course, LessonProgress
from lms.extensions import db
from lms.quizzes.models import QuizAttempt
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


def credit_course_completion(user_id: int, course: Course) -> TrainingRecord:
    """Write the one ledger record of a completed course; a concurrent second call gets the first's.

    The unique completion_key makes the database, not this check, the guarantee.
    """
    key = completion_key(user_id, course.id)
    existing = TrainingRecord.query.filter_by(completion_key=key).first()
    if existing:
        return existing
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
    now = utcnow()
    record = TrainingRecord(
        user_id=user_id,
        course_id=course.id,
        title=course.title,
        kind="course",
        hours=course.credit_hours,
        watched_minutes=Decimal(str(round(float(watched) / 60, 1))),
        quiz_score=round(sum(best_scores) / len(best_scores)) if best_scores else None,
        earned_at=now,
        source="online",
        certificate_no=f"KP{now:%Y}-{secrets.token_hex(4).upper()}",
        completion_key=key,
    )
    try:
        with db.session.begin_nested():
            db.session.add(record)
        db.session.add(AuditLog(actor_id=user_id, action="record.credit", target=f"course:{course.id}",
                                detail=f"{record.hours} 学时"))
        db.session.commit()
        return record
    except IntegrityError:
        db.session.rollback()
        return TrainingRecord.query.filter_by(completion_key=key).one()


def credit_final_test_bonus(user_id: int, course: Course) -> TrainingRecord | None:
    """The package's extra 学时 for a completed course whose end-of-course test (the last lesson's
    quiz) was passed with at least bonus_min_score — once, like the completion itself."""
    lessons = course.active_lessons
    if not course.bonus_hours or not lessons or lessons[-1].quiz is None:
        return None
    best = (db.session.query(func.max(QuizAttempt.score))
            .filter_by(user_id=user_id, quiz_id=lessons[-1].quiz.id, passed=True).scalar())
    if best is None or best < (course.bonus_min_score or 0):
        return None
    key = f"bonus:{course.id}:user:{user_id}"
    existing = TrainingRecord.query.filter_by(completion_key=key).first()
    if existing:
        return existing
    record = TrainingRecord(user_id=user_id, course_id=course.id, title=f"{course.title}（结业测验加分）",
                            kind="course", hours=course.bonus_hours, quiz_score=best, earned_at=utcnow(),
                            source="online", completion_key=key,
                            note=f"结业测验 {best} 分，达到加分线 {course.bonus_min_score} 分")
    try:
        with db.session.begin_nested():
            db.session.add(record)
        db.session.commit()
        return record
    except IntegrityError:
        db.session.rollback()
        return TrainingRecord.query.filter_by(completion_key=key).one()


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


class OutsideScope(PermissionError):
    """A unit administrator asked for a unit outside their own subtree."""


def scoped_unit(user, unit: Unit | None) -> Unit | None:
    """The unit a report may cover: admins any unit (None = all); unit admins their own
    subtree only — their own unit when none is asked, OutsideScope beyond it."""
    if user.role != "unit_admin":
        return unit
    own = user.unit
    if unit is None:
        return own
    if not unit.path.startswith(own.path):
        raise OutsideScope(unit.code)
    return unit


def records_query(date_from: date | None = None, date_to: date | None = None,
                  unit: Unit | None = None, audience: str | None = None):
    """Ledger rows with their users and units, filtered; `date_to` is inclusive (local days)."""
    query = (
        db.session.query(TrainingRecord, User, Unit)
        .join(User, TrainingRecord.user_id == User.id)
        .join(Unit, User.unit_id == Unit.id)
    )
    if date_from:
        query = query.filter(TrainingRecord.earned_at >= day_start_utc(date_from))
    if date_to:
        query = query.filter(TrainingRecord.earned_at < day_start_utc(date_to + timedelta(days=1)))
    if unit is not None:
        query = query.filter(Unit.path.startswith(unit.path))
    if audience:
        query = query.filter(User.audience == audience)
    return query.order_by(TrainingRecord.earned_at, TrainingRecord.id)
