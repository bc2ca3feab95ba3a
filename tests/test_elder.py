"""长辈版 without a browser: preferences, tablet PINs and their lock, 换人, idle sign-out,
scenario questions (import, rendering, answer-by-answer checking) and 继续学习."""
from __future__ import annotations

import re
import time

import pytest
import yaml

from lms.extensions import db


@pytest.fixture
def klass(app, units):
    from lms.accounts.services import get_or_create_unit

    unit = get_or_create_unit("class-1", "老年学校智能手机一班", "class", units["town_a"])
    db.session.commit()
    return unit


@pytest.fixture
def teacher(make_user, klass):
    return make_user(username="teacher1", role="instructor", audience="elder", unit="town-a", full_name="王老师")


@pytest.fixture
def pupils(make_user, klass):
    from lms.classroom.services import set_pin

    a = make_user(username="zhang", unit="class-1", full_name="张大爷")
    b = make_user(username="li", unit="class-1", full_name="李奶奶")
    set_pin(a, "1234")
    set_pin(b, "5678")
    return a, b


def open_tablet(client, teacher, klass):
    client.login(teacher.username)
    client.refresh_token("/classroom")
    response = client.post(f"/classroom/{klass.code}/open", data={"csrf_token": client.token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet")
    client.refresh_token("/tablet")


def type_pin(client, learner, pin):
    return client.post(f"/tablet/{learner.id}", data={"csrf_token": client.token, "pin": pin})


# --- preferences ---------------------------------------------------------------------------------

def test_elder_mode_is_on_by_default_for_elders_only(browser_client, make_user, course):
    elder = make_user(audience="elder")
    browser_client.login(elder.username)
    page = browser_client.get("/").get_data(as_text=True)
    assert 'class="elder font-standard"' in page and 'aria-pressed="true"' in page
    other = make_user(audience="cadre")
    browser_client.post("/logout", data={"csrf_token": browser_client.token})
    browser_client.login(other.username)
    page = browser_client.get("/").get_data(as_text=True)
    assert 'class="elder' not in page and 'id="elder-switch" aria-pressed="false"' in page


def test_switch_is_one_tap_and_sticks_for_the_user(browser_client, make_user, course):
    from lms.accounts.models import User

    cadre = make_user(audience="cadre")
    browser_client.login(cadre.username)
    browser_client.refresh_token("/my/hours")
    response = browser_client.post("/prefs/elder", data={"csrf_token": browser_client.token, "elder": "1",
                                                         "next": "/my/hours"})
    assert response.status_code == 302 and response.headers["Location"] == "/my/hours"
    assert db.session.get(User, cadre.id).elder_mode is True
    browser_client.post("/prefs/font", data={"csrf_token": browser_client.token, "font": "xlarge"})
    page = browser_client.get("/my/hours").get_data(as_text=True)
    assert 'class="elder font-xlarge"' in page
    # a fresh browser (another tablet) still shows this learner's choice
    from tests.conftest import BrowserLikeClient

    other = BrowserLikeClient(browser_client.application.test_client())
    other.login(cadre.username)
    assert 'class="elder font-xlarge"' in other.get("/").get_data(as_text=True)


def test_anonymous_choice_lives_in_a_cookie_and_bad_values_are_refused(browser_client):
    browser_client.refresh_token("/login")
    response = browser_client.post("/prefs/elder", data={"csrf_token": browser_client.token, "elder": "1",
                                                         "next": "https://evil.example/x"})
    assert response.headers["Location"] == "/"  # never an open redirect
    assert any(c.startswith("elder=1;") for c in response.headers.getlist("Set-Cookie"))
    assert 'class="elder font-standard"' in browser_client.get("/login").get_data(as_text=True)
    assert browser_client.post("/prefs/font", data={"csrf_token": browser_client.token, "font": "huge"}).status_code == 400
    assert browser_client.post("/prefs/elder", data={"elder": "1"}).status_code == 400  # no CSRF token


def test_aliases_are_findable_on_the_help_page(browser_client):
    page = browser_client.get("/help/elder").get_data(as_text=True)
    for alias in ("长辈版", "关怀版", "亲情版"):
        assert alias in page
    assert "关怀版" in browser_client.get("/").get_data(as_text=True)  # the switch names its aliases


# --- tablet class sign-in ------------------------------------------------------------------------------

def test_roster_pin_and_switch_person(browser_client, teacher, klass, pupils, course):
    zhang, li = pupils
    open_tablet(browser_client, teacher, klass)
    roster = browser_client.get("/tablet").get_data(as_text=True)
    assert "张大爷" in roster and "李奶奶" in roster and "王老师" not in roster
    assert 'class="elder' in roster  # a class tablet starts in 长辈版
    response = type_pin(browser_client, zhang, "1234")
    assert response.status_code == 302
    page = browser_client.get("/").get_data(as_text=True)
    assert "换人（张大爷）" in page and "退出（" not in page
    browser_client.post("/tablet/switch", data={"csrf_token": browser_client.token})
    assert browser_client.get("/my/hours").status_code == 302  # signed out
    assert "李奶奶" in browser_client.get("/tablet").get_data(as_text=True)
    assert type_pin(browser_client, li, "5678").status_code == 302
    assert "换人（李奶奶）" in browser_client.get("/").get_data(as_text=True)


def test_five_wrong_pins_lock_until_the_teacher_resets(browser_client, teacher, klass, pupils):
    from lms.accounts.models import User

    zhang, _ = pupils
    open_tablet(browser_client, teacher, klass)
    for attempt in range(1, 5):
        page = type_pin(browser_client, zhang, "0000").get_data(as_text=True)
        assert f"还可以试 {5 - attempt} 次" in page
    response = type_pin(browser_client, zhang, "0000")
    assert response.status_code == 403 and "已锁定" in response.get_data(as_text=True)
    # even the right PIN is refused now
    assert type_pin(browser_client, zhang, "1234").status_code == 403
    assert "已锁定" in browser_client.get("/tablet").get_data(as_text=True)
    # the teacher resets it on their own device
    from tests.conftest import BrowserLikeClient

    teacher_client = BrowserLikeClient(browser_client.application.test_client())
    teacher_client.login(teacher.username)
    teacher_client.refresh_token(f"/classroom/{klass.code}")
    teacher_client.post(f"/classroom/{klass.code}", data={"csrf_token": teacher_client.token,
                                                          "user_id": zhang.id, "pin": "4321"})
    db.session.expire_all()
    learner = db.session.get(User, zhang.id)
    assert "已锁定" not in browser_client.get("/tablet").get_data(as_text=True)
    assert "4321" not in learner.pin_hash and learner.pin_hash.startswith("$argon2id$")
    assert type_pin(browser_client, zhang, "4321").status_code == 302


def test_pins_are_four_digits_and_only_teachers_of_the_class_manage_them(
        browser_client, teacher, klass, pupils, make_user):
    from lms.classroom.services import ClassroomError, set_pin

    zhang, _ = pupils
    for bad in ("123", "12345", "abcd", ""):
        with pytest.raises(ClassroomError):
            set_pin(zhang, bad)
    outsider = make_user(role="instructor", unit="town-b", audience="cadre")
    browser_client.login(outsider.username)
    assert browser_client.get(f"/classroom/{klass.code}").status_code == 403
    browser_client.post("/logout", data={"csrf_token": browser_client.token})
    browser_client.login(zhang.username)
    assert browser_client.get("/classroom").status_code == 403
    # a learner of another class cannot be signed in from this tablet
    stranger = make_user(unit="town-b")
    set_pin(stranger, "1111")
    browser_client.post("/logout", data={"csrf_token": browser_client.token})
    open_tablet(browser_client, teacher, klass)
    assert type_pin(browser_client, stranger, "1111").status_code == 404


def test_without_an_open_tablet_there_is_no_roster(browser_client, pupils):
    assert browser_client.get("/tablet").status_code == 404
    assert browser_client.get(f"/tablet/{pupils[0].id}").status_code == 302


def test_idle_tablet_learner_is_signed_out(app, browser_client, teacher, klass, pupils):
    zhang, _ = pupils
    open_tablet(browser_client, teacher, klass)
    type_pin(browser_client, zhang, "1234")
    page = browser_client.get("/").get_data(as_text=True)
    assert 'data-idle-seconds="900"' in page and 'id="idle-extend"' in page
    with browser_client.session_transaction() as session:
        session["tablet_seen"] = time.time() - 901
    response = browser_client.get("/my/hours")
    assert response.status_code == 302 and response.headers["Location"].endswith("/tablet")
    assert "自动退出" in browser_client.get("/tablet").get_data(as_text=True)
    assert browser_client.get("/my/hours").status_code == 302


def test_photo_upload_shows_a_small_square_on_the_roster(browser_client, teacher, klass, pupils, tmp_path):
    import io
    import subprocess

    zhang, _ = pupils
    source = tmp_path / "face.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=800x600", "-frames:v", "1",
                    str(source)], check=True)
    browser_client.login(teacher.username)
    browser_client.refresh_token(f"/classroom/{klass.code}")
    browser_client.post(f"/classroom/{klass.code}", content_type="multipart/form-data",
                        data={"csrf_token": browser_client.token, "user_id": zhang.id,
                              "photo": (io.BytesIO(source.read_bytes()), "face.png")})
    response = browser_client.post(f"/classroom/{klass.code}", content_type="multipart/form-data",
                                   data={"csrf_token": browser_client.token, "user_id": zhang.id,
                                         "photo": (io.BytesIO(b"not an image"), "x.png")})
    assert "JPG 或 PNG" in browser_client.get(response.headers["Location"]).get_data(as_text=True)
    browser_client.refresh_token("/classroom")
    browser_client.post(f"/classroom/{klass.code}/open", data={"csrf_token": browser_client.token})
    roster = browser_client.get("/tablet").get_data(as_text=True)
    assert f'src="/tablet/photo/{zhang.id}"' in roster
    photo = browser_client.get(f"/tablet/photo/{zhang.id}")
    assert photo.status_code == 200 and photo.data[:3] == b"\xff\xd8\xff" and len(photo.data) < 20_000


