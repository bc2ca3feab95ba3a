"""The heartbeat's own door: every viewer's player posts one every 10 s, so it skips what a page needs.

Through Flask a heartbeat spent most of its time outside the crediting: the request and session
objects, decoding and checking the signed session cookie and the CSRF token, four before-request
hooks, the user loader and the after-request hooks (scripts/bench/heartbeat.py; issue 12). This
WSGI layer sits inside RerunMiddleware and ProxyFix, in front of Flask, and answers the usual
heartbeat itself. It is a shortcut, never a second set of rules: it answers only when every check
that the Flask route would make passes here too, checked the same way or more strictly, and it
hands anything else — before it has written anything — to the Flask route, which decides and
answers as always (its 400, 401, 403, 409, 413 and their messages):

- the session cookie is verified with the app's own signing serializer and lifetime; a cookie seen
  before is not verified again (cached by its exact value, with its signing time, so it still
  expires on time); sessions that a request changes (a class tablet's idle clock, a teacher's
  permanent session, a remember-me cookie, Flask-Login's session protection failing) go to Flask;
- the CSRF token from the X-CSRFToken header is verified as Flask-WTF does (its serializer and
  salt, compared with the session's token in constant time, the referrer on HTTPS), also cached;
- the user's session version, active flag and password-change flag are read in the heartbeat's
  own SELECT: the version must match the session's (a copied cookie dies at sign-out), the user be
  active and not owe a password change;
- the body must be a JSON object within MAX_JSON_BYTES, declared by Content-Length;
- then the route's own service (services.record_heartbeat) credits it; a heartbeat it refuses
  (lesson not visible, lease lost, malformed intervals) raises before writing, and goes to Flask.

LMS_FAST_HEARTBEAT=0 (config FAST_HEARTBEAT) turns it off; tests/security/test_fast_heartbeat.py
sends every hostile variant both ways and expects the same answer and the same ledger.
"""
from __future__ import annotations

import hmac
import io
import json
import re
import time
from hashlib import sha512
from types import SimpleNamespace

from flask_wtf.csrf import same_origin
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.http import parse_cookie
from werkzeug.wsgi import get_host

from lms.http_security import SECURITY_HEADERS


# what Flask's after-request hooks add to the route's answer: the security headers, and Vary since it read the session
HEADERS = (*SECURITY_HEADERS.items(), ("Vary", "Cookie"))
PATH = re.compile(r"/api/lessons/([1-9][0-9]{0,17})/heartbeat")
CACHE_SIZE = 8192  # verified cookies and tokens kept per process (a county's viewers at once)


class _Verified:
    """Signed values already verified: value → (what it carries, when it was signed)."""

    def __init__(self, serializer: URLSafeTimedSerializer):
        self.serializer, self.seen = serializer, {}

    def load(self, value: str, max_age: float | None):
        hit = self.seen.get(value)
        if hit is None:
            try:
                carried, signed = self.serializer.loads(value, return_timestamp=True)
            except BadData:
                return None
            if len(self.seen) >= CACHE_SIZE:
                self.seen.clear()
            hit = self.seen[value] = (carried, signed.timestamp())
        age = time.time() - hit[1]
        if max_age is not None and not 0 <= age <= max_age:  # as itsdangerous: expired, or signed in the future
            return None
        return hit[0]


def _identifier(environ) -> str:
    """Flask-Login's session identifier (flask_login.utils._create_identifier), from the environ."""
    address = environ.get("HTTP_X_FORWARDED_FOR", environ.get("REMOTE_ADDR"))
    if address is not None:
        address = address.encode("utf-8").split(b",")[0].strip()
    agent = environ.get("HTTP_USER_AGENT")
    if agent is not None:
        agent = agent.encode("utf-8")
    return sha512(f"{address}|{agent}".encode("utf8")).hexdigest()


