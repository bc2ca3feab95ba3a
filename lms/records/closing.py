"""Closing a year (年度关账): after an administrator closes year Y for a unit's subtree, nothing dated in Y
(Asia/Shanghai) is added to the ledger for anyone in that subtree — no course credit, no offline
activity, no correction — until the year is explicitly re-opened, with a reason, in the audit log.

The rule is enforced for the whole class of writes, not by each caller: an `after_insert` listener on
TrainingRecord refuses the row with YearClosed, aborting the flush (one indexed query per record; the
closed_year table holds a handful of rows per year). Callers catch YearClosed to tell the user;
lms.courses.completion keeps the learner's progress and simply does not credit. Rows written by SQL
that bypasses the ORM (Core bulk inserts) are not checked.

State: one ClosedYear row per (year, unit); closed while `reopened_at` is NULL. Closing again updates
the row; the history of closings and re-openings is in the audit log ("year.close", "year.reopen").
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import event, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import in_subtree, oversight_root, unit_in_subtree
from lms.extensions import db
from lms.records.audit import audit
from lms.records.models import TrainingRecord
from lms.records.services import FIRST_RECORD_YEAR, to_local

MIN_REASON = 4  # characters: "补录" alone says too little to audit
CLOSING_ROLES = ("admin", "unit_admin")


class YearClosed(ValueError):
    """A ledger record dated in a year closed for the person's unit or one of its ancestors."""

    def __init__(self, year: int, unit_name: str):
        super().__init__(_("%(year)s 年度已关账（单位：%(unit)s），如需补录或更正请先重新开放", year=year, unit=unit_name))
        self.year, self.unit_name = year, unit_name


class ClosingError(ValueError):
    """Bad input to close/re-open, naming the form field it is about; nothing was saved."""

    def __init__(self, field: str, message: str, conflict: bool = False):
        super().__init__(message)
        self.field, self.message, self.conflict = field, message, conflict


class ClosedYear(db.Model):
    """Year `year` closed for `unit`'s subtree (while reopened_at is NULL)."""

    id = db.Column(db.Integer, primary_key=True)
    year = db.Column(db.Integer, nullable=False)
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), nullable=False)
    closed_by_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    closed_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    reopened_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    reopened_at = db.Column(db.DateTime)
    reason = db.Column(db.Text)  # why it was re-opened

    unit = db.relationship(Unit)
    closed_by = db.relationship(User, foreign_keys=[closed_by_id])
    reopened_by = db.relationship(User, foreign_keys=[reopened_by_id])

    # year first: the credit check looks up the year's rows by this index
    __table_args__ = (db.UniqueConstraint("year", "unit_id", name="uq_closed_year_year_unit"),)

    @property
    def is_closed(self) -> bool:
        return self.reopened_at is None


def closing_unit(connection, user_id: int, year: int) -> str | None:
    """The name of the unit whose closing of `year` covers `user_id` (their unit or an ancestor), else None."""
    closed = aliased(Unit)
    own_path = select(Unit.path).join(User, User.unit_id == Unit.id).where(User.id == user_id).scalar_subquery()
    return connection.execute(
        select(closed.name)
        .select_from(ClosedYear)
        .join(closed, closed.id == ClosedYear.unit_id)
        .where(ClosedYear.year == year, ClosedYear.reopened_at.is_(None),
               func.substr(own_path, 1, func.length(closed.path)) == closed.path)
        .limit(1)
    ).scalar()


@event.listens_for(TrainingRecord, "after_insert")
def _refuse_closed_year(mapper, connection, target):
    """Right after the INSERT, in its transaction: raising here aborts the flush, so the row is never
    committed. After, not before: on SQLite a read before a transaction's first write takes a snapshot
    that cannot become a write once another writer committed ("database is locked" at once, no waiting),
    while after the INSERT this connection already holds the write lock."""
    year = to_local(target.earned_at or utcnow()).year
    unit_name = closing_unit(connection, target.user_id, year)
    if unit_name is not None:
        raise YearClosed(year, unit_name)


# ---- closing and re-opening ---------------------------------------------------------------------

def may_close(actor: User, unit: Unit) -> bool:
    return actor.role in CLOSING_ROLES and unit_in_subtree(unit, oversight_root(actor))


def close_year(actor: User, unit: Unit, year: int) -> ClosedYear:
    """Close `year` for `unit`'s subtree (PermissionError outside the actor's scope; ClosingError if it
    is closed already). Commits."""
    if not may_close(actor, unit):
        raise PermissionError(unit.code)
    this_year = to_local(utcnow()).year
    if not FIRST_RECORD_YEAR <= year <= this_year:
        raise ClosingError("year", _("年度应在 %(first)s 到 %(last)s 之间", first=FIRST_RECORD_YEAR, last=this_year))
    row = ClosedYear.query.filter_by(year=year, unit_id=unit.id).first()
    if row is not None and row.is_closed:
        raise ClosingError("year", _("%(year)s 年度已对“%(unit)s”关账", year=year, unit=unit.name), conflict=True)
    try:
        with db.session.begin_nested():
            if row is None:
                row = ClosedYear(year=year, unit_id=unit.id, closed_by_id=actor.id, closed_at=utcnow())
                db.session.add(row)
            else:  # closing again after a re-opening: the row holds the current state, the audit log the history
                row.closed_by_id, row.closed_at = actor.id, utcnow()
                row.reopened_by_id = row.reopened_at = row.reason = None
    except IntegrityError:  # closed by a concurrent request
        db.session.rollback()
        raise ClosingError("year", _("%(year)s 年度已对“%(unit)s”关账", year=year, unit=unit.name),
                           conflict=True) from None
    audit(actor, "year.close", unit, str(year))
    db.session.commit()
    return row


def reopen_year(actor: User, row: ClosedYear, reason: str) -> ClosedYear:
    """Re-open a closed year: an explicit act with a reason, audited. Commits."""
    if not may_close(actor, row.unit):
        raise PermissionError(row.unit.code)
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise ClosingError("reason", _("请写明重新开放的原因（至少 %(n)s 个字）", n=MIN_REASON))
    if not row.is_closed:
        raise ClosingError("reason", _("%(year)s 年度对“%(unit)s”并未关账", year=row.year, unit=row.unit.name),
                           conflict=True)
    row.reopened_by_id, row.reopened_at, row.reason = actor.id, utcnow(), reason
    audit(actor, "year.reopen", row.unit, f"{row.year}：{reason}")
    db.session.commit()
    return row


def closings_for(actor: User) -> tuple[list[ClosedYear], list[ClosedYear]]:
    """(rows the actor manages — their subtree's; rows above them that still bind their subtree), newest
    year first."""
    root = oversight_root(actor)
    query = ClosedYear.query.join(Unit, Unit.id == ClosedYear.unit_id).order_by(ClosedYear.year.desc(), Unit.path)
    if root is None:
        return query.all(), []
    own = query.filter(in_subtree(root)).all()
    above = query.filter(ClosedYear.reopened_at.is_(None), Unit.id != root.id,
                         func.substr(literal(root.path), 1, func.length(Unit.path)) == Unit.path).all()
    return own, above
