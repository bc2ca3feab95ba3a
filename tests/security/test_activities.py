"""Offline activities (issue 11): a QR code works only for its activity, its 30-second slot (and the one
after) and the activity's window; nobody is credited twice or outside the activity's audiences and
units; organisers keep to their scope; a paper list with one bad row writes nothing."""
from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest

from lms.accounts.models import User, utcnow
from lms.activities import services
from lms.activities.models import ActivityAttendance, OfflineActivity
from lms.extensions import db
from lms.records.models import TrainingRecord
from tests.conftest import BrowserLikeClient, _make_app
from tests.test_activities import as_user, make_activity, records_of, scan_path, world  # noqa: F401


def scan(client, path):
    response = client.get(path)
    return response.status_code, response.get_data(as_text=True)


def nothing_credited() -> bool:
    db.session.expire_all()
    return TrainingRecord.query.filter_by(kind="offline").count() == 0 and ActivityAttendance.query.count() == 0


def test_a_code_from_an_expired_slot_is_refused(app, world):
    """A photo of the code sent home, scanned 90 s later: 二维码已过期, nothing credited."""
    activity = make_activity(world["admin"])
    old = scan_path(activity, utcnow() - timedelta(seconds=90))
    status, page = scan(as_user(app, world["elder_a"]), old)
    assert status == 409 and "二维码已过期，请重新扫描现场的二维码" in page
    assert nothing_credited()


def test_a_code_of_another_activity_is_refused(app, world):
    """Activity A's fresh code with activity B's id put in: 二维码无效, nothing credited for either."""
    shown = make_activity(world["admin"], title="A")
    other = make_activity(world["admin"], title="B")
    _id, slot, mac = services.make_token(shown).split("-", 2)
    status, page = scan(as_user(app, world["elder_a"]), f"/activities/scan/{other.id}-{slot}-{mac}")
    assert status == 400 and "二维码无效" in page
    assert nothing_credited()


def test_a_forged_or_malformed_code_is_refused(app, world):
    """A made-up HMAC, a slot moved forward, junk: 二维码无效 each, nothing credited."""
    activity = make_activity(world["admin"])
    _id, slot, mac = services.make_token(activity).split("-", 2)
    learner = as_user(app, world["elder_a"])
    for token in (f"{activity.id}-{slot}-{'A' * len(mac)}", f"{activity.id}-{int(slot) + 1}-{mac}",
                  f"{activity.id}-{slot}", "１-２-３", f"{activity.id}-{slot}-{mac}-x"):
        status, page = scan(learner, f"/activities/scan/{token}")
        assert status == 400 and "二维码无效" in page, token
    assert nothing_credited()


def test_a_second_scan_credits_nothing_more(app, world):
    """The same learner scans twice (and a teacher ticks them too): 您已签到过, one record."""
    activity = make_activity(world["admin"])
    learner = as_user(app, world["elder_a"])
    assert "已签到，记 2 学时" in scan(learner, scan_path(activity))[1]
    assert "您已签到过" in scan(learner, scan_path(activity))[1]
    credit = services.credit_attendance(activity, world["elder_a"], world["admin"], "roster")
    assert credit.status == "already"
    assert len(records_of(world["elder_a"])) == 1


