"""Rollups of the ledger for the dashboard (lms/records/dashboard.py), kept up to date by the database.

- ledger_user_year: per person and year (Asia/Shanghai) the sum of their records' 学时 and how many there
  are — corrections (negative) and offline records included, as in the export;
- ledger_course_year: per course and year the number of people credited with it (a kind="course" record).

Why: summing a year of a county's ledger per person reads ~500,000 index entries (0.3–0.9 s at a million
records on a shared machine), counting people per course as many again; the rollups hold ≤ one row per
person (per course) and year, so the dashboard reads 50,000 rows instead (scripts/bench/dashboard.py).

Kept by AFTER INSERT triggers on training_record (migration 0018), not by an ORM hook: every way a record
is written — ORM, Core bulk inserts, the benches' raw SQL — passes through them. The ledger is append-only
(UPDATE and DELETE are refused), so inserts are all there is to follow. They are keyed by person, not
by unit or audience: a person who moves to another unit (or audience) takes their totals along, exactly
as the export, which joins each person's current unit, takes their records along.

A person counts once per course and year: the trigger adds them only when no other kind="course" record
of theirs for that course lies in that year (a completion and its 结业测验加分 record are one person).

`recount()` computes both from the ledger itself; the tests check the rollups equal it after a mix of writes.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import distinct, func, select

from lms.extensions import db
from lms.records.models import TrainingRecord
from lms.records.services import to_local, year_bounds_utc


class LedgerUserYear(db.Model):
    __tablename__ = "ledger_user_year"

    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), primary_key=True)
    year = db.Column(db.Integer, primary_key=True)  # Asia/Shanghai calendar year of earned_at
    hours = db.Column(db.Numeric(10, 2), nullable=False)
    records = db.Column(db.Integer, nullable=False)

    # a year of the whole county read from the index alone
    __table_args__ = (db.Index("ix_ledger_user_year_year", "year", "user_id", "hours"),)


class LedgerCourseYear(db.Model):
    __tablename__ = "ledger_course_year"

    course_id = db.Column(db.Integer, db.ForeignKey("course.id"), primary_key=True)
    year = db.Column(db.Integer, primary_key=True)
    learners = db.Column(db.Integer, nullable=False)


def stored() -> tuple[dict, dict]:
    """The rollups as they are: ({(user_id, year): (hours, records)}, {(course_id, year): learners})."""
    people = {(user_id, year): (Decimal(str(hours)).quantize(Decimal("0.01")), records)
              for user_id, year, hours, records in db.session.execute(
                  select(LedgerUserYear.user_id, LedgerUserYear.year, LedgerUserYear.hours, LedgerUserYear.records))}
    courses = {(course_id, year): learners for course_id, year, learners in db.session.execute(
        select(LedgerCourseYear.course_id, LedgerCourseYear.year, LedgerCourseYear.learners))}
    return people, courses


def recount() -> tuple[dict, dict]:
    """The same figures summed from the ledger, year by year (local years), in the shape of stored()."""
    people, courses = {}, {}
    first = db.session.execute(select(func.min(TrainingRecord.earned_at))).scalar()
    last = db.session.execute(select(func.max(TrainingRecord.earned_at))).scalar()
    if first is None:
        return people, courses
    for year in range(to_local(first).year, to_local(last).year + 1):
        start, end = year_bounds_utc(year)
        in_year = (TrainingRecord.earned_at >= start, TrainingRecord.earned_at < end)
        for user_id, hours, records in db.session.execute(
                select(TrainingRecord.user_id, func.sum(TrainingRecord.hours), func.count())
                .where(*in_year).group_by(TrainingRecord.user_id)):
            people[(user_id, year)] = (Decimal(str(hours)).quantize(Decimal("0.01")), records)
        for course_id, learners in db.session.execute(
                select(TrainingRecord.course_id, func.count(distinct(TrainingRecord.user_id)))
                .where(*in_year, TrainingRecord.kind == "course", TrainingRecord.course_id.isnot(None))
                .group_by(TrainingRecord.course_id)):
            courses[(course_id, year)] = learners
    return people, courses
