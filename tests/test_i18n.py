"""English interface: ?lang=en switches, a cookie keeps the choice, Chinese stays the default."""
from pathlib import Path

import pytest

TRANSLATIONS = Path(__file__).resolve().parent.parent / "lms" / "translations"


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """scripts/setup compiles the catalogues; compile here too when a .mo is missing or stale."""
    stale = [po for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")
             if not po.with_suffix(".mo").exists() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime]
    if stale:
        from babel.messages.frontend import CommandLineInterface

        CommandLineInterface().run(["pybabel", "-q", "compile", "-d", str(TRANSLATIONS)])


def lang_cookie(response) -> str | None:
    """The Set-Cookie header for `lang` (the session cookie may be set alongside it)."""
    return next((c for c in response.headers.getlist("Set-Cookie") if c.startswith("lang=")), None)


def test_lang_en_shows_english_and_sets_cookie(browser_client, course):
    response = browser_client.get("/?lang=en")
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "All courses" in page and "全部课程" not in page
    assert "Seniors" in page and "老年人" not in page
    cookie = lang_cookie(response)
    assert cookie and cookie.startswith("lang=en;")
    assert "Max-Age=31536000" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_english_sticks_without_query(browser_client, make_user, course):
    browser_client.get("/?lang=en")
    page = browser_client.get("/").get_data(as_text=True)
    assert "All courses" in page and "Seniors" in page
    browser_client.login(make_user().username)
    page = browser_client.get("/").get_data(as_text=True)
    assert "My hours" in page and "Sign out" in page and "我的学时" not in page


def test_login_page_in_english(browser_client):
    page = browser_client.get("/login?lang=en").get_data(as_text=True)
    assert "<h1>Sign in to Science Classroom</h1>" in page


def test_chinese_is_default_and_switch_back(browser_client, course):
    response = browser_client.get("/")
    page = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "全部课程" in page and "老年人" in page and "All courses" not in page
    assert lang_cookie(response) is None
    assert 'href="/?lang=en"' in page and 'href="/?lang=zh"' in page  # footer switch keeps the path

    browser_client.get("/?lang=en")
    response = browser_client.get("/login?lang=zh")
    assert lang_cookie(response).startswith("lang=zh;")
    assert "全部课程" in browser_client.get("/").get_data(as_text=True)


def test_unknown_lang_is_ignored(browser_client):
    response = browser_client.get("/login?lang=fr")
    assert lang_cookie(response) is None
    assert "登录科普学堂" in response.get_data(as_text=True)