def test_concurrent_credits_of_one_person_make_one_record(app, world, monkeypatch):
    """A scan and a tick at the same moment, both past the check before the insert: the unique
    completion_key refuses the second inside its savepoint; it answers "already", one record."""
    activity = make_activity(world["admin"])
    first = services.credit_attendance(activity, world["elder_a"], None, "qr")
    monkeypatch.setattr(services, "credited_record", lambda key: None)  # as a racing request sees it
    second = services.credit_attendance(activity, world["elder_a"], world["admin"], "roster")
    assert (first.status, second.status, second.record.id) == ("credited", "already", first.record.id)
    assert len(records_of(world["elder_a"])) == 1 and ActivityAttendance.query.count() == 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def race_app(request, tmp_path):
    """An app on a file-backed SQLite database, then on a throw-away PostgreSQL one."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    app = _make_app(tmp_path, database_url=url)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_many_scans_at_once_make_one_record(race_app):
    """10 requests credit one learner at the same moment (SQLite file and PostgreSQL): one record, one
    attendance, no error — the others answer "already"."""
    from lms.accounts.services import create_user, get_or_create_unit

    with race_app.app_context():
        get_or_create_unit("county", "垫江县", "county")
        admin = create_user("county-admin", "县管理员", "correct-horse", "admin", "cadre", "county")
        learner = create_user("elder-a", "张大爷", "correct-horse", "learner", "elder", "county")
        db.session.commit()
        activity_id, user_id = make_activity(admin, unit="county").id, learner.id
        db.session.remove()
    barrier, statuses, errors = threading.Barrier(10), [], []

    def run():
        with race_app.app_context():
            try:
                barrier.wait()
                statuses.append(services.credit_attendance(db.session.get(OfflineActivity, activity_id),
                                                           db.session.get(User, user_id), None, "qr").status)
            except Exception as exc:  # asserted on below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(statuses) == ["already"] * 9 + ["credited"]
    with race_app.app_context():
        assert TrainingRecord.query.filter_by(user_id=user_id).count() == 1
        assert ActivityAttendance.query.count() == 1


def test_a_scan_outside_the_window_is_refused(app, world):
    """A fresh code of an activity that ended an hour ago (or starts tomorrow): 活动不在签到时间内."""
    ended = make_activity(world["admin"], starts=timedelta(hours=-3), ends=timedelta(hours=-1))
    later = make_activity(world["admin"], starts=timedelta(days=1), ends=timedelta(days=1, hours=2))
    learner = as_user(app, world["elder_a"])
    for activity in (ended, later):
        status, page = scan(learner, scan_path(activity))
        assert status == 409 and "活动不在签到时间内" in page
    assert nothing_credited()


def test_a_scan_by_someone_outside_the_audience_or_units_is_refused(app, world):
    """A farmer at an elders' lecture, an elder of another township: told why, nothing credited."""
    activity = make_activity(world["admin"], unit="town-a", audiences=("elder",))
    status, page = scan(as_user(app, world["farmer_a"]), scan_path(activity))
    assert status == 403 and "李大叔（农民）不在本活动面向的人群（老年人）中，没有记学时。" in page
    status, page = scan(as_user(app, world["elder_b"]), scan_path(activity))
    assert status == 403 and "刘奶奶 不属于本活动的单位“桂溪街道”及其下级单位" in page
    # the roster does not offer them, and a forged tick is refused the same way
    admin = as_user(app, world["admin"])
    response = admin.post(f"/admin/activities/{activity.id}/attend",
                          data={"csrf_token": admin.token, "user_id": world["elder_b"].id})
    assert "刘奶奶 不属于本活动的单位" in admin.get(response.headers["Location"].split("#")[0]).get_data(as_text=True)
    assert nothing_credited()


def test_a_unit_admin_cannot_organise_for_a_unit_outside_their_subtree(app, world):
    """Unit admin of town-a creates (or moves) an activity to town-b or the county: 400 naming the unit,
    nothing saved."""
    ua = as_user(app, world["ua_a"])
    data = {"csrf_token": ua.token, "title": "越权活动", "kind": "lecture", "starts_at": "2025-05-20T09:30",
            "ends_at": "2025-05-20T11:00", "place": "澄溪镇", "audiences": ["elder"], "hours": "1"}
    for unit, name in (("town-b", "澄溪镇"), ("county", "垫江县")):
        response = ua.post("/admin/activities/new", data={**data, "unit": unit})
        assert response.status_code == 400 and f"单位“{name}”不在您管辖的范围内" in response.get_data(as_text=True)
    assert OfflineActivity.query.filter_by(title="越权活动").count() == 0
    own = make_activity(world["ua_a"], unit="town-a")
    response = ua.post(f"/admin/activities/{own.id}/edit", data={**data, "unit": "town-b"})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(OfflineActivity, own.id).unit.code == "town-a"
    # another subtree's activity is not found for them: page, roster, QR, import
    other = make_activity(world["ua_b"], unit="town-b", title="澄溪镇的活动")
    assert "澄溪镇的活动" not in ua.get("/admin/activities").get_data(as_text=True)
    for suffix in ("", "/edit", "/qr", "/qr.json", "/import", "/import/template.csv"):
        assert ua.get(f"/admin/activities/{other.id}{suffix}").status_code == 404, suffix


def test_a_teacher_cannot_tick_for_a_class_not_theirs(app, world):
    """Teacher of town-a ticks a learner at an activity of town-b's class, or of town-a itself (not a
    class they manage): 404, nothing credited; the roster and QR screen are not theirs either."""
    other_class = make_activity(world["admin"], unit="class-b")
    township = make_activity(world["admin"], unit="town-a")
    teacher = as_user(app, world["teacher_a"])
    for activity, learner in ((other_class, world["elder_b"]), (township, world["elder_a"])):
        response = teacher.post(f"/admin/activities/{activity.id}/attend",
                                data={"csrf_token": teacher.token, "user_id": learner.id})
        assert response.status_code == 404
        assert teacher.get(f"/admin/activities/{activity.id}").status_code == 404
        assert teacher.get(f"/admin/activities/{activity.id}/qr.json").status_code == 404
    assert nothing_credited()
    listed = teacher.get("/admin/activities").get_data(as_text=True)
    assert "还没有线下活动" in listed


