"""练一练 (issue 15): practices load from packages and are checked like quizzes; the server keeps each
learner's step (resume after a reload or on another tablet); a lesson with a practice completes only
once it is finished, and a practice-only lesson credits its course exactly once."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from lms.courses.importer import ContentError, import_package, load_package
from lms.extensions import db
from tests.conftest import write_package

ROOT = Path(__file__).resolve().parent.parent
DEMO = {"smartphone-basics": {"big-font", "video-call", "scan-and-pay", "online-registration"},
        "anti-fraud": {"scam-sms"}, "phone-errands": {"ride-hailing"}}

PRACTICE = {
    "title": "调大字体",
    "device": "phone",
    "steps": [
        {"screen": "home", "instruction": "请您点“设置”。", "targets": ["settings"], "wrong": "再找找齿轮。"},
        {"screen": "settings", "instruction": "请您点“显示和字体”。", "target": "display"},
        {"screen": {"title": "确认付款", "elements": [
            {"kind": "field", "label": "收款方", "value": "张记水果店"},
            {"kind": "amount", "value": "¥1200.00"},
            {"kind": "button", "id": "pay", "label": "确认付款", "style": "primary"},
            {"kind": "button", "id": "cancel", "label": "取消"}]},
         "instruction": "金额不对，请点“取消”。", "targets": ["cancel"], "right": "对了！"},
    ],
}


def practice_package(root: Path, practice: dict | str, *, video=None, quiz=True, slug="practice-course") -> Path:
    """A one-lesson course whose lesson carries `practice` (and, unless told, a quiz)."""
    folder = write_package(root, video, slug=slug)
    manifest = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    (folder / "practice").mkdir(exist_ok=True)
    text = practice if isinstance(practice, str) else yaml.safe_dump(practice, allow_unicode=True, sort_keys=False)
    (folder / "practice" / "p.yaml").write_text(text, encoding="utf-8")
    manifest["lessons"][0]["practice"] = "practice/p.yaml"
    if not quiz:
        del manifest["lessons"][0]["quiz"]
    (folder / "course.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


def test_the_six_demo_practices_load():
    loaded = {}
    for course, lessons in DEMO.items():
        spec = load_package(ROOT / "content" / course)
        for lesson in spec.lessons:
            if lesson.practice is not None:
                loaded[(course, lesson.slug)] = lesson.practice
        assert lessons <= {slug for c, slug in loaded if c == course}, course
    assert len(loaded) >= 6
    for practice in loaded.values():
        assert practice["steps"] and all(step["instruction"] and step["targets"] for step in practice["steps"])
    # the scan-and-pay practice has a step where the amount is wrong and the right tap is 取消
    pay = loaded[("smartphone-basics", "scan-and-pay")]
    assert any(step["targets"] == ["cancel"] and "1200" in str(step["screen"]) for step in pay["steps"])


@pytest.mark.parametrize("change, field, words", [
    (lambda p: p["steps"][0].update(screen="no-such-screen"), "steps[0].screen", "未知的画面"),
    (lambda p: p["steps"][1].update(target="wifi-typo"), "steps[1].target[0]", "不在这一步的画面上"),
    (lambda p: p["steps"][2].update(targets=["delete"]), "steps[2].targets[0]", "不在这一步的画面上"),
    (lambda p: p.update(steps=[]), "steps", "至少需要一步"),
    (lambda p: p.pop("steps"), "steps", "至少需要一步"),
    (lambda p: p["steps"][0].update(instruction="  "), "steps[0].instruction", "不能为空"),
    (lambda p: p["steps"][2]["screen"]["elements"][2].update(kind="slider"), "steps[2].screen.elements[2].kind",
     "未知的元素类型"),
    (lambda p: p["steps"][2]["screen"]["elements"].append({"kind": "button", "id": "pay", "label": "又一个"}),
     "steps[2].screen.elements", "重复"),
])
def test_a_malformed_practice_is_refused_naming_file_and_field(app, tmp_path, change, field, words):
    practice = yaml.safe_load(yaml.safe_dump(PRACTICE, allow_unicode=True))
    change(practice)
    folder = practice_package(tmp_path / "content", practice)
    with pytest.raises(ContentError) as caught:
        import_package(folder)
    error = caught.value
    assert error.file.name == "p.yaml" and error.field == field, str(error)
    assert words in error.message
    assert "p.yaml" in str(error) and field in str(error)
    from lms.courses.models import Course

    assert Course.query.count() == 0  # nothing of it half-imported


def test_a_missing_practice_file_is_named_in_course_yaml(app, tmp_path):
    folder = practice_package(tmp_path / "content", PRACTICE)
    (folder / "practice" / "p.yaml").unlink()
    with pytest.raises(ContentError) as caught:
        import_package(folder)
    assert caught.value.file.name == "course.yaml" and caught.value.field == "lessons[0].practice"


@pytest.fixture
def practice_course(app, tmp_path):
    """A one-lesson course whose only lesson is a practice (no video, no quiz)."""
    course, _ = import_package(practice_package(tmp_path / "content", PRACTICE, quiz=False))
    return course


def tap(user_id, practice, step, target):
    from lms.practices import services

    return services.tap(user_id, practice, {"step": step, "target": target})


def test_walking_through_finishes_and_credits_a_practice_only_lesson_once(practice_course, make_user):
    from lms.courses.services import course_record
    from lms.practices import services
    from lms.records.models import TrainingRecord

    learner = make_user()
    lesson = practice_course.active_lessons[0]
    practice = lesson.practice
    assert practice is not None and practice.title == "调大字体"
    assert tap(learner.id, practice, 0, "settings").outcome == "right"
    wrong = tap(learner.id, practice, 1, "wifi")
    assert (wrong.outcome, wrong.step, wrong.hint) == ("wrong", 1, [])
    second = tap(learner.id, practice, 1, "sound")
    assert second.hint == ["display"]  # two wrong taps: the right place is named
    assert course_record(learner.id, practice_course.id) is None
    assert tap(learner.id, practice, 1, "display").outcome == "right"
    last = tap(learner.id, practice, 2, "cancel")
    assert last.outcome == "right" and last.finished and last.step == 3
    record = course_record(learner.id, practice_course.id)
    assert record is not None and last.credited_hours == record.hours
    # practising again changes nothing in the ledger
    services.start_again(learner.id, practice)
    for step, target in enumerate(["settings", "display", "cancel"]):
        assert tap(learner.id, practice, step, target).outcome == "right"
    assert TrainingRecord.query.filter_by(user_id=learner.id).count() == 1
    assert services.state_for(learner.id, practice).finished


def test_resume_after_a_reload(practice_course, make_user, browser_client):
    learner = make_user(username="zhang")
    lesson = practice_course.active_lessons[0]
    url = f"/courses/{practice_course.slug}/lessons/{lesson.slug}/practice"
    browser_client.login("zhang")
    browser_client.refresh_token(url)
    answer = browser_client.post(f"/api/practices/{lesson.practice.id}/tap", json={"step": 0, "target": "settings"},
                                 headers={"X-CSRFToken": browser_client.token})
    assert answer.status_code == 200 and answer.get_json()["step"] == 1
    for target in ("wifi", "sound"):
        browser_client.post(f"/api/practices/{lesson.practice.id}/tap", json={"step": 1, "target": target},
                            headers={"X-CSRFToken": browser_client.token})
    page = browser_client.get(url).get_data(as_text=True)  # a reload, or another tablet
    assert 'data-step="1" data-count="3"' in page
    assert "请您点“显示和字体”。" in page.split('id="practice-instruction"')[1][:200]
    assert "看，亮起来的地方就是，点这里。" in page  # the hint survives the reload
    hinted = page.split('data-target="display"')[0].rsplit("<button", 1)[1]
    assert "is-hint" in hinted


def test_completion_needs_the_practice_too(app, tmp_path, make_user):
    """A lesson with a quiz and a practice: passing the quiz alone does not complete it."""
    from lms.courses.completion import settle_completion
    from lms.courses.models import LessonProgress
    from lms.quizzes.models import QuizAttempt

    course, _ = import_package(practice_package(tmp_path / "content", PRACTICE, quiz=True))
    learner = make_user()
    lesson = course.active_lessons[0]
    db.session.add(QuizAttempt(user_id=learner.id, quiz_id=lesson.quiz.id, score=100, passed=True))
    db.session.commit()
    settled = settle_completion(learner.id, course.id)
    assert settled.record is None and not settled.completed_lessons
    for step, target in enumerate(["settings", "display", "cancel"]):
        tap(learner.id, lesson.practice, step, target)
    progress = LessonProgress.query.filter_by(user_id=learner.id, lesson_id=lesson.id).one()
    assert progress.completed_at is not None
    assert settle_completion(learner.id, course.id).record is not None


def test_a_lesson_without_practice_is_credited_as_before(course, make_user):
    """The test course's lesson has video and quiz and no practice: reading_lesson and completion unchanged."""
    from lms.courses import completion

    lesson = course.active_lessons[0]
    assert lesson.practice is None and not completion.reading_lesson(lesson)


