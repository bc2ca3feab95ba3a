"""Attacks on the quiz (issue 9, defect 2): reading right answers before answering, changing an answer
after its verdict, retrying a strict quiz until it passes, retrying to raise the end-of-course bonus.

Each test names the attack and what it gets. The right answers and explanations of the test quiz
(tests/conftest.py QUIZ) are the secrets: no response may carry them for an answer not committed.
"""
from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest

from lms.extensions import db
from lms.quizzes.models import QuizAnswer, QuizAttempt
from tests.conftest import QUIZ, write_package
from tests.quizzing import RIGHT, WRONG, check_answer, open_quiz, submit_quiz

EXPLANATIONS = [q["explanation"] for q in QUIZ["questions"]]
# what a page shows only with a verdict or a right answer
REVEALING = EXPLANATIONS + ["正确答案", 'class="verdict', 'class="explanation"', "答对了", "✘", 'class="ok"']


def leaks(body: str) -> list[str]:
    return [secret for secret in REVEALING if secret in body]


@pytest.fixture
def strict_course(app, tmp_path, test_video):
    from lms.courses.importer import import_package

    course, _ = import_package(write_package(tmp_path / "strict", test_video, slug="strict-course",
                                             audiences=("cadre", "elder"), mandatory=True, strict=True))
    return course


def _url_for(rule, lesson, attempt_id):
    """Values for a rule's arguments: the lesson, its quiz, its course, or an attempt of the victim."""
    known = {"lesson_id": lesson.id, "quiz_id": lesson.quiz.id, "slug": lesson.course.slug,
             "lesson_slug": lesson.slug, "attempt_id": attempt_id,
             "question_id": lesson.quiz.questions[0].id}
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:[^:>]+:)?{name}>", str(known.get(name, lesson.id)), url)
    return url


def test_every_quiz_endpoint_before_answering_leaks_nothing(app, browser_client, make_user, course):
    """Every URL rule with "quiz", GET and POST, before any answer is committed — no attempt yet, an
    empty or forged form, another learner's attempt, a 看答案 with nothing picked — gets no verdict,
    right answer or explanation, and commits nothing."""
    lesson = course.active_lessons[0]
    victim = make_user(audience="elder")
    browser_client.login(victim.username)
    victim_attempt = open_quiz(browser_client, lesson.id).attempt
    browser_client.post("/logout", data={"csrf_token": browser_client.token})

    attacker = make_user(audience="elder")  # 长辈版: the 看答案 buttons are on the page
    browser_client.login(attacker.username)
    browser_client.refresh_token("/")
    rules = [rule for rule in app.url_map.iter_rules() if "quiz" in rule.rule]
    assert {"/lessons/<int:lesson_id>/quiz", "/lessons/<int:lesson_id>/quiz/check"} <= {r.rule for r in rules}
    canonical_right = {"q0": "1", "q1": ["0", "1"], "q2": "0"}  # the authored order, as an old client sent it
    forged_forms = [
        {},
        canonical_right,
        dict(canonical_right, check="0"),
        dict(canonical_right, attempt=victim_attempt, check="0"),
        {"attempt": victim_attempt, "check": "1", "checked": ["0", "1", "2"]},
        {"attempt": "999999", "check": "2", "q2": "0"},
    ]
    tried = 0
    for phase in ("before opening", "after opening"):
        if phase == "after opening":
            page = open_quiz(browser_client, lesson.id)
            assert page.attempt and not leaks(page.html)
            forged_forms += [{"attempt": page.attempt}, {"attempt": page.attempt, "check": "0"},
                             {"attempt": page.attempt, "check": "7", "q7": "0"}]
        # POSTs first: before opening, no attempt of the attacker exists yet (a GET of the quiz opens one)
        for method in ("POST", "GET"):
            for rule in (r for r in rules if method in r.methods):
                url = _url_for(rule, lesson, victim_attempt)
                for form in forged_forms if method == "POST" else [None]:
                    if method == "GET":
                        body = browser_client.get(url).get_data(as_text=True)
                    else:
                        body = browser_client.post(url, data={"csrf_token": browser_client.token, **form}
                                                   ).get_data(as_text=True)
                    assert not leaks(body), (phase, method, url, form, leaks(body))
                    tried += 1
    assert tried >= 20
    assert QuizAnswer.query.count() == 0
    assert QuizAttempt.query.filter(QuizAttempt.finished_at.isnot(None)).count() == 0


