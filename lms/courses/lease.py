"""The study lease: one accruing player per account.

Every player (a lesson page in a tab or on a device) makes up a random token and sends it with
each heartbeat. The play/start heartbeat takes the account's lease; heartbeats from any other
player are refused (HTTP 409) and credit nothing, so two tabs or two devices never accrue at
once. The lease also carries the account's crediting clock (see lms/courses/progress.py) and,
when a daily cap is configured, what the account has earned today.
"""
from lms.extensions import db


class StudyLease(db.Model):
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", name="fk_study_lease_user_id_user"),
                        primary_key=True, autoincrement=False)
    token = db.Column(db.String(64), nullable=False, default="")
    lesson_id = db.Column(db.Integer, db.ForeignKey("lesson.id", name="fk_study_lease_lesson_id_lesson"))
    acquired_at = db.Column(db.DateTime)
    last_heartbeat_at = db.Column(db.DateTime)
    clock_started_at = db.Column(db.DateTime)
    clock_credited = db.Column(db.Float, nullable=False, default=0.0)
    last_seq = db.Column(db.Integer)  # the holder's highest heartbeat sequence number applied
    day = db.Column(db.Date)  # local (Asia/Shanghai) day of day_credited
    day_credited = db.Column(db.Float, nullable=False, default=0.0)
    version = db.Column(db.Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}
