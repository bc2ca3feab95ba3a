"""Assignments and annual targets: what learners see on 我的任务, what unit admins see and download."""
import csv
import io
from datetime import timedelta

import pytest

from lms.extensions import db
from lms.records import assignments
from lms.records.services import credit_course_completion, my_hours


@pytest.fixture
def people(make_user, units):
    from lms.accounts.services import get_or_create_unit

    get_or_create_unit("town-a-v1", "桂溪一村", "village", units["town_a"])
    db.session.commit()
    return {
        "a1": make_user("cadre_a1", audience="cadre", unit="town-a", full_name="张干部"),
        "a2": make_user("cadre_a2", audience="cadre", unit="town-a-v1", full_name="王村官"),
        "b1": make_user("cadre_b1", audience="cadre", unit="town-b", full_name="赵镇干"),
        "farmer": make_user("farmer_a", audience="farmer", unit="town-a", full_name="刘农民"),
        "admin": make_user("boss", role="admin", audience="cadre", unit="county", full_name="县管理员"),
        "ua": make_user("admin_a", role="unit_admin", audience="cadre", unit="town-a", full_name="桂溪管理员"),
    }


def _today():
    return assignments.today_local()


def test_assigning_to_an_audience_reaches_only_that_audience(people, course):
    assignments.create_requirement(course, _today() + timedelta(days=30), audience="cadre")
    assert [i["course"].title for i in assignments.my_assignments(people["a1"])["items"]] == [course.title]
    assert assignments.my_assignments(people["farmer"])["items"] == []


def test_unit_subtree_and_named_users(people, course, units):
    assignments.create_requirement(course, _today() + timedelta(days=30), unit=units["town_a"])
    assert assignments.my_assignments(people["a2"])["items"]  # the village is inside town-a
    assert assignments.my_assignments(people["farmer"])["items"]
    assert not assignments.my_assignments(people["b1"])["items"]
    db.session.query(assignments.Requirement).delete()
    db.session.commit()
    assignments.create_requirement(course, _today() + timedelta(days=30), usernames=["cadre_b1"])
    assert assignments.my_assignments(people["b1"])["items"]
    assert not assignments.my_assignments(people["a1"])["items"]
    with pytest.raises(assignments.AssignmentError, match="nobody"):
        assignments.create_requirement(course, _today(), usernames=["nobody"])
    with pytest.raises(assignments.AssignmentError):
        assignments.create_requirement(course, _today())


def test_learner_home_shows_overdue_due_soon_done_and_the_target(people, course, package, browser_client):
    from lms.courses.importer import import_package
    from tests.conftest import write_package

    other, _ = import_package(write_package(package.parent, None, slug="second", audiences=("cadre",)))
    third, _ = import_package(write_package(package.parent, None, slug="third", audiences=("cadre",)))
    assignments.create_requirement(course, _today() - timedelta(days=3), audience="cadre")
    assignments.create_requirement(other, _today() + timedelta(days=5), audience="cadre")
    assignments.create_requirement(third, _today() + timedelta(days=60), audience="cadre")
    credit_course_completion(people["a1"].id, third)
    home = assignments.my_assignments(people["a1"])
    assert [i["course"].slug for i in home["overdue"]] == [course.slug]
    assert [i["course"].slug for i in home["due_soon"]] == ["second"]
    assert [i["course"].slug for i in home["done"]] == ["third"]

    browser_client.login("cadre_a1")
    page = browser_client.get("/my").get_data(as_text=True)
    assert "已逾期 3 天" in page and "还剩 5 天" in page and "已完成" in page
    assert "0.5" in page and "/ 50" in page  # 0.5 学时 of the cadres' default 50
    assert 'id="tasks-overdue"' in page and course.title in page.split('id="tasks-overdue"')[1].split("</ul>")[0]


def test_annual_targets_are_stored_and_used_everywhere(people):
    assert assignments.target_hours("cadre") == 50  # Config default
    assignments.set_target("cadre", "60", actor=people["admin"])
    assert assignments.target_hours("cadre") == 60
    assert my_hours(people["a1"])["target"] == 60
    with pytest.raises(assignments.AssignmentError):
        assignments.set_target("cadre", "-1")