# --- scenario questions ------------------------------------------------------------------------------

SCENARIO_QUIZ = {
    "pass_score": 60,
    "questions": [
        {"type": "single", "text": "这是诈骗吗？",
         "scenario": {"kind": "sms", "from": "10690000", "messages": [
             {"who": "them", "text": "您的医保卡已冻结，点链接解冻"}, {"who": "me", "text": "真的吗？"}]},
         "choices": [{"text": "是诈骗", "correct": True}, {"text": "不是诈骗"}],
         "explanation": "不点链接，不转账，拨打 96110 核实。"},
        {"type": "truefalse", "text": "96110 是反诈专线。", "answer": True, "explanation": "要接听。"},
    ],
}


def scenario_course(tmp_path, test_video):
    from lms.courses.importer import import_package
    from tests.conftest import write_package

    folder = write_package(tmp_path / "content", test_video, slug="scenario-course")
    (folder / "01-lesson" / "quiz.yaml").write_text(yaml.safe_dump(SCENARIO_QUIZ, allow_unicode=True), encoding="utf-8")
    course, _ = import_package(folder)
    return course


def test_scenario_is_imported_and_rendered_as_text(app, browser_client, make_user, tmp_path, test_video):
    course = scenario_course(tmp_path, test_video)
    question = course.active_lessons[0].quiz.questions[0]
    assert question.scenario == {"kind": "sms", "from": "10690000", "messages": [
        {"who": "them", "text": "您的医保卡已冻结，点链接解冻"}, {"who": "me", "text": "真的吗？"}]}
    browser_client.login(make_user().username)
    page = browser_client.get(f"/lessons/{course.active_lessons[0].id}/quiz").get_data(as_text=True)
    assert 'class="scenario scenario-sms"' in page and "短信：10690000" in page
    assert re.search(r'scenario-line them"><span class="scenario-who">10690000：</span>您的医保卡已冻结', page)
    assert re.search(r'scenario-line me"><span class="scenario-who">我：</span>真的吗？', page)


