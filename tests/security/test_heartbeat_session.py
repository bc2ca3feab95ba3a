"""The heartbeat signs its viewer in without the ORM (lms/accounts/session_user.py): a session ended on
the server still ends there too."""
from lms.courses.models import LessonProgress
from tests.security.test_sessions import session_cookie


def test_a_heartbeat_with_a_cookie_copied_before_sign_out_is_refused(app, browser_client, make_user, course):
    """A session cookie copied while watching, replayed on the heartbeat after 退出: refused, and the
    attacker earns nothing for the account."""
    user = make_user()
    browser_client.login(user.username)
    lesson = course.active_lessons[0]
    assert browser_client.heartbeat(lesson.id, {"player": "p", "seq": 1, "start": True}).status_code == 200
    copied, token = session_cookie(browser_client), browser_client.token
    browser_client.post("/logout", data={"csrf_token": browser_client.token})
    attacker = app.test_client()
    attacker.set_cookie("session", copied)
    response = attacker.post(f"/api/lessons/{lesson.id}/heartbeat", headers={"X-CSRFToken": token},
                             json={"player": "p", "seq": 2, "intervals": [[0, 3]], "position": 3})
    assert response.status_code == 302 and "/login" in response.headers["Location"]  # sent to sign in
    assert LessonProgress.query.filter_by(user_id=user.id).one().watched_seconds == 0


def test_a_deactivated_account_cannot_heartbeat(app, browser_client, make_user, course):
    """An account switched off by an administrator while its owner watches: the next heartbeat is refused."""
    from lms.extensions import db

    user = make_user()
    browser_client.login(user.username)
    lesson = course.active_lessons[0]
    assert browser_client.heartbeat(lesson.id, {"player": "p", "seq": 1, "start": True}).status_code == 200
    user.active = False
    db.session.commit()
    response = browser_client.heartbeat(lesson.id, {"player": "p", "seq": 2, "intervals": [[0, 3]], "position": 3})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert LessonProgress.query.filter_by(user_id=user.id).one().watched_seconds == 0