def test_scripted_attack_on_a_strict_quiz_gains_nothing_to_retry_with(app, browser_client, make_user, strict_course):
    """The issue's script on a strict course (answer, fail, read the answers, retry at once): the failed
    attempt shows which questions were wrong and no right answer or explanation, every quiz endpoint
    then gives none either, and the retry is refused (the page says when) until the wait is over."""
    lesson = strict_course.active_lessons[0]
    attacker = make_user(audience="elder")
    browser_client.login(attacker.username)
    page = open_quiz(browser_client, lesson.id)
    checked = check_answer(browser_client, lesson.id, page, 0, {0: WRONG[0]}).get_data(as_text=True)
    assert "答错了" in checked  # its verdict, for the committed answer only
    assert not [s for s in EXPLANATIONS + ["正确答案："] if s in checked]
    result = browser_client.post(f"/lessons/{lesson.id}/quiz", data=page.form(browser_client.token, WRONG))
    body = result.get_data(as_text=True)
    assert result.status_code == 200 and "还差一点" in body and "答错的题：第 1、2、3 题" in body
    assert not [s for s in EXPLANATIONS + ["正确答案", 'class="ok"'] if s in body]
    assert "下一次可以在" in body and "10 分钟后" in body
    # read the answers: the old attempt's form again, with 看答案, and the quiz page
    for url, form in ((f"/lessons/{lesson.id}/quiz/check", page.form(browser_client.token, RIGHT, check="1")),
                      (f"/lessons/{lesson.id}/quiz", page.form(browser_client.token, RIGHT))):
        body = browser_client.post(url, data=form).get_data(as_text=True)
        assert not [s for s in EXPLANATIONS + ["正确答案", 'class="ok"'] if s in body], url
    retry = browser_client.get(f"/lessons/{lesson.id}/quiz").get_data(as_text=True)
    assert "下一次可以在" in retry and 'name="attempt"' not in retry  # no new attempt to answer
    attempts = QuizAttempt.query.filter_by(user_id=attacker.id).all()
    assert [(a.score, a.passed) for a in attempts] == [(0, False)]
    # after the wait: a new attempt, answered from the learner's own knowledge
    attempts[0].finished_at -= timedelta(seconds=app.config["QUIZ_RETRY_WAIT_SECONDS"])
    db.session.commit()
    again = open_quiz(browser_client, lesson.id)
    assert again.attempt and again.attempt != page.attempt


def test_retry_wait_follows_the_configuration(app, browser_client, make_user, strict_course):
    """Retrying a failed strict quiz 5 minutes later with QUIZ_RETRY_WAIT_SECONDS = 3600 is still refused."""
    app.config["QUIZ_RETRY_WAIT_SECONDS"] = 3600
    lesson = strict_course.active_lessons[0]
    browser_client.login(make_user(audience="cadre").username)
    body = submit_quiz(browser_client, lesson.id, WRONG).get_data(as_text=True)
    assert "60 分钟后" in body
    attempt = QuizAttempt.query.one()
    attempt.finished_at -= timedelta(minutes=5)
    db.session.commit()
    assert "55 分钟后" in browser_client.get(f"/lessons/{lesson.id}/quiz").get_data(as_text=True)