def test_admin_creates_an_assignment_and_sets_targets_through_forms(people, course, browser_client):
    browser_client.login("boss")
    browser_client.refresh_token("/admin/assignments")
    due = (_today() + timedelta(days=20)).isoformat()
    response = browser_client.post("/admin/assignments", data={
        "csrf_token": browser_client.token, "course": course.id, "due_date": due, "audience": "",
        "unit": "town-b", "usernames": "", "note": "年底前完成"})
    assert response.status_code == 302
    page = browser_client.get("/admin/assignments").get_data(as_text=True)
    assert course.title in page and "澄溪镇" in page and due in page
    bad = browser_client.post("/admin/assignments", data={
        "csrf_token": browser_client.token, "course": course.id, "due_date": due, "unit": "no-such"})
    assert bad.status_code == 400 and "单位编码不存在" in bad.get_data(as_text=True)

    browser_client.refresh_token("/admin/targets")
    form = {f"target_{code}": "5" for code in ("elder", "farmer", "worker", "youth")}
    response = browser_client.post("/admin/targets", data={"csrf_token": browser_client.token,
                                                           "target_cadre": "55", **form})
    assert response.status_code == 302
    assert assignments.target_hours("cadre") == 55 and assignments.target_hours("youth") == 5


def test_learners_and_unit_admins_cannot_manage_assignments(people, browser_client):
    browser_client.login("admin_a")
    assert browser_client.get("/admin/assignments").status_code == 403
    assert browser_client.get("/admin/targets").status_code == 403


def test_unit_admin_of_one_township_sees_only_that_townships_people(people, course, browser_client):
    assignments.create_requirement(course, _today() + timedelta(days=7), audience="cadre")
    credit_course_completion(people["a2"].id, course)  # the village cadre has finished
    browser_client.login("admin_a")
    page = browser_client.get("/admin/assignments/report").get_data(as_text=True)
    assert "张干部" in page and "桂溪管理员" in page  # unfinished, in town-a
    assert "王村官" not in page  # finished
    assert "赵镇干" not in page  # town-b is not theirs
    assert browser_client.get("/admin/assignments/report?unit=town-b").status_code == 403
    assert browser_client.get("/admin/assignments/report.csv?unit=county").status_code == 403

    raw = browser_client.get("/admin/assignments/report.csv").get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert {r["账号"] for r in rows} == {"cadre_a1", "admin_a"}
    assert all(r["课程"] == course.title and r["状态"] == "未完成" for r in rows)

    # the county admin sees everyone who has not finished, including town-b
    from flask import current_app

    from tests.conftest import BrowserLikeClient

    county = BrowserLikeClient(current_app.test_client())
    county.login("boss")
    rows = list(csv.DictReader(io.StringIO(
        county.get("/admin/assignments/report.csv").get_data().decode("utf-8-sig"))))
    assert {r["账号"] for r in rows} == {"cadre_a1", "admin_a", "cadre_b1", "boss"}


def test_report_csv_neutralises_formulas(people, course, make_user, browser_client):
    make_user("evil", audience="cadre", unit="town-a", full_name="=HYPERLINK(\"x\")")
    assignments.create_requirement(course, _today() - timedelta(days=1), audience="cadre")
    browser_client.login("admin_a")
    rows = list(csv.DictReader(io.StringIO(
        browser_client.get("/admin/assignments/report.csv").get_data().decode("utf-8-sig"))))
    evil = next(r for r in rows if r["账号"] == "evil")
    assert evil["姓名"].startswith("'=") and evil["状态"] == "已逾期"


def test_learners_cannot_see_the_report(people, browser_client):
    browser_client.login("cadre_a1")
    assert browser_client.get("/admin/assignments/report").status_code == 403
    assert browser_client.get("/admin/assignments/report.csv").status_code == 403


def test_an_annual_target_of_zero_can_be_saved_and_means_no_target(people, browser_client, app):
    """Saving 0 (no target) for an audience through the form: 302, stored as 0, /my shows no target;
    an empty field is still refused with a message."""
    from tests.conftest import BrowserLikeClient

    browser_client.login("boss")
    browser_client.refresh_token("/admin/targets")
    form = {f"target_{code}": "5" for code in ("elder", "farmer", "worker", "youth")}
    empty = browser_client.post("/admin/targets", data={"csrf_token": browser_client.token, "target_cadre": "",
                                                        **form})
    assert empty.status_code == 400 and "请填写年度目标" in empty.get_data(as_text=True)
    response = browser_client.post("/admin/targets", data={"csrf_token": browser_client.token,
                                                           "target_cadre": "0", **form})
    assert response.status_code == 302
    assert assignments.target_hours("cadre") == 0
    summary = my_hours(people["a1"])
    assert summary["target"] == 0 and not summary["met"]
    learner = BrowserLikeClient(app.test_client())
    learner.login("cadre_a1")
    page = learner.get("/my").get_data(as_text=True)
    assert "/ 0" not in page and "今年已获得" in page
