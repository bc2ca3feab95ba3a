"""The console's home, its navigation and layout, the audit log page and the sign-in landing."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from lms.accounts.models import utcnow
from lms.admin import navigation, services
from lms.courses.models import Course, CourseAuthor, Lesson, LessonProgress
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.records.audit import audit
from lms.records.models import AuditLog, TrainingRecord
from lms.records.requirements import Requirement
from lms.records.services import day_start_utc, to_local


def figure(page: str, name: str) -> str:
    match = re.search(rf'id="fig-{name}"><span class="figure-value">([^<]*)</span>', page)
    assert match, f"figure {name} missing"
    return match.group(1)


def record(user, hours, when=None, course=None, kind="offline"):
    row = TrainingRecord(user_id=user.id, course_id=course.id if course else None, title="活动", kind=kind,
                         hours=Decimal(str(hours)), earned_at=when or utcnow(), source="offline")
    db.session.add(row)
    db.session.commit()
    return row


@pytest.fixture
def world(app, units, make_user):
    """Two townships with learners (audience elder), their unit admins, the county admin, an instructor who authors
    one course (one lesson) and one who authors none."""
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre"),
        "learner_a": make_user("learner-a", unit="town-a", full_name="张桂兰"),
        "learner_a2": make_user("learner-a2", unit="town-a"),
        "learner_b": make_user("learner-b", unit="town-b", full_name="李澄"),
        "teacher": make_user("teacher", role="instructor", unit="county", audience="cadre"),
        "other_teacher": make_user("other-teacher", role="instructor", unit="county", audience="cadre"),
    }
    course = Course(slug="anti-fraud", title="防范电信诈骗", credit_hours=Decimal("1"), published=True)
    db.session.add(course)
    db.session.flush()
    lesson = Lesson(course_id=course.id, slug="l1", title="冒充公检法", position=1)
    db.session.add(lesson)
    db.session.add(CourseAuthor(course_id=course.id, user_id=people["teacher"].id))
    db.session.commit()
    return {**people, **units, "course": course, "lesson": lesson}


def client_for(app, user):
    from tests.conftest import BrowserLikeClient

    return signed_in(BrowserLikeClient(app.test_client()), user)


def signed_in(browser_client, user):
    response = browser_client.login(user.username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser_client


# ---- sign-in landing --------------------------------------------------------------------------

@pytest.mark.parametrize("who, lands", [("admin", "/admin"), ("ua_a", "/admin"), ("teacher", "/admin"),
                                        ("learner_a", "/")])
def test_sign_in_lands_on_the_console_for_those_who_run_the_programme(browser_client, world, who, lands):
    response = browser_client.login(world[who].username)
    assert response.status_code == 302 and response.headers["Location"] == lands
    assert browser_client.get("/login").headers["Location"] == lands  # already signed in


def test_sign_in_with_next_goes_where_next_says(browser_client, world):
    browser_client.refresh_token()
    response = browser_client.post("/login?next=/my/hours", data={
        "username": "county-admin", "password": "correct-horse", "csrf_token": browser_client.token})
    assert response.headers["Location"] == "/my/hours"


# ---- layout and navigation --------------------------------------------------------------------

def nav_labels(page: str) -> list[str]:
    nav = re.search(r'<nav class="admin-nav".*?</nav>', page, re.S).group(0)
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav)


def test_navigation_shows_each_role_only_its_sections(app, world):
    pages = {}
    for who in ("admin", "ua_a", "teacher"):
        pages[who] = client_for(app, world[who]).get("/admin")
        assert pages[who].status_code == 200
    admin, unit_admin, teacher = (nav_labels(pages[w].get_data(as_text=True)) for w in ("admin", "ua_a", "teacher"))
    assert {"概览", "视频", "学习任务", "学时导出", "审计日志"} <= set(admin)
    assert {"概览", "学习任务", "学时导出", "审计日志"} <= set(unit_admin) and "视频" not in unit_admin
    assert {"概览", "视频"} <= set(teacher) and not {"审计日志", "学时导出", "学习任务"} & set(teacher)
    page = pages["admin"].get_data(as_text=True)
    assert '<a href="/admin" aria-current="page">概览</a>' in page  # the current section is marked
    assert "<h1>概览</h1>" in page and 'href="/admin">管理后台</a>' in page.replace(' aria-current="page"', "")


def test_a_nav_entry_for_a_section_not_built_yet_is_skipped(app, world, monkeypatch):
    monkeypatch.setattr(navigation, "NAV", navigation.NAV + [("nowhere.page", "将来的栏目", navigation.ADMIN)])
    page = client_for(app, world["admin"]).get("/admin").get_data(as_text=True)
    assert "将来的栏目" not in page and "审计日志" in page


def test_learners_and_strangers_cannot_open_the_console(app, world):
    anonymous = app.test_client().get("/admin")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    learner = client_for(app, world["learner_a"])
    assert learner.get("/admin").status_code == 403
    assert "管理后台" not in learner.get("/").get_data(as_text=True)


def test_console_pages_are_light_and_keep_the_content_security_policy(browser_client, world):
    signed_in(browser_client, world["admin"])
    for path in ("/admin", "/admin/audit"):
        response = browser_client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and len(response.data) < 150_000
        assert "style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)


# ---- the home's figures -----------------------------------------------------------------------

def test_home_counts_hours_and_active_learners_in_the_viewers_scope(browser_client, world):
    now = utcnow()
    record(world["learner_a"], 2, now)
    record(world["learner_b"], 3, now)
    last_year = day_start_utc(date(to_local(now).year - 1, 6, 1))
    record(world["learner_a2"], 7, last_year)  # another year: neither this month nor this year, nor active
    db.session.add(LessonProgress(user_id=world["learner_a2"].id, lesson_id=world["lesson"].id,
                                  last_heartbeat_at=now - timedelta(days=2)))
    db.session.add(LessonProgress(user_id=world["learner_b"].id, lesson_id=world["lesson"].id,
                                  last_heartbeat_at=now - timedelta(days=9)))
    db.session.commit()

    page = signed_in(browser_client, world["admin"]).get("/admin").get_data(as_text=True)
    assert figure(page, "hours-month") == "5" and figure(page, "hours-year") == "5"
    assert figure(page, "active") == "3"  # two records this week, one heartbeat two days ago
    assert "范围：全部单位" in page

    browser_client.post("/logout", data={"csrf_token": browser_client.refresh_token("/")})
    page = signed_in(browser_client, world["ua_a"]).get("/admin").get_data(as_text=True)
    assert figure(page, "hours-month") == "2" and figure(page, "hours-year") == "2"
    assert figure(page, "active") == "2" and "范围：桂溪街道 及其下级单位" in page
    assert 'id="fig-videos-failed"' not in page  # unit admins do not manage videos


def test_months_are_asia_shanghai_months_and_corrections_count(app, world, make_user):
    from lms.accounts.services import get_or_create_unit

    year = to_local(utcnow()).year
    # 16:30 UTC on the last day of February is already 00:30 on 1 March in Shanghai
    record(world["learner_a"], 1, datetime(year, 3, 1) - timedelta(hours=7, minutes=30))
    record(world["learner_a"], 2, datetime(year, 2, 28, 15, 0))  # 23:00 in Shanghai: February
    record(world["learner_a"], -0.5, datetime(year, 3, 10), kind="correction")
    record(world["learner_b"], 4, datetime(year, 12, 31, 17, 0))  # 1 January next year in Shanghai
    months = services.hours_by_month(services.console_scope(world["admin"]), year)
    assert months[1] == Decimal("2.00") and months[2] == Decimal("0.50") and months[11] == 0
    assert services.hours_by_month(services.console_scope(world["admin"]), year + 1)[0] == Decimal("4.00")
    assert services.hours_by_month(services.console_scope(world["ua_a"]), year)[1:3] == [Decimal("2.00"),
                                                                                        Decimal("0.50")]
    assert services.hours_by_month(services.console_scope(world["ua_b"]), year)[2] == 0

    # a unit admin of the county oversees every unit: same figures as the admin, without a filter
    county_admin = make_user("ua-county", role="unit_admin", unit="county", audience="cadre")
    scope = services.console_scope(county_admin)
    assert scope.root is None and scope.unit.code == "county"
    assert services.hours_by_month(scope, year) == services.hours_by_month(services.console_scope(world["admin"]), year)
    get_or_create_unit("other-county", "另一个县", "county")  # a second top-level unit: the filter is needed again
    db.session.commit()
    assert services.console_scope(county_admin).root.code == "county"


def test_the_chart_is_an_svg_with_a_table_beside_it(browser_client, world):
    record(world["learner_a"], 1.5)
    page = signed_in(browser_client, world["admin"]).get("/admin").get_data(as_text=True)
    svg = re.search(r'<svg class="bar-chart".*?</svg>', page, re.S).group(0)
    assert svg.count('<rect class="bar') == 12 and 'role="img"' in svg
    assert svg.count('class="bar current"') == 1
    table = re.search(r'<table class="table chart-table".*?</table>', page, re.S).group(0)
    assert table.count('<th scope="row">') == 12 and '<td class="num">1.5</td>' in table


def test_assignments_done_due_and_overdue_follow_the_assignment_rules(browser_client, world):
    today = to_local(utcnow()).date()
    course = world["course"]
    db.session.add(Requirement(course_id=course.id, due_date=today - timedelta(days=1), audience="elder",
                               unit_id=world["town_a"].id))
    other = Course(slug="carbon", title="碳达峰碳中和", credit_hours=Decimal("1"))
    db.session.add(other)
    db.session.flush()
    db.session.add(Requirement(course_id=other.id, due_date=today + timedelta(days=30), audience="elder"))
    db.session.commit()
    record(world["learner_a"], 1, course=course, kind="course")  # finished the overdue one

    board = services.dashboard(world["admin"])["assignments"]
    # overdue one (town-a: 2 learners, 1 finished) + the future one (all 3 elder learners: none finished)
    assert (board.done, board.overdue, board.due) == (1, 1, 3)
    page = signed_in(browser_client, world["ua_a"]).get("/admin").get_data(as_text=True)
    assert (figure(page, "done"), figure(page, "overdue"), figure(page, "due")) == ("1", "1", "2")
    assert "《防范电信诈骗》截止" in page and "1 人逾期未完成" in page and 'href="/admin/assignments/report"' in page
    ua_b = services.dashboard(world["ua_b"])["assignments"]
    assert (ua_b.done, ua_b.overdue, ua_b.due) == (0, 0, 1)


def test_failed_videos_wait_for_their_authors_until_a_later_upload(browser_client, world):
    lesson = world["lesson"]
    admin = services.console_scope(world["admin"])

    def add(status):
        db.session.add(VideoAsset(lesson_id=lesson.id, status=status, error="不是视频文件" if status == "failed" else None))
        db.session.commit()

    add("failed")
    assert services.video_figures(admin)["failed"] == 1
    add("ready")  # a later upload that worked settles the failure
    assert services.video_figures(admin)["failed"] == 0
    add("failed")
    add("pending")  # a new try is waiting: not a failure to act on
    assert (services.video_figures(admin)["failed"], services.video_figures(admin)["waiting"]) == (0, 1)
    add("failed")

    page = signed_in(browser_client, world["teacher"]).get("/admin").get_data(as_text=True)
    assert figure(page, "videos-failed") == "1" and figure(page, "videos-waiting") == "1"
    assert f'href="/admin/lessons/{lesson.id}/video"' in page and "不是视频文件" in page
    assert "范围：您是作者的课程（1 门）" in page
    other = services.dashboard(world["other_teacher"])
    assert other["videos"]["failed"] == 0 and other["videos"]["waiting"] == 0


def test_people_who_must_change_their_password_wait_for_their_unit_admin(browser_client, world):
    world["learner_a"].must_change_password = True
    world["learner_b"].must_change_password = True
    db.session.commit()
    page = signed_in(browser_client, world["ua_a"]).get("/admin").get_data(as_text=True)
    assert "1 人需要在下次登录时修改密码" in page and 'href="/admin/people?must_change=y"' in page


def test_an_empty_console_says_there_is_nothing_to_do(browser_client, world):
    page = signed_in(browser_client, world["ua_b"]).get("/admin").get_data(as_text=True)
    assert 'id="todo-empty"' in page and figure(page, "active") == "0"


# ---- audit() and the audit log page -----------------------------------------------------------

def test_audit_rows_are_written_with_the_change_or_not_at_all(app, world):
    unit = world["town_a"]
    audit(world["admin"], "unit.rename", unit, "桂溪街道 → 桂溪")
    db.session.rollback()
    assert AuditLog.query.count() == 0
    row = audit(world["admin"], "unit.rename", unit, "桂溪街道 → 桂溪")
    db.session.commit()
    assert (row.actor_id, row.target) == (world["admin"].id, f"unit:{unit.id}")
    assert audit(None, "video.fail", VideoAsset(status="failed"), None).target.startswith("asset:")


def audit_page(client, **params):
    response = client.get("/admin/audit", query_string=params)
    return response.status_code, response.get_data(as_text=True)


@pytest.fixture
def logged(world):
    rows = [
        (world["admin"], "unit.create", f"unit:{world['town_a'].id}", "桂溪街道"),
        (world["admin"], "user.password_reset", f"user:{world['learner_b'].id}", "澄溪的人"),
        (world["admin"], "course.publish", f"course:{world['course'].id}", None),
        (world["ua_a"], "user.create", f"user:{world['learner_a'].id}", "新人"),
        (world["learner_b"], "record.credit", f"course:{world['course'].id}", "1 学时"),
    ]
    for actor, action, target, detail in rows:
        audit(actor, action, target, detail)
    db.session.commit()
    return rows


def test_admins_see_every_row_newest_first_with_names(browser_client, world, logged):
    status, page = audit_page(signed_in(browser_client, world["admin"]))
    assert status == 200 and page.count("<tr>") == 1 + len(logged)
    assert page.index("record.credit") < page.index("unit.create")  # newest first
    assert f"<code>user:{world['learner_b'].id}</code> 李澄" in page and "防范电信诈骗" in page


def test_filters_by_actor_action_prefix_target_and_dates(browser_client, world, logged):
    client = signed_in(browser_client, world["admin"])
    _s, page = audit_page(client, action="user.")
    assert "user.create" in page and "user.password_reset" in page and "unit.create" not in page
    _s, page = audit_page(client, action="user_")  # an underscore is a character, not a wildcard
    assert 'id="audit-empty"' in page
    _s, page = audit_page(client, actor="ua-a")
    assert "user.create" in page and "unit.create" not in page
    _s, page = audit_page(client, target=f"course:{world['course'].id}")
    assert "course.publish" in page and "record.credit" in page and "user.create" not in page
    _s, page = audit_page(client, target="user:")
    assert "user.create" in page and "course.publish" not in page
    today = to_local(utcnow()).date()
    _s, page = audit_page(client, date_from=today.isoformat(), date_to=today.isoformat())
    assert "unit.create" in page
    _s, page = audit_page(client, date_from=(today + timedelta(days=1)).isoformat())
    assert 'id="audit-empty"' in page


def test_bad_filters_are_named(browser_client, world, logged):
    client = signed_in(browser_client, world["admin"])
    status, page = audit_page(client, date_from="2025-13-01")
    assert status == 400 and "开始日期" in page and "field-error" in page
    status, page = audit_page(client, date_from="2025-05-02", date_to="2025-05-01")
    assert status == 400 and "结束日期不能早于开始日期" in page
    status, page = audit_page(client, actor="nobody-here")
    assert status == 400 and "没有这个账号" in page


def test_unit_admins_see_rows_about_their_subtree_only(browser_client, world, logged):
    status, page = audit_page(signed_in(browser_client, world["ua_a"]))
    assert status == 200
    assert "unit.create" in page  # target: their own unit
    assert "user.create" in page  # actor and target in town-a
    assert "user.password_reset" not in page and "record.credit" not in page  # town-b
    assert "course.publish" not in page  # neither actor nor target in their subtree
    assert "桂溪街道 及其下级单位" in page


def test_unit_admins_see_a_person_of_their_subtree_whatever_the_actor(browser_client, world, logged):
    _s, page = audit_page(signed_in(browser_client, world["ua_b"]))
    assert "user.password_reset" in page and "record.credit" in page and "unit.create" not in page


def test_both_ways_of_reading_a_unit_admins_rows_agree(world, logged, monkeypatch):
    """Small subtrees are read through the actor/target indexes, large ones by a scan of the newest
    rows (lms/admin/services.audit_rows): both give the same rows and pages."""
    for n in range(30):
        audit(world["admin"], "user.update", f"user:{world['learner_a' if n % 2 else 'learner_b'].id}", str(n))
    db.session.commit()

    def pages(user, **filters):
        found, before = [], None
        while True:
            rows, before = services.audit_rows(user, services.AuditFilters(before=before, **filters), page_size=7)
            found += [log.id for log, _actor in rows]
            if before is None:
                return found

    for who in ("ua_a", "ua_b"):
        monkeypatch.setattr(services, "AUDIT_INDEXED_ROWS", 10**9)
        indexed = pages(world[who]), pages(world[who], action="user.")
        monkeypatch.setattr(services, "AUDIT_INDEXED_ROWS", 0)
        scanned = pages(world[who]), pages(world[who], action="user.")
        assert indexed == scanned and len(indexed[0]) > 15 and indexed[0] == sorted(indexed[0], reverse=True)


def test_instructors_and_learners_have_no_audit_page(app, world):
    for who in ("teacher", "learner_a"):
        assert client_for(app, world[who]).get("/admin/audit").status_code == 403


def test_pages_go_back_in_time_without_repeating_a_row(app, browser_client, world):
    for n in range(120):
        audit(world["admin"], "unit.rename", f"unit:{world['town_a'].id}", f"第 {n} 次")
    db.session.commit()
    client = signed_in(browser_client, world["admin"])
    seen, params = [], {"action": "unit."}
    while True:
        _s, page = audit_page(client, **params)
        seen += re.findall(r'<td class="audit-detail">第 (\d+) 次</td>', page)
        more = re.search(r'rel="next" href="[^"]*before=(\d+)', page)
        if not more:
            break
        assert "action=unit." in page.split('rel="next"')[1].split(">")[0]  # filters stay on the next page
        params["before"] = more.group(1)
    assert [int(n) for n in seen] == list(range(119, -1, -1))


@pytest.mark.postgres
def test_the_figures_and_the_audit_scope_hold_on_postgresql(tmp_path, postgres_url, monkeypatch):
    """The same SQL on PostgreSQL: month sums both ways, assignment counts, activity, both audit plans."""
    from lms.accounts.services import create_user, get_or_create_unit
    from tests.conftest import _make_app

    app = _make_app(tmp_path, database_url=postgres_url)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        get_or_create_unit("town-a", "桂溪街道", "township", county)
        get_or_create_unit("town-b", "澄溪镇", "township", county)
        admin = create_user("county-admin", "管理员", "correct-horse", "admin", "cadre", "county")
        ua_a = create_user("ua-a", "桂溪管理员", "correct-horse", "unit_admin", "cadre", "town-a")
        learner_a = create_user("learner-a", "张桂兰", "correct-horse", "learner", "elder", "town-a")
        learner_b = create_user("learner-b", "李澄", "correct-horse", "learner", "elder", "town-b")
        course = Course(slug="c", title="课程", credit_hours=Decimal("1"))
        db.session.add(course)
        db.session.flush()
        db.session.add(Requirement(course_id=course.id, due_date=to_local(utcnow()).date() - timedelta(days=1),
                                   audience="elder"))
        db.session.commit()
        record(learner_a, 1.5, course=course, kind="course")
        record(learner_b, 2)
        for n in range(12):
            audit(admin, "user.update", f"user:{(learner_a if n % 3 else learner_b).id}", str(n))
        db.session.commit()

        year, month = to_local(utcnow()).year, to_local(utcnow()).month - 1
        assert services.hours_by_month(services.console_scope(admin), year)[month] == Decimal("3.50")
        assert services.hours_by_month(services.console_scope(ua_a), year)[month] == Decimal("1.50")
        figures = services.assignment_figures(services.console_scope(admin))
        assert (figures.done, figures.overdue) == (1, 1)
        assert services.active_learners(services.console_scope(ua_a)) == 1
        pages = []
        for limit in (10**9, 0):
            monkeypatch.setattr(services, "AUDIT_INDEXED_ROWS", limit)
            rows, _next = services.audit_rows(ua_a, services.AuditFilters(action="user."), page_size=50)
            pages.append([log.detail for log, _actor in rows])
        assert pages[0] == pages[1] and len(pages[0]) == 8
        db.session.remove()
        db.engine.dispose()
