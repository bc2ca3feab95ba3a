"""A strict (mandatory) course in Debian's Chromium: the player enforces the rules and the server's
watched seconds show what really counted.

- setting currentTime past the furthest point watched returns the video to it;
- setting playbackRate = 2 is undone;
- hiding the page pauses the video, and even forced playback while hidden earns nothing;
- after the (short, test-config) idle timeout the "还在学习吗？" banner appears over the player,
  and unanswered it pauses the video; its one big button resumes;
- a second tab of the same account that starts playing takes the lease: the first pauses and says so.
"""
from __future__ import annotations

import random
import subprocess
import time

import pytest

from lms.extensions import db
from tests.conftest import _make_app, write_package, serve_app
from tests.test_browser import sign_in

pytestmark = pytest.mark.browser

VIDEO_SECONDS = 60
IDLE_SECONDS = 8
ANSWER_SECONDS = 3
V = "document.getElementById('lesson-video')"


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("strict-video") / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=10:duration={VIDEO_SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={VIDEO_SECONDS}", "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(path)],
        check=True,
    )
    return path


@pytest.fixture
def strict_server(tmp_path, media_dir, long_video):

    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package

    app = _make_app(tmp_path, data_dir=media_dir, STRICT_IDLE_SECONDS=IDLE_SECONDS,
                    STRICT_IDLE_ANSWER_SECONDS=ANSWER_SECONDS)
    with app.app_context():
        course, _ = import_package(write_package(tmp_path / "content", long_video, slug="strict-course",
                                                 audiences=("cadre",), mandatory=True, strict=True))
        assert course.strict
        county = get_or_create_unit("county", "垫江县", "county", None)
        create_user("cadre1", "陈干部", "correct-horse", "learner", "cadre", county.code)
        db.session.commit()
        info = {"slug": course.slug, "lesson_id": course.active_lessons[0].id}
        db.session.remove()
    with serve_app(app) as url:
        yield {"url": url, "app": app, **info}


def server_watched(app, lesson_id) -> float:
    from lms.courses.models import LessonProgress

    with app.app_context():
        progress = LessonProgress.query.filter_by(lesson_id=lesson_id).first()
        value = progress.watched_seconds if progress else 0.0
        db.session.remove()
    return value


def poke(page):
    """A little mouse movement: the learner is there (resets the idle timer)."""
    page.mouse.move(random.randint(5, 300), random.randint(5, 300))


def settle(page, seconds=1.0):
    """Wait until the player's heartbeat queue is empty (everything sent has been judged)."""
    page.wait_for_function("() => Object.keys(localStorage).every(k => JSON.parse(localStorage.getItem(k)).length === 0)",
                           timeout=15_000)
    time.sleep(seconds)


def test_strict_player_rules(strict_server, browser):
    from playwright.sync_api import expect

    base, app, lesson_id = strict_server["url"], strict_server["app"], strict_server["lesson_id"]
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "cadre1")
    page.goto(f"{base}/courses/{strict_server['slug']}/lessons/lesson-1")
    expect(page.locator("#strict-note")).to_be_visible()
    page.evaluate(f"() => {{ const v = {V}; v.muted = true; return v.play(); }}")
    page.wait_for_function(f"() => {V}.currentTime > 4")
    poke(page)

    # --- seeking past the furthest point watched returns to it
    page.evaluate(f"() => {{ {V}.currentTime = 50; }}")
    time.sleep(0.8)
    position = page.evaluate(f"{V}.currentTime")
    assert position < 10, f"the strict player let the video jump to {position:.1f}s"
    expect(page.locator("#player-message")).to_contain_text("不能跳到还没看过的地方")
    poke(page)

    # --- 2× is undone
    page.evaluate(f"() => {{ {V}.playbackRate = 2; }}")
    time.sleep(0.5)
    assert page.evaluate(f"{V}.playbackRate") == 1
    expect(page.locator("#player-message")).to_contain_text("正常速度")
    poke(page)

    # --- hiding the page pauses; forced playback while hidden earns nothing
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_function(f"() => {V}.paused")
    settle(page)
    before = server_watched(app, lesson_id)
    assert before > 2, "the visible playback before hiding should have counted"
    page.evaluate(f"() => {V}.play()")
    time.sleep(4)
    poke(page)
    page.evaluate(f"() => {V}.pause()")  # sends whatever the player counted
    settle(page)
    assert server_watched(app, lesson_id) == pytest.approx(before, abs=0.01), "hidden playback was credited"

    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")

    # --- no interaction: the idle banner appears over the player, then pauses the video
    poke(page)
    page.evaluate(f"() => {V}.play()")
    prompt = page.locator("#idle-prompt")
    expect(prompt).to_be_hidden()
    expect(prompt).to_be_visible(timeout=(IDLE_SECONDS + 5) * 1000)
    expect(prompt).to_contain_text("还在学习吗？")
    assert not page.evaluate(f"{V}.paused"), "the learner gets time to answer before the video pauses"
    page.wait_for_function(f"() => {V}.paused", timeout=(ANSWER_SECONDS + 3) * 1000)
    expect(prompt.locator(".idle-stopped")).to_be_visible()
    settle(page)
    stopped_at = server_watched(app, lesson_id)
    time.sleep(2)
    assert server_watched(app, lesson_id) == stopped_at
    prompt.get_by_role("button", name="我在学习，继续").click()
    expect(prompt).to_be_hidden()
    page.wait_for_function(f"() => !{V}.paused")

    # --- a second tab takes over: the first pauses and says so
    other = context.new_page()
    other.goto(f"{base}/courses/{strict_server['slug']}/lessons/lesson-1")
    other.evaluate(f"() => {{ const v = {V}; v.muted = true; return v.play(); }}")
    banner = page.locator("#lease-banner")
    expect(banner).to_be_visible(timeout=20_000)
    expect(banner).to_contain_text("另一个窗口或设备")
    assert page.evaluate(f"{V}.paused")
    context.close()
