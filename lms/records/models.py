from sqlalchemy import event

from lms.accounts.models import utcnow
from lms.extensions import db

RECORD_KINDS = ("course", "offline", "correction", "contest")


class LedgerIsAppendOnly(RuntimeError):
    pass


class TrainingRecord(db.Model):
    """One credited entry of 学时. Append-only: corrections are reversal records, never edits."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False)
    course_id = db.Column(db.Integer, db.ForeignKey("course.id"))
    title = db.Column(db.String(200), nullable=False)  # course/activity title as credited
    kind = db.Column(db.String(20), nullable=False, default="course")
    hours = db.Column(db.Numeric(6, 2), nullable=False)
    watched_minutes = db.Column(db.Numeric(8, 1))
    quiz_score = db.Column(db.Integer)
    earned_at = db.Column(db.DateTime, nullable=False, default=utcnow)  # UTC
    source = db.Column(db.String(40), nullable=False)  # online/offline/admin
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    certificate_no = db.Column(db.String(40), unique=True)
    # "course:<course_id>:user:<user_id>" for a course completion: the database itself
    # refuses a second credit, whatever races in the application.
    completion_key = db.Column(db.String(80), unique=True)
    reverses_id = db.Column(db.Integer, db.ForeignKey("training_record.id"))
    note = db.Column(db.Text)
    # The version of the course's crediting rules this record was credited under (CourseVersion);
    # NULL for records that are not a course's, and for those credited before courses had versions (1).
    course_version = db.Column(db.Integer)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    user = db.relationship("User", foreign_keys=[user_id])
    course = db.relationship("Course")

    # Covering indexes: the console's sums of 学时 by period read only the index, never the table,
    # for the whole county (earned_at), a unit subtree (user_id) and an instructor's courses (course_id);
    # the last also answers "who finished course X" (lms/records/assignments.py).
    __table_args__ = (
        db.Index("ix_training_record_earned", "earned_at", "user_id", "hours"),
        db.Index("ix_training_record_user_earned", "user_id", "earned_at", "hours"),
        db.Index("ix_training_record_course_kind", "course_id", "kind", "user_id", "earned_at", "hours"),
    )


class AuditLog(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    actor_id = db.Column(db.Integer, db.ForeignKey("user.id"), index=True)
    action = db.Column(db.String(60), nullable=False)
    target = db.Column(db.String(120), index=True)  # "<kind>:<id>" (lms/records/audit.py)
    detail = db.Column(db.Text)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)


@event.listens_for(TrainingRecord, "before_update")
@event.listens_for(TrainingRecord, "before_delete")
def _refuse_ledger_edit(mapper, connection, target):
    raise LedgerIsAppendOnly("training records are append-only; write a correction record instead")
