"""The administrator's console in a real browser (Debian's Chromium through Playwright), issue #10.

- End to end, through the console's own forms: an administrator signs in, adds a township and a class
  under it, imports three learners from an XLSX file, authors a course (a lesson with text and a video
  uploaded through the console and transcoded by the job worker, then a lesson with text and a
  one-question quiz), publishes it and assigns it to the class; one imported learner changes the
  generated password, watches the first lesson's video at normal speed, passes the quiz and is credited;
  the admin's CSV export has the record and the console home shows the 学时.
- axe-core (injected from node_modules, never a CDN): no serious or critical violation on any admin
  page that takes no path parameter, nor on a unit's, a person's, a course's, a lesson's and a
  quiz's pages.
"""
from __future__ import annotations

import csv
import io
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from lms.extensions import db
from tests.conftest import TEST_VIDEO_SECONDS, _make_app, serve_app, write_package
from tests.quizzing import pick
from tests.test_browser import PASSWORD, sign_in

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = pytest.mark.browser

COURSE_TITLE = "浏览器测试：识破冒充客服诈骗"
COURSE_SLUG = "admin-browser-course"
CREDIT_HOURS = "1.5"
LEARNERS = [("nm-zhang", "张农民"), ("nm-li", "李农民"), ("nm-wang", "王农民")]
RIGHT_ANSWER = "挂断，拨打 96110 核实"
NEW_PASSWORD = "my-own-secret-9"

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v =>
    `${v.id} (${v.impact}): ` + v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' — ' + n.failureSummary.replace(/\\s+/g, ' ')).join(' | '));
}"""


@pytest.fixture(scope="module")
def axe_source():
    if not AXE.is_file():
        pytest.skip("axe-core is missing: run `npm ci` (scripts/setup --with-browser does)")
    return AXE.read_text(encoding="utf-8")


def _fast_reading_app(tmp_path, media_dir):
    # a text-only lesson may be marked read after one second, not the production 15
    return _make_app(tmp_path, data_dir=media_dir, READING_MIN_SECONDS=1, READING_CHARS_PER_MINUTE=100_000)


@pytest.fixture
def console(tmp_path, media_dir):
    """A fresh app with only a county and its administrator, served over real HTTP."""
    from lms.accounts.services import create_user, get_or_create_unit

    app = _fast_reading_app(tmp_path, media_dir)
    with app.app_context():
        get_or_create_unit("county", "垫江县", "county", None)
        create_user("admin1", "李管理", PASSWORD, "admin", "cadre", "county")
        db.session.commit()
        db.session.remove()
    with serve_app(app) as url:
        yield {"url": url, "app": app}


def new_page(context):
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def submit(page, form_selector, button_text=None):
    """Click the form's submit button and wait for the page it leads to."""
    button = page.locator(f"{form_selector} button[type=submit]")
    if button_text:
        button = page.locator(form_selector).get_by_role("button", name=button_text, exact=True)
    with page.expect_navigation():
        button.first.click()