class FastHeartbeat:
    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app
        self._verifiers_made = None

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            match = PATH.fullmatch(environ.get("PATH_INFO", ""))
            if match is not None:
                body = self._answer(environ, int(match.group(1)))
                if body is not None:
                    start_response("200 OK", [("Content-Type", "application/json"),
                                              ("Content-Length", str(len(body))), *HEADERS])
                    return [body]
        return self.wsgi_app(environ, start_response)

    # ---- the checks ----------------------------------------------------------------------------------
    def _verifiers(self):
        """(the session cookies', the CSRF tokens') verifiers, made at a process's first heartbeat. Both in
        one assignment: a worker's threads answer its first heartbeats at once, and one that found the
        first set and the second not yet once answered 500 (scripts/bench/heartbeat.py, 8 threads)."""
        verifiers = self._verifiers_made
        if verifiers is None:  # two threads may both make them: the same checks, only a cache apart
            app = self.app
            verifiers = self._verifiers_made = (
                _Verified(app.session_interface.get_signing_serializer(app)),
                _Verified(URLSafeTimedSerializer(app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key,
                                                 salt="wtf-csrf-token")))
        return verifiers

    def _session(self, environ, config):
        cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get(config["SESSION_COOKIE_NAME"])
        if not cookie:
            return None
        sessions, _tokens = self._verifiers()
        data = sessions.load(cookie, self.app.permanent_session_lifetime.total_seconds())
        if (not isinstance(data, dict) or data.get("_permanent") or data.get("tablet_learner")
                or "_remember" in data or data.get("_id") != _identifier(environ)):
            return None  # a session this request would change: Flask's own path
        return data

    def _csrf_valid(self, environ, config, data) -> bool:
        expected = data.get(config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
        sent = None
        for header in config.get("WTF_CSRF_HEADERS", ("X-CSRFToken", "X-CSRF-Token")):
            sent = environ.get("HTTP_" + header.upper().replace("-", "_"))
            if sent:
                break
        if not sent or not isinstance(expected, str):
            return False
        _sessions, tokens = self._verifiers()
        token = tokens.load(sent, config.get("WTF_CSRF_TIME_LIMIT", 3600))
        if not isinstance(token, str) or not hmac.compare_digest(expected, token):
            return False
        if environ.get("wsgi.url_scheme") == "https" and config.get("WTF_CSRF_SSL_STRICT", True):
            referrer = environ.get("HTTP_REFERER")
            return bool(referrer) and same_origin(referrer, f"https://{get_host(environ)}/")
        return True

    def _payload(self, environ, config):
        if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/json":
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        if not 0 < length <= config["MAX_JSON_BYTES"] or environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # read again by Flask if it has the last word
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    # ---- the answer ------------------------------------------------------------------------------------
    def _answer(self, environ, lesson_id: int):
        app = self.app
        config = app.config
        if not config.get("FAST_HEARTBEAT", True) or environ.get("QUERY_STRING"):
            return None
        data = self._session(environ, config)
        if data is None or not self._csrf_valid(environ, config, data):
            return None
        user_id, _colon, version = str(data.get("_user_id", "")).partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        payload = self._payload(environ, config)
        if payload is None:
            return None
        from lms.courses import services
        from lms.courses.progress import HeartbeatRejected
        from lms.courses.routes import heartbeat_json

        session_version = int(version)

        def verified(stored_version, active, must_change_password) -> bool:
            return stored_version == session_version and bool(active) and not must_change_password

        with app.app_context():
            try:
                result, record = services.record_heartbeat(SimpleNamespace(id=int(user_id)), lesson_id, payload,
                                                            verify_user=verified)
            except (services.NotVerified, services.LessonNotVisible, services.LeaseLost, HeartbeatRejected):
                return None  # refused before writing: the route answers it, in the user's language
        return (json.dumps(heartbeat_json(result, record), separators=(",", ":"), sort_keys=True) + "\n").encode()


def init_app(app) -> None:
    """Call before db_resilience.init_app: a heartbeat that loses the database is re-run like any request."""
    import os

    app.config.setdefault("FAST_HEARTBEAT", os.environ.get("LMS_FAST_HEARTBEAT", "1") != "0")
    app.wsgi_app = FastHeartbeat(app, app.wsgi_app)
