"""Who may change whom: unit admins keep to their subtree and below their own rank, nobody raises their
own role, teachers reach only the learners of their own classes, and a forced password change cannot
be skipped (nor trap a tablet learner)."""
from __future__ import annotations

import re

import pytest

from lms.accounts.models import User
from lms.accounts.services import get_or_create_unit
from lms.extensions import db
from lms.records.models import AuditLog
from tests.conftest import BrowserLikeClient

PERSON_ROUTES = ("", "/deactivate", "/reactivate", "/reset-password", "/unlock")


@pytest.fixture
def world(app, units, make_user):
    class_a = get_or_create_unit("class-a", "桂溪老年学校一班", "class", units["town_a"])
    class_b = get_or_create_unit("class-b", "澄溪老年学校一班", "class", units["town_b"])
    db.session.commit()
    return {
        **units, "class_a": class_a, "class_b": class_b,
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "peer_a": make_user("ua-a2", role="unit_admin", unit="town-a", audience="cadre"),
        "admin_in_a": make_user("admin-in-a", role="admin", unit="town-a", audience="cadre"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre"),
        "learner_a": make_user("learner-a", unit="town-a"),
        "teacher_a": make_user("teacher-a", role="instructor", unit="town-a", audience="cadre"),
        "pupil_a": make_user("pupil-a", unit="class-a", full_name="张大爷"),
        "pupil_b": make_user("pupil-b", unit="class-b", full_name="李奶奶"),
        "colleague_in_class": make_user("helper-a", role="instructor", unit="class-a", audience="elder"),
    }


def as_user(app, user, password="correct-horse") -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username, password).status_code == 302
    client.refresh_token("/account/password")
    return client


def post(client, path, data=None):
    return client.post(path, data={"csrf_token": client.token, **(data or {})})


def unchanged(user: User, **expected):
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    return all(getattr(fresh, name) == value for name, value in expected.items())


def test_a_unit_admin_of_another_subtree_reaches_nobody_here(app, world):
    other = as_user(app, world["ua_b"])
    person = world["learner_a"]
    for suffix in PERSON_ROUTES:
        path = f"/admin/people/{person.id}{suffix}"
        assert other.get(path).status_code in (403, 405), path
        assert post(other, path, {"full_name": "改名", "audience": "elder", "role": "learner",
                                  "unit": "town-b"}).status_code == 403, path
    assert unchanged(person, full_name="learner-a", active=True, must_change_password=False)
    assert other.get("/admin/people?unit=town-a").status_code == 403
    assert not AuditLog.query.filter(AuditLog.action.startswith("user.")).count()


@pytest.mark.parametrize("who", ["admin_in_a", "peer_a"])
def test_a_unit_admin_cannot_touch_admins_or_peers_in_their_own_unit(app, world, who):
    ua = as_user(app, world["ua_a"])
    target = world[who]
    page = ua.get(f"/admin/people/{target.id}").get_data(as_text=True)
    assert 'id="not-manageable"' in page and 'id="reset-password"' not in page
    for suffix in PERSON_ROUTES[1:]:
        assert post(ua, f"/admin/people/{target.id}{suffix}").status_code == 403, suffix
    assert post(ua, f"/admin/people/{target.id}", {"full_name": "x", "audience": "cadre", "role": "learner",
                                                   "unit": "town-a"}).status_code == 403
    assert unchanged(target, role=target.role, active=True, must_change_password=False)


def test_nobody_raises_a_role_beyond_their_own(app, world):
    ua = as_user(app, world["ua_a"])
    learner = world["learner_a"]
    response = post(ua, f"/admin/people/{learner.id}", {"full_name": "learner-a", "audience": "elder",
                                                        "role": "admin", "unit": "town-a"})
    assert response.status_code == 400 and 'id="role-error"' in response.get_data(as_text=True)
    response = post(ua, f"/admin/people/{learner.id}", {"full_name": "learner-a", "audience": "elder",
                                                        "role": "unit_admin", "unit": "town-a"})
    assert response.status_code == 400 and "单位管理员只能设在您下级的单位" in response.get_data(as_text=True)
    assert unchanged(learner, role="learner")
    # and their own: the only way in is their own page, which is read-only
    me = world["ua_a"]
    assert post(ua, f"/admin/people/{me.id}", {"full_name": "me", "audience": "cadre", "role": "admin",
                                               "unit": "county"}).status_code == 403
    assert unchanged(me, role="unit_admin", unit_id=world["town_a"].id)


