"""Every /admin route refuses who may not use it (issue 10): the test enumerates app.url_map, so a
route added without a check fails here without anyone having to remember to list it.

For every rule whose path starts with /admin and every method it accepts:
- anonymous → a redirect to the sign-in page (or 401/403);
- a learner → 403;
- a unit admin of another subtree, and an instructor who authors nothing → 403 or 404 for every
  route that names an object (a unit, person, course, lesson, video, assignment, quiz… of another
  subtree, or a course they do not author);
- and, so that the checks above are not vacuous, the county admin opens every GET route with the
  same parameters (neither 403 nor 404): the parameters name real objects.

Path parameters are filled from PARAMS, the only list here: a route with a parameter not in it
fails, asking for a line to be added. POSTs carry a valid CSRF token, so what answers is the route's
own check, not the CSRF guard.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from flask_login import login_required

from lms.accounts.models import utcnow
from lms.activities.models import ActivityAudience, OfflineActivity
from lms.contests.models import Contest, ContestAudience, ContestCourse, ContestUnit
from lms.courses.models import Course, CourseAudience, CourseAuthor, Lesson
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.quizzes.models import Choice, Question, Quiz
from lms.records.closing import ClosedYear
from lms.records.models import AuditLog, TrainingRecord
from lms.records.requirements import Requirement
from tests.conftest import BrowserLikeClient

# path parameter → the object it names, all in town-b or authored by someone else
PARAMS = {
    "unit_id": lambda w: w["town_b"].id,
    "code": lambda w: w["town_b"].code,
    "unit_code": lambda w: w["town_b"].code,
    "user_id": lambda w: w["learner_b"].id,
    "person_id": lambda w: w["learner_b"].id,
    "username": lambda w: w["learner_b"].username,
    "course_id": lambda w: w["course"].id,
    "slug": lambda w: w["course"].slug,
    "lesson_id": lambda w: w["lesson"].id,
    "asset_id": lambda w: w["asset"].id,
    "video_id": lambda w: w["asset"].id,
    "quiz_id": lambda w: w["quiz"].id,
    "question_id": lambda w: w["question"].id,
    "choice_id": lambda w: w["choice"].id,
    "requirement_id": lambda w: w["requirement"].id,
    "record_id": lambda w: w["record"].id,
    "audit_id": lambda w: w["audit"].id,
    "activity_id": lambda w: w["activity"].id,
    "closing_id": lambda w: w["closing"].id,
    "job_id": lambda w: w["export_job"].id,  # the county admin's own export (lms/records/export_jobs.py)
    "contest_id": lambda w: w["contest"].id,  # a contest of town-b (lms/contests)
    "fmt": lambda w: "csv",  # a contest's results export
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def world(app, units, make_user):
    """The county admin; in town-a a unit admin; in town-b a learner and everything the routes name;
    an instructor who authors nothing (the course's author is another instructor)."""
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "unit_admin_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "learner_b": make_user("learner-b", unit="town-b"),
        "outsider_instructor": make_user("teacher-x", role="instructor", unit="town-a", audience="cadre"),
        "author": make_user("teacher-b", role="instructor", unit="town-b", audience="cadre"),
    }
    course = Course(slug="scope-course", title="防范电信诈骗", credit_hours=Decimal("1"), published=True,
                    audience_rows=[CourseAudience(audience="elder")])
    db.session.add(course)
    db.session.flush()
    lesson = Lesson(course_id=course.id, slug="l1", title="冒充公检法", position=1, text_markdown="不转账",
                    text_html="<p>不转账</p>")
    db.session.add(lesson)
    db.session.flush()
    asset = VideoAsset(lesson_id=lesson.id, status="failed", error="不是视频文件", original_name="x.mp4")
    quiz = Quiz(lesson_id=lesson.id, pass_score=60)
    db.session.add_all([asset, quiz, CourseAuthor(course_id=course.id, user_id=people["author"].id)])
    db.session.flush()
    question = Question(quiz_id=quiz.id, position=1, kind="single", text="该怎么办？", explanation="挂断核实")
    db.session.add(question)
    db.session.flush()
    choice = Choice(question_id=question.id, position=1, text="挂断", correct=True)
    requirement = Requirement(course_id=course.id, due_date=utcnow().date() + timedelta(days=30),
                              unit_id=units["town_b"].id)
    record = TrainingRecord(user_id=people["learner_b"].id, course_id=course.id, title=course.title, kind="course",
                            hours=Decimal("1"), source="online")
    audit_row = AuditLog(actor_id=people["author"].id, action="course.publish", target=f"course:{course.id}")
    activity = OfflineActivity(title="防震演练", kind="drill", place="澄溪镇", unit_id=units["town_b"].id,
                               hours=Decimal("1"), starts_at=utcnow() - timedelta(hours=1),
                               ends_at=utcnow() + timedelta(hours=1), audience_rows=[ActivityAudience(audience="elder")])
    closing = ClosedYear(year=2020, unit_id=units["town_b"].id, closed_by_id=people["admin"].id)
    contest = Contest(title="澄溪镇知识竞赛", starts_at=utcnow() - timedelta(hours=1), ends_at=utcnow() + timedelta(days=1),
                      question_count=1, seconds_per_question=30, attempts_per_day=1, score_rule="best", hours=0,
                      min_score=0, unit_rows=[ContestUnit(unit_id=units["town_b"].id)],
                      audience_rows=[ContestAudience(audience="elder")], course_rows=[ContestCourse(course_id=course.id)])
    db.session.add_all([choice, requirement, record, audit_row, activity, closing, contest])
    db.session.commit()
    from lms.records import export_jobs, export_sql

    export_job = export_jobs.create_job(people["admin"], export_sql.Filters(unit=units["town_b"]), "csv", False, "zh", 1)
    return {**people, **units, "course": course, "lesson": lesson, "asset": asset, "quiz": quiz,
            "question": question, "choice": choice, "requirement": requirement, "record": record, "audit": audit_row,
            "activity": activity, "closing": closing, "export_job": export_job, "contest": contest}