def test_admin_builds_a_course_and_a_learner_completes_it(console, browser, tmp_path, test_video):
    from openpyxl import Workbook
    from playwright.sync_api import expect

    base = console["url"]
    admin = browser.new_context(locale="zh-CN", accept_downloads=True)
    page = new_page(admin)

    # --- sign in: the console home
    sign_in(page, base, "admin1")
    assert page.url == f"{base}/admin", page.url
    hours_before = page.locator("#fig-hours-month .figure-value").inner_text().strip()

    # --- units: a township under the county, a class under the township
    page.goto(f"{base}/admin/units")
    page.get_by_role("link", name="垫江县").first.click()
    page.wait_for_url(f"{base}/admin/units/*")
    for name, code, kind in (("桂溪街道", "guixi", "township"), ("智能手机一班", "guixi-class-1", "class")):
        page.get_by_role("link", name="在它下面添加单位").click()
        page.wait_for_url("**/admin/units/new?parent=*")
        page.fill("input[name=name]", name)
        page.fill("input[name=code]", code)
        page.select_option("select[name=kind]", kind)
        submit(page, "form[action$='/admin/units/new']")
        expect(page.locator("#unit-facts")).to_contain_text(code)
        expect(page.locator(".crumbs")).to_contain_text(name)
    class_unit_url = page.url
    expect(page.locator(".crumbs")).to_contain_text("桂溪街道")

    # --- people: three learners from an XLSX file, passwords generated
    sheet_path = tmp_path / "learners.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(["账号", "姓名", "人群", "单位编码"])
    for username, full_name in LEARNERS:
        sheet.append([username, full_name, "农民", "guixi-class-1"])
    book.save(sheet_path)
    page.goto(f"{base}/admin/people")
    page.get_by_role("link", name="批量导入").click()
    page.wait_for_url(f"{base}/admin/people/import")
    page.set_input_files("#import-form input[name=file]", str(sheet_path))
    submit(page, "#import-form")
    expect(page.locator("#import-created")).to_contain_text("已导入 3 人")
    rows = page.locator("#created-table tbody tr")
    expect(rows).to_have_count(3)
    passwords = {rows.nth(i).locator("td").first.inner_text().strip():
                 rows.nth(i).locator("code.secret").inner_text().strip() for i in range(3)}
    assert set(passwords) == {u for u, _ in LEARNERS}, passwords
    page.goto(class_unit_url)
    expect(page.locator("#unit-people")).to_contain_text("本单位 3 人")

    # --- a course for farmers, fixed 学时
    page.goto(f"{base}/admin/courses")
    page.goto(f"{base}/admin/courses/new")
    page.fill("#course-form input[name=title]", COURSE_TITLE)
    page.fill("#course-form input[name=slug]", COURSE_SLUG)
    page.fill("#course-form textarea[name=summary]", "冒充客服说要退款，其实是骗钱。")
    page.check("#course-form input[name=audiences][value=farmer]")
    page.check("#course-form input[name=credit_rule][value=fixed]")
    page.fill("#course-form input[name=credit_hours]", CREDIT_HOURS)
    page.fill("#course-form textarea[name=credit_note]", "按县里培训计划，本课计 1.5 学时。")
    submit(page, "#course-form", "创建课程")
    assert "/admin/courses/" in page.url and page.url.rstrip("/").split("/")[-1].isdigit(), page.url
    course_url = page.url
    expect(page.locator("#course-state")).to_contain_text("未发布")

    # lesson 1: text and a video, uploaded here and transcoded by the job worker
    page.fill("#add-lesson input[name=title]", "第一课：认识冒充客服")
    submit(page, "#add-lesson", "添加课时")
    page.wait_for_url("**/lessons/*")
    lesson1_url = page.url
    page.fill("#lesson-form textarea[name=text]", "## 冒充客服\n\n- 不点陌生链接\n- **不转账**\n\n有疑问拨打 96110。\n")
    submit(page, "#lesson-form", "保存")
    expect(page.locator("body")).to_contain_text("课时已保存")
    expect(page.locator("#video-state")).to_contain_text("没有视频")
    page.locator("#upload-video").click()
    page.wait_for_url("**/video")
    page.set_input_files("input[name=video]", str(test_video))
    submit(page, "form[enctype='multipart/form-data']", "上传")
    expect(page.locator("body")).to_contain_text("已上传，正在排队转码")
    expect(page.locator("#upload-state")).to_contain_text("等待处理")
    from lms.jobs import huey

    with console["app"].app_context():  # the job worker's work (`lms worker` runs the same function)
        result = console["app"].test_cli_runner().invoke(args=["media", "process"])
        db.session.remove()
    huey.flush()  # the queued job is done by the command above; leave no job for other tests
    assert result.exit_code == 0, result.output
    page.goto(lesson1_url)
    expect(page.locator("#video-state")).to_contain_text("可播放")

    # lesson 2: text and a quiz with one question
    page.goto(course_url)
    page.fill("#add-lesson input[name=title]", "第二课：测一测")
    submit(page, "#add-lesson", "添加课时")
    page.fill("#lesson-form textarea[name=text]", "读完下面的题目，选出正确的做法。")
    submit(page, "#lesson-form", "保存")
    lesson2_id = int(page.url.rstrip("/").split("/")[-1])
    page.locator("#quiz-editor").click()
    page.wait_for_url(f"{base}/admin/quizzes/lessons/{lesson2_id}")
    expect(page.locator("#no-quiz")).to_be_visible()
    page.fill("#quiz-settings input[name=pass_score]", "60")
    submit(page, "#quiz-settings", "创建测验")
    page.get_by_role("link", name="添加单选题").click()
    page.wait_for_url("**/questions/new*")
    page.fill("#question-form textarea[name=text]", "自称客服的人说要给你退款，让你把钱转到指定账户，应该？")
    page.fill("input[name='choices-0-text']", "马上转账")
    page.fill("input[name='choices-1-text']", RIGHT_ANSWER)
    page.check("input[name='choices-1-correct']")
    page.fill("#question-form textarea[name=explanation]", "正规客服不会让你转账。挂断，拨打 96110 核实。")
    submit(page, "#question-form", "保存题目")
    expect(page.locator("#questions")).to_contain_text(RIGHT_ANSWER)
    expect(page.locator("#quiz-state")).to_contain_text("没有启用")
    submit(page, "form[action$='/state']", "启用测验")
    expect(page.locator("#quiz-state")).to_contain_text("启用中")

    # publish
    page.goto(course_url)
    expect(page.locator("#lessons li.lesson-row")).to_have_count(2)
    submit(page, "form[action$='/publish']", "发布课程")
    expect(page.locator("#course-state")).to_contain_text("已发布")

    # --- assign it to the class's farmers
    page.goto(f"{base}/admin/assignments")
    page.select_option("select[name=course]", label=COURSE_TITLE)
    page.fill("input[name=due_date]", (date.today() + timedelta(days=30)).isoformat())
    page.select_option("select[name=audience]", "farmer")
    page.fill("input[name=unit]", "guixi-class-1")
    page.keyboard.press("Escape")
    page.fill("input[name=note]", "冬季防诈骗学习")
    submit(page, "form.card", "指派")
    expect(page.locator("body")).to_contain_text("已指派学习任务")
    expect(page.locator("#requirements")).to_contain_text(COURSE_TITLE)
    expect(page.locator("#requirements")).to_contain_text("智能手机一班 · 农民")

    # --- one learner: first sign-in, forced password change, then the course
    username, full_name = LEARNERS[0]
    learner = browser.new_context(locale="zh-CN")
    lp = new_page(learner)
    lp.goto(f"{base}/login")
    lp.fill("input[name=username]", username)
    lp.fill("input[name=password]", passwords[username])
    with lp.expect_navigation():
        lp.get_by_role("button", name="登录", exact=True).click()
    if lp.url != f"{base}/account/password":
        lp.wait_for_url(f"{base}/account/password")
    expect(lp.locator("#must-change")).to_be_visible()
    lp.fill("input[name=current_password]", passwords[username])
    lp.fill("input[name=password]", NEW_PASSWORD)
    lp.fill("input[name=confirm]", NEW_PASSWORD)
    with lp.expect_navigation():
        lp.get_by_role("button", name="修改密码").click()
    assert "/account/password" not in lp.url, lp.locator("body").inner_text()

    lp.goto(f"{base}/my")
    expect(lp.locator("body")).to_contain_text(COURSE_TITLE)
    lp.goto(f"{base}/")
    lp.get_by_role("link", name=COURSE_TITLE).first.click()
    lp.wait_for_url(f"{base}/courses/{COURSE_SLUG}")
    lp.get_by_role("link", name="第一课：认识冒充客服").first.click()
    lp.wait_for_url(f"{base}/courses/{COURSE_SLUG}/lessons/*")
    expect(lp.locator("#lesson-text")).to_contain_text("不转账")
    expect(lp.locator("#watch-status")).to_contain_text("已看 0%")
    started = time.monotonic()  # the whole video at normal speed: only the player's heartbeats report it
    lp.evaluate("""() => { const v = document.getElementById('lesson-video'); v.muted = true; return v.play(); }""")
    lp.wait_for_function("() => document.getElementById('lesson-video').ended", timeout=30_000)
    assert time.monotonic() - started >= TEST_VIDEO_SECONDS - 0.5
    expect(lp.locator("#watch-status")).to_contain_text("视频已看完", timeout=15_000)

    lp.goto(f"{base}/courses/{COURSE_SLUG}")
    lp.get_by_role("link", name="第二课：测一测").first.click()
    lp.wait_for_url(f"{base}/courses/{COURSE_SLUG}/lessons/*")
    lp.click("#quiz-link")
    lp.wait_for_url(f"{base}/lessons/{lesson2_id}/quiz")
    pick(lp, 0, RIGHT_ANSWER)
    with lp.expect_navigation():
        lp.get_by_role("button", name="提交答案").click()
    expect(lp.locator("#quiz-result")).to_contain_text("通过了")
    expect(lp.get_by_text("恭喜完成课程")).to_be_visible()
    lp.goto(f"{base}/my/hours")
    expect(lp.locator("#hours-records")).to_contain_text(COURSE_TITLE)
    expect(lp.locator("#hours-total")).to_contain_text(CREDIT_HOURS)
    learner.close()

    # --- the admin: the CSV export has the record, the console home the 学时
    page.goto(f"{base}/admin/hours")
    page.select_option("select[name=fmt]", "csv")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="下载").click()
    raw = open(download_info.value.path(), "rb").read()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    matching = [r for r in rows if r["账号"] == username and r["课程/活动"] == COURSE_TITLE]
    assert len(matching) == 1, rows
    assert matching[0]["姓名"] == full_name
    assert matching[0]["学时"] == "1.50"
    assert all(r["账号"] == username for r in rows), rows  # the other two have not studied

    page.goto(f"{base}/admin")
    assert hours_before == "0", hours_before
    expect(page.locator("#fig-hours-month .figure-value")).to_have_text(CREDIT_HOURS)
    expect(page.locator("#fig-hours-year .figure-value")).to_have_text(CREDIT_HOURS)
    expect(page.locator("#fig-active .figure-value")).to_have_text("1")
    expect(page.locator("#fig-done .figure-value")).to_have_text("1")
    admin.close()


