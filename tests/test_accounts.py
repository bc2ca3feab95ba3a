"""Sign-in, throttling and CSRF."""
import pytest

from lms.accounts.models import User
from lms.extensions import db


def test_login_with_wrong_password_says_so_in_chinese(browser_client, make_user):
    user = make_user()
    response = browser_client.login(user.username, "wrong-password")
    assert response.status_code == 400
    assert "账号或密码不正确" in response.get_data(as_text=True)


def test_empty_login_form_names_each_field(browser_client):
    browser_client.refresh_token()
    response = browser_client.post("/login", data={"csrf_token": browser_client.token})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "请输入账号" in body and "请输入密码" in body


def test_login_without_csrf_token_is_refused(browser_client, make_user):
    user = make_user()
    response = browser_client.client.post("/login", data={"username": user.username, "password": "correct-horse"})
    assert response.status_code == 400
    assert "安全校验失败" in response.get_data(as_text=True)
    assert browser_client.get("/my/hours").status_code == 302  # not signed in


def test_five_wrong_passwords_make_even_the_right_one_wait(browser_client, make_user):
    user = make_user()
    for _ in range(5):
        browser_client.login(user.username, "wrong-password")
    response = browser_client.login(user.username, "correct-horse")
    assert response.status_code == 429 and "尝试次数太多，请 " in response.get_data(as_text=True)
    assert browser_client.get("/my/hours").status_code == 302


def test_waits_grow_after_the_limit_and_are_capped(app):
    """5 failures free, then 30 s, 60 s, 2 min … up to 15 min, each wait before one more try."""
    from datetime import timedelta

    from lms.accounts.models import utcnow
    from lms.accounts.throttle import Key, Throttled, reserve

    keys, now = [Key("password", "zhang", "10.0.0.1")], utcnow()
    assert [reserve(keys, now).tries_left for _ in range(4)] == [4, 3, 2, 1]
    waits = []
    for _ in range(8):
        attempt = reserve(keys, now)
        waits.append(attempt.wait_if_wrong)
        with pytest.raises(Throttled) as refused:
            reserve(keys, now + timedelta(seconds=attempt.wait_if_wrong - 1))
        assert refused.value.retry_after == 1
        now += timedelta(seconds=attempt.wait_if_wrong)
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]


def test_right_password_forgives_its_account_but_not_its_address(app):
    """A sprayer who signs in to an account of their own keeps their address's count."""
    from lms.accounts.models import utcnow
    from lms.accounts.services import FORGIVEN_ON_SUCCESS
    from lms.accounts.throttle import Key, reserve, settle

    keys = [Key("password", "zhang", "10.0.0.1"), Key("password-address", "10.0.0.1")]
    for _ in range(3):
        attempt = reserve(keys)
    settle(attempt, FORGIVEN_ON_SUCCESS, ())
    assert reserve(keys).tries_left == 4 and reserve([keys[1]]).tries_left == 30 - 5


def test_a_count_starts_afresh_after_its_window(app):
    from datetime import timedelta

    from lms.accounts.models import utcnow
    from lms.accounts.throttle import Key, purge, reserve

    keys, then = [Key("password-address", "10.0.0.1")], utcnow() - timedelta(hours=2)
    for _ in range(3):
        reserve(keys, then)
    assert reserve(keys).tries_left == 29
    reserve([Key("password-account", "old")], utcnow() - timedelta(days=2))
    assert purge() == 1  # only the stale count is forgotten


def test_cli_reset_password_and_unlock(app, browser_client, make_user):
    make_user(username="li.si")
    result = app.test_cli_runner().invoke(args=["users", "reset-password", "li.si"])
    assert result.exit_code == 0 and "已重设 li.si 的密码：" in result.output
    new_password = result.output.split("：")[1].split("，")[0]
    assert browser_client.login("li.si", "correct-horse").status_code == 400
    assert browser_client.login("li.si", new_password).status_code == 302
    assert "没有登录限速" in app.test_cli_runner().invoke(args=["users", "unlock", "li.si"]).output
    missing = app.test_cli_runner().invoke(args=["users", "reset-password", "nobody"])
    assert missing.exit_code != 0 and "账号不存在" in missing.output


def test_passwords_are_hashed(app, make_user):
    user = make_user(password="correct-horse")
    stored = db.session.get(User, user.id).password_hash
    assert "correct-horse" not in stored and stored.startswith("$argon2id$")


def test_open_redirect_after_login_is_refused(browser_client, make_user):
    user = make_user()
    browser_client.refresh_token()
    response = browser_client.post("/login?next=//evil.example/x", data={
        "username": user.username, "password": "correct-horse", "csrf_token": browser_client.token})
    assert response.headers["Location"] == "/"


def test_cli_creates_a_user(app, units):
    result = app.test_cli_runner().invoke(args=["users", "create", "li.si", "--role", "learner", "--audience",
                                                "farmer", "--unit", "town-a", "--name", "李四"])
    assert result.exit_code == 0 and "初始密码" in result.output
    assert User.query.filter_by(username="li.si").one().audience == "farmer"
    again = app.test_cli_runner().invoke(args=["users", "create", "li.si", "--audience", "farmer", "--unit", "town-a"])
    assert again.exit_code != 0 and "账号已存在" in again.output
