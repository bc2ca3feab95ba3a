"""Attacks with a copied session cookie (issue 9, defect 11): sign-out, 换人, the tablet idle timeout and
a password reset end a session on the server, so a copy of its cookie taken before is refused after."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

from tests.conftest import BrowserLikeClient
from tests.test_elder import klass, open_tablet, pupils, teacher, type_pin  # noqa: F401


def replay(app, cookie: str):
    """A fresh browser carrying a copied session cookie: what /my/hours answers it."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client.get("/my/hours")


def session_cookie(client) -> str:
    return client.client.get_cookie("session").value


def test_cookie_copied_before_sign_out_is_refused_after(app, browser_client, make_user):
    """A session cookie copied while signed in, replayed after 退出: redirected to sign-in (302), no page."""
    browser_client.login(make_user().username)
    copied = session_cookie(browser_client)
    assert replay(app, copied).status_code == 200
    browser_client.post("/logout", data={"csrf_token": browser_client.token})
    response = replay(app, copied)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_password_reset_ends_every_session(app, make_user):
    """Two browsers signed in, then an administrator resets the password: both cookies are refused (302)."""
    user = make_user()
    cookies = []
    for _ in range(2):
        client = BrowserLikeClient(app.test_client())
        client.login(user.username)
        cookies.append(session_cookie(client))
    result = app.test_cli_runner().invoke(args=["users", "reset-password", user.username, "--password", "new-horse-9"])
    assert result.exit_code == 0 and "所有登录已失效" in result.output
    assert [replay(app, cookie).status_code for cookie in cookies] == [302, 302]
    fresh = BrowserLikeClient(app.test_client())
    assert fresh.login(user.username, "new-horse-9").status_code == 302


def test_tablet_cookie_copied_before_switch_is_refused_after(app, browser_client, teacher, klass, pupils):
    """A learner's tablet cookie copied before 换人, replayed after: signed out (302), the learner's pages stay shut."""
    zhang, _ = pupils
    open_tablet(browser_client, teacher, klass)
    assert type_pin(browser_client, zhang, "1234").status_code == 302
    copied = session_cookie(browser_client)
    assert replay(app, copied).status_code == 200
    browser_client.post("/tablet/switch", data={"csrf_token": browser_client.token})
    assert replay(app, copied).status_code == 302


def test_tablet_cookie_copied_before_the_idle_timeout_is_refused_after(app, browser_client, teacher, klass, pupils):
    """A learner's tablet cookie copied while in use, replayed after the tablet timed out idle: refused (302)."""
    zhang, _ = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    copied = session_cookie(browser_client)
    with browser_client.session_transaction() as session:
        session["tablet_seen"] -= app.config["TABLET_IDLE_SECONDS"] + 1
    assert browser_client.get("/my/hours").status_code == 302  # the tablet signs the learner out
    assert replay(app, copied).status_code == 302


def test_tablet_session_cookie_is_not_a_month_long_one(app, browser_client, teacher, klass, pupils):
    """A learner signed in on a class tablet: the cookie expires within a class day (12 h), not in 31 days."""
    zhang, _ = pupils
    open_tablet(browser_client, teacher, klass)
    response = type_pin(browser_client, zhang, "1234")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0])
    assert expires - datetime.now(timezone.utc) <= timedelta(hours=12, minutes=1)
