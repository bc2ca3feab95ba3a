"""People in the console: the list (search, filters, pages, scope), create, edit and move, deactivate,
password resets shown once and the change they force, unlock, browser import, one's own password."""
from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest

from lms.accounts.models import User
from lms.accounts.services import get_or_create_unit
from lms.extensions import db
from lms.records.models import AuditLog, TrainingRecord
from tests.conftest import BrowserLikeClient
from tests.security.test_scoping import any_db_app  # noqa: F401  (the same app on SQLite, then PostgreSQL)


@pytest.fixture
def world(app, units, make_user):
    village = get_or_create_unit("village-a1", "桂溪村", "village", units["town_a"])
    db.session.commit()
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre", full_name="县管理员"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre", full_name="桂溪管理员"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre", full_name="澄溪管理员"),
        "zhang": make_user("zhang.gl", unit="town-a", full_name="张桂兰"),
        "wang": make_user("wang.f", unit="village-a1", audience="farmer", full_name="王富贵"),
        "li": make_user("li.c", unit="town-b", full_name="李澄"),
    }
    people["wang"].phone = "13912345678"
    db.session.commit()
    return {**people, **units, "village": village}


def client(app, user, password="correct-horse"):
    browser = BrowserLikeClient(app.test_client())
    response = browser.login(user.username, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def post(browser, path, data=None, **kwargs):
    token = browser.refresh_token(kwargs.pop("token_from", "/account/password"))
    return browser.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def listed(page: str) -> list[str]:
    table = re.search(r'<table class="table" id="people-table">.*?</table>', page, re.S)
    return re.findall(r'<a href="/admin/people/\d+">([^<]+)</a>', table.group(0)) if table else []


def audits(action: str) -> list[AuditLog]:
    return AuditLog.query.filter_by(action=action).all()


# ---- the list ---------------------------------------------------------------------------------

def test_admin_lists_everyone_and_searches_by_name_account_or_phone(app, world):
    admin = client(app, world["admin"])
    page = admin.get("/admin/people").get_data(as_text=True)
    assert set(listed(page)) == {"县管理员", "桂溪管理员", "澄溪管理员", "张桂兰", "王富贵", "李澄"}
    assert "共 6 人" in page
    assert listed(admin.get("/admin/people?q=桂兰").get_data(as_text=True)) == ["张桂兰"]
    assert listed(admin.get("/admin/people?q=LI.C").get_data(as_text=True)) == ["李澄"]  # 账号, any case
    assert listed(admin.get("/admin/people?q=1234567").get_data(as_text=True)) == ["王富贵"]  # part of a phone
    assert listed(admin.get("/admin/people?q=139-1234").get_data(as_text=True)) == ["王富贵"]
    # what an admin types is text, never a wildcard
    assert listed(admin.get("/admin/people?q=%25").get_data(as_text=True)) == []
    assert listed(admin.get("/admin/people?q=_").get_data(as_text=True)) == []


def test_filters_by_unit_subtree_audience_role_and_state(app, world):
    admin = client(app, world["admin"])
    town_a = listed(admin.get("/admin/people?unit=town-a").get_data(as_text=True))
    assert set(town_a) == {"桂溪管理员", "张桂兰", "王富贵"}  # the village below town-a included
    assert listed(admin.get("/admin/people?audience=farmer").get_data(as_text=True)) == ["王富贵"]
    assert set(listed(admin.get("/admin/people?role=unit_admin").get_data(as_text=True))) == {"桂溪管理员", "澄溪管理员"}
    world["li"].active = False
    db.session.commit()
    assert listed(admin.get("/admin/people?active=0").get_data(as_text=True)) == ["李澄"]
    assert "李澄" not in listed(admin.get("/admin/people?active=1").get_data(as_text=True))
    response = admin.get("/admin/people?audience=martian")
    assert response.status_code == 400 and 'id="audience-error"' in response.get_data(as_text=True)


def test_unknown_unit_in_the_filter_is_named(app, world):
    response = client(app, world["admin"]).get("/admin/people?unit=nowhere")
    assert response.status_code == 400 and "没有这个单位编码" in response.get_data(as_text=True)


def test_a_unit_admin_sees_their_subtree_only(app, world):
    ua = client(app, world["ua_a"])
    page = ua.get("/admin/people").get_data(as_text=True)
    assert set(listed(page)) == {"桂溪管理员", "张桂兰", "王富贵"}
    assert "桂溪街道 及其下级单位的人员" in page
    assert listed(ua.get("/admin/people?q=李").get_data(as_text=True)) == []
    outside = ua.get("/admin/people?unit=town-b")
    assert outside.status_code == 403 and "不在您管辖的范围内" in outside.get_data(as_text=True)
    assert listed(ua.get("/admin/people?unit=village-a1").get_data(as_text=True)) == ["王富贵"]


def test_pages_follow_name_order_without_gaps_or_repeats(app, world, make_user):
    for n in range(70):
        make_user(f"p{n:03d}", unit="town-b", full_name=f"学员{n:03d}")
    admin = client(app, world["admin"])
    for first, total in (("/admin/people?unit=town-b&role=learner", 71), ("/admin/people?q=学员", 70)):
        seen, url, pages = [], first, 0
        while url:
            page = admin.get(url).get_data(as_text=True)
            seen += listed(page)
            pages += 1
            assert f"共 {total} 人" in page
            nxt = re.search(r'<a class="button" rel="next" href="([^"]+)"', page)
            url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert pages == 2 and len(seen) == total and len(set(seen)) == total
        assert seen == sorted(seen)


# ---- create -----------------------------------------------------------------------------------

def test_admin_creates_a_person_whose_generated_password_is_shown_once_and_must_be_changed(app, world):
    admin = client(app, world["admin"])
    response = post(admin, "/admin/people/new", {"username": "zhao.liu", "full_name": "赵六", "phone": "138 0000 1111",
                                                 "audience": "worker", "role": "learner", "unit": "town-b"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code class="secret" id="shown-password">([^<]+)</code>', page).group(1)
    user = User.query.filter_by(username="zhao.liu").one()
    assert (user.full_name, user.phone, user.unit.code, user.must_change_password) == ("赵六", "13800001111", "town-b", True)
    assert audits("user.create")[0].target == f"user:{user.id}"
    assert listed(admin.get("/admin/people?must_change=y").get_data(as_text=True)) == ["赵六"]
    # the person signs in with it and is sent to choose their own before anything else
    person = client(app, user, password)
    assert person.get("/").headers["Location"] == "/account/password"
    assert person.get("/my/hours").headers["Location"] == "/account/password"
    assert "请先改成只有您自己知道的密码" in person.get("/account/password").get_data(as_text=True)
    heartbeat = person.post("/api/lessons/1/heartbeat", json={}, headers={"X-CSRFToken": person.refresh_token("/account/password")})
    assert heartbeat.status_code == 403 and heartbeat.json["error"] == "must_change_password"
    done = post(person, "/account/password", {"current_password": password, "password": "my-own-secret",
                                              "confirm": "my-own-secret"})
    assert done.status_code == 302
    assert person.get("/").status_code == 200
    assert User.query.filter_by(username="zhao.liu").one().must_change_password is False


def test_create_with_bad_input_names_the_field_and_saves_nothing(app, world):
    admin = client(app, world["admin"])
    cases = [
        ({"username": "zhang.gl"}, "username", "已被使用"),
        ({"username": "ZHANG.GL"}, "username", "已被使用"),
        ({"username": "有 空格"}, "username", "账号由字母"),
        ({"unit": "nowhere"}, "unit", "没有这个单位编码"),
        ({"phone": "12ab"}, "phone", "手机号"),
        ({"full_name": ""}, "full_name", "请填写姓名"),
        ({"password": "short"}, "password", "8–128"),
    ]
    for change, field_name, message in cases:
        data = {"username": "new.one", "full_name": "新人", "audience": "elder", "role": "learner", "unit": "town-a",
                **change}
        response = post(admin, "/admin/people/new", data)
        page = response.get_data(as_text=True)
        assert response.status_code == 400, change
        error = re.search(rf'<p class="field-error" id="{field_name}-error">([^<]+)</p>', page)
        assert error and message in error.group(1), (change, page[-3000:])
    assert User.query.filter_by(username="new.one").count() == 0 and not audits("user.create")


def test_a_unit_admin_creates_inside_their_subtree_only_and_no_admins(app, world):
    ua = client(app, world["ua_a"])
    base = {"full_name": "新人", "audience": "elder", "password": "good-password"}
    refused = [
        ({"username": "n1", "role": "admin", "unit": "town-a"}, "role"),  # not a choice they have
        ({"username": "n2", "role": "learner", "unit": "town-b"}, "unit"),  # outside the subtree
        ({"username": "n3", "role": "unit_admin", "unit": "town-a"}, "role"),  # a peer of their own unit
    ]
    for data, field_name in refused:
        response = post(ua, "/admin/people/new", {**base, **data})
        assert response.status_code == 400 and f'id="{field_name}-error"' in response.get_data(as_text=True), data
    assert post(ua, "/admin/people/new", {**base, "username": "n4", "role": "unit_admin", "unit": "village-a1"}).status_code == 302
    assert post(ua, "/admin/people/new", {**base, "username": "n5", "role": "learner", "unit": "town-a"}).status_code == 302
    assert {u.username for u in User.query.filter(User.username.in_(["n1", "n2", "n3", "n4", "n5"]))} == {"n4", "n5"}
    page = ua.get("/admin/people/new").get_data(as_text=True)
    assert 'value="admin"' not in page


# ---- edit and move ----------------------------------------------------------------------------

def test_moving_a_person_keeps_their_records_and_is_audited(app, world):
    zhang = world["zhang"]
    db.session.add(TrainingRecord(user_id=zhang.id, title="活动", kind="offline", hours=Decimal("1.5"), source="offline"))
    db.session.commit()
    admin = client(app, world["admin"])
    response = post(admin, f"/admin/people/{zhang.id}", {"full_name": "张桂兰", "phone": "", "audience": "farmer",
                                                         "role": "learner", "unit": "town-b"})
    assert response.status_code == 302
    db.session.refresh(zhang)
    assert (zhang.unit.code, zhang.audience) == ("town-b", "farmer")
    assert "1 条，共 1.5 学时" in admin.get(f"/admin/people/{zhang.id}").get_data(as_text=True)
    assert audits("user.move")[0].detail == "town-a → town-b"
    assert "audience: elder → farmer" in audits("user.update")[0].detail
    # now town-a's administrator no longer sees her, town-b's does
    assert client(app, world["ua_a"]).get(f"/admin/people/{zhang.id}").status_code == 403
    assert client(app, world["ua_b"]).get(f"/admin/people/{zhang.id}").status_code == 200


def test_a_unit_admin_cannot_move_someone_out_of_their_subtree(app, world):
    ua = client(app, world["ua_a"])
    wang = world["wang"]
    response = post(ua, f"/admin/people/{wang.id}", {"full_name": "王大富", "audience": "farmer", "role": "learner",
                                                     "unit": "town-b"})
    assert response.status_code == 400 and "不在您管辖的范围内" in response.get_data(as_text=True)
    db.session.refresh(wang)
    assert (wang.full_name, wang.unit.code) == ("王富贵", "village-a1")  # nothing half-saved
    assert not audits("user.update") and not audits("user.move")


def test_nobody_edits_their_own_role_or_account_here(app, world):
    ua = client(app, world["ua_a"])
    me = world["ua_a"]
    page = ua.get(f"/admin/people/{me.id}").get_data(as_text=True)
    assert 'id="own-account"' in page and 'id="person-form"' not in page
    response = post(ua, f"/admin/people/{me.id}", {"full_name": "x", "audience": "cadre", "role": "admin", "unit": "county"})
    assert response.status_code == 403
    assert post(ua, f"/admin/people/{me.id}/deactivate").status_code == 403
    admin = client(app, world["admin"])
    assert post(admin, f"/admin/people/{world['admin'].id}/deactivate").status_code == 403
    db.session.refresh(me)
    assert (me.role, me.unit.code, me.active) == ("unit_admin", "town-a", True)


# ---- deactivate, reset, unlock ----------------------------------------------------------------

def test_deactivating_ends_sessions_keeps_records_and_can_be_undone(app, world):
    zhang = world["zhang"]
    db.session.add(TrainingRecord(user_id=zhang.id, title="活动", kind="offline", hours=Decimal("2"), source="offline"))
    db.session.commit()
    her = client(app, zhang)
    admin = client(app, world["admin"])
    assert post(admin, f"/admin/people/{zhang.id}/deactivate").status_code == 302
    assert her.get("/my/hours").status_code == 302  # signed out everywhere
    assert BrowserLikeClient(app.test_client()).login("zhang.gl").status_code == 400  # cannot sign in
    assert TrainingRecord.query.filter_by(user_id=zhang.id).count() == 1
    assert "已停用" in admin.get(f"/admin/people/{zhang.id}").get_data(as_text=True)
    assert post(admin, f"/admin/people/{zhang.id}/delete").status_code in (404, 405)  # there is no delete
    assert post(admin, f"/admin/people/{zhang.id}/reactivate").status_code == 302
    assert client(app, zhang).get("/my/hours").status_code == 200
    assert [a.action for a in AuditLog.query.filter_by(target=f"user:{zhang.id}").order_by(AuditLog.id)] == [
        "user.deactivate", "user.reactivate"]


def test_password_reset_is_shown_once_ends_sessions_and_forces_a_change(app, world):
    zhang = world["zhang"]
    her = client(app, zhang)
    ua = client(app, world["ua_a"])
    response = post(ua, f"/admin/people/{zhang.id}/reset-password")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="shown-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    assert len(password) >= 10 and not set(password) & set("0O1lI")
    assert her.get("/my/hours").status_code == 302  # her old session ended
    assert BrowserLikeClient(app.test_client()).login("zhang.gl", "correct-horse").status_code == 400  # old one fails
    # the new one works once: the person page does not show it again
    assert password not in ua.get(f"/admin/people/{zhang.id}").get_data(as_text=True)
    fresh = client(app, zhang, password)
    assert fresh.get("/").headers["Location"] == "/account/password"
    assert audits("user.password_reset")[0].actor_id == world["ua_a"].id
    assert AuditLog.query.filter(AuditLog.detail.contains(password)).count() == 0


def test_unlock_lifts_the_sign_in_wait(app, world):
    zhang = world["zhang"]
    stranger = BrowserLikeClient(app.test_client())
    statuses = [stranger.login("zhang.gl", "wrong-password").status_code for _ in range(8)]
    assert 429 in statuses
    admin = client(app, world["admin"])
    page = admin.get("/admin/people?q=zhang").get_data(as_text=True)
    assert "登录已锁定" in page
    assert 'id="unlock"' in admin.get(f"/admin/people/{zhang.id}").get_data(as_text=True)
    assert post(admin, f"/admin/people/{zhang.id}/unlock").status_code == 302
    assert "登录已锁定" not in admin.get("/admin/people?q=zhang").get_data(as_text=True)
    assert BrowserLikeClient(app.test_client()).login("zhang.gl").status_code == 302
    assert audits("user.unlock")


# ---- one's own password -----------------------------------------------------------------------

def test_changing_ones_own_password_needs_the_current_one_and_ends_other_sessions(app, world):
    zhang = world["zhang"]
    phone, laptop = client(app, zhang), client(app, zhang)
    wrong = post(laptop, "/account/password", {"current_password": "nope-nope", "password": "brand-new-pass",
                                               "confirm": "brand-new-pass"})
    assert wrong.status_code == 400 and re.search(r'id="current_password-error">⚠ 当前密码不正确', wrong.get_data(as_text=True))
    mismatch = post(laptop, "/account/password", {"current_password": "correct-horse", "password": "brand-new-pass",
                                                  "confirm": "brand-new-typo"})
    assert mismatch.status_code == 400 and "两次输入的新密码不一样" in mismatch.get_data(as_text=True)
    done = post(laptop, "/account/password", {"current_password": "correct-horse", "password": "brand-new-pass",
                                              "confirm": "brand-new-pass"})
    assert done.status_code == 302
    assert laptop.get("/my/hours").status_code == 200  # this session goes on
    assert phone.get("/my/hours").status_code == 302  # the other one has ended
    assert BrowserLikeClient(app.test_client()).login("zhang.gl", "brand-new-pass").status_code == 302
    assert audits("user.password_change")[0].actor_id == zhang.id


def test_learners_reach_their_password_page_but_not_the_console(app, world):
    learner = client(app, world["zhang"])
    assert learner.get("/account/password").status_code == 200
    assert learner.get("/admin/people").status_code == 403


# ---- import in the browser --------------------------------------------------------------------

def upload(browser, content: bytes, name="people.csv", dry_run=False):
    data = {"file": (io.BytesIO(content), name)}
    if dry_run:
        data["dry_run"] = "y"
    return post(browser, "/admin/people/import", data, content_type="multipart/form-data")


def test_template_downloads_and_imports_as_it_is(app, world):
    ua = client(app, world["ua_a"])
    response = ua.get("/admin/people/import/template.csv")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    text = response.data.decode("utf-8-sig")
    header, example = text.splitlines()
    assert header == "账号,姓名,人群,单位编码,角色,密码,手机号" and ",town-a," in example
    imported = upload(ua, response.data)
    assert imported.status_code == 200, imported.get_data(as_text=True)
    assert User.query.filter_by(username="zhangsan").one().unit.code == "town-a"


def test_import_shows_every_bad_row_and_imports_nothing(app, world):
    ua = client(app, world["ua_a"])
    csv_text = ("账号,姓名,人群,单位编码,角色,手机号\r\n"
                "ok.one,好人,老年人,town-a,学员,13800000000\r\n"
                "zhang.gl,重名,老年人,town-a,学员,\r\n"
                "far.away,外人,农民,town-b,学员,\r\n"
                "boss,老板,农民,town-a,管理员,\r\n"
                "bad.phone,电话,农民,town-a,学员,12ab\r\n")
    response = upload(ua, csv_text.encode("gbk"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "有 4 处错误，没有导入任何人" in page
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td></tr>', page)
    assert [line for line, _message in rows] == ["3", "4", "5", "6"]
    assert "不在您管辖的范围内" in rows[1][1] and "管理员" in rows[2][1] and "手机号" in rows[3][1]
    assert User.query.filter_by(username="ok.one").count() == 0


def test_import_xlsx_creates_everyone_with_passwords_shown_once(app, world):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["账号", "姓名", "人群", "单位编码", "密码"])
    book.active.append(["a.one", "甲", "老年人", "town-a", ""])
    book.active.append(["b.two", "乙", "农民", "village-a1", "chosen-pass"])
    content = io.BytesIO()
    book.save(content)
    admin = client(app, world["admin"])
    checked = upload(admin, content.getvalue(), "people.xlsx", dry_run=True)
    assert checked.status_code == 200 and "检查通过：2 人可以导入" in checked.get_data(as_text=True)
    assert User.query.filter(User.username.in_(["a.one", "b.two"])).count() == 0
    done = upload(admin, content.getvalue(), "people.xlsx")
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "已导入 2 人" in page and done.headers["Cache-Control"] == "no-store"
    shown = re.findall(r'<tr><td>([^<]+)</td><td><code class="secret">([^<]+)</code></td></tr>', page)
    assert [username for username, _password in shown] == ["a.one"]  # only the generated one
    a_one, b_two = User.query.filter_by(username="a.one").one(), User.query.filter_by(username="b.two").one()
    assert a_one.must_change_password and not b_two.must_change_password
    assert len(audits("user.import")) == 2
    assert client(app, a_one, shown[0][1]).get("/").headers["Location"] == "/account/password"


def test_import_refuses_other_files_with_a_message(app, world):
    response = upload(client(app, world["admin"]), b"%PDF-1.4", "people.pdf")
    assert response.status_code == 400 and "只支持 .csv 或 .xlsx 文件" in response.get_data(as_text=True)


def test_people_pages_are_light_and_keep_the_content_security_policy(app, world):
    admin = client(app, world["admin"])
    for path in ("/admin/people", "/admin/people?q=张", "/admin/people/new", f"/admin/people/{world['zhang'].id}",
                 "/admin/people/import", "/account/password"):
        response = admin.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and len(response.data) < 150_000, path
        assert "style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page), path
    # the unit is chosen with the unit picker (a plain code input without JavaScript)
    form = admin.get(f"/admin/people/{world['zhang'].id}").get_data(as_text=True)
    assert 'data-unit-picker="/admin/units/search"' in form and 'value="town-a"' in form


# ---- the list's queries on SQLite and PostgreSQL ------------------------------------------------

def test_search_scope_and_pages_agree_on_both_databases(any_db_app):
    """Wildcards are text, 账号 ignores case, a subtree is exact (town_1 never brings town11), and pages
    in the database's own name order neither skip nor repeat anyone — with and without a search."""
    from lms.accounts import people

    county = get_or_create_unit("county", "县", "county")
    town, lookalike = get_or_create_unit("town_1", "一镇", "township", county), get_or_create_unit("town11", "十一镇", "township", county)
    admin = User(username="boss", full_name="管理员", role="admin", audience="cadre", unit=county, password_hash="x")
    db.session.add(admin)
    names = ["张三", "张三", "Zhang San", "zhang_san", "50%的人", "李四", "王五", "赵六"] * 8
    for n, name in enumerate(names):
        db.session.add(User(username=f"User{n:02d}", full_name=name, role="learner", audience="elder",
                            unit=town if n % 2 else lookalike, password_hash="x", phone=f"1390000{n:04d}"))
    db.session.commit()

    def everyone(**filters):
        seen, after, pages = [], None, 0
        while True:
            page = people.people_page(admin, people.PeopleFilters(after=after, **filters), page_size=10)
            seen += [user.id for user, _unit in page.rows]
            pages += 1
            if not page.next_after:
                return seen, page.total, pages
            after = page.next_after

    ids, total, pages = everyone()
    assert total == len(ids) == len(set(ids)) == 65 and pages == 7
    assert everyone(q="%")[1] == 8 and everyone(q="_")[1] == 8  # "50%的人" and "zhang_san" only
    assert everyone(q="user0")[1] == 10  # User00–User09, any case
    assert everyone(q="0063")[1] == 1 and everyone(q="139-0000-0063")[1] == 1  # part of a phone, or all of it
    ids, total, _pages = everyone(q="张")
    assert total == len(set(ids)) == 16
    ids, total, _pages = everyone(unit=town)
    assert total == len(set(ids)) == 32
    assert {db.session.get(User, i).unit.code for i in ids} == {"town_1"}
