"""The heartbeat's own door (lms/courses/fast_heartbeat.py) is a shortcut, not a second set of rules.

Every hostile or unusual heartbeat below is sent twice — once with the shortcut on, once with it off
(only Flask's route) — each time by a fresh learner in the same state, and must get the same answer
(status, error, message) and leave the same watched seconds. Then: the usual heartbeat really is
answered without the route, and a cookie verified once still expires on time.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from lms.accounts.models import User
from lms.courses.models import LessonProgress
from lms.extensions import db
from tests.conftest import BrowserLikeClient

START = {"player": "p", "seq": 1, "start": True, "position": 0}
NEXT = {"player": "p", "seq": 2, "position": 0.2, "intervals": [[0, 0.2]]}
URL = "/api/lessons/{}/heartbeat"


def _learner(app, make_user, lesson_id):
    user = make_user()
    client = BrowserLikeClient(app.test_client())
    client.login(user.username)
    assert client.heartbeat(lesson_id, START).status_code == 200
    return user, client


def _post(client, lesson_id, body=None, *, token="own", headers=None, query=""):
    headers = dict(headers or {})
    if token == "own":
        headers["X-CSRFToken"] = client.token
    elif token:
        headers["X-CSRFToken"] = token
    if body is None:
        body = {"json": NEXT}
    return client.client.post(URL.format(lesson_id) + query, headers=headers, **body)


def _set_user(user_id, **values):
    user = db.session.get(User, user_id)
    for name, value in values.items():
        setattr(user, name, value)
    db.session.commit()


def _cookie(client):
    return client.client.get_cookie("session").value


def _tampered(client, lesson_id, other):
    value = _cookie(client)
    client.client.set_cookie("session", value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
    return _post(client, lesson_id)


VARIANTS = {
    "no CSRF token": lambda c, l, o, u: _post(c, l, token=None),
    "another session's CSRF token": lambda c, l, o, u: _post(c, l, token=o.token),
    "a forged CSRF token": lambda c, l, o, u: _post(c, l, token=c.token[:-2] + "xx"),
    "a tampered session cookie": lambda c, l, o, u: _tampered(c, l, o),
    "another learner's cookie with own token": lambda c, l, o, u: (
        c.client.set_cookie("session", _cookie(o)), _post(c, l))[1],
    "signed out elsewhere (session version moved on)": lambda c, l, o, u: (
        _set_user(u, session_version=(db.session.get(User, u).session_version or 0) + 1), _post(c, l))[1],
    "deactivated account": lambda c, l, o, u: (_set_user(u, active=False), _post(c, l))[1],
    "password change owed": lambda c, l, o, u: (_set_user(u, must_change_password=True), _post(c, l))[1],
    "another browser (User-Agent)": lambda c, l, o, u: _post(c, l, headers={"User-Agent": "Other/1.0"}),
    "a forwarded address": lambda c, l, o, u: _post(c, l, headers={"X-Forwarded-For": "10.9.9.9"}),
    "a body over the JSON limit": lambda c, l, o, u: _post(c, l, {"json": {**NEXT, "pad": "x" * 20000}}),
    "not JSON": lambda c, l, o, u: _post(c, l, {"data": "{", "content_type": "application/json"}),
    "a JSON list": lambda c, l, o, u: _post(c, l, {"json": [NEXT]}),
    "JSON sent as text/plain": lambda c, l, o, u: _post(c, l, {"data": json.dumps(NEXT), "content_type": "text/plain"}),
    "malformed intervals": lambda c, l, o, u: _post(c, l, {"json": {**NEXT, "intervals": [["a", 1]]}}),
    "another player without start (lease lost)": lambda c, l, o, u: _post(c, l, {"json": {**NEXT, "player": "q"}}),
    "lease lost, asked in English": lambda c, l, o, u: _post(c, l, {"json": {**NEXT, "player": "q"}}, query="?lang=en"),
    "a lesson that does not exist": lambda c, l, o, u: _post(c, 987654),
    "a lesson id with leading zeros": lambda c, l, o, u: c.client.post(
        f"/api/lessons/0{l}/heartbeat", json=NEXT, headers={"X-CSRFToken": c.token}),
}


def _outcome(app, make_user, lesson_id, variant, fast: bool):
    app.config["FAST_HEARTBEAT"] = fast
    user, client = _learner(app, make_user, lesson_id)
    _other_user, other = _learner(app, make_user, lesson_id)
    response = VARIANTS[variant](client, lesson_id, other, user.id)
    body = response.get_json(silent=True)
    progress = LessonProgress.query.filter_by(user_id=user.id, lesson_id=lesson_id).one()
    db.session.refresh(progress)
    return {
        "status": response.status_code,
        "error": body.get("error") if isinstance(body, dict) else None,
        "message": body.get("message") if isinstance(body, dict) else None,
        "answer keys": sorted(body) if isinstance(body, dict) else None,
        "location": response.headers.get("Location"),
        "credited anything": progress.watched_seconds > 0,
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_gets_what_the_route_gives(app, make_user, course, variant):
    lesson_id = course.active_lessons[0].id
    fast = _outcome(app, make_user, lesson_id, variant, fast=True)
    route = _outcome(app, make_user, lesson_id, variant, fast=False)
    assert fast == route
    if variant not in ("another browser (User-Agent)", "a forwarded address"):
        assert fast["status"] != 200 or variant == "a lesson id with leading zeros", fast


def test_the_usual_heartbeat_is_answered_without_the_route(app, make_user, course):
    """The shortcut really answers it: with Flask's view broken, the heartbeat still credits."""
    lesson_id = course.active_lessons[0].id
    user, client = _learner(app, make_user, lesson_id)

    def broken(**_kwargs):
        raise AssertionError("the route was asked")

    app.view_functions["courses.heartbeat"], route = broken, app.view_functions["courses.heartbeat"]
    try:
        answer = _post(client, lesson_id)
        assert answer.status_code == 200 and set(answer.get_json()) >= {"credited_seconds", "watched_seconds"}
        assert answer.headers["Content-Security-Policy"] and answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "Set-Cookie" not in answer.headers
        app.config["FAST_HEARTBEAT"] = False
        with pytest.raises(AssertionError, match="the route was asked"):  # (the test app propagates errors)
            _post(client, lesson_id, {"json": {**NEXT, "seq": 3}})
    finally:
        app.view_functions["courses.heartbeat"] = route


def test_a_cookie_verified_once_still_expires_on_time(app, make_user, course):
    lesson_id = course.active_lessons[0].id
    _user, client = _learner(app, make_user, lesson_id)
    assert _post(client, lesson_id).status_code == 200  # verified, and remembered as verified
    lifetime = app.permanent_session_lifetime
    app.permanent_session_lifetime = timedelta(seconds=-1)  # every cookie is now past its lifetime
    try:
        answer = _post(client, lesson_id, {"json": {**NEXT, "seq": 3}})
    finally:
        app.permanent_session_lifetime = lifetime
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]  # as the route: sign in again