# ---- axe-core on every admin page ---------------------------------------------------------------

NOT_A_PAGE = (".csv", "/export", "/search")  # downloads and the unit picker's JSON


@pytest.fixture
def stocked_console(tmp_path, media_dir):
    """An app with units, people, a published course with a quiz (no video) and an assignment."""
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from lms.records.assignments import create_requirement

    app = _fast_reading_app(tmp_path, media_dir)
    with app.app_context():
        course, _ = import_package(write_package(tmp_path / "content", None, audiences=("farmer",)))
        county = get_or_create_unit("county", "垫江县", "county", None)
        town = get_or_create_unit("town-a", "桂溪街道", "township", county)
        get_or_create_unit("class-1", "智能手机一班", "class", town)
        admin = create_user("admin1", "李管理", PASSWORD, "admin", "cadre", "county")
        learner = create_user("farmer1", "刘师傅", PASSWORD, "learner", "farmer", "class-1")
        create_user("town-admin", "王站长", PASSWORD, "unit_admin", "cadre", "town-a")
        db.session.commit()
        create_requirement(course, date.today() + timedelta(days=30), audience="farmer", unit=None,
                           usernames=[], note="", actor=admin)
        db.session.commit()
        lesson = course.active_lessons[0]
        quiz = lesson.quiz
        info = {"course_id": course.id, "lesson_id": lesson.id, "town_id": town.id, "learner_id": learner.id,
                "question_id": quiz.active_questions[0].id if quiz is not None else None}
        pages = sorted(rule.rule for rule in app.url_map.iter_rules()
                       if rule.rule.startswith("/admin") and "GET" in rule.methods and not rule.arguments
                       and not rule.rule.endswith(NOT_A_PAGE))
        db.session.remove()
    with serve_app(app) as url:
        yield {"url": url, "pages": pages, **info}


