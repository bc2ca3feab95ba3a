"""Configuration from the environment (DESIGN.md, Part 1)."""
import os
import secrets
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Argon2id cost for new password and PIN hashes (lms/accounts/passwords.py): one of the five settings
# OWASP's Password Storage Cheat Sheet gives as its minimum, each "an equal level of defense" trading
# memory for passes (46 MiB × 1 … 19 MiB × 2 … 7 MiB × 5, 1 lane). Measured on 2-core machines, one
# check of 7 MiB × 5 costs 25 ms of CPU against 33 ms for 19 MiB × 2 (its block stays in the processor's
# cache) and 60 ms for 46 MiB × 1, and each worker's block is 7 MiB instead of 19; werkzeug's scrypt
# (N=32768) used before cost ~100 ms. Hashes of other costs are replaced at the next sign-in.
# scripts/bench/signin.py prints the figure.
PASSWORD_ARGON2 = {"time_cost": 5, "memory_cost": 7 * 1024, "parallelism": 1}


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


def _proxy_count() -> int:
    raw = os.environ.get("LMS_TRUSTED_PROXIES", "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ValueError(f"LMS_TRUSTED_PROXIES must be the number of proxies in front of the app (0, 1, 2 …), not {raw!r}")
    return int(raw)


def _flag(name: str) -> bool | None:
    """An on/off variable: 1/true/yes/on or 0/false/no/off; None when unset."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0, not {raw!r}")


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
        # Reverse proxies in front of the app (nginx: 1). Only then are X-Forwarded-For/-Proto believed;
        # unset, anyone could forge them. See lms/http_security.py and docs/deploy.md.
        self.TRUSTED_PROXIES = _proxy_count()
        # Secure cookies: 1/0; unset = on behind trusted proxies (TLS ends at nginx) or with https URLs
        self.SECURE_COOKIES = _flag("LMS_SECURE_COOKIES")
        # progress is written at least every few seconds while transcoding; silence this long = dead worker
        self.JOB_STALE_SECONDS = int(os.environ.get("LMS_JOB_STALE_SECONDS", "120"))
        # a web export of more rows than this runs as a background job (lms/records/export_jobs.py)
        self.EXPORT_INLINE_MAX_ROWS = 20_000
        # The largest video upload (the whole request); it applies only once the request is judged to
        # come from an author of the lesson's course. Every other request body: MAX_BODY_BYTES.
        self.MAX_CONTENT_LENGTH = int(os.environ.get("LMS_MAX_UPLOAD_MB", "2048")) * 1024 * 1024
        self.MAX_BODY_BYTES = 16 * 1024 * 1024
        # JSON APIs (heartbeats, settings) take this much at most, judged before the body is read
        # (lms/media/upload_gate.py json_body); a heartbeat of the most intervals allowed (200) is ~8 KB
        self.MAX_JSON_BYTES = 16 * 1024
        # Forms without files: a 50,000-character lesson text is ~450 KB URL-encoded (Werkzeug's 500 KB
        # default would leave little room); the most fields a page sends is a quiz's ticked choices
        # (≤ 8 a question), far below 1,000. Past either: 413 before any field is looked at.
        self.MAX_FORM_MEMORY_SIZE = 1024 * 1024
        self.MAX_FORM_PARTS = 1000
        self.PASSWORD_ARGON2 = dict(PASSWORD_ARGON2)
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
        # text-only lessons: marked read no sooner than their length at a quick reader's pace after
        # the server first served the page, within these bounds (lms/courses/completion.py)
        self.READING_CHARS_PER_MINUTE = 500
        self.READING_MIN_SECONDS = 15
        self.READING_MAX_SECONDS = 300
        # strict courses: after a failed quiz attempt the next one waits this long
        self.QUIZ_RETRY_WAIT_SECONDS = int(os.environ.get("LMS_QUIZ_RETRY_WAIT_SECONDS", "600"))
        # minutes of video -> 学时 tiers, checked top-down (cadre-platform practice)
        self.CREDIT_TIERS = [(30, "1.0"), (15, "0.5"), (0, "0.25")]
        # annual online 学时 targets per audience
        self.ANNUAL_TARGETS = {"cadre": 50, "elder": 4, "farmer": 8, "worker": 8, "youth": 6}
        # Failed sign-ins (lms/accounts/throttle.py): scope -> (failures allowed, first wait s — doubling with
        # each further failure —, longest wait s, window s after which a count starts afresh). README
        # "登录限速" explains the choice.
        self.SIGNIN_LIMITS = {
            "password": (5, 30, 15 * 60, 24 * 3600),  # one account from one client address
            "password-address": (30, 60, 15 * 60, 3600),  # one address across accounts (spraying)
            "password-account": (50, 60, 15 * 60, 24 * 3600),  # one account across addresses
            "pin": (5, 30, 10 * 60, 24 * 3600),  # one learner on one class tablet
            "pin-learner": (10, 60, 30 * 60, 24 * 3600),  # one learner across tablets
            "pin-tablet": (30, 30, 5 * 60, 3600),  # one tablet across its class (spraying a roster)
        }
        # Every session cookie is refused after this long without being re-signed; an open class tablet
        # (a permanent session) lasts this long since its last request, so a class day, not Flask's 31 days.
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=int(os.environ.get("LMS_SESSION_HOURS", "12")))
        # 长辈版 class tablets: a learner is signed out after this long without a request; the page warns
        # TABLET_IDLE_WARNING seconds before (≥ 20 s, with one large 继续学习 button)
        self.TABLET_IDLE_SECONDS = int(os.environ.get("LMS_TABLET_IDLE_SECONDS", 15 * 60))
        self.TABLET_IDLE_WARNING = 60
        for key, value in overrides.items():
            setattr(self, key, value)
