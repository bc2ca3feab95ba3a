"""线下科普活动 (issue 11): an organiser creates an activity; attendance by the venue's QR code, the
roster on a tablet and a signed paper list each credits one ledger record, which the export shows as
线下活动."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from lms.accounts.models import User, utcnow
from lms.accounts.services import get_or_create_unit
from lms.activities import services
from lms.activities.models import ActivityAttendance, OfflineActivity
from lms.extensions import db
from lms.records.models import AuditLog, TrainingRecord
from lms.records.services import to_local
from tests.conftest import BrowserLikeClient


@pytest.fixture
def world(app, units, make_user):
    """County admin; in town-a a unit admin, a class with its teacher, learners of two audiences;
    in town-b a learner."""
    class_a = get_or_create_unit("class-a", "桂溪老年学校一班", "class", units["town_a"])
    class_b = get_or_create_unit("class-b", "澄溪老年学校一班", "class", units["town_b"])
    db.session.commit()
    return {
        **units, "class_a": class_a, "class_b": class_b,
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre", full_name="县管理员"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre", full_name="桂溪管理员"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre", full_name="澄溪管理员"),
        "teacher_a": make_user("teacher-a", role="instructor", unit="town-a", audience="cadre", full_name="王老师"),
        "teacher_b": make_user("teacher-b", role="instructor", unit="town-b", audience="cadre", full_name="赵老师"),
        "elder_a": make_user("elder-a", unit="town-a", audience="elder", full_name="张大爷"),
        "farmer_a": make_user("farmer-a", unit="town-a", audience="farmer", full_name="李大叔"),
        "pupil_a": make_user("pupil-a", unit="class-a", audience="elder", full_name="陈奶奶"),
        "elder_b": make_user("elder-b", unit="town-b", audience="elder", full_name="刘奶奶"),
    }


def local(delta: timedelta = timedelta()):
    """Now (plus delta) as a wall-clock time in Asia/Shanghai, as an organiser types it."""
    return to_local(utcnow() + delta).replace(tzinfo=None, second=0, microsecond=0)


def make_activity(actor, unit="town-a", audiences=("elder",), hours="2", starts=timedelta(hours=-1),
                  ends=timedelta(hours=2), title="防范电信诈骗讲座") -> OfflineActivity:
    return services.create_activity(actor, services.ActivityData(
        title=title, kind="lecture", starts_local=local(starts), ends_local=local(ends), place="桂溪社区活动室",
        unit_code=unit, audiences=list(audiences), hours=Decimal(hours)))


def as_user(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/account/password")
    return client


def scan_path(activity, now=None) -> str:
    return f"/activities/scan/{services.make_token(activity, now)}"


def records_of(user) -> list[TrainingRecord]:
    db.session.expire_all()
    return TrainingRecord.query.filter_by(user_id=user.id).all()


def form_data(client, **fields):
    data = {"csrf_token": client.token, "title": "应急演练：地震逃生", "kind": "drill", "starts_at": "2025-05-20T09:30",
            "ends_at": "2025-05-20T11:00", "place": "桂溪小学操场", "unit": "town-a", "audiences": ["elder", "youth"],
            "hours": "1.5"}
    data.update(fields)
    return data


# ---- create and edit ------------------------------------------------------------------------------

def test_an_organiser_creates_an_activity_in_local_time(app, world):
    admin = as_user(app, world["admin"])
    assert admin.get("/admin/activities/new").status_code == 200
    response = admin.post("/admin/activities/new", data=form_data(admin))
    assert response.status_code == 302
    activity = OfflineActivity.query.one()
    assert response.headers["Location"] == f"/admin/activities/{activity.id}"
    # 09:30 in Dianjiang is 01:30 UTC
    assert (activity.starts_at.isoformat(), activity.ends_at.isoformat()) == ("2025-05-20T01:30:00", "2025-05-20T03:00:00")
    assert (activity.kind, activity.unit.code, activity.audiences, activity.hours) == \
        ("drill", "town-a", ["elder", "youth"], Decimal("1.5"))
    page = admin.get("/admin/activities").get_data(as_text=True)
    assert "应急演练：地震逃生" in page and "2025-05-20 09:30 – 2025-05-20 11:00" in page and "桂溪街道" in page
    assert AuditLog.query.filter_by(action="activity.create", target=f"activity:{activity.id}").count() == 1
    # the console's navigation has the section for every organiser
    assert "线下活动" in page
    teacher = as_user(app, world["teacher_a"])
    assert "/admin/activities" in teacher.get("/admin").get_data(as_text=True)


@pytest.mark.parametrize("fields, message", [
    ({"ends_at": "2025-05-20T09:00"}, "结束时间必须晚于开始时间"),
    ({"starts_at": "明天上午"}, "开始时间 应为 年-月-日 时:分"),
    ({"hours": "9"}, "学时应大于 0、不超过 8"),
    ({"hours": "0"}, "学时应大于 0、不超过 8"),
    ({"hours": "两个"}, "学时必须是数字"),
    ({"audiences": []}, "请至少选择一个面向人群"),
    ({"unit": "nowhere"}, "没有这个单位编码"),
    ({"title": ""}, "请填写活动名称"),
])
def test_bad_input_is_named_and_nothing_is_created(app, world, fields, message):
    admin = as_user(app, world["admin"])
    response = admin.post("/admin/activities/new", data=form_data(admin, **fields))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert "桂溪小学操场" in page  # what was typed is kept
    assert OfflineActivity.query.count() == 0


def test_a_teacher_organises_for_their_own_class_only(app, world):
    teacher = as_user(app, world["teacher_a"])
    page = teacher.get("/admin/activities/new").get_data(as_text=True)
    assert 'list="teacher-classes"' in page and "桂溪老年学校一班（class-a）" in page
    refused = teacher.post("/admin/activities/new", data=form_data(teacher, unit="town-a"))
    assert refused.status_code == 400 and "教师只能为自己管理的班级组织活动" in refused.get_data(as_text=True)
    assert teacher.post("/admin/activities/new", data=form_data(teacher, unit="class-a")).status_code == 302
    assert OfflineActivity.query.one().unit.code == "class-a"


def test_editing_hours_after_credits_leaves_credited_records_as_they_are(app, world):
    activity = make_activity(world["admin"], hours="2")
    services.credit_attendance(activity, world["elder_a"], world["admin"], "roster")
    admin = as_user(app, world["admin"])
    page = admin.get(f"/admin/activities/{activity.id}/edit").get_data(as_text=True)
    assert "已有 1 人签到" in page and "已经记下的学时不会因为修改而改变" in page
    data = form_data(admin, title=activity.title, kind="lecture", starts_at=local(timedelta(hours=-1)).isoformat(),
                     ends_at=local(timedelta(hours=2)).isoformat(), audiences=["elder"], hours="3")
    assert admin.post(f"/admin/activities/{activity.id}/edit", data=data).status_code == 302
    db.session.expire_all()
    assert db.session.get(OfflineActivity, activity.id).hours == Decimal("3")
    assert [r.hours for r in records_of(world["elder_a"])] == [Decimal("2")]
    services.credit_attendance(db.session.get(OfflineActivity, activity.id), world["pupil_a"], world["admin"], "roster")
    assert [r.hours for r in records_of(world["pupil_a"])] == [Decimal("3")]
    assert "其记录不变" in AuditLog.query.filter_by(action="activity.update").one().detail


# ---- the QR code at the venue -----------------------------------------------------------------------

def test_the_venue_screen_shows_a_qr_code_of_the_scan_url_that_changes_by_slot(app, world):
    activity = make_activity(world["admin"])
    admin = as_user(app, world["admin"])
    page = admin.get(f"/admin/activities/{activity.id}/qr")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<svg' in html and 'class="qr-code"' in html and "style=" not in html
    assert 'src="/static/js/activity-qr.js"' in html and f'data-refresh-url="/admin/activities/{activity.id}/qr.json"' in html
    state = admin.get(f"/admin/activities/{activity.id}/qr.json").get_json()
    assert state["url"].startswith("http://localhost/activities/scan/") and state["open"] is True
    assert state["svg"].startswith("<svg") and 1 <= state["refresh_in"] <= 30
    now = utcnow()
    assert services.make_token(activity, now) != services.make_token(activity, now + timedelta(seconds=30))


def test_a_scan_credits_once_with_what_the_learner_got(app, world):
    activity = make_activity(world["admin"], hours="2")
    learner = as_user(app, world["elder_a"])
    first = learner.get(scan_path(activity))
    assert first.status_code == 200 and "已签到，记 2 学时" in first.get_data(as_text=True)
    again = learner.get(scan_path(activity))
    assert again.status_code == 200 and "您已签到过" in again.get_data(as_text=True)
    [record] = records_of(world["elder_a"])
    assert (record.kind, record.source, record.title, record.hours, record.note, record.created_by_id) == \
        ("offline", "offline", "防范电信诈骗讲座", Decimal("2"), "扫码", None)
    assert record.completion_key == f"activity:{activity.id}:user:{world['elder_a'].id}"
    assert activity.starts_at <= record.earned_at <= activity.ends_at
    assert ActivityAttendance.query.filter_by(activity_id=activity.id).one().method == "qr"
    assert AuditLog.query.filter_by(action="activity.attend", target=f"user:{world['elder_a'].id}").count() == 1
    # 我的学时 lists it
    assert "防范电信诈骗讲座" in learner.get("/my/hours").get_data(as_text=True)


def test_a_scan_before_signing_in_comes_back_to_the_scan_after_sign_in(app, world):
    activity = make_activity(world["admin"])
    client = BrowserLikeClient(app.test_client())
    path = scan_path(activity)
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    login_page = response.headers["Location"]
    client.refresh_token(login_page)
    signed_in = client.post(login_page, data={"username": "elder-a", "password": "correct-horse",
                                              "csrf_token": client.token})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == path
    assert "已签到" in client.get(path).get_data(as_text=True)
    assert len(records_of(world["elder_a"])) == 1


def test_a_token_is_good_for_its_slot_and_the_next_only(app, world):
    activity = make_activity(world["admin"])
    now = utcnow()
    token = services.make_token(activity, now)
    assert services.scan(token, world["elder_a"], now + timedelta(seconds=services.SLOT_SECONDS)).status == "credited"
    late = services.scan(token, world["pupil_a"], now + timedelta(seconds=2 * services.SLOT_SECONDS + 1))
    assert late.status == "expired" and late.message == "二维码已过期，请重新扫描现场的二维码"
    assert records_of(world["pupil_a"]) == []


def test_every_token_reads_back_whatever_its_hmac_holds(app, world):
    """The HMAC is url-safe base64, which has "-" too: a token is still read back whole (it once was
    split on every "-", refusing about one code in five as 二维码无效)."""
    activity = make_activity(world["admin"])
    start = utcnow()
    tokens = [services.make_token(activity, start + timedelta(seconds=30 * n)) for n in range(300)]
    assert any("-" in token.split("-", 2)[2] for token in tokens)
    for n, token in enumerate(tokens):
        assert services._parse(token) == (activity.id, services._slot(start + timedelta(seconds=30 * n)))


# ---- the roster on the tablet -------------------------------------------------------------------------

def test_the_roster_lists_who_may_attend_and_a_tick_credits_them(app, world):
    activity = make_activity(world["admin"], hours="1.5")
    teacher = as_user(app, world["ua_a"])
    page = teacher.get(f"/admin/activities/{activity.id}").get_data(as_text=True)
    # elders of town-a and its class; not the farmer, not town-b
    assert "张大爷" in page and "陈奶奶" in page and "李大叔" not in page and "刘奶奶" not in page
    assert "可签到的人共 2 位" in page
    response = teacher.post(f"/admin/activities/{activity.id}/attend",
                            data={"csrf_token": teacher.token, "user_id": world["elder_a"].id, "q": "张"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/activities/{activity.id}?q=%E5%BC%A0#person-{world['elder_a'].id}"
    page = teacher.get(response.headers["Location"].split("#")[0]).get_data(as_text=True)
    assert "张大爷 已签到，记 1.5 学时。" in page and "✔ 已签到" in page and "陈奶奶" not in page
    [record] = records_of(world["elder_a"])
    assert (record.note, record.created_by_id, record.hours) == ("点名", world["ua_a"].id, Decimal("1.5"))
    # a second tick (another tablet, a double tap) credits nothing more
    teacher.post(f"/admin/activities/{activity.id}/attend", data={"csrf_token": teacher.token, "user_id": world["elder_a"].id})
    assert len(records_of(world["elder_a"])) == 1
    assert "张大爷 已签到过。" in teacher.get(f"/admin/activities/{activity.id}").get_data(as_text=True)


def test_no_tick_or_paper_list_before_the_activity_starts(app, world):
    activity = make_activity(world["admin"], starts=timedelta(days=1), ends=timedelta(days=1, hours=2))
    admin = as_user(app, world["admin"])
    page = admin.get(f"/admin/activities/{activity.id}").get_data(as_text=True)
    assert "活动还没开始：开始后才能签到。" in page and 'type="submit" disabled' in page
    response = admin.post(f"/admin/activities/{activity.id}/attend",
                          data={"csrf_token": admin.token, "user_id": world["elder_a"].id})
    assert "活动还没开始，不能签到。" in admin.get(response.headers["Location"].split("#")[0]).get_data(as_text=True)
    response = upload(admin, activity, "账号\r\nelder-a\r\n")
    assert response.status_code == 400 and "活动还没开始，不能导入签到表" in response.get_data(as_text=True)
    assert records_of(world["elder_a"]) == []


def test_the_roster_pages_through_many_people(app, world):
    """50 a page, in name order; people are read a page at a time."""
    town_a = world["town_a"]
    db.session.add_all([User(username=f"p{n:03d}", full_name=f"学员{n:03d}", password_hash="x", role="learner",
                             audience="elder", unit_id=town_a.id) for n in range(120)])
    db.session.commit()
    activity = make_activity(world["admin"])
    admin = as_user(app, world["admin"])
    first = admin.get(f"/admin/activities/{activity.id}").get_data(as_text=True)
    assert first.count('class="button tick"') == 50 and "可签到的人共 122 位" in first
    next_url = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = admin.get(next_url).get_data(as_text=True)
    assert second.count('class="button tick"') == 50 and "：学员050<" in second and "：学员049<" not in second
    found = admin.get(f"/admin/activities/{activity.id}?q=学员119").get_data(as_text=True)
    assert found.count('class="button tick"') == 1


# ---- the signed paper list ---------------------------------------------------------------------------

def upload(client, activity, text, encoding="utf-8", name="签到表.csv", dry_run=False):
    data = {"csrf_token": client.token, "file": (io.BytesIO(text.encode(encoding)), name)}
    if dry_run:
        data["dry_run"] = "y"
    return client.post(f"/admin/activities/{activity.id}/import", data=data, content_type="multipart/form-data")


def test_a_paper_list_in_gbk_credits_everyone_on_it_once(app, world):
    activity = make_activity(world["admin"], hours="2")
    services.scan(services.make_token(activity), world["pupil_a"])  # scanned at the venue already
    admin = as_user(app, world["ua_a"])
    csv_text = "账号,姓名,签名\r\nelder-a,张大爷,（签名）\r\npupil-a,陈奶奶,（签名）\r\n"
    checked = upload(admin, activity, csv_text, encoding="gbk", dry_run=True)
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200 and "检查通过：1 人可以签到，1 人已签到过" in page
    assert records_of(world["elder_a"]) == []
    done = upload(admin, activity, csv_text, encoding="gbk")
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "已为 1 人签到，每人记 2 学时；1 人已签到过。" in page
    [record] = records_of(world["elder_a"])
    assert (record.note, record.created_by_id, record.kind) == ("纸质签到表", world["ua_a"].id, "offline")
    assert len(records_of(world["pupil_a"])) == 1
    # the same list again: everyone already, nothing more
    again = upload(admin, activity, csv_text, encoding="gbk").get_data(as_text=True)
    assert "已为 0 人签到" in again and len(records_of(world["elder_a"])) == 1


def test_a_paper_list_names_every_bad_row_and_writes_nothing(app, world):
    activity = make_activity(world["admin"])
    admin = as_user(app, world["admin"])
    csv_text = ("\ufeff账号,姓名\r\nelder-a,张大爷\r\nnobody,无名\r\npupil-a,王奶奶\r\nfarmer-a,\r\n"
                "elder-b,刘奶奶\r\nelder-a,\r\n")
    response = upload(admin, activity, csv_text)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "有 5 行有问题，没有为任何人签到" in page
    for text in ("没有账号“nobody”", "姓名“王奶奶”与账号“pupil-a”的姓名“陈奶奶”不一致", "李大叔（农民）不在本活动面向的人群",
                 "刘奶奶 不属于本活动的单位“桂溪街道”", "账号“elder-a”与第 2 行重复"):
        assert text in page, text
    assert TrainingRecord.query.count() == 0
    bad_file = upload(admin, activity, "姓名\r\n张大爷\r\n")
    assert bad_file.status_code == 400 and "缺少列：username" in bad_file.get_data(as_text=True)


def test_a_paper_list_from_excel_and_the_template(app, world):
    from openpyxl import Workbook

    activity = make_activity(world["admin"])
    admin = as_user(app, world["admin"])
    template = admin.get(f"/admin/activities/{activity.id}/import/template.csv")
    assert template.status_code == 200 and template.data.decode("utf-8-sig").startswith("账号,姓名,签名")
    book = Workbook()
    book.active.append(["账号", "姓名"])
    book.active.append(["elder-a", "张大爷"])
    buffer = io.BytesIO()
    book.save(buffer)
    response = admin.post(f"/admin/activities/{activity.id}/import", content_type="multipart/form-data",
                          data={"csrf_token": admin.token, "file": (io.BytesIO(buffer.getvalue()), "list.xlsx")})
    assert response.status_code == 200 and len(records_of(world["elder_a"])) == 1


# ---- exports ------------------------------------------------------------------------------------------

def test_an_attended_activity_is_in_the_export_as_offline(app, world):
    from lms.records.export import export_rows

    activity = make_activity(world["admin"], hours="2", title="田间课堂：垫江白柚修剪")
    services.scan(services.make_token(activity), world["elder_a"])
    rows = [row for row in export_rows(False).rows if row["username"] == "elder-a"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["type"], row["activity"], row["hours"], row["unit_code"]) == ("线下活动", "田间课堂：垫江白柚修剪", Decimal("2"), "town-a")
    summary = [row for row in export_rows(True).rows if row["username"] == "elder-a"]
    assert summary[0]["total_hours"] == Decimal("2")


# ---- in a real browser, under the Content-Security-Policy ---------------------------------------------

@pytest.mark.browser
def test_the_venue_screen_refreshes_and_a_phone_signs_in_to_attend(app, world, browser, monkeypatch):
    """The QR screen's script fetches the next code and the count (no CSP violation: the browser fixture
    fails on any); a phone opening the scan URL signs in and lands on 已签到."""
    from playwright.sync_api import expect

    from tests.conftest import serve_app

    activity = make_activity(world["admin"], hours="2")
    monkeypatch.setattr(services, "seconds_left", lambda now=None: 1)  # refresh every second, not every 30

    def sign_in(page, username):
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", "correct-horse")
        with page.expect_navigation():
            page.get_by_role("button", name="登录", exact=True).click()

    with serve_app(app) as base:
        screen = browser.new_context(locale="zh-CN").new_page()
        screen.set_default_timeout(15_000)
        screen.goto(f"{base}/login")
        sign_in(screen, "county-admin")
        screen.goto(f"{base}/admin/activities/{activity.id}/qr")
        expect(screen.locator("#qr-box svg.qr-code")).to_be_visible()
        expect(screen.locator("#qr-state")).to_have_text("请用手机扫码签到")
        expect(screen.locator("#qr-attended")).to_have_text("0")

        phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}).new_page()
        phone.set_default_timeout(15_000)
        phone.goto(f"{base}/activities/scan/{services.make_token(activity)}")
        assert "/login?next=" in phone.url
        sign_in(phone, "elder-a")
        expect(phone.locator("#scan-message")).to_contain_text("已签到，记 2 学时")

        expect(screen.locator("#qr-attended")).to_have_text("1")  # the screen's next refresh
    assert len(records_of(world["elder_a"])) == 1


@pytest.mark.postgres
def test_the_same_on_postgresql(tmp_path, postgres_url):
    """Create, roster pages, a scan, a GBK paper list and the export on PostgreSQL."""
    from lms.accounts.services import create_user
    from lms.records.export import export_rows
    from tests.conftest import _make_app

    app = _make_app(tmp_path, database_url=postgres_url)
    with app.app_context():
        get_or_create_unit("county", "垫江县", "county")
        admin = create_user("county-admin", "县管理员", "correct-horse", "admin", "cadre", "county")
        unit = get_or_create_unit("town-a", "桂溪街道", "township", admin.unit)
        db.session.add_all([User(username=f"p{n:03d}", full_name=f"学员{n:03d}", password_hash="x", role="learner",
                                 audience="elder", unit_id=unit.id) for n in range(60)])
        db.session.commit()
        activity = make_activity(admin, unit="town-a", hours="1.25")
        first = services.roster_page(admin, activity)
        second = services.roster_page(admin, activity, after=first.next_after)
        assert (first.total, len(first.rows), len(second.rows), second.next_after) == (60, 50, 10, None)
        learner = User.query.filter_by(username="p000").one()
        assert services.scan(services.make_token(activity), learner).status == "credited"
        assert services.scan(services.make_token(activity), learner).status == "already"
        report = services.import_paper(admin, activity, "list.csv", "账号,姓名\r\np000,学员000\r\np001,学员001\r\n".encode("gbk"))
        assert (report.credited, len(report.already), report.written) == (1, 1, True)
        rows = [row for row in export_rows(False).rows if row["type"] == "线下活动"]
        assert sorted((row["username"], row["hours"]) for row in rows) == [("p000", Decimal("1.25")), ("p001", Decimal("1.25"))]
        db.session.remove()
        db.engine.dispose()
