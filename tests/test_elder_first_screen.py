"""长辈版: the one thing to do is on the first screen (issue 15), in Debian's Chromium through Playwright.

At 1024×768 (a 10-inch tablet held sideways), 768×1024 (upright) and 600×1024 (a 7-inch tablet), with
nothing scrolled, these lie wholly inside the viewport: the roster's first row of name cards, the PIN box
and all twelve keys of the keypad, the lesson's video and its big play button, the first quiz question
with all its choices, and the 继续学习 button on the home page. A 20-character name wraps inside its card.

Also here: the roster and PIN pages speak their instruction once when 朗读提示 is on (speechSynthesis
stubbed), and axe finds no serious/critical violation and no color-contrast-enhanced (7:1) failure on
every learner page in 长辈版 (home, catalogue, course, lesson, quiz, roster, PIN, help).
"""
from __future__ import annotations

import os

import pytest
import yaml

from lms.extensions import db
from tests.conftest import QUIZ, _make_app, serve_app, write_package
from tests.test_browser import PASSWORD, sign_in
from tests.test_elder_browser import AXE, SCENARIO_QUESTION, SPEECH_STUB, axe_source, open_tablet, type_pin  # noqa: F401

pytestmark = pytest.mark.browser

VIEWPORTS = {"1024x768": {"width": 1024, "height": 768}, "768x1024": {"width": 768, "height": 1024},
             "600x1024": {"width": 600, "height": 1024}}
LONG_NAME = "AbudurehemanMaimaiti"  # 20 letters, no break opportunity (a Uyghur name in pinyin)


@pytest.fixture
def site(tmp_path, media_dir, test_video):
    """One elder course (its quiz opens with an SMS scenario question), a class of five with PINs, one of
    them with a 20-character name, and 张大爷 who has watched part of the lesson."""
    from lms.accounts.models import utcnow
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.classroom.services import set_pin
    from lms.courses.importer import import_package
    from lms.courses.models import LessonProgress

    app = _make_app(tmp_path, data_dir=media_dir)
    with app.app_context():
        folder = write_package(tmp_path / "content", test_video, audiences=("elder",))
        quiz = dict(QUIZ, questions=[SCENARIO_QUESTION] + QUIZ["questions"])
        (folder / "01-lesson" / "quiz.yaml").write_text(yaml.safe_dump(quiz, allow_unicode=True), encoding="utf-8")
        course, _ = import_package(folder)
        county = get_or_create_unit("county", "垫江县", "county")
        town = get_or_create_unit("town-a", "桂溪街道", "township", county)
        get_or_create_unit("class-1", "老年学校智能手机一班", "class", town)
        create_user("teacher", "王老师", PASSWORD, "instructor", "elder", "town-a")
        ids = {}
        for n, name in enumerate(("张大爷", "李奶奶", "王阿姨", LONG_NAME, "赵爷爷")):
            user = create_user(f"s{n}", name, PASSWORD, "learner", "elder", "class-1")
            set_pin(user, "1234")
            ids[name] = user.id
        lesson = course.active_lessons[0]
        db.session.add(LessonProgress(user_id=ids["张大爷"], lesson_id=lesson.id, last_position=2.0,
                                      watched_seconds=2.0, last_heartbeat_at=utcnow()))
        db.session.commit()
        info = {"slug": course.slug, "lesson_slug": lesson.slug, "lesson_id": lesson.id, "ids": ids}
        db.session.remove()
    with serve_app(app) as url:
        yield {"url": url, **info}


# Every element matched by each selector, with the viewport: measured before anything scrolls.
BOXES = """(selectors) => {
  const out = {};
  for (const [name, selector] of Object.entries(selectors)) {
    out[name] = Array.from(document.querySelectorAll(selector)).map(el => {
      const b = el.getBoundingClientRect();
      return {top: b.top, bottom: b.bottom, left: b.left, right: b.right, width: b.width, height: b.height};
    });
  }
  return {boxes: out, width: innerWidth, height: innerHeight, scrollY: scrollY};
}"""


