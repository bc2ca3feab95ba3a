"""科学素质自测 in a real browser (Debian's Chromium through Playwright): an elder learner (长辈版 on)
starts the self-assessment, sees the countdown ticking, answers a few questions, hands in and sees the
score per dimension; on the question page every target is ≥ 60 px and axe-core finds nothing serious."""
from __future__ import annotations

import re

import pytest

from lms.extensions import db
from tests.assessing import POOL
from tests.conftest import _make_app, serve_app
from tests.test_browser import PASSWORD, sign_in
from tests.test_elder_browser import AXE, AXE_RUN, MEASURE

pytestmark = pytest.mark.browser


@pytest.fixture
def site(tmp_path, media_dir):
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.assessment.pool import import_pool

    app = _make_app(tmp_path, data_dir=media_dir)
    with app.app_context():
        import_pool(POOL)
        county = get_or_create_unit("county", "垫江县", "county")
        get_or_create_unit("town-a", "桂溪街道", "township", county)
        create_user("elder", "陈阿姨", PASSWORD, "learner", "elder", "town-a")
        db.session.commit()
        db.session.remove()
    with serve_app(app) as url:
        yield url


def test_a_learner_answers_a_few_hands_in_and_sees_scores_per_dimension(site, browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, site, "elder")
    page.goto(f"{site}/assessment")
    assert "不计学时" in page.content()
    with page.expect_navigation():
        page.locator("#assessment-start").click()
    clock = page.locator("#assessment-clock")
    first = clock.text_content()
    assert re.fullmatch(r"1[45]:\d\d", first)
    page.wait_for_function("(first) => document.getElementById('assessment-clock').textContent !== first", arg=first)
    # 长辈版: every target on the question page is at least 60 px, and axe finds nothing serious
    measured = page.evaluate(MEASURE, True)
    assert not measured["small"], measured["small"]
    if AXE.is_file():
        page.evaluate(AXE.read_text(encoding="utf-8"))
        assert page.evaluate(AXE_RUN) == []
    for number in range(1, 4):
        assert f"{number}. " in page.locator("legend").text_content()
        page.locator("label.choice").first.click()
        with page.expect_navigation():
            page.locator("#assessment-confirm").click()
    assert "已答 3 / 30 题" in page.locator("#assessment-progress").text_content()
    with page.expect_navigation():
        page.locator("#assessment-finish").click()
    assert "/assessment/result/" in page.url
    table = page.locator("#assessment-dimensions")
    for label in ("科学知识", "科学方法", "科学思维与精神", "解决问题的能力"):
        assert label in table.text_content()
    assert "满分 100 分" in page.locator("#assessment-total").text_content()
    assert "自选样本" in page.locator("#assessment-disclaimer").text_content()
    measured = page.evaluate(MEASURE, True)  # the result page in 长辈版 too
    assert not measured["small"] and measured["fontSize"] >= 22, measured
    context.close()
