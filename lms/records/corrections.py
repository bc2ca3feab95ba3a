"""Corrections (更正): an administrator reverses a ledger record, with a reason; the original is never edited.

The reversal is a new TrainingRecord of kind "correction": minus the original's 学时, pointing at it
(reverses_id), dated like it (so it nets out in the same year, and a closed year refuses it — see
lms/records/closing.py), with the completion_key "reversal:<original id>": the database refuses a second
reversal of the same record, also when two requests race. An admin may reverse anyone's record, a unit
admin only those of people in their subtree (lms/accounts/scope.py). A correction is never reversed.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from lms.accounts.scope import oversight_root, unit_in_subtree
from lms.extensions import db
from lms.records.audit import audit
from lms.records.closing import YearClosed, closing_unit
from lms.records.models import TrainingRecord
from lms.records.services import to_local

MIN_REASON = 4  # characters
MAX_REASON = 500
CORRECTING_ROLES = ("admin", "unit_admin")


class CorrectionError(ValueError):
    """A reversal refused, naming the form field it is about ("reason" or "record"); nothing was saved."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def reversal_key(record_id: int) -> str:
    return f"reversal:{record_id}"


def reversal_of(record: TrainingRecord) -> TrainingRecord | None:
    return TrainingRecord.query.filter_by(completion_key=reversal_key(record.id)).first()


def reversed_ids(records) -> set[int]:
    """The ids among `records` that have been reversed (one query, through the unique completion_key)."""
    keys = {reversal_key(record.id): record.id for record in records}
    if not keys:
        return set()
    rows = db.session.query(TrainingRecord.completion_key).filter(TrainingRecord.completion_key.in_(list(keys)))
    return {keys[key] for (key,) in rows}


def may_correct(actor, person) -> bool:
    return actor.role in CORRECTING_ROLES and unit_in_subtree(person.unit, oversight_root(actor))


def reversible(record: TrainingRecord) -> bool:
    return record.kind != "correction" and record.reverses_id is None


ALREADY = _l("这条记录已经更正（撤销）过，不能重复更正")


def refusal(record: TrainingRecord) -> str | None:
    """Why `record` cannot be reversed (None when it can): a correction itself, reversed already, or dated
    in a closed year. The page shows it before asking for a reason; the ledger's listener still decides."""
    if not reversible(record):
        return _("这条记录本身就是更正，不能再更正（撤销更正会让学时重复计算）")
    if reversal_of(record) is not None:
        return str(ALREADY)
    year = to_local(record.earned_at).year
    unit_name = closing_unit(db.session.connection(), record.user_id, year)
    return str(YearClosed(year, unit_name)) if unit_name else None


def reverse_record(actor, record: TrainingRecord, reason: str) -> TrainingRecord:
    """Write the reversal of `record` and its audit row, and commit. PermissionError outside the actor's
    scope; CorrectionError for a correction, a record reversed already, a short reason or a closed year."""
    if not may_correct(actor, record.user):
        raise PermissionError(record.id)
    problem = refusal(record)
    if problem:
        raise CorrectionError("record", problem)
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise CorrectionError("reason", _("请写明更正原因（至少 %(n)s 个字）", n=MIN_REASON))
    if len(reason) > MAX_REASON:
        raise CorrectionError("reason", _("更正原因最多 %(n)s 个字", n=MAX_REASON))
    correction = TrainingRecord(
        user_id=record.user_id, course_id=record.course_id, title=f"更正：{record.title}"[:200], kind="correction",
        hours=-record.hours, earned_at=record.earned_at, source="admin", created_by_id=actor.id,
        completion_key=reversal_key(record.id), reverses_id=record.id, note=reason)
    try:
        with db.session.begin_nested():
            db.session.add(correction)
    except IntegrityError:  # a concurrent request reversed it first
        db.session.rollback()
        raise CorrectionError("record", str(ALREADY)) from None
    except YearClosed as exc:
        db.session.rollback()
        raise CorrectionError("record", str(exc)) from None
    audit(actor, "record.reverse", record, reason)
    db.session.commit()
    return correction
