"""知识竞赛 in a real browser (Chromium): a senior in 长辈版 answers a short contest one question at a
time — the last one left to the countdown, which sends it at zero — then sees the review and the
ranking. Large targets, no Content-Security-Policy violation (the browser fixture checks)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from lms.extensions import db
from tests.conftest import _make_app, serve_app
from tests.contesting import local, make_pool
from tests.test_admin_browser import AXE, AXE_RUN

PASSWORD = "correct-horse"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def axe_source():
    if not AXE.is_file():
        pytest.skip("axe-core is missing: run `npm ci` (scripts/setup --with-browser does)")
    return AXE.read_text(encoding="utf-8")


def axe_problems(page, axe_source, name) -> list[str]:
    """Serious or critical axe-core violations of the page as it stands."""
    page.wait_for_load_state("networkidle")
    page.evaluate(axe_source)  # through DevTools: an inline <script> would be refused by the CSP
    return [f"{name}: {violation}" for violation in page.evaluate(AXE_RUN)]


def sign_in(page, base, username):
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录", exact=True).click()


@pytest.fixture
def site(tmp_path, media_dir):
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.contests import services

    app = _make_app(tmp_path, data_dir=media_dir)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        get_or_create_unit("town-a", "桂溪街道", "township", county)
        admin = create_user("admin1", "李管理", PASSWORD, "admin", "cadre", "county")
        create_user("elder1", "张大爷", PASSWORD, "learner", "elder", "town-a")
        pool = make_pool(questions=3)
        contest = services.create_contest(admin, services.ContestData(
            title="防诈骗知识竞赛", description="三道题", starts_local=local(timedelta(hours=-1)),
            ends_local=local(timedelta(days=1)), audiences=["elder"], unit_codes="county", course_ids=[pool.id],
            question_count=3, seconds_per_question=5, attempts_per_day=1, score_rule="best", hours=Decimal("1"),
            min_score=60))
        info = {"contest_id": contest.id}
        db.session.remove()
    with serve_app(app) as url:
        yield {"url": url, **info}


def test_a_senior_answers_a_short_contest_and_sees_the_ranking(site, browser, axe_source):
    from playwright.sync_api import expect

    base = site["url"]
    page = browser.new_page(viewport={"width": 800, "height": 1000})
    sign_in(page, base, "elder1")
    page.goto(f"{base}/contests")
    problems = axe_problems(page, axe_source, "竞赛列表")
    page.get_by_role("link", name="去参赛").click()
    problems += axe_problems(page, axe_source, "竞赛说明")
    page.get_by_role("button", name="开始答题").click()
    problems += axe_problems(page, axe_source, "答题")
    answered = 0
    while answered < 2:  # the right answer of each question, by its text
        expect(page.locator("#contest-progress")).to_contain_text(f"第 {answered + 1} 题")
        seconds = int(page.locator("#contest-seconds").inner_text())
        assert 1 <= seconds <= 5
        box = page.locator(".contest-choice input").first.bounding_box()
        assert box["width"] >= 60 and box["height"] >= 60  # 长辈版 targets
        labels = page.locator(".contest-choice")
        for n in range(labels.count()):
            text = labels.nth(n).inner_text().strip()
            if text == "正确" or text.startswith("对"):
                labels.nth(n).click()
        with page.expect_navigation():
            page.get_by_role("button", name="提交这道题").click()
        answered += 1
    # the third question is left alone: the countdown sends it at zero, and it scores zero
    expect(page.locator("#contest-progress")).to_contain_text("第 3 题")
    expect(page.locator("#attempt-score")).to_contain_text("答对 2 题，共 3 题，得 66.67 分", timeout=15_000)
    expect(page.locator("#review-3")).to_contain_text("超时，不得分")
    expect(page.locator("#my-credit")).to_contain_text("已记 1 学时")
    problems += axe_problems(page, axe_source, "答题回顾")
    page.get_by_role("link", name="看排行榜").first.click()
    expect(page.locator("#my-place")).to_contain_text("您排第 1 名（共 1 人）")
    expect(page.locator("#people-ranking")).to_contain_text("张大爷")
    expect(page.locator("#units-by-rate")).to_contain_text("桂溪街道")
    problems += axe_problems(page, axe_source, "排行榜")
    page.close()
    assert not problems, "\n".join(problems)


def test_the_organiser_pages_are_accessible(site, browser, axe_source):
    base = site["url"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, base, "admin1")
    problems = []
    for path, name in (("/admin/contests", "竞赛管理"), ("/admin/contests/new", "新建竞赛"),
                       (f"/admin/contests/{site['contest_id']}/edit", "编辑竞赛"),
                       (f"/contests/{site['contest_id']}/rankings", "组织者看排行榜")):
        assert page.goto(f"{base}{path}").status == 200, path
        problems += axe_problems(page, axe_source, name)
    page.close()
    assert not problems, "\n".join(problems)