def outside(page, selectors: dict[str, str], expect_counts: dict[str, int] | None = None) -> list[str]:
    """What of `selectors` is not wholly inside the first screen (an empty list when all is).
    LMS_FIRST_SCREEN_SHOTS=DIR also saves each first screen there, to look at."""
    page.wait_for_load_state("networkidle")
    page.evaluate("window.scrollTo(0, 0)")
    if os.environ.get("LMS_FIRST_SCREEN_SHOTS"):
        size = page.viewport_size
        name = f"{size['width']}x{size['height']}-{page.url.split('/', 3)[-1].replace('/', '_') or 'home'}.png"
        page.screenshot(path=os.path.join(os.environ["LMS_FIRST_SCREEN_SHOTS"], name))
    measured = page.evaluate(BOXES, selectors)
    width, height, problems = measured["width"], measured["height"], []
    for name, boxes in measured["boxes"].items():
        wanted = (expect_counts or {}).get(name, 1)
        if len(boxes) < wanted:
            problems.append(f"{name}: {len(boxes)} found, {wanted} expected")
        for n, b in enumerate(boxes):
            if not b["width"] or not b["height"]:
                problems.append(f"{name}[{n}] is not shown")
            elif b["top"] < -0.5 or b["left"] < -0.5 or b["bottom"] > height + 0.5 or b["right"] > width + 0.5:
                problems.append(f"{name}[{n}] at top {b['top']:.0f}, bottom {b['bottom']:.0f}, left {b['left']:.0f}, "
                                f"right {b['right']:.0f} (first screen {width}×{height})")
    return problems


FIRST_ROW = """() => {
  const cards = Array.from(document.querySelectorAll('#roster > li'));
  if (!cards.length) return [];
  const top = cards[0].getBoundingClientRect().top;
  return cards.filter(c => Math.abs(c.getBoundingClientRect().top - top) < 2).map(c => c.querySelector('a').id);
}"""


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_one_thing_to_do_is_on_the_first_screen(site, browser, viewport):
    base, problems = site["url"], []
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])
    page = open_tablet(context, base)
    assert page.locator("html.elder").count() == 1

    # the roster: its whole first row of cards
    row = page.evaluate(FIRST_ROW)
    assert len(row) >= 2, row
    problems += [f"roster: {p}" for p in outside(page, {"first row of cards": ", ".join(f"#{i}" for i in row)},
                                                 {"first row of cards": len(row)})]
    # a 20-character name wraps inside its card: its text box stays inside the card
    card = page.locator(f"#card-{site['ids'][LONG_NAME]}")
    card_box, name_box = card.bounding_box(), card.locator(".name").bounding_box()
    if not (name_box["x"] >= card_box["x"] - 0.5 and name_box["x"] + name_box["width"] <= card_box["x"] + card_box["width"] + 0.5):
        problems.append(f"roster: the long name runs out of its card: name {name_box}, card {card_box}")
    scroll_width = card.evaluate("a => a.scrollWidth - a.clientWidth")
    if scroll_width > 1:
        problems.append(f"roster: the long name overflows its card by {scroll_width}px")

    # the PIN page: the PIN box and all twelve keys
    page.locator(f"#card-{site['ids']['张大爷']}").click()
    page.wait_for_url(f"{base}/tablet/{site['ids']['张大爷']}")
    problems += [f"PIN: {p}" for p in outside(page, {"PIN box": "#pin", "keys": "#keypad button", "确定": "#pin-submit"},
                                              {"keys": 12})]
    for key in page.locator("#keypad button").all():
        box = key.bounding_box()
        assert box["width"] >= 60 and box["height"] >= 60, box
    type_pin(page, "1234")

    # the lesson 张大爷 was watching: the video and its play button under a one-line title
    page.wait_for_url(f"{base}/courses/{site['slug']}/lessons/{site['lesson_slug']}")
    problems += [f"lesson: {p}" for p in outside(page, {"video": "#lesson-video", "play button": "#play-toggle"})]

    # the quiz: the first question with all its choices
    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    problems += [f"quiz: {p}" for p in outside(page, {"first question": "#q0", "its choices": "#q0 label.choice",
                                                      "看答案": "#q0 .check-button"}, {"its choices": 2})]

    # the home page: 继续学习
    page.goto(f"{base}/")
    problems += [f"home: {p}" for p in outside(page, {"继续学习": "#continue-learning"})]
    context.close()
    assert not problems, f"{viewport}:\n" + "\n".join(problems)


