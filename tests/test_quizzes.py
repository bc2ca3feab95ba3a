"""Quiz attempts: the draw (pool/ask, per-attempt choice order), the quiz.yaml rules for it, what a
failed attempt shows outside strict courses, and attempts across a re-import."""
from __future__ import annotations

import pytest
import yaml

from lms.extensions import db
from lms.quizzes import services
from lms.quizzes.models import QuizAttempt
from tests.conftest import QUIZ, write_package
from tests.quizzing import RIGHT, WRONG, open_quiz, submit_quiz


def _pool(size: int) -> list[dict]:
    return [{"type": "single", "text": f"第{n}题：哪个是对的？", "explanation": f"第{n}题的解析",
             "choices": [{"text": f"对{n}", "correct": True}, {"text": f"错{n}甲"}, {"text": f"错{n}乙"},
                         {"text": f"错{n}丙"}]} for n in range(1, size + 1)]


def _quiz_package(tmp_path, test_video, quiz: dict, slug="pool-course"):
    folder = write_package(tmp_path / slug, test_video, slug=slug)
    (folder / "01-lesson" / "quiz.yaml").write_text(yaml.safe_dump(quiz, allow_unicode=True), encoding="utf-8")
    return folder


def test_pool_of_ten_asks_five_drawn_at_random(app, browser_client, make_user, tmp_path, test_video):
    from lms.courses.importer import import_package

    course, _ = import_package(_quiz_package(tmp_path, test_video, {"pass_score": 60, "ask": 5, "pool": _pool(10)}))
    lesson = course.active_lessons[0]
    assert lesson.quiz.ask == 5 and len(lesson.quiz.questions) == 10
    learner = make_user()
    browser_client.login(learner.username)
    page = open_quiz(browser_client, lesson.id)
    assert len(page.choices) == 5 and "这 5 道题是从 10 道题里随机抽的" in page.html
    draws = set()
    for _ in range(8):
        attempt = services.start_or_resume(learner.id, lesson.quiz)
        positions = [item["q"] for item in attempt.draw]
        assert len(set(positions)) == 5 and positions == sorted(positions)
        draws.add(tuple(positions))
        services.finish_attempt(attempt, {i: {0} for i in range(5)})
    assert len(draws) > 1  # 252 possible draws: eight identical ones would mean no draw at all


@pytest.mark.parametrize("quiz, field, words", [
    ({"ask": 11, "pool": _pool(10)}, "ask", "1 到 10"),
    ({"ask": 0, "pool": _pool(10)}, "ask", "1 到 10"),
    ({"pool": _pool(3)}, "ask", "1 到 3"),
    ({"ask": 2, "questions": _pool(3)}, "ask", "pool"),
    ({"ask": 2, "pool": _pool(3), "questions": _pool(3)}, "pool", "只能写一个"),
    ({"ask": 1, "pool": [{"type": "single", "text": "x", "explanation": "y", "choices": [{"text": "a"}]}]},
     "pool[0].choices", "至少需要两个选项"),
])
def test_bad_pool_or_ask_is_an_import_error_naming_file_and_field(tmp_path, test_video, quiz, field, words):
    from lms.courses.importer import ContentError, load_package

    folder = _quiz_package(tmp_path, test_video, {"pass_score": 60, **quiz})
    with pytest.raises(ContentError) as error:
        load_package(folder)
    assert error.value.field == field and words in str(error.value)
    assert "quiz.yaml" in str(error.value)


def test_choice_order_is_random_per_attempt_and_kept_within_it(app, browser_client, make_user, course):
    lesson = course.active_lessons[0]
    learner = make_user()
    browser_client.login(learner.username)
    orders = set()
    for _ in range(12):
        page = open_quiz(browser_client, lesson.id)
        assert open_quiz(browser_client, lesson.id).order(1) == page.order(1)  # reopening: the same order
        assert page.order(2) == ["正确", "错误"]  # true/false keeps its natural order: the words are the answer
        orders.add(tuple(page.order(1)))
        browser_client.post(f"/lessons/{lesson.id}/quiz", data=page.form(browser_client.token, RIGHT))
    assert len(orders) > 1  # 6 possible orders of 3 choices


def test_posted_places_mean_choices_of_this_attempt_only(app, make_user, course):
    """The value a form posts is a place in the attempt's order: with q0 shown reversed, place 1 is 马上转账."""
    lesson = course.active_lessons[0]
    learner = make_user()
    attempt = services.start_or_resume(learner.id, lesson.quiz)
    attempt.draw_json = '[{"q": 0, "c": [1, 0]}, {"q": 1, "c": [0, 1, 2]}, {"q": 2, "c": [0, 1]}]'
    db.session.commit()
    services.finish_attempt(attempt, {0: {1}, 1: {0, 1}, 2: {0}})
    assert attempt.answers == {"0": [0], "1": [0, 1], "2": [0]} and attempt.score == 67


def test_failed_attempt_outside_strict_courses_explains_and_allows_a_retry_at_once(
        app, browser_client, make_user, course):
    lesson = course.active_lessons[0]
    browser_client.login(make_user().username)
    body = submit_quiz(browser_client, lesson.id, WRONG).get_data(as_text=True)
    assert "答错的题：第 1、2、3 题" in body and QUIZ["questions"][0]["explanation"] in body
    assert "（正确答案）" in body and "下一次可以在" not in body and 'id="quiz-again"' in body
    page = open_quiz(browser_client, lesson.id)
    assert page.attempt and "已交卷 1 次，第一次 0 分" in page.html


def test_reimport_with_other_questions_restarts_an_open_attempt(app, browser_client, make_user, course, package):
    """An open attempt drawn from questions that a re-import replaced is dropped; the learner starts afresh."""
    from lms.courses.importer import import_package

    lesson = course.active_lessons[0]
    browser_client.login(make_user().username)
    before = open_quiz(browser_client, lesson.id)
    quiz = dict(QUIZ, questions=QUIZ["questions"][:2] + [dict(QUIZ["questions"][1], text="再选一次")])
    (package / "01-lesson" / "quiz.yaml").write_text(yaml.safe_dump(quiz, allow_unicode=True), encoding="utf-8")
    import_package(package)
    stale = browser_client.post(f"/lessons/{lesson.id}/quiz", data=before.form(browser_client.token, RIGHT))
    assert stale.status_code == 409 and "这份答卷已经失效" in stale.get_data(as_text=True)
    after = open_quiz(browser_client, lesson.id)
    assert after.attempt != before.attempt and len(after.choices) == 3
    assert QuizAttempt.query.count() == 1