def admin_rules(app, only=None):
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule == "/admin" or rule.rule.startswith("/admin/")]
    if only:
        rules = [rule for rule in rules if rule.rule in only]
    return sorted(rules, key=lambda rule: rule.rule)


def fill(rule, world) -> str:
    missing = sorted(set(rule.arguments) - set(PARAMS))
    if missing:
        pytest.fail(f"{rule.rule} ({rule.endpoint}): add the path parameter(s) {missing} to PARAMS in "
                    f"{__file__}, naming an object of town-b")
    return rule.build({name: PARAMS[name](world) for name in rule.arguments}, append_unknown=False)[1]


def client_as(app, user=None) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    if user is not None:
        response = client.login(user.username)
        assert response.status_code == 302, f"{user.username} could not sign in"
    client.refresh_token("/login" if user is None else "/my")
    return client


def call(client: BrowserLikeClient, method: str, path: str):
    if method == "GET":
        return client.get(path)
    return client.open(path, method=method, data={"csrf_token": client.token},
                       headers={"X-CSRFToken": client.token})


def refusals(app, world, only=None) -> list[str]:
    """Every (principal, method, route) that was not refused as it must be."""
    problems = []
    principals = [("anonymous", None), ("learner", world["learner_b"]),
                  ("unit admin of town-a", world["unit_admin_a"]),
                  ("instructor who authors nothing", world["outsider_instructor"])]
    for label, user in principals:
        client = client_as(app, user)
        for rule in admin_rules(app, only):
            path = fill(rule, world)
            for method in sorted(rule.methods - IGNORED_METHODS):
                response = call(client, method, path)
                status = response.status_code
                if label == "anonymous":
                    ok = status in (401, 403) or (status in (302, 303) and "/login" in response.headers["Location"])
                    wanted = "a redirect to /login (or 401/403)"
                elif label == "learner":
                    ok, wanted = status == 403, "403"
                elif rule.arguments:
                    ok, wanted = status in (403, 404), "403 or 404"
                else:
                    ok, wanted = status < 500, "no server error"
                if not ok:
                    problems.append(f"{label}: {method} {path} ({rule.endpoint}) → {status}, expected {wanted}")
    return problems


def test_the_console_has_routes_to_check(app, world):
    endpoints = {rule.endpoint for rule in admin_rules(app)}
    assert {"admin.home", "admin.audit", "media.overview", "assignments.manage", "records.export_page"} <= endpoints


def test_the_parameters_name_real_objects_the_county_admin_can_open(app, world):
    """A control: if PARAMS named nothing real, every refusal below would be a vacuous 404."""
    client = client_as(app, world["admin"])
    problems = []
    for rule in admin_rules(app):
        if "GET" in rule.methods:
            path = fill(rule, world)
            status = client.get(path).status_code
            if status in (403, 404) or status >= 500:
                problems.append(f"admin: GET {path} ({rule.endpoint}) → {status}")
    assert not problems, "\n".join(problems)


def test_every_admin_route_refuses_strangers_learners_and_other_subtrees(app, world):
    problems = refusals(app, world)
    assert not problems, f"{len(problems)} unchecked route(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("guard", ["none", "sign-in only", "role but no scope"])
def test_a_new_route_without_its_checks_fails_the_sweep(app, units, make_user, guard):
    from flask import abort
    from flask_login import current_user

    def probe(unit_id):
        return "管理数据"

    def signed_in_probe(unit_id):
        return "管理数据"

    def role_probe(unit_id):
        if current_user.role not in ("admin", "unit_admin"):
            abort(403)
        return "管理数据"

    view = {"none": probe, "sign-in only": login_required(signed_in_probe), "role but no scope": role_probe}[guard]
    app.add_url_rule("/admin/probe/<int:unit_id>", endpoint=f"probe_{guard}", view_func=login_required(view)
                     if guard == "role but no scope" else view)
    world = _world_for_probe(app, units, make_user)
    problems = refusals(app, world, only={"/admin/probe/<int:unit_id>"})
    expected = {"none": "anonymous", "sign-in only": "learner", "role but no scope": "unit admin of town-a"}[guard]
    assert any(problem.startswith(expected) for problem in problems), problems


def _world_for_probe(app, units, make_user):
    return {**units, "learner_b": make_user("learner-b", unit="town-b"),
            "unit_admin_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
            "outsider_instructor": make_user("teacher-x", role="instructor", unit="town-a", audience="cadre")}
