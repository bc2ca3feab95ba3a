"""请老师帮忙 (issue 15): another class's teacher, a learner, a forged cross-site press or a flood of presses
gets nothing — not another class's requests (404), not a clear (403/404), no request without CSRF (400),
and never more than one open request per learner."""
from __future__ import annotations

import threading

from lms.classroom.models import HelpRequest
from lms.extensions import db
from tests.conftest import BrowserLikeClient
from tests.test_elder import klass, open_tablet, pupils, teacher, type_pin  # noqa: F401  (fixtures)
from tests.test_help_requests import open_list, raise_help, teacher_view


def raised(app, browser_client, teacher, klass, learner, pin):  # noqa: F811
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, learner, pin)
    raise_help(browser_client)
    return HelpRequest.query.filter(HelpRequest.open_key.isnot(None)).one()


def still_open(request_id) -> bool:
    db.session.expire_all()
    return db.session.get(HelpRequest, request_id).open_key is not None


def test_another_classs_teacher_neither_reads_nor_clears(app, browser_client, teacher, klass, pupils, make_user):
    """Another class's teacher reading or clearing this class's requests: 404 (they do not exist for them)."""
    from lms.accounts.services import get_or_create_unit

    request = raised(app, browser_client, teacher, klass, pupils[0], "1234")
    get_or_create_unit("class-2", "澄溪老年学校", "class", get_or_create_unit("town-b", "澄溪镇", "township"))
    db.session.commit()
    other = make_user(username="teacher2", role="instructor", unit="town-b")
    client = BrowserLikeClient(app.test_client())
    client.login(other.username)
    client.refresh_token("/classroom/class-2")
    assert client.get("/classroom/class-1/help").status_code == 404
    assert client.post(f"/classroom/class-1/help/{request.id}/clear", data={"csrf_token": client.token}).status_code == 404
    # their own class's URL with this class's request id: 404 too
    assert client.get("/classroom/class-2/help").get_json() == {"requests": []}
    assert client.post(f"/classroom/class-2/help/{request.id}/clear", data={"csrf_token": client.token}).status_code == 404
    assert still_open(request.id)
    assert [r["name"] for r in open_list(teacher_view(app, teacher))] == ["张大爷"]


def test_a_learner_cannot_read_or_clear_anyones_request(app, browser_client, teacher, klass, pupils):
    """A learner (on the tablet, or signed in elsewhere) reading or clearing requests: 404, and their own
    取消 closes only their own request, never another learner's."""
    zhang, li = pupils
    request = raised(app, browser_client, teacher, klass, zhang, "1234")
    browser_client.post("/tablet/switch", data={"csrf_token": browser_client.token})
    browser_client.refresh_token("/tablet")
    type_pin(browser_client, li, "5678")
    assert browser_client.get("/classroom/class-1/help").status_code == 404
    assert browser_client.post(f"/classroom/class-1/help/{request.id}/clear",
                               data={"csrf_token": browser_client.token}).status_code == 404
    assert browser_client.get("/tablet/help").get_json()["open"] is False  # 张大爷's is not 李奶奶's
    browser_client.post("/tablet/help/cancel", data={"csrf_token": browser_client.token})
    assert still_open(request.id)
    elsewhere = BrowserLikeClient(app.test_client())
    elsewhere.login(li.username)
    elsewhere.refresh_token("/")
    assert elsewhere.get("/classroom/class-1/help").status_code == 404
    assert elsewhere.post(f"/classroom/class-1/help/{request.id}/clear", data={"csrf_token": elsewhere.token}).status_code == 404
    # without a class tablet there is nothing to raise, cancel or ask about
    assert elsewhere.post("/tablet/help", data={"csrf_token": elsewhere.token}).status_code == 404
    assert elsewhere.post("/tablet/help/cancel", data={"csrf_token": elsewhere.token}).status_code == 404
    assert elsewhere.get("/tablet/help").status_code == 404
    assert still_open(request.id)


def test_missing_csrf_is_refused(app, browser_client, teacher, klass, pupils):
    """A cross-site page making the tablet press 请老师帮忙 or 取消, or the teacher's browser press 已处理,
    without the CSRF token: 400, nothing changes."""
    zhang, _li = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    assert browser_client.post("/tablet/help", data={"next": "/"}).status_code == 400
    assert HelpRequest.query.count() == 0
    raise_help(browser_client)
    request = HelpRequest.query.one()
    assert browser_client.post("/tablet/help/cancel", data={}).status_code == 400
    desk = teacher_view(app, teacher)
    assert desk.post(f"/classroom/class-1/help/{request.id}/clear", data={}).status_code == 400
    assert still_open(request.id)


def test_a_flood_of_presses_is_one_request(app, browser_client, teacher, klass, pupils):
    """A flood of presses (42 one after another, 8 at once): one open request; a 10,000-character page
    title is cut to its 120-character column."""
    zhang, _li = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    for _ in range(42):
        raise_help(browser_client, title="x" * 10_000)
    errors = []

    def press():
        try:
            with app.app_context():
                raise_help(browser_client)
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=press) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    db.session.expire_all()
    assert HelpRequest.query.count() == 1
    assert len(HelpRequest.query.one().page_title) == 120
    assert len(open_list(teacher_view(app, teacher))) == 1