def test_admin_pages_have_no_serious_axe_violations(stocked_console, browser, axe_source):
    site = stocked_console
    base = site["url"]
    assert "/admin" in site["pages"] and "/admin/people" in site["pages"], site["pages"]
    lesson, course = site["lesson_id"], site["course_id"]
    with_ids = [f"/admin/units/{site['town_id']}", f"/admin/people/{site['learner_id']}",
                f"/admin/courses/{course}", f"/admin/courses/{course}/lessons/{lesson}",
                f"/admin/quizzes/lessons/{lesson}", f"/admin/quizzes/lessons/{lesson}/stats",
                f"/admin/lessons/{lesson}/video", f"/admin/courses/{course}/preview?audience=farmer"]
    if site["question_id"]:
        with_ids.append(f"/admin/quizzes/lessons/{lesson}/questions/{site['question_id']}")
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = new_page(context)
    sign_in(page, base, "admin1")
    problems, audited = [], []
    for path in site["pages"] + with_ids:
        response = page.goto(f"{base}{path}")
        if response is None or response.status != 200:
            problems.append(f"{path}: HTTP {response.status if response else '—'}")
            continue
        page.wait_for_load_state("networkidle")
        page.evaluate(axe_source)  # through DevTools: an inline <script> would be refused by the CSP
        violations = page.evaluate(AXE_RUN)
        audited.append(path)
        if violations:
            problems.append(f"{path}: {violations}")
    context.close()
    print("axe audited:", ", ".join(audited))
    assert site["question_id"] is not None
    assert len(audited) >= 20, audited
    assert not problems, "admin pages with serious/critical accessibility problems:\n" + "\n".join(problems)
