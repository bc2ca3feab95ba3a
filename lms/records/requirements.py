"""Assignments (Requirement: an audience, a unit subtree or named users must complete a course by
a date) and annual 学时 targets per audience. Rules live in lms/records/assignments.py."""
from lms.accounts.models import utcnow
from lms.extensions import db


class Requirement(db.Model):
    """Who must finish `course` by `due_date`: the named users when there are any, else every
    active user matching the audience (if set) within the unit subtree (if set)."""

    id = db.Column(db.Integer, primary_key=True)
    course_id = db.Column(db.Integer, db.ForeignKey("course.id", name="fk_requirement_course_id_course"),
                          nullable=False, index=True)
    due_date = db.Column(db.Date, nullable=False)
    audience = db.Column(db.String(20))
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id", name="fk_requirement_unit_id_unit"))
    note = db.Column(db.String(200), nullable=False, default="")
    active = db.Column(db.Boolean, nullable=False, default=True)
    created_by_id = db.Column(db.Integer, db.ForeignKey("user.id", name="fk_requirement_created_by_id_user"))
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    course = db.relationship("Course")
    unit = db.relationship("Unit")
    named = db.relationship("RequirementUser", cascade="all, delete-orphan", lazy="selectin",
                            back_populates="requirement")

    @property
    def user_ids(self) -> list[int]:
        return [row.user_id for row in self.named]


class RequirementUser(db.Model):
    requirement_id = db.Column(
        db.Integer, db.ForeignKey("requirement.id", name="fk_requirement_user_requirement_id_requirement"),
        primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", name="fk_requirement_user_user_id_user"),
                        primary_key=True, index=True)

    requirement = db.relationship(Requirement, back_populates="named")
    user = db.relationship("User")


class AnnualTarget(db.Model):
    """The online 学时 an audience must reach each calendar year; overrides Config.ANNUAL_TARGETS."""

    audience = db.Column(db.String(20), primary_key=True)
    hours = db.Column(db.Numeric(6, 2), nullable=False)
    updated_by_id = db.Column(db.Integer, db.ForeignKey("user.id", name="fk_annual_target_updated_by_id_user"))
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