def test_changing_an_answer_after_its_verdict_does_not_count(app, browser_client, make_user, course):
    """看答案 with a wrong answer, then 看答案 and submit again with the right one: the verdict and the
    score stay those of the first answer."""
    lesson = course.active_lessons[0]
    browser_client.login(make_user(audience="elder").username)
    page = open_quiz(browser_client, lesson.id)
    first = check_answer(browser_client, lesson.id, page, 0, {0: WRONG[0]}).get_data(as_text=True)
    assert "答错了，没关系" in first
    second = check_answer(browser_client, lesson.id, page, 0, {0: RIGHT[0]}).get_data(as_text=True)
    block = second[second.index('id="check-0"'):second.index('id="check-1"')]
    assert "答错了，没关系" in block and "答对了" not in block
    result = browser_client.post(f"/lessons/{lesson.id}/quiz", data=page.form(browser_client.token, RIGHT))
    attempt = QuizAttempt.query.one()
    assert attempt.score == 67 and attempt.answers["0"] == [0]  # 马上转账, the first answer
    assert "得分 67 分" in result.get_data(as_text=True)


def test_racing_answers_to_one_question_commit_only_one(app, make_user, course):
    """20 parallel 看答案 for one question, each with another choice: one answer is committed, and
    every request gets that one back (no verdict for the others)."""
    _assert_one_answer_commits(app, make_user(audience="elder").id, course.active_lessons[0].id)


@pytest.mark.postgres
def test_racing_answers_to_one_question_commit_only_one_on_postgres(tmp_path, media_dir, test_video, postgres_url):
    """The same race on PostgreSQL: one committed answer."""
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from tests.conftest import _make_app

    app = _make_app(tmp_path, database_url=postgres_url, data_dir=media_dir)
    with app.app_context():
        unit = get_or_create_unit("county", "垫江县", "county")
        user = create_user("racer", "赛跑者", "correct-horse", "learner", "elder", unit.code)
        db.session.commit()
        course, _ = import_package(write_package(tmp_path / "content", test_video))
        ids = user.id, course.active_lessons[0].id
        db.session.remove()
    _assert_one_answer_commits(app, *ids)
    with app.app_context():
        db.engine.dispose()


def _assert_one_answer_commits(app, user_id, lesson_id):
    from lms.courses.models import Lesson
    from lms.quizzes import services
    from tests.test_concurrency import _race

    with app.app_context():
        quiz = db.session.get(Lesson, lesson_id).quiz
        attempt_id = services.start_or_resume(user_id, quiz).id
    got, racer = [], itertools.count()

    def answer():
        attempt = db.session.get(QuizAttempt, attempt_id)
        value = next(racer) % 2  # q0 has two choices: half the racers pick each
        got.append(services.commit_answer(attempt, 0, {value}).choices_json)

    errors = _race(app, answer)
    with app.app_context():
        committed = QuizAnswer.query.filter_by(attempt_id=attempt_id).all()
        assert errors == [] and len(committed) == 1
        assert set(got) == {committed[0].choices_json}
        db.session.remove()


def test_open_attempt_with_right_answers_does_not_count_as_passed(app, browser_client, make_user, course):
    """Committing every right answer by 看答案 but never submitting: not passed, nothing credited."""
    from lms.courses.services import quiz_passed
    from lms.records.models import TrainingRecord

    lesson = course.active_lessons[0]
    learner = make_user(audience="elder")
    browser_client.login(learner.username)
    page = open_quiz(browser_client, lesson.id)
    for index in range(3):
        check_answer(browser_client, lesson.id, page, index, RIGHT)
    assert QuizAnswer.query.count() == 3
    assert not quiz_passed(learner.id, lesson)
    assert QuizAttempt.query.filter_by(passed=True).count() == 0 and TrainingRecord.query.count() == 0


def test_retrying_cannot_raise_the_end_of_course_bonus(app, browser_client, make_user, tmp_path, test_video):
    """Passing under the bonus line, then retrying to 100: the course is credited, the bonus is not."""
    from lms.records.models import TrainingRecord
    from tests.test_learning_loop import watched_bonus_lesson

    retrier, lesson = watched_bonus_lesson(browser_client, make_user, tmp_path / "bonus", test_video)
    submit_quiz(browser_client, lesson.id, {**RIGHT, 1: WRONG[1]})  # 67: passed, under the line
    submit_quiz(browser_client, lesson.id, RIGHT)  # 100, but not at the first attempt
    assert [(str(r.hours), r.title) for r in TrainingRecord.query.filter_by(user_id=retrier.id)] == [
        ("0.50", lesson.course.title)]
