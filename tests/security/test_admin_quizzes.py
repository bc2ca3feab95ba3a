"""Who may use the quiz editor (issue 10): admins every quiz, an instructor only the quizzes of courses
they author; learners, unit administrators and other instructors get 403 on every editor URL, GET and
POST, and change nothing — they never see the right answers or the statistics. A question named under
another lesson is 404; a form without its CSRF token is refused."""
from __future__ import annotations

from decimal import Decimal

import pytest

from lms.courses.models import Course, CourseAudience, CourseAuthor, Lesson
from lms.extensions import db
from lms.quizzes import authoring
from lms.quizzes.models import Question, Quiz
from lms.records.models import AuditLog
from tests.conftest import BrowserLikeClient

SECRET = "只有作者能看到的解析"


@pytest.fixture
def world(app, units, make_user):
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "author": make_user("teacher-a", role="instructor", unit="town-a", audience="cadre"),
        "other_author": make_user("teacher-b", role="instructor", unit="town-b", audience="cadre"),
        "unit_admin": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "learner": make_user("learner-a", unit="town-a"),
    }
    quizzes = {}
    for slug, author in (("mine", "author"), ("theirs", "other_author")):
        course = Course(slug=slug, title=f"课程 {slug}", credit_hours=Decimal("1"), published=True,
                        audience_rows=[CourseAudience(audience="elder")])
        db.session.add(course)
        db.session.flush()
        lesson = Lesson(course_id=course.id, slug="l1", title=f"{slug} 第一课", position=1)
        db.session.add_all([lesson, CourseAuthor(course_id=course.id, user_id=people[author].id)])
        db.session.commit()
        quiz = authoring.save_settings(people[author], lesson, 60, None)
        for text in ("第一题", "第二题"):
            authoring.add_question(people[author], quiz, {"kind": "single", "text": f"{slug}{text}", "explanation": SECRET,
                                                         "choices": [("挂断核实", True), ("转账", False)]})
        authoring.set_enabled(people[author], quiz, True)
        quizzes[slug] = quiz
    return {**people, **quizzes}


def client_as(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/my")
    return client


def editor_urls(quiz: Quiz) -> list[tuple[str, str]]:
    """Every quiz-editor rule of the app, filled with this quiz's lesson and first question."""
    from flask import current_app

    values = {"lesson_id": quiz.lesson_id, "question_id": quiz.active_questions[0].id}
    urls = []
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint.startswith("quiz_editor."):
            path = rule.build({name: values[name] for name in rule.arguments}, append_unknown=False)[1]
            urls += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return urls


def snapshot():
    return ([(q.id, q.sort_order, q.retired, q.text) for q in Question.query.order_by(Question.id)],
            [(q.id, q.pass_score, q.ask, q.retired) for q in Quiz.query.order_by(Quiz.id)], AuditLog.query.count())


@pytest.mark.parametrize("who", ["learner", "unit_admin", "other_author"])
def test_everyone_but_its_authors_and_admins_gets_403_and_changes_nothing(app, world, who):
    client = client_as(app, world[who])
    urls = editor_urls(world["mine"])
    assert len(urls) >= 10
    before = snapshot()
    for method, path in urls:
        form = {"csrf_token": client.token, "pass_score": "1", "ask": "", "enable": "0", "direction": "down",
                "kind": "single", "text": "改掉", "explanation": "x", "choices-0-text": "a", "choices-0-correct": "y",
                "choices-1-text": "b"}
        response = client.get(path) if method == "GET" else client.post(path, data=form)
        body = response.get_data(as_text=True)
        # another instructor has a quiz list of their own, without this course
        expected = 200 if who == "other_author" and path == "/admin/quizzes" else 403
        assert response.status_code == expected, (who, method, path, response.status_code)
        assert SECRET not in body and "挂断核实" not in body and "课程 mine" not in body
    db.session.expire_all()
    assert snapshot() == before


@pytest.mark.parametrize("who", ["author", "admin"])
def test_its_author_and_admins_open_every_page(app, world, who):
    client = client_as(app, world[who])
    for method, path in editor_urls(world["mine"]):
        if method == "GET":
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
    assert "课程 mine" in client.get("/admin/quizzes").get_data(as_text=True)


def test_the_quiz_list_shows_an_instructor_only_their_courses(app, world):
    page = client_as(app, world["author"]).get("/admin/quizzes").get_data(as_text=True)
    assert "课程 mine" in page and "课程 theirs" not in page


def test_a_question_of_another_quiz_is_404_under_this_lesson(app, world):
    client = client_as(app, world["admin"])
    theirs = world["theirs"].active_questions[0]
    base = f"/admin/quizzes/lessons/{world['mine'].lesson_id}/questions/{theirs.id}"
    before = snapshot()
    assert client.get(base).status_code == 404
    for action in ("", "/move", "/retire", "/restore"):
        assert client.post(base + action, data={"csrf_token": client.token, "direction": "up"}).status_code == 404
    db.session.expire_all()
    assert snapshot() == before


def test_a_change_without_its_csrf_token_is_refused(app, world):
    client = client_as(app, world["author"])
    quiz = world["mine"]
    question = quiz.active_questions[0]
    before = snapshot()
    base = f"/admin/quizzes/lessons/{quiz.lesson_id}"
    for path, form in ((base, {"pass_score": "90"}), (base + "/state", {"enable": "0"}),
                       (base + f"/questions/{question.id}/retire", {}),
                       (base + f"/questions/{question.id}/move", {"direction": "down"})):
        assert client.post(path, data=form).status_code == 400, path
    db.session.expire_all()
    assert snapshot() == before
