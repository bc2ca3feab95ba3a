"""请老师帮忙 (issue 15): a learner on a class tablet asks for the teacher; the class's page shows it
at once (its JSON is polled by help.js); the teacher clears it, or the learner cancels it.

HTTP tests through the test client, and one in Chromium with two browser contexts (the tablet and the
teacher's own device). The learner's page asks for its own request's state every 4 s while one is open
(lms/static/js/help.js), so it returns to 请老师帮忙 by itself once the teacher has cleared it."""
from __future__ import annotations

from datetime import timedelta

import pytest

from lms.extensions import db
from tests.conftest import BrowserLikeClient
from tests.test_elder import klass, open_tablet, pupils, teacher, type_pin  # noqa: F401  (fixtures)


def raise_help(client, **extra):
    return client.post("/tablet/help", data={"csrf_token": client.token, "next": "/lessons/1/quiz",
                                             "title": "测验：第1课", **extra})


def teacher_view(app, teacher):
    client = BrowserLikeClient(app.test_client())
    client.login(teacher.username)
    client.refresh_token("/classroom/class-1")
    return client


def open_list(client):
    response = client.get("/classroom/class-1/help")
    assert response.status_code == 200
    return response.get_json()["requests"]


def test_raised_on_a_tablet_appears_for_the_teacher_and_clears(app, browser_client, teacher, klass, pupils):
    zhang, _li = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    page = browser_client.get("/").get_data(as_text=True)
    assert 'id="help-raise"' in page and "请老师帮忙" in page and 'id="help-open" hidden' in page

    response = raise_help(browser_client)
    assert response.status_code == 302 and response.headers["Location"] == "/lessons/1/quiz"
    page = browser_client.get("/").get_data(as_text=True)
    assert "老师马上来" in page and 'id="help-open" hidden' not in page and "取消" in page
    assert browser_client.get("/tablet/help").get_json()["open"] is True

    desk = teacher_view(app, teacher)
    requests = open_list(desk)
    assert [(r["name"], r["place"], r["ago"]) for r in requests] == [("张大爷", "测验：第1课", "刚刚")]
    manage = desk.get("/classroom/class-1").get_data(as_text=True)
    assert "张大爷" in manage and "已处理" in manage and "测验：第1课" in manage

    response = desk.post(f"/classroom/class-1/help/{requests[0]['id']}/clear", data={"csrf_token": desk.token})
    assert response.status_code == 302
    assert open_list(desk) == []
    assert "现在没有人需要帮忙" in desk.get("/classroom/class-1").get_data(as_text=True)
    # the learner's page returns to normal
    assert browser_client.get("/tablet/help").get_json()["open"] is False
    assert 'id="help-open" hidden' in browser_client.get("/").get_data(as_text=True)


def test_the_learner_cancels_and_pressing_twice_is_one_request(app, browser_client, teacher, klass, pupils):
    from lms.classroom.models import HelpRequest

    zhang, _li = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    first = raise_help(browser_client, title="第1课")
    second = browser_client.post("/tablet/help", data={"csrf_token": browser_client.token, "next": "/"},
                                 headers={"Accept": "application/json"})
    assert first.status_code == 302 and second.get_json()["open"] is True
    assert HelpRequest.query.filter(HelpRequest.open_key.isnot(None)).count() == 1
    desk = teacher_view(app, teacher)
    assert [r["place"] for r in open_list(desk)] == ["第1课"]  # the first press, kept as it was

    response = browser_client.post("/tablet/help/cancel", data={"csrf_token": browser_client.token},
                                   headers={"Accept": "application/json"})
    assert response.get_json() == {"open": False, "since": None}
    assert open_list(desk) == []
    row = HelpRequest.query.one()
    assert row.closed_how == "cancelled" and row.user_id == zhang.id  # kept, closed


def test_before_sign_in_the_pin_page_names_who_asks(app, browser_client, teacher, klass, pupils):
    _zhang, li = pupils
    open_tablet(browser_client, teacher, klass)
    page = browser_client.get(f"/tablet/{li.id}").get_data(as_text=True)
    assert f'name="learner" value="{li.id}"' in page
    raise_help(browser_client, learner=str(li.id), title="输入密码")
    desk = teacher_view(app, teacher)
    assert [r["name"] for r in open_list(desk)] == ["李奶奶（还没登录）"]
    # from the roster, nobody in particular: still one request for this tablet
    raise_help(browser_client)
    assert len(open_list(desk)) == 1


