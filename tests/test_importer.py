"""Content import: clear errors naming file and field, nothing half-imported, idempotent re-import."""


import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lms.courses.importer import ContentError, import_package
from lms.courses.models import Course, Lesson
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.quizzes.models import Question
from lms.records.models import AuditLog, TrainingRecord
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


def write_slides_package(root, slug="slides-course", slides=None):
    folder = root / slug
    (folder / "01-a").mkdir(parents=True)
    (folder / "01-a" / "lesson.md").write_text("## 课\n\n正文", encoding="utf-8")
    slides = slides or {"slides": [{"title": "扫码支付", "points": ["先看清收款人"], "caption": "付款前，先看清收款人的名字。"},
                                   {"title": "验证码", "caption": "验证码不告诉任何人。"}]}
    (folder / "01-a" / "slides.yaml").write_text(yaml.safe_dump(slides, allow_unicode=True), encoding="utf-8")
    (folder / "course.yaml").write_text(yaml.safe_dump({
        "id": f"pkg-{slug}", "title": "幻灯片课程", "audiences": ["elder"],
        "lessons": [{"slug": "a", "title": "课", "text": "01-a/lesson.md", "slides": "01-a/slides.yaml"}],
    }, allow_unicode=True), encoding="utf-8")
    return folder


def package_tree(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_slides_are_rendered_under_the_data_dir_with_matching_captions(app, tmp_path, monkeypatch, test_video):
    """scripts/render-videos renders ahead into LMS_DATA_DIR; the import uses that render and writes
    nothing into the package; a render lost later is made again (here by an ffmpeg whose bytes differ)
    without replacing the lesson's video."""
    from lms.courses import render_content
    from lms.media import ffmpeg_tools
    from lms.media.slides import render_cache_root

    # the data folder is shared by the session's tests: slides of their own make this render new
    folder = write_slides_package(tmp_path, slides={"slides": [
        {"title": f"扫码支付 {tmp_path.name}", "points": ["先看清收款人"], "caption": "付款前，先看清收款人的名字。"},
        {"title": "验证码", "caption": "验证码不告诉任何人。"}]})
    before = package_tree(folder)
    monkeypatch.setenv("LMS_DATA_DIR", app.config["DATA_DIR"])
    monkeypatch.setenv("LMS_DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    earlier = set(render_cache_root().rglob("video.mp4"))
    assert render_content.main([str(tmp_path)]) == 0
    rendered = [path for path in render_cache_root().rglob("video.mp4") if path not in earlier]
    assert len(rendered) == 1
    rendered_at = rendered[0].stat().st_mtime_ns

    course, _ = import_package(folder)
    video = course.active_lessons[0].video
    assert video.ready and video.duration == pytest.approx(9, abs=0.1)  # 14 characters at an elder's 3.2 a second (5 s), then 4 s
    assert rendered[0].stat().st_mtime_ns == rendered_at  # the import used the render, not a new one
    vtt = (Path(app.config["DATA_DIR"]) / "media" / video.captions_path).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "验证码不告诉任何人。" in vtt and "00:00:05.000 --> 00:00:09.000" in vtt
    assert str(course.credit_hours) == "0.25"  # no credit_hours in the package: < 15 min → 0.25
    assert package_tree(folder) == before

    rendered[0].unlink()
    monkeypatch.setattr(ffmpeg_tools, "render_slides",
                        lambda slides, durations, target, **_: shutil.copyfile(test_video, target))
    edit_course_yaml(folder, lambda d: d.update(title="新标题"))
    course, outcome = import_package(folder)
    assert outcome == "updated" and course.active_lessons[0].video.id == video.id
    assert rendered[0].is_file()


@pytest.fixture(scope="module")
def other_video(tmp_path_factory):
    """A second real clip, 3 s long, different from the package's 4 s one."""
    path = tmp_path_factory.mktemp("other") / "other.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
                    "-f", "lavfi", "-i", "sine=frequency=660:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", "-y", str(path)], check=True)
    return path


def test_a_changed_video_becomes_a_new_asset_swapped_in_with_an_audit_entry(app, package, other_video):
    """Re-import reads the .mp4 bytes: a replaced video is noticed, and the old asset stays as it was."""
    course, _ = import_package(package)
    old = course.active_lessons[0].video
    old_id, old_renditions = old.id, old.renditions
    shutil.copyfile(other_video, package / "01-lesson" / "video.mp4")
    course, outcome = import_package(package)
    lesson = course.active_lessons[0]
    assert outcome == "updated" and lesson.video.id != old_id
    assert lesson.video.duration == pytest.approx(3, abs=0.2)
    kept = db.session.get(VideoAsset, old_id)
    assert kept.ready and kept.renditions == old_renditions
    entry = AuditLog.query.filter_by(action="video.replace").one()
    assert entry.target == f"lesson:{lesson.id}" and f"{old_id} → {lesson.video.id}" in entry.detail
    assert "import" in entry.detail and entry.actor_id is None
    assert import_package(package)[1] == "unchanged"


def test_a_package_without_id_is_refused_with_a_suggestion(app, package):
    edit_course_yaml(package, lambda d: d.pop("id"))
    with pytest.raises(ContentError) as caught:
        import_package(package)
    assert "course.yaml" in str(caught.value) and "id: 缺少必填字段" in str(caught.value)
    assert Course.query.count() == 0


