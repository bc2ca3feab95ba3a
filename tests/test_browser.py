"""One end-to-end scenario in a real browser (Debian's Chromium through Playwright).

A learner signs in, watches the whole lesson video at normal speed (the player's own heartbeats
are the only progress the server sees), passes the quiz, finishes the course and sees the 学时;
an admin then downloads the CSV export and finds the record in it.
"""
from __future__ import annotations

import csv
import io
import time

import pytest

from lms.extensions import db
from tests.conftest import TEST_VIDEO_SECONDS, _make_app, serve_app, write_package
from tests.quizzing import RIGHT, pick

COURSE_TITLE = "测试课程：防范电信诈骗"
PASSWORD = "correct-horse"

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(tmp_path, media_dir, test_video):
    """The app on a fresh database, with one imported course and two users, served over real HTTP."""

    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package

    app = _make_app(tmp_path, data_dir=media_dir)
    with app.app_context():
        course, _ = import_package(write_package(tmp_path / "content", test_video))
        county = get_or_create_unit("county", "垫江县", "county", None)
        get_or_create_unit("town-a", "桂溪街道", "township", county)
        create_user("learner1", "张大爷", PASSWORD, "learner", "elder", "town-a")
        create_user("admin1", "李管理", PASSWORD, "admin", "cadre", "county")
        db.session.commit()
        info = {"slug": course.slug, "lesson_id": course.active_lessons[0].id}
        db.session.remove()

    with serve_app(app) as url:
        yield {"url": url, **info}


def sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录", exact=True).click()
    assert "/login" not in page.url, page.content()


def test_learner_completes_course_and_admin_exports_it(live_server, browser):
    from playwright.sync_api import expect

    base = live_server["url"]

    # --- learner: sign in, catalogue -> course -> lesson
    learner = browser.new_context(locale="zh-CN")
    page = learner.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "learner1")
    page.goto(f"{base}/")
    page.get_by_role("link", name=COURSE_TITLE).click()
    expect(page).to_have_url(f"{base}/courses/{live_server['slug']}")
    page.get_by_role("link", name="1. 第1课").click()
    expect(page).to_have_url(f"{base}/courses/{live_server['slug']}/lessons/lesson-1")
    expect(page.locator("#watch-status")).to_contain_text("已看 0%")

    # --- play the whole video at normal speed; only the player's heartbeats report it
    can_play = page.evaluate(
        """() => document.getElementById('lesson-video').canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"')""")
    assert can_play in ("probably", "maybe"), (
        f"this Chromium cannot play H.264/AAC MP4 (canPlayType={can_play!r}); the lesson video is unplayable here")
    heartbeats = []
    page.on("response", lambda r: heartbeats.append(r.status) if "/heartbeat" in r.url else None)
    started = time.monotonic()
    page.evaluate("""() => { const v = document.getElementById('lesson-video');
                              v.muted = true; return v.play(); }""")
    page.wait_for_function("() => document.getElementById('lesson-video').ended", timeout=30_000)
    played_for = time.monotonic() - started
    assert played_for >= TEST_VIDEO_SECONDS - 0.5, f"the video ended after only {played_for:.1f}s"
    assert page.evaluate("document.getElementById('lesson-video').playbackRate") == 1
    expect(page.locator("#watch-status")).to_contain_text("视频已看完", timeout=15_000)
    assert heartbeats and all(status == 200 for status in heartbeats), heartbeats

    # --- quiz: answer correctly, submit, course completes
    page.click("#quiz-link")
    expect(page).to_have_url(f"{base}/lessons/{live_server['lesson_id']}/quiz")
    for question, texts in RIGHT.items():  # by text: the order of choices is the attempt's own
        for text in [texts] if isinstance(texts, str) else texts:
            pick(page, question, text)
    page.get_by_role("button", name="提交答案").click()
    expect(page.locator("#quiz-result")).to_contain_text("通过了")
    expect(page.get_by_text("恭喜完成课程")).to_be_visible()

    # --- 我的学时
    page.get_by_role("link", name="我的学时").first.click()
    expect(page).to_have_url(f"{base}/my/hours")
    expect(page.locator("#hours-total")).to_contain_text("0.5")
    expect(page.locator("#hours-records")).to_contain_text(COURSE_TITLE)

    # --- a learner may not export
    assert learner.request.get(f"{base}/admin/hours/export?fmt=csv").status == 403
    learner.close()

    # --- admin: sign in separately and download the CSV from the export page
    admin = browser.new_context(locale="zh-CN", accept_downloads=True)
    page = admin.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "admin1")
    page.goto(f"{base}/admin/hours")
    page.select_option("select[name=fmt]", "csv")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="下载").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    raw = open(download.path(), "rb").read()
    assert raw.startswith(b"\xef\xbb\xbf"), "the CSV must start with a UTF-8 BOM"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    matching = [r for r in rows if r["账号"] == "learner1" and r["课程/活动"] == COURSE_TITLE]
    assert len(matching) == 1, rows
    assert matching[0]["姓名"] == "张大爷"
    assert matching[0]["学时"] == "0.50"
    admin.close()