def test_a_paper_list_with_an_unknown_account_writes_nothing(app, world):
    """A signed list of two good rows and one unknown 账号: the bad row is named, nobody is credited."""
    activity = make_activity(world["admin"])
    admin = as_user(app, world["admin"])
    text = "账号,姓名\r\nelder-a,张大爷\r\nghost,鬼\r\npupil-a,陈奶奶\r\n".encode("gbk")
    response = admin.post(f"/admin/activities/{activity.id}/import", content_type="multipart/form-data",
                          data={"csrf_token": admin.token, "file": (io.BytesIO(text), "list.csv")})
    assert response.status_code == 400 and "没有账号“ghost”" in response.get_data(as_text=True)
    assert nothing_credited()


def test_a_paper_list_from_someone_who_may_not_send_one_is_refused_unread(app, world):
    """A learner posts a list (403) and a unit admin of another subtree (404) — before the body is read;
    a list over 2 MB: 413. Nothing credited."""
    activity = make_activity(world["admin"], unit="town-a")
    big = b"\xef\xbb\xbf\xe8\xb4\xa6\xe5\x8f\xb7\r\n" + b"elder-a\r\n" * 300_000
    for user, status, body in ((world["elder_a"], 403, b"x"), (world["ua_b"], 404, b"x"), (world["admin"], 413, big)):
        client = as_user(app, user)
        response = client.post(f"/admin/activities/{activity.id}/import", content_type="multipart/form-data",
                               data={"csrf_token": client.token, "file": (io.BytesIO(body), "list.csv")})
        assert response.status_code == status, user.username
    assert nothing_credited()


def test_a_learner_opening_the_console_pages_gets_403(app, world):
    """/admin/activities and every page of an activity: 403 for a learner; anonymous is sent to sign in."""
    activity = make_activity(world["admin"], unit="town-a")
    learner = as_user(app, world["elder_a"])
    for suffix in ("", "/new", f"/{activity.id}", f"/{activity.id}/qr", f"/{activity.id}/qr.json", f"/{activity.id}/import"):
        assert learner.get(f"/admin/activities{suffix}").status_code == 403, suffix
    anonymous = BrowserLikeClient(app.test_client())
    response = anonymous.get("/admin/activities")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_tick_without_its_csrf_token_is_refused(app, world):
    """An organiser's browser tricked into posting a tick (or a new activity) without the CSRF token: 400,
    nothing credited or created."""
    activity = make_activity(world["admin"])
    admin = as_user(app, world["admin"])
    assert admin.post(f"/admin/activities/{activity.id}/attend", data={"user_id": world["elder_a"].id}).status_code == 400
    response = admin.post("/admin/activities/new", data={"title": "伪造", "kind": "lecture", "unit": "town-a"})
    assert response.status_code == 400
    assert nothing_credited() and OfflineActivity.query.filter_by(title="伪造").count() == 0


def test_a_closed_year_refuses_attendance_with_its_message(app, world):
    """The year is closed for the county: a scan, a tick and a paper list each say so and write nothing."""
    from lms.records.closing import close_year
    from lms.records.services import to_local

    activity = make_activity(world["admin"])
    close_year(world["admin"], world["county"], to_local(utcnow()).year)
    status, page = scan(as_user(app, world["elder_a"]), scan_path(activity))
    assert status == 403 and "年度已关账" in page
    admin = as_user(app, world["admin"])
    response = admin.post(f"/admin/activities/{activity.id}/attend",
                          data={"csrf_token": admin.token, "user_id": world["pupil_a"].id})
    assert "年度已关账" in admin.get(response.headers["Location"].split("#")[0]).get_data(as_text=True)
    response = admin.post(f"/admin/activities/{activity.id}/import", content_type="multipart/form-data",
                          data={"csrf_token": admin.token, "file": (io.BytesIO("账号\r\nelder-a\r\npupil-a\r\n".encode()), "l.csv")})
    assert response.status_code == 400 and "年度已关账" in response.get_data(as_text=True)
    assert nothing_credited()