@pytest.mark.parametrize("scenario, field", [
    ({"kind": "letter", "messages": [{"text": "x"}]}, "questions[0].scenario.kind"),
    ({"kind": "call", "messages": []}, "questions[0].scenario.messages"),
    ({"kind": "chat", "messages": [{"who": "mom", "text": "x"}]}, "questions[0].scenario.messages[0].who"),
    ({"kind": "chat", "messages": [{"who": "me"}]}, "questions[0].scenario.messages[0].text"),
    ("a phone call", "questions[0].scenario"),
])
def test_bad_scenario_is_an_import_error_naming_the_field(tmp_path, scenario, field):
    from lms.courses.importer import ContentError, _load_quiz, _YamlFile

    quiz = {"questions": [dict(SCENARIO_QUIZ["questions"][0], scenario=scenario)]}
    path = tmp_path / "quiz.yaml"
    path.write_text(yaml.safe_dump(quiz, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContentError) as error:
        _load_quiz(_YamlFile(path))
    assert error.value.field == field and error.value.line


def test_demo_anti_fraud_course_has_scenario_questions():
    from pathlib import Path

    from lms.courses.importer import load_package

    spec = load_package(Path(__file__).resolve().parent.parent / "content" / "anti-fraud")
    scenarios = [q for lesson in spec.lessons for q in lesson.quiz["questions"] if q["scenario"]]
    assert len(scenarios) >= 6
    assert {q["scenario"]["kind"] for q in scenarios} == {"call", "sms", "chat"}
    assert any("这是诈骗吗" in q["text"] for q in scenarios) and any("怎么做" in q["text"] for q in scenarios)
    assert all("96110" in q["explanation"] and "不转账" in q["explanation"] for q in scenarios)


def test_elder_quiz_explains_each_answer_and_a_wrong_one_does_not_end_it(
        app, browser_client, make_user, tmp_path, test_video):
    from lms.quizzes.models import QuizAttempt
    from tests.quizzing import check_answer, open_quiz

    course = scenario_course(tmp_path, test_video)
    lesson = course.active_lessons[0]
    browser_client.login(make_user(audience="elder").username)
    quiz = open_quiz(browser_client, lesson.id)
    assert "看答案" in quiz.html and 'id="check-0"' in quiz.html
    response = check_answer(browser_client, lesson.id, quiz, 0, {0: "不是诈骗"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    block = page[page.index('id="check-0"'):page.index('id="check-1"')]
    assert "答错了，没关系" in block and "正确答案：是诈骗" in block and "拨打 96110 核实" in block
    assert re.search(rf'name="q0" value="{quiz.choices[0]["不是诈骗"]}"\s+checked disabled', page)  # kept, final
    assert "提交答案" in page  # the quiz goes on
    attempt = QuizAttempt.query.one()  # the answer is committed into the open attempt, which counts for nothing yet
    assert attempt.finished_at is None and not attempt.passed and attempt.score is None
    # the second question, answered right; the first one's explanation stays
    page = check_answer(browser_client, lesson.id, quiz, 1, {1: "正确"}).get_data(as_text=True)
    assert "答错了，没关系" in page and "答对了！" in page
    # a normal-mode learner gets no per-question check
    browser_client.post("/logout", data={"csrf_token": browser_client.token})
    browser_client.login(make_user(audience="cadre").username)
    assert "看答案" not in browser_client.get(f"/lessons/{lesson.id}/quiz").get_data(as_text=True)


# --- 继续学习 ------------------------------------------------------------------------------------------

def test_continue_learning_resumes_the_last_lesson(app, browser_client, make_user, course):
    from datetime import timedelta

    from lms.accounts.models import utcnow
    from lms.courses.models import LessonProgress

    learner = make_user()
    browser_client.login(learner.username)
    assert "继续学习" not in browser_client.get("/").get_data(as_text=True)
    lesson = course.active_lessons[0]
    db.session.add(LessonProgress(user_id=learner.id, lesson_id=lesson.id, last_position=2.5, watched_seconds=2.5,
                                  last_heartbeat_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    page = browser_client.get("/").get_data(as_text=True)
    href = f'href="/courses/{course.slug}/lessons/{lesson.slug}"'
    assert 'id="continue-learning"' in page and href in page
    assert href in browser_client.get("/my/hours").get_data(as_text=True)
    lesson_page = browser_client.get(f"/courses/{course.slug}/lessons/{lesson.slug}").get_data(as_text=True)
    assert 'data-resume-at="2.5"' in lesson_page
