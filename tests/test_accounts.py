"""Sign-in, throttling and CSRF."""
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


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(browser_client, make_user):
    user = make_user()
    for _ in range(5):
        browser_client.login(user.username, "wrong-password")
    response = browser_client.login(user.username, "correct-horse")
    assert "已暂时锁定" in response.get_data(as_text=True)
    assert browser_client.get("/my/hours").status_code == 302


def test_passwords_are_hashed(app, make_user):
    user = make_user(password="correct-horse")
    stored = db.session.get(User, user.id).password_hash
    assert "correct-horse" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


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
