from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import CheckConstraint

from lms.accounts.passwords import hash_password
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
    parent_id = db.Column(db.Integer, db.ForeignKey("unit.id"), index=True)
    path = db.Column(db.String(700), nullable=False, index=True)
    # a deactivated unit keeps its people and records but takes nobody new (lms/accounts/units.py)
    active = db.Column(db.Boolean, nullable=False, default=True, server_default=db.true())
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow, server_default=db.func.now())

    parent = db.relationship("Unit", remote_side=[id], backref="children")


class User(UserMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), unique=True, nullable=False)
    full_name = db.Column(db.String(80), nullable=False)
    password_hash = db.Column(db.String(256), nullable=False)
    role = db.Column(db.String(20), nullable=False, default="learner")
    audience = db.Column(db.String(20), nullable=False)
    unit_id = db.Column(db.Integer, db.ForeignKey("unit.id"), nullable=False, index=True)
    active = db.Column(db.Boolean, nullable=False, default=True)
    phone = db.Column(db.String(20))  # searched in the people list (lms/accounts/people.py)
    # set by an administrator's reset (or a generated first password): the next page is the password change
    must_change_password = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    # part of every session cookie's user id: raising it ends all of the user's sessions (sign-out, new password)
    session_version = db.Column(db.Integer, nullable=False, default=0, server_default="0")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    data_saver = db.Column(db.Boolean, nullable=False, default=False)  # 省流量: always the smallest rendition
    # 长辈版 (issue 5): NULL elder_mode = not chosen (on by default for the elder audience)
    elder_mode = db.Column(db.Boolean)
    font_scale = db.Column(db.String(10))  # standard/large/xlarge; NULL = standard
    pin_hash = db.Column(db.String(256))  # 4-digit tablet PIN, hashed like a password
    photo_path = db.Column(db.String(300))  # relative to DATA_DIR, shown on the class roster

    unit = db.relationship(Unit)

    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role_known"),
        CheckConstraint(f"audience IN {AUDIENCE_CODES!r}", name="audience_known"),
        # the people list (lms/accounts/people.py): its order and keyset pages, and every search and filter
        # answered from the index alone (no table lookup per person scanned)
        db.Index("ix_user_list", "full_name", "id", "username", "phone", "unit_id", "audience", "role", "active",
                 "must_change_password"),
    )

    def set_password(self, password: str) -> None:
        """A new password also ends every session signed in with the old one."""
        self.password_hash = hash_password(password)
        self.session_version = (self.session_version or 0) + 1

    def get_id(self) -> str:
        """What Flask-Login keeps in the session cookie: a cookie of an ended session no longer matches."""
        return f"{self.id}:{self.session_version or 0}"

    @property
    def is_active(self):
        return self.active

    @property
    def can_export_hours(self):
        return self.role in ("admin", "unit_admin")


class SignInThrottle(db.Model):
    """Failed sign-ins (passwords and tablet PINs) counted per scope, for every web process at once.

    `subject` is what is being guessed (a typed account name, a learner), `source` where the guesses
    come from (a client address, a tablet; "" for limits across all sources). lms/accounts/throttle.py
    reserves an attempt here before any password is checked.
    """

    __tablename__ = "signin_throttle"

    id = db.Column(db.Integer, primary_key=True)
    scope = db.Column(db.String(20), nullable=False)
    subject = db.Column(db.String(64), nullable=False)
    source = db.Column(db.String(64), nullable=False, default="")
    failures = db.Column(db.Integer, nullable=False, default=0)
    window_start = db.Column(db.DateTime, nullable=False)
    blocked_until = db.Column(db.DateTime)

    __table_args__ = (db.UniqueConstraint("scope", "subject", "source", name="uq_signin_throttle_key"),)