def test_changed_steps_restart_an_unfinished_learner_but_keep_a_finished_one(app, tmp_path, make_user):
    from lms.practices import services

    folder = practice_package(tmp_path / "content", PRACTICE, quiz=False)
    course, _ = import_package(folder)
    halfway, finished = make_user(), make_user()
    practice = course.active_lessons[0].practice
    tap(halfway.id, practice, 0, "settings")
    for step, target in enumerate(["settings", "display", "cancel"]):
        tap(finished.id, practice, step, target)
    changed = dict(PRACTICE, steps=PRACTICE["steps"][1:])
    (folder / "practice" / "p.yaml").write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    import_package(folder)
    practice = course.active_lessons[0].practice
    assert len(practice.steps) == 2
    assert services.state_for(halfway.id, practice).step == 0
    assert services.state_for(finished.id, practice).finished


def test_export_writes_the_practice_back(app, tmp_path):
    from lms.courses.exporter import export_course

    course, _ = import_package(practice_package(tmp_path / "content", PRACTICE, quiz=False))
    first = export_course(course, tmp_path / "out1")
    written = [f for f in first.files if f.endswith("practice.yaml")]
    assert written
    exported = yaml.safe_load((first.folder / written[0]).read_text(encoding="utf-8"))
    assert exported["steps"][1]["targets"] == ["display"] and exported["steps"][2]["screen"]["title"] == "确认付款"
    # a fresh import of the export gives the same practice
    again = tmp_path / "again"
    shutil.copytree(first.folder, again / first.folder.name)
    spec = load_package(again / first.folder.name)
    assert spec.lessons[0].practice == course.active_lessons[0].practice.document
    # and exported again after importing the export: the same bytes
    import_package(again / first.folder.name)
    second = export_course(course, tmp_path / "out2")
    assert (second.folder / written[0]).read_bytes() == (first.folder / written[0]).read_bytes()


