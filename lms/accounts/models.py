from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import CheckConstraint
from werkzeug.security import check_password_hash, generate_password_hash

from lms.audiences import AUDIENCE_CODES
from lms.extensions import db

ROLES = ("learner", "instructor", "unit_admin", "admin")


def utcnow():
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Unit(db.Model):
    """A node of the unit tree: county → township/department → village/school/class.

    `path` is the materialised path of codes ("/county/town1/"), so a subtree is one prefix query.
    """

    id = db.Column(db.Integer, primary_key=True)
    code = db.Column(db.String(64), unique=True, nullable=False)
    name = db.Column(db.String(120), nullable=False)
    kind = db.Column(db.String(20), nullable=False, default="org")  # county/township/department/village/school/class/org
    parent_id = db.Column(db.Integer, db.ForeignKey("unit.id"))
    path = db.Column(db.String(700), nullable=False, index=True)

    parent = db.relationship("Unit", remote_side=[id], backref="children")


class User(UserMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), unique=True, nullable=False)
    full_name = db.Column(db.String(80), nullable=False)
    password_hash = db.Column(db.String(256), nullable=False)
    role = db.Column(db.String(20), nullable=False, default="learner")
    audience = db.Column(db.String(20), nullable=False)
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), nullable=False)
    active = db.Column(db.Boolean, nullable=False, default=True)
    failed_logins = db.Column(db.Integer, nullable=False, default=0)
    locked_until = db.Column(db.DateTime)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    data_saver = db.Column(db.Boolean, nullable=False, default=False)  # 省流量: always the smallest rendition
    # 长辈版 (issue 5): NULL elder_mode = not chosen (on by default for the elder audience)
    elder_mode = db.Column(db.Boolean)
    font_scale = db.Column(db.String(10))  # standard/large/xlarge; NULL = standard
    pin_hash = db.Column(db.String(256))  # 4-digit tablet PIN, hashed like a password
    pin_failures = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    pin_locked = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    photo_path = db.Column(db.String(300))  # relative to DATA_DIR, shown on the class roster

    unit = db.relationship(Unit)

    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role_known"),
        CheckConstraint(f"audience IN {AUDIENCE_CODES!r}", name="audience_known"),
    )

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self):
        return self.active

    @property
    def can_export_hours(self):
        return self.role in ("admin", "unit_admin")
