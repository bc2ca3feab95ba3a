"""长辈版 in a real browser (Debian's Chromium through Playwright) at tablet sizes 1024×768 and 768×1024.

- axe-core (from npm, injected from node_modules — never a CDN): no serious or critical violation on
  any learner page, in the standard look and in 长辈版;
- measured in the page: body text ≥ 18 px (≥ 30 px at 特大), line height ≥ 1.3, every visible link,
  button and input ≥ 60×60 in 长辈版 (≥ 44×44 in the standard look);
- every request goes to the app's own origin, and each page transfers ≤ 150 KB without the video
  and its poster (the figures are printed: run with -s);
- the class sign-in: roster → PIN → lesson → 换人 → the next learner, and the lock after five wrong PINs;
- read-aloud with and without a voice, the answer-by-answer quiz, the time-out warning.

LMS_SCREENSHOTS=1 also saves the main 长辈版 pages to docs/screenshots/ (scripts/screenshots).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from lms.extensions import db
from tests.conftest import QUIZ, _make_app, write_package, serve_app
from tests.test_browser import PASSWORD, sign_in
from tests.quizzing import RIGHT, pick

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"1024x768": {"width": 1024, "height": 768}, "768x1024": {"width": 768, "height": 1024}}
PAGE_BUDGET = 150 * 1024
IDLE_SECONDS, IDLE_WARNING = 40, 30

pytestmark = pytest.mark.browser

SCENARIO_QUESTION = {
    "type": "single", "text": "看看这条短信。这是诈骗吗？",
    "scenario": {"kind": "sms", "from": "95xxx（显示为“医保中心”）", "messages": [
        {"who": "them", "text": "【医保中心】您的医保卡已被冻结，请点击链接填写银行卡号和密码解冻。"},
        {"who": "me", "text": "我的卡怎么了？"}]},
    "choices": [{"text": "是诈骗", "correct": True}, {"text": "不是诈骗，可以照做"}],
    "explanation": "医保部门不会发链接要密码。不点链接，不转账，拨打 96110 核实。",
}


@pytest.fixture(scope="module")
def axe_source():
    if not AXE.is_file():
        pytest.skip("axe-core is missing: run `npm ci` (scripts/setup --with-browser does)")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def site(tmp_path, media_dir, test_video):
    """The app over real HTTP: one course whose quiz has a scenario question, a class with a teacher
    and three seniors with PINs (张大爷 has watched part of the lesson on another tablet)."""

    from lms.accounts.models import utcnow
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.classroom.services import set_pin
    from lms.courses.importer import import_package
    from lms.courses.models import LessonProgress

    app = _make_app(tmp_path, data_dir=media_dir, TABLET_IDLE_SECONDS=IDLE_SECONDS, TABLET_IDLE_WARNING=IDLE_WARNING)
    with app.app_context():
        folder = write_package(tmp_path / "content", test_video, audiences=("elder", "farmer"))
        quiz = dict(QUIZ, questions=[SCENARIO_QUESTION] + QUIZ["questions"])
        (folder / "01-lesson" / "quiz.yaml").write_text(yaml.safe_dump(quiz, allow_unicode=True), encoding="utf-8")
        course, _ = import_package(folder)
        county = get_or_create_unit("county", "垫江县", "county")
        town = get_or_create_unit("town-a", "桂溪街道", "township", county)
        get_or_create_unit("class-1", "老年学校智能手机一班", "class", town)
        create_user("teacher", "王老师", PASSWORD, "instructor", "elder", "town-a")
        create_user("farmer", "刘师傅", PASSWORD, "learner", "farmer", "town-a")
        create_user("elder", "陈阿姨", PASSWORD, "learner", "elder", "town-a")
        pins = {}
        for username, name, pin in (("zhang", "张大爷", "1234"), ("li", "李奶奶", "5678"), ("wang", "王阿姨", "2468")):
            pins[name] = (create_user(username, name, PASSWORD, "learner", "elder", "class-1"), pin)
            set_pin(*pins[name])
        lesson = course.active_lessons[0]
        db.session.add(LessonProgress(user_id=pins["张大爷"][0].id, lesson_id=lesson.id, last_position=2.0,
                                      watched_seconds=2.0, last_heartbeat_at=utcnow()))
        db.session.commit()
        info = {"slug": course.slug, "lesson_slug": lesson.slug, "lesson_id": lesson.id, "title": course.title,
                "ids": {name: user.id for name, (user, _) in pins.items()}}
        db.session.remove()
    with serve_app(app) as url:
        yield {"url": url, **info}


def open_tablet(context, base):
    """The teacher signs in and opens this tablet for the class; the roster is then shown."""
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "teacher")
    page.goto(f"{base}/classroom")
    with page.expect_navigation():
        page.get_by_role("button", name="在这台平板上打开").click()
    assert page.url == f"{base}/tablet"
    return page


def type_pin(page, pin):
    for digit in pin:
        page.locator(f"#keypad button[data-key='{digit}']").click()
    with page.expect_navigation():
        page.locator("#pin-submit").click()


MEASURE = """(elder) => {
  const min = elder ? 60 : 44;
  const body = getComputedStyle(document.body);
  const fontSize = parseFloat(body.fontSize);
  const small = [];
  for (const el of document.querySelectorAll('a[href], button, input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const style = getComputedStyle(el);
    let box = el.getBoundingClientRect();
    if (!box.width || !box.height || style.visibility === 'hidden') continue;
    if (box.right <= 0 || box.left >= innerWidth) continue;          // the off-screen skip link
    // standard look: a radio or checkbox is hit through its whole label row
    if (!elder && (el.type === 'radio' || el.type === 'checkbox') && el.closest('label')) box = el.closest('label').getBoundingClientRect();
    if (box.width < min - 0.5 || box.height < min - 0.5)
      small.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} “${(el.textContent || el.value || el.name || '').trim().slice(0, 20)}” ${Math.round(box.width)}×${Math.round(box.height)}`);
  }
  return {fontSize, lineHeight: parseFloat(body.lineHeight) / fontSize, small,
          dialogs: document.querySelectorAll('dialog, [role=dialog], [aria-modal=true]').length};
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v =>
    `${v.id} (${v.impact}): ` + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' — ' + n.failureSummary.replace(/\\s+/g, ' ')).join(' | '));
}"""


class Recorder:
    """Every request a page makes, with the bytes it transferred."""

    def __init__(self, page, base):
        self.base, self.requests = base, []
        # every page is weighed cold, as on a learner's first visit: no browser cache
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        page.on("requestfinished", lambda request: self.requests.append(request))
        page.on("requestfailed", lambda request: self.requests.append(request))

    def reset(self):
        self.requests = []

    def report(self):
        foreign, total = [], 0
        for request in self.requests:
            url = request.url
            if url.startswith(("data:", "blob:")):
                continue
            if not url.startswith(self.base + "/"):
                foreign.append(url)
            if "/media/" in url and url.split("?")[0].endswith((".mp4", ".jpg", ".vtt")):
                continue  # the video, its poster and captions are budgeted apart
            try:
                sizes = request.sizes()
                total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
            except Exception:  # a failed request transferred nothing
                pass
        return foreign, total


def audit(page, recorder, name, elder, axe_source, figures, problems):
    page.wait_for_load_state("networkidle")
    foreign, total = recorder.report()
    measured = page.evaluate(MEASURE, elder)
    page.evaluate(axe_source)  # through DevTools: an inline <script> tag would be refused by the CSP
    violations = page.evaluate(AXE_RUN)
    label = f"{name} [{'长辈版' if elder else '标准'}]"
    figures.append((label, total, measured["fontSize"], measured["lineHeight"]))
    if violations:
        problems.append(f"{label}: axe: {violations}")
    if foreign:
        problems.append(f"{label}: requests to other hosts: {foreign}")
    if total > PAGE_BUDGET:
        problems.append(f"{label}: {total} bytes > {PAGE_BUDGET}")
    if measured["fontSize"] < (22 if elder else 18) or measured["lineHeight"] < 1.3:
        problems.append(f"{label}: body text {measured['fontSize']}px, line height {measured['lineHeight']:.2f}")
    if measured["small"]:
        problems.append(f"{label}: targets under {60 if elder else 44}px: {measured['small']}")
    if measured["dialogs"]:
        problems.append(f"{label}: a pop-up/dialog is on the page")
    recorder.reset()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_learner_pages_are_accessible_light_and_self_hosted(site, browser, axe_source, viewport):
    base, figures, problems = site["url"], [], []
    course_url = f"{base}/courses/{site['slug']}"
    for elder, username in ((False, "farmer"), (True, "elder")):
        context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])
        page = context.new_page()
        page.set_default_timeout(15_000)
        recorder = Recorder(page, base)
        page.goto(f"{base}/login")
        if elder:  # an anonymous visitor turns 长辈版 on with one tap
            with page.expect_navigation():
                page.locator("#elder-switch").click()
            assert page.locator("html.elder").count() == 1 and page.url == f"{base}/login"
            recorder.reset()
            page.goto(f"{base}/login")
        audit(page, recorder, "登录", elder, axe_source, figures, problems)
        sign_in(page, base, username)
        recorder.reset()
        for name, url in (("课程目录", f"{base}/"), ("课程", course_url),
                          ("课时", f"{course_url}/lessons/{site['lesson_slug']}"),
                          ("测验", f"{base}/lessons/{site['lesson_id']}/quiz")):
            page.goto(url)
            audit(page, recorder, name, elder, axe_source, figures, problems)
        assert page.locator(".scenario-sms .scenario-line").count() == 2
        for question, text in ((0, "是诈骗"), (1, RIGHT[0]), (2, RIGHT[1][0]), (2, RIGHT[1][1]), (3, RIGHT[2])):
            pick(page, question, text)
        with page.expect_navigation():
            page.get_by_role("button", name="提交答案").click()
        assert "通过了" in page.locator("#quiz-result").inner_text()
        audit(page, recorder, "测验结果", elder, axe_source, figures, problems)
        page.goto(f"{base}/my/hours")
        audit(page, recorder, "我的学时", elder, axe_source, figures, problems)
        # 特大: ≥ 30 px body text, one tap away (in the 长辈版 bar, or in the footer of the standard look)
        with page.expect_navigation():
            page.locator("button.font-choice-xlarge").click()
        measured = page.evaluate(MEASURE, elder)
        assert measured["fontSize"] >= 30 and measured["lineHeight"] >= 1.3, measured
        if elder:
            assert not measured["small"], measured["small"]
        context.close()

        # the class tablet: roster and PIN keypad
        context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])
        if not elder:  # a tablet starts in 长辈版; the standard look is one tap away too
            context.add_cookies([{"name": "elder", "value": "0", "url": base}])
        page = open_tablet(context, base)
        recorder = Recorder(page, base)
        page.reload()
        assert page.locator("html.elder").count() == (1 if elder else 0)
        audit(page, recorder, "班级名单", elder, axe_source, figures, problems)
        page.get_by_role("link", name="李奶奶").click()
        page.wait_for_url(f"{base}/tablet/{site['ids']['李奶奶']}")
        audit(page, recorder, "输入PIN", elder, axe_source, figures, problems)
        context.close()

    print(f"\n{viewport}: page (mode)            bytes   body px  line-height")
    for label, total, font_size, line_height in figures:
        print(f"  {label:<22} {total:>8,} {font_size:>6.1f} {line_height:>8.2f}")
    assert not problems, "\n".join(problems)


def test_class_sign_in_roster_pin_lesson_switch_next(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["768x1024"])
    page = open_tablet(context, base)
    cards = page.locator("#roster a")
    expect(cards).to_have_count(3)
    box = cards.first.bounding_box()
    assert box["width"] >= 150 and box["height"] >= 140, box  # large name cards

    # 张大爷 taps his card and types his PIN on the keypad: he is back in his lesson, where he left off
    page.get_by_role("link", name="张大爷").click()
    expect(page.locator("#keypad")).to_be_visible()
    for key in page.locator("#keypad button").all():
        key_box = key.bounding_box()
        assert key_box["width"] >= 60 and key_box["height"] >= 60, key_box
    type_pin(page, "1234")
    expect(page).to_have_url(f"{base}/courses/{site['slug']}/lessons/{site['lesson_slug']}")
    assert page.locator("#lesson-video").get_attribute("data-resume-at") == "2.0"
    expect(page.locator("#switch-person")).to_contain_text("张大爷")

    # 换人: back to the roster, 张大爷 is signed out
    with page.expect_navigation():
        page.locator("#switch-person").click()
    expect(page).to_have_url(f"{base}/tablet")
    assert context.request.get(f"{base}/my/hours", max_redirects=0).status == 302

    # the next learner
    page.get_by_role("link", name="李奶奶").click()
    type_pin(page, "5678")
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("#switch-person")).to_contain_text("李奶奶")
    page.goto(f"{base}/my/hours")
    expect(page.locator("h1")).to_contain_text("我的学时")
    context.close()


def test_five_wrong_pins_lock_the_learner(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    page = open_tablet(context, base)
    page.get_by_role("link", name="王阿姨").click()
    for left in (4, 3, 2, 1):
        type_pin(page, "1111")
        expect(page.locator("#pin-error")).to_contain_text(f"还可以试 {left} 次")
    type_pin(page, "1111")
    expect(page.locator("#pin-error")).to_contain_text("已锁定")
    expect(page.locator("#keypad")).to_have_count(0)  # no more tries on this tablet
    page.goto(f"{base}/tablet")
    expect(page.get_by_role("link", name="王阿姨")).to_contain_text("已锁定")
    # the right PIN does not help now
    response = context.request.post(f"{base}/tablet/{site['ids']['王阿姨']}", form={
        "pin": "2468", "csrf_token": page.locator("meta[name=csrf-token]").get_attribute("content")},
        max_redirects=0)
    assert response.status == 403
    context.close()


SPEECH_STUB = """(() => {
  const spoken = window.__spoken = [];
  const voices = %s;
  window.SpeechSynthesisUtterance = function (text) { this.text = text; };
  const synth = {speaking: false, getVoices: () => voices,
    speak(u) { spoken.push({text: u.text, lang: u.lang}); this.speaking = voices.length > 0; },
    cancel() { this.speaking = false; window.__cancelled = (window.__cancelled || 0) + 1; },
    addEventListener() {}};
  Object.defineProperty(window, 'speechSynthesis', {value: synth, configurable: true});
})()"""


def test_read_aloud_reads_lesson_and_question_and_stops(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    context.add_init_script(SPEECH_STUB % '[{"lang": "zh-CN", "name": "Chinese"}]')
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "elder")
    page.goto(f"{base}/courses/{site['slug']}/lessons/{site['lesson_slug']}")
    page.get_by_role("button", name="朗读课文").click()
    stop = page.get_by_role("button", name="停止朗读")
    expect(stop).to_be_visible()
    spoken = page.evaluate("window.__spoken")
    assert spoken[-1]["lang"] == "zh-CN" and "第1课" in spoken[-1]["text"] and "不听、不信、不转账" in spoken[-1]["text"]
    stop.click()
    expect(stop).to_be_hidden()
    assert page.evaluate("window.__cancelled") >= 1

    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    page.locator("#q0 .read-question").click()
    text = page.evaluate("window.__spoken")[-1]["text"]
    assert "这是诈骗吗" in text and "医保卡已被冻结" in text and "是诈骗" in text and "不是诈骗，可以照做" in text
    context.close()


def test_without_a_voice_pages_stay_usable(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["768x1024"])
    context.add_init_script(SPEECH_STUB % "[]")
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "elder")
    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    page.get_by_role("button", name="朗读全部题目").click()
    expect(page.locator(".read-aloud-note").first).to_contain_text("没有可用的中文朗读声音", timeout=5_000)
    expect(page.get_by_role("button", name="停止朗读")).to_be_hidden()
    # no speech at all (an old tablet): no read-aloud button, and the quiz still works
    context.close()
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["768x1024"])
    context.add_init_script("delete window.speechSynthesis; Object.defineProperty(window, 'speechSynthesis', {value: undefined})")
    page = context.new_page()
    sign_in(page, base, "elder")
    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    expect(page.get_by_role("button", name="朗读全部题目")).to_be_hidden()
    pick(page, 0, "是诈骗")
    page.locator("#q0 .check-button").click()
    expect(page.locator("#check-0")).to_contain_text("答对了")
    context.close()


def test_elder_quiz_explains_each_answer_in_place(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "elder")
    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    page.evaluate("window.__samePage = true")
    pick(page, 0, "不是诈骗，可以照做")  # wrong
    page.locator("#q0 .check-button").click()
    result = page.locator("#check-0")
    expect(result).to_contain_text("答错了，没关系")
    expect(result).to_contain_text("正确答案：是诈骗")
    expect(result).to_contain_text("拨打 96110 核实")
    assert page.evaluate("window.__samePage") is True  # shown in place, no reload
    # the quiz goes on: the next question, then the whole quiz is submitted
    # the first answer is final: that question is locked, its 看答案 gone
    expect(page.locator("#q0 input").first).to_be_disabled()
    expect(page.locator("#q0 .check-button")).to_have_count(0)
    pick(page, 1, RIGHT[0])
    page.locator("#q1 .check-button").click()
    expect(page.locator("#check-1")).to_contain_text("答对了")
    expect(page.locator("#check-0")).to_contain_text("答错了")
    for question, text in ((2, RIGHT[1][0]), (2, RIGHT[1][1]), (3, RIGHT[2])):
        pick(page, question, text)
    with page.expect_navigation():
        page.get_by_role("button", name="提交答案").click()
    expect(page.locator("#quiz-result")).to_contain_text("得分 75 分")
    context.close()


def test_time_out_warning_is_inline_big_and_gives_time(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    page = open_tablet(context, base)
    page.get_by_role("link", name="李奶奶").click()
    type_pin(page, "5678")
    banner = page.locator("#idle-warning")
    expect(banner).to_be_hidden()
    expect(banner).to_be_visible(timeout=(IDLE_SECONDS - IDLE_WARNING + 5) * 1000)
    assert IDLE_WARNING >= 20
    assert page.evaluate("document.querySelectorAll('dialog, [aria-modal=true]').length") == 0
    button = page.get_by_role("button", name="我还在学，继续")
    box = button.bounding_box()
    assert box["height"] >= 60 and box["width"] >= 60, box
    with page.expect_response(lambda r: r.url.endswith("/session/ping")) as ping:
        button.click()
    assert ping.value.ok and ping.value.json()["signed_in"] is True
    expect(banner).to_be_hidden()
    page.goto(f"{base}/my/hours")
    expect(page).to_have_url(f"{base}/my/hours")  # still signed in
    context.close()


SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.mark.skipif(not os.environ.get("LMS_SCREENSHOTS"), reason="set LMS_SCREENSHOTS=1 (scripts/screenshots)")
def test_save_screenshots(site, browser):
    """The main 长辈版 pages on a 1024×768 tablet, saved for the README."""
    base = site["url"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    page = open_tablet(context, base)
    page.screenshot(path=SCREENSHOTS / "elder-roster.png")
    page.get_by_role("link", name="张大爷").click()
    for digit in "12":
        page.locator(f"#keypad button[data-key='{digit}']").click()
    page.screenshot(path=SCREENSHOTS / "elder-pin.png")
    for digit in "34":
        page.locator(f"#keypad button[data-key='{digit}']").click()
    with page.expect_navigation():
        page.locator("#pin-submit").click()
    page.goto(f"{base}/")
    page.screenshot(path=SCREENSHOTS / "elder-catalogue.png")
    page.goto(f"{base}/courses/{site['slug']}/lessons/{site['lesson_slug']}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=SCREENSHOTS / "elder-lesson.png", full_page=True)
    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    pick(page, 0, "不是诈骗，可以照做")
    page.locator("#q0 .check-button").click()
    page.locator("#check-0 .verdict").wait_for()
    page.evaluate("document.getElementById('q0').scrollIntoView()")
    page.screenshot(path=SCREENSHOTS / "elder-quiz-scenario.png")
    page.goto(f"{base}/my/hours")
    page.screenshot(path=SCREENSHOTS / "elder-my-hours.png")
    context.close()
    assert len(list(SCREENSHOTS.glob("elder-*.png"))) >= 6