def test_without_javascript_the_phone_is_a_form(practice_course, make_user, browser_client):
    """Each tappable element is a submit button of the step's form: taps work with no script at all, and
    the lesson page links to the practice."""
    make_user(username="wang")
    lesson = practice_course.active_lessons[0]
    browser_client.login("wang")
    lesson_page = browser_client.get(f"/courses/{practice_course.slug}/lessons/{lesson.slug}").get_data(as_text=True)
    url = f"/courses/{practice_course.slug}/lessons/{lesson.slug}/practice"
    assert f'href="{url}"' in lesson_page and "练一练" in lesson_page
    assert "我已读完" not in lesson_page  # a practice lesson is not a reading lesson
    token = browser_client.refresh_token(url)
    tap_url = f"/api/practices/{lesson.practice.id}/tap"
    wrong = browser_client.post(tap_url, data={"csrf_token": token, "step": "0", "target": "camera"})
    assert wrong.status_code == 303
    page = browser_client.get(wrong.headers["Location"]).get_data(as_text=True)
    assert "再找找齿轮。" in page
    right = browser_client.post(tap_url, data={"csrf_token": token, "step": "0", "target": "settings"})
    page = browser_client.get(right.headers["Location"]).get_data(as_text=True)
    assert "对了！" in page and "请您点“显示和字体”。" in page.split('id="practice-instruction"')[1][:200]


def test_records_settle_finds_a_finished_practice(practice_course, make_user):
    """`lms records settle` looks at a learner whose only trace in a course is a finished practice (the
    request that finished it failed before settling): it is credited then."""
    from lms.accounts.models import utcnow
    from lms.courses.completion import settle_candidates, settle_completion
    from lms.practices.models import PracticeProgress

    learner = make_user()
    practice = practice_course.active_lessons[0].practice
    db.session.add(PracticeProgress(user_id=learner.id, practice_id=practice.id, digest=practice.digest,
                                    step=len(practice.steps), finished_at=utcnow()))
    db.session.commit()
    assert (learner.id, practice_course.id) in settle_candidates()
    assert settle_completion(learner.id, practice_course.id).record is not None
    assert (learner.id, practice_course.id) not in settle_candidates()


def test_demo_practices_are_written_for_elders():
    """Instructions and feedback say 您 (never 你) in sentences of at most 30 characters, as the lessons do."""
    import re

    long, ni = [], []
    for course in DEMO:
        for lesson in load_package(ROOT / "content" / course).lessons:
            for n, step in enumerate((lesson.practice or {}).get("steps", [])):
                for key in ("instruction", "right", "wrong"):
                    text = step.get(key, "")
                    ni += [f"{lesson.slug} steps[{n}].{key}"] if "你" in text else []
                    long += [f"{lesson.slug} steps[{n}].{key}: {s}" for s in re.split(r"[。！？；!?]", text)
                             if len(s.strip()) > 30]
    assert not ni and not long, ni + long