def test_import_cannot_make_admins_or_reach_other_subtrees(app, world):
    import io

    ua = as_user(app, world["ua_a"])
    csv = "账号,姓名,人群,单位编码,角色\r\nnew.admin,新管理员,cadre,town-a,管理员\r\nnew.b,外人,elder,town-b,学员\r\n"
    response = ua.post("/admin/people/import", data={"csrf_token": ua.token, "file": (io.BytesIO(csv.encode()), "x.csv")},
                       content_type="multipart/form-data")
    assert response.status_code == 400
    assert User.query.filter(User.username.in_(["new.admin", "new.b"])).count() == 0


def test_a_forced_password_change_cannot_be_skipped(app, world):
    ua = as_user(app, world["ua_a"])
    response = post(ua, f"/admin/people/{world['learner_a'].id}/reset-password")
    password = re.search(r'id="shown-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    learner = as_user(app, world["learner_a"], password)
    for path in ("/", "/my/hours", "/my", "/courses"):
        response = learner.get(path)
        assert response.status_code in (302, 404) and (response.status_code == 404
                                                       or response.headers["Location"] == "/account/password"), path
    assert post(learner, "/logout").status_code == 302  # signing out still works


def test_a_teacher_manages_only_their_own_classes_learners(app, world):
    teacher = as_user(app, world["teacher_a"])
    teacher.refresh_token("/classroom/class-a")
    assert teacher.get("/classroom/class-b").status_code == 403
    # a learner of another class, or a non-learner in this class, is not theirs to change
    for user in (world["pupil_b"], world["colleague_in_class"]):
        for data in ({"pin": "1234"}, {"action": "remove"}):
            response = post(teacher, "/classroom/class-a", {"user_id": user.id, **data})
            assert response.status_code == 404, (user.username, data)
    assert unchanged(world["pupil_b"], pin_hash=None, active=True)
    assert unchanged(world["colleague_in_class"], pin_hash=None, active=True)
    # their own class: PIN, add, take off the roster and back — each audited
    assert post(teacher, "/classroom/class-a", {"user_id": world["pupil_a"].id, "pin": "2468"}).status_code == 302
    added = post(teacher, "/classroom/class-a", {"action": "add", "full_name": "王爷爷", "audience": "elder", "pin": "1357"})
    assert added.status_code == 302
    newcomer = User.query.filter_by(full_name="王爷爷").one()
    assert (newcomer.unit.code, newcomer.role, bool(newcomer.pin_hash)) == ("class-a", "learner", True)
    assert post(teacher, "/classroom/class-a", {"user_id": world["pupil_a"].id, "action": "remove"}).status_code == 302
    page = teacher.get("/classroom/class-a").get_data(as_text=True)
    assert 'id="removed-' in page and "王爷爷" in page
    assert unchanged(world["pupil_a"], active=False)
    assert post(teacher, "/classroom/class-a", {"user_id": world["pupil_a"].id, "action": "restore"}).status_code == 302
    assert unchanged(world["pupil_a"], active=True)
    actions = [a.action for a in AuditLog.query.filter_by(actor_id=world["teacher_a"].id).order_by(AuditLog.id)]
    assert actions == ["user.pin_set", "user.create", "user.pin_set", "user.deactivate", "user.reactivate"]
    # a teacher is not a people administrator
    assert teacher.get("/admin/people").status_code == 403


def test_a_teacher_cannot_add_to_a_class_elsewhere_or_with_a_bad_pin(app, world):
    teacher = as_user(app, world["teacher_a"])
    assert post(teacher, "/classroom/class-b", {"action": "add", "full_name": "外人", "audience": "elder"}).status_code == 403
    response = post(teacher, "/classroom/class-a", {"action": "add", "full_name": "赵奶奶", "audience": "elder", "pin": "12"})
    assert response.status_code == 400 and "PIN 必须是 4 位数字" in response.get_data(as_text=True)
    assert User.query.filter(User.full_name.in_(["外人", "赵奶奶"])).count() == 0


def test_a_tablet_learner_with_a_reset_password_still_signs_in_with_the_pin(app, world):
    from lms.classroom.services import set_pin

    pupil = world["pupil_a"]
    set_pin(pupil, "1234")
    pupil.must_change_password = True
    db.session.commit()
    tablet = as_user(app, world["teacher_a"])
    tablet.refresh_token("/classroom")
    assert post(tablet, "/classroom/class-a/open").status_code == 302
    tablet.refresh_token("/tablet")
    assert post(tablet, f"/tablet/{pupil.id}", {"pin": "1234"}).status_code == 302
    assert tablet.get("/").status_code == 200  # not sent to a password page they cannot use
