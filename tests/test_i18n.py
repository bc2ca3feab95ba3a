"""English interface: ?lang=en switches, a cookie keeps the choice, Chinese stays the default."""
import io
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


def test_catalogue_has_english_for_every_string():
    """Every string the code and templates mark for translation has English in the catalogue
    (scripts/i18n refreshes it and lists what is missing)."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg
    from babel.messages.pofile import read_po

    root = TRANSLATIONS.parent.parent
    with open(root / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    source = {message if isinstance(message, str) else message[0]
              for _file, _line, message, _comments, _context in
              extract_from_dir(str(root), method_map, options_map, keywords=keywords)}
    with open(TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f)
    english = {}
    for message in catalog:
        if message.id:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            msgid = message.id if isinstance(message.id, str) else message.id[0]
            english[msgid] = all(strings) and not message.fuzzy
    assert sorted(msgid for msgid, done in english.items() if not done) == []
    assert sorted(source - english.keys()) == [], "run scripts/i18n and translate the new strings"


def test_admin_console_in_english(browser_client, make_user):
    admin = make_user("county-admin", role="admin", unit="county", audience="cadre", full_name="县管理员")
    browser_client.login(admin.username)
    page = browser_client.get("/admin/people?lang=en").get_data(as_text=True)
    assert "<h1>People</h1>" in page
    assert "New person" in page and "Import a list" in page and "People of all units." in page
    for heading in ("Name", "Username", "Unit", "Role", "Mobile number", "Status"):
        assert f'<th scope="col">{heading}</th>' in page
    assert "Overview" in page and "Audit log" in page  # the console's navigation
    assert "人员" not in page and "新建人员" not in page and "姓名" not in page
    page = browser_client.get("/admin/units").get_data(as_text=True)  # the cookie keeps English
    assert "Add a unit" in page and "Import units" in page and "添加单位" not in page


def test_labels_once_hard_coded_follow_the_language(app, browser_client, make_user):
    """Assignment form labels, import errors and video states were Chinese in English pages."""
    from flask_babel import refresh

    from lms.media.routes import STATUS_LABELS, asset_status

    admin = make_user("county-admin", role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    page = browser_client.get("/admin/assignments?lang=en").get_data(as_text=True)
    assert "Usernames of particular people" in page and ">Any</option>" in page and "不限" not in page
    token = browser_client.refresh_token("/admin/targets")
    page = browser_client.post("/admin/targets", data={"csrf_token": token, "target_elder": "5000"}).get_data(
        as_text=True)
    assert "Must be between 0 and 1000" in page and "应在 0 到 1000 之间" not in page
    token = browser_client.refresh_token("/admin/people/import")
    page = browser_client.post("/admin/people/import", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO("账号,姓名\r\nzhang,张\r\n".encode()), "people.csv")}).get_data(
        as_text=True)
    assert "Missing columns: " in page and "缺少列" not in page
    for query, ready, none in (("?lang=en", "Ready to play", "No video"), ("", "可播放", "没有视频")):
        with app.test_request_context("/" + query):
            refresh()  # the tests' app context outlives a request; drop the locale the last one cached
            assert str(STATUS_LABELS["ready"]) == ready and asset_status(None)["label"] == none
