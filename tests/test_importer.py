"""Content import: clear errors naming file and field, nothing half-imported, idempotent re-import."""


import pytest
import yaml

from lms.courses.importer import ContentError, import_package
from lms.courses.models import Course, Lesson, VideoAsset
from lms.quizzes.models import Question
from lms.records.models import TrainingRecord
from lms.records.services import credit_course_completion
from tests.conftest import write_package


def table_counts():
    return (Course.query.count(), Lesson.query.count(), VideoAsset.query.count(), Question.query.count())


def edit_course_yaml(folder, change):
    path = folder / "course.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_import_creates_course_lessons_quiz_and_playable_video(app, package):
    course, outcome = import_package(package)
    assert outcome == "created"
    lesson = course.active_lessons[0]
    assert lesson.video.ready and lesson.video.duration == pytest.approx(4, abs=0.2)
    assert set(lesson.video.renditions) == {"360p"}  # a 240p source is not upscaled to 720p
    assert [q.kind for q in lesson.quiz.questions] == ["single", "multiple", "truefalse"]
    assert "<h2>" in lesson.text_html


def test_reimport_updates_in_place_and_never_duplicates(app, package):
    first, _ = import_package(package)
    assert import_package(package)[1] == "unchanged"
    edit_course_yaml(package, lambda d: d.update(title="新标题"))
    course, outcome = import_package(package)
    assert outcome == "updated" and course.id == first.id and course.title == "新标题"
    assert table_counts() == (1, 1, 1, 3)


def test_reimport_never_rewrites_credited_records(app, package, make_user):
    course, _ = import_package(package)
    user = make_user()
    record = credit_course_completion(user.id, course)
    edit_course_yaml(package, lambda d: d.update(title="改名后的课程", credit_hours=2))
    import_package(package)
    kept = TrainingRecord.query.one()
    assert (kept.id, kept.title, str(kept.hours)) == (record.id, "测试课程：防范电信诈骗", "0.50")


def test_lesson_removed_from_package_is_retired_not_deleted(app, tmp_path, test_video):
    folder = write_package(tmp_path / "c", test_video, lessons=2)
    course, _ = import_package(folder)
    edit_course_yaml(folder, lambda d: d.update(lessons=d["lessons"][:1]))
    course, _ = import_package(folder)
    assert [lesson.slug for lesson in course.active_lessons] == ["lesson-1"]
    assert Lesson.query.count() == 2


@pytest.mark.parametrize("breakage, file_name, expected", [
    (lambda f: (f / "course.yaml").write_text("title: [unclosed\nlessons: []\n", encoding="utf-8"),
     "course.yaml", "YAML 格式错误"),
    (lambda f: edit_course_yaml(f, lambda d: d.pop("title")), "course.yaml", "title: 缺少必填字段"),
    (lambda f: edit_course_yaml(f, lambda d: d.update(audiences=["elder", "aliens"])), "course.yaml",
     "audiences[1]: 未知的人群“aliens”"),
    (lambda f: (f / "01-lesson" / "video.mp4").unlink(), "course.yaml", "lessons[0].video: 视频文件不存在"),
    (lambda f: (f / "01-lesson" / "video.mp4").write_bytes(b"this is not a video"), "course.yaml",
     "lessons[0].video: 无法识别的视频文件"),
    (lambda f: (f / "01-lesson" / "quiz.yaml").write_text(
        "questions:\n  - type: single\n    text: 问题\n    explanation: 解析\n    choices:\n      - text: A\n      - text: B\n",
        encoding="utf-8"), "quiz.yaml", "questions[0].choices: 单选题必须恰好有一个正确选项"),
])
def test_malformed_package_names_file_and_field_and_changes_nothing(app, package, breakage, file_name, expected):
    import_package(package)
    edit_course_yaml(package, lambda d: d.update(title="不应出现的标题"))
    before = table_counts()
    breakage(package)
    with pytest.raises(ContentError) as caught:
        import_package(package)
    message = str(caught.value)
    assert file_name in message and expected in message
    assert table_counts() == before
    assert Course.query.one().title == "测试课程：防范电信诈骗"


def test_error_names_the_line(app, package):
    (package / "course.yaml").write_text("title: 课程\naudiences: [elder]\nlessons:\n  - slug: a\n    title: [oops\n",
                                         encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        import_package(package)
    assert caught.value.line is not None and caught.value.line >= 5


def test_cli_reports_a_bad_package_and_imports_the_good_ones(app, tmp_path, test_video):
    root = tmp_path / "many"
    write_package(root, test_video, slug="good")
    bad = write_package(root, test_video, slug="bad")
    edit_course_yaml(bad, lambda d: d.update(audiences=["martians"]))
    result = app.test_cli_runner().invoke(args=["import-content", str(root)])
    assert result.exit_code != 0
    assert "bad/course.yaml" in result.output and "martians" in result.output
    assert [c.slug for c in Course.query.all()] == ["good"]


def test_slides_are_rendered_into_a_video_with_matching_captions(app, tmp_path):
    folder = tmp_path / "slides-course"
    (folder / "01-a").mkdir(parents=True)
    (folder / "01-a" / "lesson.md").write_text("## 课\n\n正文", encoding="utf-8")
    slides = {"slides": [{"title": "扫码支付", "points": ["先看清收款人"], "caption": "付款前，先看清收款人的名字。"},
                         {"title": "验证码", "caption": "验证码不告诉任何人。"}]}
    (folder / "01-a" / "slides.yaml").write_text(yaml.safe_dump(slides, allow_unicode=True), encoding="utf-8")
    (folder / "course.yaml").write_text(yaml.safe_dump({
        "title": "幻灯片课程", "audiences": ["elder"],
        "lessons": [{"slug": "a", "title": "课", "text": "01-a/lesson.md", "slides": "01-a/slides.yaml"}],
    }, allow_unicode=True), encoding="utf-8")
    course, _ = import_package(folder)
    video = course.active_lessons[0].video
    assert video.ready and video.duration == pytest.approx(8, abs=0.3)  # two slides, 4 s minimum each
    vtt = (folder / "01-a" / "captions.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "验证码不告诉任何人。" in vtt and "00:00:04.000 --> 00:00:08.000" in vtt
    assert str(course.credit_hours) == "0.25"  # no credit_hours in the package: < 15 min → 0.25
