"""请老师帮忙: a learner on a class tablet asks the teacher to come over."""
from lms.accounts.models import utcnow
from lms.extensions import db


class HelpRequest(db.Model):
    """One press of 请老师帮忙. Open while `open_key` is set: "user:<id>" for a signed-in learner,
    "tablet:<id>" before sign-in (roster, PIN page). The unique key is what makes pressing twice, or
    two requests racing, one request; closing sets it to NULL (NULLs never collide), keeping the row."""

    id = db.Column(db.Integer, primary_key=True)
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), nullable=False)
    tablet = db.Column(db.String(40), nullable=False)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"))  # who, when known (signed in, or the PIN page's name)
    signed_in = db.Column(db.Boolean, nullable=False, default=False)
    page_path = db.Column(db.String(255), nullable=False, default="")
    page_title = db.Column(db.String(120), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    open_key = db.Column(db.String(80), unique=True)
    closed_at = db.Column(db.DateTime)
    closed_how = db.Column(db.String(12))  # cleared (by a teacher) / cancelled (by the learner) / expired
    closed_by_id = db.Column(db.Integer, db.ForeignKey("user.id"))

    unit = db.relationship("Unit")
    user = db.relationship("User", foreign_keys=[user_id])

    __table_args__ = (db.Index("ix_help_request_unit_id_created_at", "unit_id", "created_at"),)