def test_roster_and_pin_pages_speak_their_instruction_when_read_aloud_is_on(site, browser):
    from playwright.sync_api import expect

    base = site["url"]
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS["1024x768"])
    context.add_init_script(SPEECH_STUB % '[{"lang": "zh-CN", "name": "Chinese"}]')
    page = open_tablet(context, base)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__spoken") == []  # off until someone turns it on
    toggle = page.locator("#read-aloud-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(toggle).to_contain_text("朗读提示：开")
    spoken = page.evaluate("window.__spoken")
    assert len(spoken) == 1 and "请点您的名字" in spoken[0]["text"] and spoken[0]["lang"] == "zh-CN", spoken

    # the tablet remembers: the next page load speaks once by itself
    page.reload()
    page.wait_for_load_state("networkidle")
    spoken = page.evaluate("window.__spoken")
    assert [s["text"] for s in spoken] == ["请点您的名字，再输入 4 位数字密码（PIN）。"], spoken
    page.locator(f"#card-{site['ids']['李奶奶']}").click()
    page.wait_for_url(f"{base}/tablet/{site['ids']['李奶奶']}")
    page.wait_for_load_state("networkidle")
    spoken = page.evaluate("window.__spoken")
    assert [s["text"] for s in spoken] == ["请输入 4 位数字密码"], spoken
    # a wrong PIN: the page says so, then what to do
    type_pin(page, "0000")
    spoken = page.evaluate("window.__spoken")
    assert len(spoken) == 1 and "PIN 不对" in spoken[0]["text"] and "请输入 4 位数字密码" in spoken[0]["text"], spoken

    # turned off: silence
    page.locator("#read-aloud-toggle").click()
    expect(page.locator("#read-aloud-toggle")).to_have_attribute("aria-pressed", "false")
    page.goto(f"{base}/tablet")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__spoken") == []
    context.close()


AXE_ENHANCED = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations'],
                                          rules: {'color-contrast-enhanced': {enabled: true}}});
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact) || v.id === 'color-contrast-enhanced')
    .map(v => `${v.id} (${v.impact}): ` + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' — ' +
         n.failureSummary.replace(/\\s+/g, ' ')).join(' | '));
}"""


def axe_problems(page, axe_source, name) -> list[str]:  # noqa: F811
    page.wait_for_load_state("networkidle")
    page.evaluate(axe_source)  # through DevTools: an inline <script> would be refused by the CSP
    return [f"{name}: {v}" for v in page.evaluate(AXE_ENHANCED)]


@pytest.mark.parametrize("viewport", ["1024x768", "600x1024"])
def test_every_elder_learner_page_passes_axe_with_7_to_1_contrast(site, browser, axe_source, viewport):  # noqa: F811
    base, problems = site["url"], []
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/")
    with page.expect_navigation():
        page.locator("#elder-switch").click()  # an anonymous visitor's 长辈版: the catalogue
    assert page.locator("html.elder").count() == 1
    problems += axe_problems(page, axe_source, "目录（未登录）")
    page.goto(f"{base}/help/elder")
    problems += axe_problems(page, axe_source, "长辈版说明")
    page.goto(f"{base}/search?q=诈骗")
    problems += axe_problems(page, axe_source, "搜索")
    context.close()

    context = browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])
    page = open_tablet(context, base)
    problems += axe_problems(page, axe_source, "班级名单")
    page.locator(f"#card-{site['ids']['张大爷']}").click()
    page.wait_for_url(f"{base}/tablet/{site['ids']['张大爷']}")
    problems += axe_problems(page, axe_source, "输入PIN")
    type_pin(page, "1234")
    problems += axe_problems(page, axe_source, "课时")
    page.goto(f"{base}/")
    problems += axe_problems(page, axe_source, "长辈版首页（继续学习）")
    page.goto(f"{base}/courses/{site['slug']}")
    problems += axe_problems(page, axe_source, "课程")
    page.goto(f"{base}/lessons/{site['lesson_id']}/quiz")
    problems += axe_problems(page, axe_source, "测验")
    page.locator("#help-raise").click()
    page.locator("#help-coming").wait_for()
    problems += axe_problems(page, axe_source, "测验（老师马上来）")
    page.goto(f"{base}/help/elder")
    problems += axe_problems(page, axe_source, "长辈版说明（平板）")
    context.close()
    assert not problems, "\n".join(problems)
