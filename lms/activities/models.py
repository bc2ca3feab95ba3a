"""Offline activities, their audiences, and who attended (each attendance points at its ledger record)."""
from sqlalchemy import CheckConstraint

from lms.accounts.models import utcnow
from lms.audiences import AUDIENCE_CODES
from lms.extensions import db

# kind codes; their Chinese labels are lms/activities/services.py KINDS
KIND_CODES = ("lecture", "caravan", "field_class", "drill", "exhibition", "other")


class OfflineActivity(db.Model):
    """A 线下科普活动. starts_at/ends_at are naive UTC (entered in Asia/Shanghai); attendance is taken
    only inside that window (a QR scan) or from its start on (roster, paper list)."""

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    kind = db.Column(db.String(20), nullable=False)
    starts_at = db.Column(db.DateTime, nullable=False)
    ends_at = db.Column(db.DateTime, nullable=False)
    place = db.Column(db.String(200), nullable=False)
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), nullable=False, index=True)
    # 学时 credited per attendance; changing it later leaves records already credited as they are
    hours = db.Column(db.Numeric(6, 2), nullable=False)
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    unit = db.relationship("Unit")
    created_by = db.relationship("User")
    audience_rows = db.relationship("ActivityAudience", cascade="all, delete-orphan", lazy="selectin")

    __table_args__ = (
        CheckConstraint(f"kind IN {KIND_CODES!r}", name="kind_known"),
        CheckConstraint("ends_at > starts_at", name="window_order"),
        CheckConstraint("hours > 0 AND hours <= 8", name="hours_range"),
        db.Index("ix_offline_activity_starts_at", "starts_at"),
    )

    @property
    def audiences(self) -> list[str]:
        """In the programme's order of audiences (lms/audiences.py)."""
        chosen = {row.audience for row in self.audience_rows}
        return [code for code in AUDIENCE_CODES if code in chosen]


class ActivityAudience(db.Model):
    activity_id = db.Column(db.Integer, db.ForeignKey("offline_activity.id"), primary_key=True)
    audience = db.Column(db.String(20), primary_key=True)


class ActivityAttendance(db.Model):
    """Who attended, for the roster's 已签到 and the counts; written with its ledger record in one
    savepoint. The record is the credit: this row only indexes it by activity."""

    activity_id = db.Column(db.Integer, db.ForeignKey("offline_activity.id"), primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), primary_key=True)
    record_id = db.Column(db.Integer, db.ForeignKey("training_record.id"), nullable=False, unique=True)
    method = db.Column(db.String(10), nullable=False)  # qr / roster / paper
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