def test_a_course_imported_before_package_ids_is_adopted_by_slug(app, package):
    course, _ = import_package(package)
    course.package_id = None
    db.session.commit()
    again, outcome = import_package(package)
    assert again.id == course.id and again.package_id == "pkg-test-course" and Course.query.count() == 1


def _with_narration(folder, narration="01-a/voice.m4a"):
    edit_course_yaml(folder, lambda d: d["lessons"][0].update(narration=narration))


def test_a_recorded_narration_is_laid_under_the_slides_which_last_as_long_as_the_voice(app, tmp_path):
    """A lesson's recorded voice (issue 13): the rendered video carries it, and the slides and their
    captions are stretched to the recording's length."""
    folder = write_slides_package(tmp_path, slug=f"voice-{tmp_path.name}")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=12", "-c:a", "aac",
                    str(folder / "01-a" / "voice.m4a")], check=True)
    _with_narration(folder)
    course, _ = import_package(folder)
    video = course.active_lessons[0].video
    assert video.ready and video.duration == pytest.approx(12, abs=0.3)  # 8 s of slides stretched to the voice
    media = Path(app.config["DATA_DIR"]) / "media"
    volume = subprocess.run(["ffmpeg", "-i", str(media / video.renditions["360p"]), "-af", "volumedetect", "-f", "null", "-"],
                            capture_output=True, text=True).stderr
    assert "mean_volume: -inf" not in volume and "mean_volume" in volume  # not the silent track
    vtt = (media / video.captions_path).read_text(encoding="utf-8")
    # slides of 5 s and 4 s (9 s) stretched to the 12 s voice: 6.67 s and 5.33 s
    assert "00:00:00.000 --> 00:00:06.670" in vtt and "00:00:06.670 --> 00:00:12.000" in vtt


@pytest.mark.parametrize("setup, expected", [
    ("missing", "录音文件不存在"),
    ("silent", "录音文件里没有声音"),
    ("with-video", "朗读录音只能配幻灯片"),
])
def test_a_bad_narration_is_refused_naming_the_field_and_nothing_is_imported(app, tmp_path, test_video, setup, expected):
    folder = write_slides_package(tmp_path, slug=f"bad-voice-{setup}")
    if setup == "silent":
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=s=64x64:d=3", "-c:v", "libx264",
                        str(folder / "01-a" / "voice.m4a")], check=True)
    if setup == "with-video":
        shutil.copyfile(test_video, folder / "01-a" / "video.mp4")
        (folder / "01-a" / "voice.m4a").write_bytes(b"x")
        edit_course_yaml(folder, lambda d: d["lessons"][0].update(video="01-a/video.mp4"))
    _with_narration(folder)
    before = table_counts()
    with pytest.raises(ContentError) as caught:
        import_package(folder)
    assert expected in str(caught.value) and "lessons[0].narration" in str(caught.value)
    assert table_counts() == before


def test_sources_are_checked_and_kept_as_written(app, tmp_path):
    """`sources:` (issue 13): a reviewer's list of what each lesson relies on; a malformed one is refused."""
    from lms.courses.importer import load_package

    folder = write_slides_package(tmp_path, slug="with-sources")
    edit_course_yaml(folder, lambda d: d.update(sources=[
        {"title": "《中华人民共和国反电信网络诈骗法》", "publisher": "全国人民代表大会常务委员会", "date": "2022-09-02",
         "url": "https://www.npc.gov.cn/", "lessons": ["a"]}]))
    assert load_package(folder).sources == [{"title": "《中华人民共和国反电信网络诈骗法》", "publisher": "全国人民代表大会常务委员会",
                                             "date": "2022-09-02", "url": "https://www.npc.gov.cn/", "lessons": ["a"]}]
    for bad, field in [({"date": "去年"}, "date"), ({"url": "javascript:alert(1)"}, "url"), ({"lessons": ["zz"]}, "lessons"),
                       ({"publisher": None}, "publisher")]:
        edit_course_yaml(folder, lambda d: d.update(sources=[{**d["sources"][0], **bad}]))
        with pytest.raises(ContentError) as caught:
            load_package(folder)
        assert f"sources[0].{field}" in str(caught.value)
        edit_course_yaml(folder, lambda d: d.update(sources=[{**d["sources"][0], "date": "2022-09-02", "url": "",
                                                              "lessons": [], "publisher": "全国人大常委会"}]))


def test_the_course_page_lists_its_sources_for_the_learner(app, package, make_user, browser_client):
    edit_course_yaml(package, lambda d: d.update(sources=[
        {"title": "《中华人民共和国反电信网络诈骗法》", "publisher": "全国人民代表大会常务委员会", "date": "2022-09-02",
         "url": "https://www.npc.gov.cn/", "lessons": ["lesson-1"]},
        {"title": "国家反诈中心防骗提示", "publisher": "公安部", "date": "2024"}]))
    course, _ = import_package(package)
    make_user("reader", audience="elder")
    browser_client.login("reader")
    page = browser_client.get(f"/courses/{course.slug}").get_data(as_text=True)
    assert "参考来源" in page and '<a href="https://www.npc.gov.cn/" rel="noopener noreferrer">《中华人民共和国反电信网络诈骗法》</a>' in page
    section = " ".join(page[page.index("参考来源"):].split())
    assert "用于：第1课" in section and "国家反诈中心防骗提示 · 公安部 · 2024" in section