def test_requests_older_than_two_hours_drop_off(app, browser_client, teacher, klass, pupils):
    from lms.classroom import help as help_requests
    from lms.classroom.models import HelpRequest

    zhang, _li = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    raise_help(browser_client)
    row = HelpRequest.query.one()
    row.created_at -= help_requests.MAX_AGE + timedelta(minutes=1)
    db.session.commit()
    desk = teacher_view(app, teacher)
    assert open_list(desk) == []
    assert browser_client.get("/tablet/help").get_json()["open"] is False
    raise_help(browser_client)  # a new press makes a new request; the stale one is closed as expired
    assert len(open_list(desk)) == 1
    assert sorted(r.closed_how or "open" for r in HelpRequest.query.all()) == ["expired", "open"]


@pytest.mark.browser
def test_in_the_browser_the_teacher_sees_it_within_seconds_and_clears_it(tmp_path, media_dir, browser):
    from playwright.sync_api import expect

    from lms.accounts.services import create_user, get_or_create_unit
    from lms.classroom.services import set_pin
    from tests.conftest import _make_app, serve_app
    from tests.test_browser import PASSWORD, sign_in
    from tests.test_elder_browser import open_tablet as open_tablet_page, type_pin as type_pin_page

    app = _make_app(tmp_path, data_dir=media_dir)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        town = get_or_create_unit("town-a", "桂溪街道", "township", county)
        get_or_create_unit("class-1", "老年学校智能手机一班", "class", town)
        create_user("teacher", "王老师", PASSWORD, "instructor", "elder", "town-a")
        set_pin(create_user("zhang", "张大爷", PASSWORD, "learner", "elder", "class-1"), "1234")
        db.session.commit()
        db.session.remove()
    with serve_app(app) as base:
        tablet = browser.new_context(locale="zh-CN", viewport={"width": 1024, "height": 768})
        page = open_tablet_page(tablet, base)
        page.get_by_role("link", name="张大爷").click()
        type_pin_page(page, "1234")
        desk = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        teacher_page = desk.new_page()
        teacher_page.set_default_timeout(15_000)
        sign_in(teacher_page, base, "teacher")
        teacher_page.goto(f"{base}/classroom/class-1")
        expect(teacher_page.locator("#help-none")).to_be_visible()

        page.evaluate("window.__samePage = true")
        page.locator("#help-raise").click()
        expect(page.locator("#help-coming")).to_contain_text("老师马上来")
        expect(page.locator("#help-raise")).to_be_hidden()
        assert page.evaluate("window.__samePage") is True  # raised in place: a playing video would go on
        box = page.locator("#help-cancel").bounding_box()
        assert box["height"] >= 60 and box["width"] >= 60, box

        item = teacher_page.locator("#help-list .help-item")
        expect(item).to_contain_text("张大爷", timeout=8_000)  # polled every 4 s, no reload
        expect(item).to_contain_text("求助")
        expect(teacher_page.locator("#help-none")).to_be_hidden()
        item.get_by_role("button", name="已处理").click()
        expect(item).to_have_count(0)
        expect(teacher_page.locator("#help-none")).to_be_visible()

        expect(page.locator("#help-raise")).to_be_visible(timeout=8_000)  # the tablet polls its own request
        expect(page.locator("#help-open")).to_be_hidden()
        tablet.close()
        desk.close()


def test_waiting_for_help_does_not_keep_a_quiet_tablet_signed_in(app, browser_client, teacher, klass, pupils):
    """help.js asks every 4 s while a request is open; that is not the learner being active, so a tablet
    left alone is still signed out after the idle time (and the roster then says why)."""
    import time

    zhang, _li = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    raise_help(browser_client)
    quiet_since = time.time() - 600
    with browser_client.session_transaction() as session:
        session["tablet_seen"] = quiet_since
    assert browser_client.get("/tablet/help").get_json()["open"] is True
    with browser_client.session_transaction() as session:
        assert session["tablet_seen"] == quiet_since  # not refreshed by the poll
        session["tablet_seen"] = time.time() - 901
    response = browser_client.get("/tablet/help")
    assert response.status_code == 401 and response.get_json()["error"] == "signed_out"
    assert "自动退出" in browser_client.get("/tablet").get_data(as_text=True)
    # the request itself is still on the teacher's list: the learner may still be waiting
    assert [r["name"] for r in open_list(teacher_view(app, teacher))] == ["张大爷"]
