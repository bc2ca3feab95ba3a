"""Configuration from the environment (DESIGN.md, Part 1)."""
import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _instance_dir() -> Path:
    return Path(os.environ.get("LMS_INSTANCE_DIR", PROJECT_ROOT / "instance"))


def _secret_key(instance: Path) -> str:
    """LMS_SECRET_KEY, or one generated once and kept under instance/ so sessions survive restarts."""
    if os.environ.get("LMS_SECRET_KEY"):
        return os.environ["LMS_SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


class Config:
    def __init__(self, **overrides):
        instance = _instance_dir()
        self.INSTANCE_DIR = str(instance)
        self.DATA_DIR = os.environ.get("LMS_DATA_DIR", str(instance / "data"))
        self.SQLALCHEMY_DATABASE_URI = os.environ.get(
            "LMS_DATABASE_URL", f"sqlite:///{instance / 'lms.sqlite3'}"
        )
        self.SECRET_KEY = overrides.pop("SECRET_KEY", None) or _secret_key(instance)
        self.SQLALCHEMY_TRACK_MODIFICATIONS = False
        self.WTF_CSRF_TIME_LIMIT = None  # a lesson page may stay open for an hour
        self.BABEL_DEFAULT_LOCALE = "zh"
        self.BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # progress is written at least every few seconds while transcoding; silence this long = dead worker
        self.JOB_STALE_SECONDS = int(os.environ.get("LMS_JOB_STALE_SECONDS", "120"))
        self.MAX_CONTENT_LENGTH = int(os.environ.get("LMS_MAX_UPLOAD_MB", "2048")) * 1024 * 1024
        # X-Accel-Redirect prefix for media behind nginx (docs/deploy.md); None serves from Flask.
        self.MEDIA_ACCEL_PREFIX = os.environ.get("LMS_MEDIA_ACCEL_PREFIX")
        # Crediting (DESIGN.md "Crediting watched time")
        self.HEARTBEAT_TOLERANCE_SECONDS = 5.0
        self.HEARTBEAT_MAX_RATE = 2.0  # non-strict courses allow up to 2x playback
        # the lease holder's queued heartbeats may continue a session across a network gap this long
        self.HEARTBEAT_OFFLINE_GRACE_SECONDS = 900
        # optional cap on watched time credited per user per local day, in hours (None = no cap)
        cap = os.environ.get("LMS_DAILY_CAP_HOURS")
        self.DAILY_CAP_HOURS = float(cap) if cap else None
        # strict courses: "还在学习吗？" after this long without interaction; then this long to answer
        self.STRICT_IDLE_SECONDS = 600
        self.STRICT_IDLE_ANSWER_SECONDS = 20
        self.ASSIGNMENT_DUE_SOON_DAYS = 14  # "due soon" on the learner's home
        self.DEFAULT_WATCH_THRESHOLD = 0.95
        # minutes of video -> 学时 tiers, checked top-down (cadre-platform practice)
        self.CREDIT_TIERS = [(30, "1.0"), (15, "0.5"), (0, "0.25")]
        # annual online 学时 targets per audience
        self.ANNUAL_TARGETS = {"cadre": 50, "elder": 4, "farmer": 8, "worker": 8, "youth": 6}
        self.LOGIN_MAX_FAILURES = 5
        self.LOGIN_LOCK_SECONDS = 300
        # 长辈版 class tablets: a learner is signed out after this long without a request; the page warns
        # TABLET_IDLE_WARNING seconds before (≥ 20 s, with one large 继续学习 button)
        self.TABLET_IDLE_SECONDS = int(os.environ.get("LMS_TABLET_IDLE_SECONDS", 15 * 60))
        self.TABLET_IDLE_WARNING = 60
        for key, value in overrides.items():
            setattr(self, key, value)
