"""`lms export-content SLUG DIR` writes a course — imported or made in the browser — as a package that
`lms import-content` reads back to the same course: export → import into a fresh database → export
again gives the same bytes. Also: VideoAsset lives in lms/media, and the media pipeline imports neither
the lessons nor the job queue that calls it."""
from __future__ import annotations

import ast
import io
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from lms.courses.exporter import export_course
from lms.courses.importer import import_package
from lms.courses.models import Course
from lms.extensions import db
from lms.quizzes.format import question_spec
from lms.records.models import AuditLog
from tests.conftest import _make_app

SCENARIO_QUESTION = {
    "type": "single", "text": "看看这通电话的记录。这是诈骗吗？",
    "scenario": {"kind": "call", "from": "显示为“北京市公安局”",
                 "messages": [{"who": "them", "text": "您的身份证涉嫌洗钱，请把存款转到“安全账户”。"},
                              {"who": "me", "text": "我从来没去过北京啊！"}]},
    "choices": [{"text": "是诈骗", "correct": True}, {"text": "不是诈骗，可以照对方说的做"}],
    "explanation": "这是诈骗。\n公安机关没有“安全账户”。挂断，不转账，拨打 96110 核实。",
}
POOL = [
    {"type": "truefalse", "text": f"第 {n} 题：96110 是反诈预警专线。", "answer": n % 2 == 0,
     "explanation": "96110 是全国反诈预警专线。" if n % 2 == 0 else "这句话是错的。"}
    for n in range(4)
] + [{"type": "multiple", "text": "哪些信息不能告诉陌生人？",
      "choices": [{"text": "验证码", "correct": True}, {"text": "支付密码", "correct": True}, {"text": "天气"}],
      "explanation": "验证码和支付密码只能自己知道。"}]
SLIDES = {"slides": [{"title": "不听", "points": ["陌生来电", "先挂断"], "caption": "接到陌生来电，先挂断再核实。"},
                     {"title": "不转账", "caption": "任何让你转账到“安全账户”的，都是诈骗。"}]}


@pytest.fixture
def media_dir(tmp_path) -> Path:
    """A data folder of its own: these tests render slides, which must not land in the one the session shares."""
    return tmp_path / "data"


def _picture(path: Path, size: str) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={size}", "-frames:v", "1", "-y",
                    str(path)], check=True)
    return path


def _write(path: Path, text: str, newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))


def _package(root: Path, video: Path) -> Path:
    """A package using every part of the format: a supplied video with captions (CRLF), a video
    rendered from slides, a text-only lesson, a scenario question, a pool with ask, bonus, cover."""
    folder = root / "fraud-basics"
    _write(folder / "a" / "lesson.md", "## 不听\n\n陌生来电先挂断。\n", newline="\r\n")
    shutil.copyfile(video, folder / "a" / "clip.mp4")
    _write(folder / "a" / "subs.vtt", "WEBVTT\n\n00:00.000 --> 00:04.000\n不听不信不转账\n", newline="\r\n")
    _write(folder / "a" / "quiz.yaml", yaml.safe_dump({"pass_score": 50, "questions": [SCENARIO_QUESTION]},
                                                      allow_unicode=True))
    _write(folder / "b" / "lesson.md", "## 不转账\n")
    _write(folder / "b" / "slides.yaml", yaml.safe_dump(SLIDES, allow_unicode=True, sort_keys=False))
    _write(folder / "b" / "quiz.yaml", yaml.safe_dump({"pass_score": 80, "ask": 3, "pool": POOL}, allow_unicode=True))
    _write(folder / "c" / "lesson.md", "读完这段文字就算学完。\n")
    _picture(folder / "cover.png", "800x600")
    course = {"id": "fraud-basics-2024", "title": "防骗基础", "summary": "三节课：不听、不信、不转账。",
              "audiences": ["farmer", "elder"], "credit_hours": 1.5, "mandatory": True, "strict": False,
              "completion": {"watch_threshold": 0.9, "bonus_hours": 0.5, "bonus_min_score": 85},
              "cover": "cover.png",
              "lessons": [{"slug": "dont-listen", "title": "不听", "text": "a/lesson.md", "video": "a/clip.mp4",
                           "captions": "a/subs.vtt", "quiz": "a/quiz.yaml"},
                          {"slug": "dont-pay", "title": "不转账", "text": "b/lesson.md", "slides": "b/slides.yaml",
                           "quiz": "b/quiz.yaml"},
                          {"slug": "read-me", "title": "读一读", "text": "c/lesson.md"}]}
    _write(folder / "course.yaml", yaml.safe_dump(course, allow_unicode=True, sort_keys=False))
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _lf(text: str) -> str:
    """Text from a browser form has CRLF line ends; a package has LF."""
    return text.replace("\r\n", "\n")


def snapshot(course: Course, data_dir: Path) -> dict:
    """What a learner and an administrator see of a course, as plain values."""
    lessons = []
    for lesson in course.active_lessons:
        video, quiz = lesson.video, lesson.quiz
        lessons.append({
            "slug": lesson.slug, "title": lesson.title, "text": _lf(lesson.text_markdown),
            "video": video and {"duration": round(video.duration, 1), "renditions": sorted(video.renditions),
                                "captions": video.captions_path and _lf(
                                    (data_dir / "media" / video.captions_path).read_text(encoding="utf-8"))},
            "quiz": quiz and {"pass_score": quiz.pass_score, "ask": quiz.ask,
                              "questions": [question_spec(q) for q in quiz.active_questions]},
        })
    return {
        "id": course.package_id, "slug": course.slug, "title": course.title, "summary": _lf(course.summary),
        "audiences": sorted(course.audiences), "credit_hours": Decimal(course.credit_hours),
        "credit_rule": course.credit_rule, "credit_note": course.credit_note, "mandatory": course.mandatory,
        "strict": course.strict, "watch_threshold": course.watch_threshold,
        "bonus": (course.bonus_hours, course.bonus_min_score), "published": course.published,
        "cover": course.cover_path and (data_dir / course.cover_path).read_bytes(), "lessons": lessons,
    }


def round_trip(app, course: Course, tmp_path: Path) -> tuple[dict, dict, Path, Path]:
    """Export `course`, import that into a fresh database and data folder, export again."""
    first = export_course(course, tmp_path / "export-1").folder
    (tmp_path / "fresh").mkdir()
    fresh = _make_app(tmp_path / "fresh", data_dir=tmp_path / "fresh-data")
    with fresh.app_context():
        again, outcome = import_package(first)
        assert outcome == "created"
        second = export_course(again, tmp_path / "export-2").folder
        copied = snapshot(again, tmp_path / "fresh-data")
        db.session.remove()
        db.engine.dispose()
    return snapshot(course, Path(app.config["DATA_DIR"])), copied, first, second


def test_imported_package_exports_and_round_trips_byte_for_byte(app, tmp_path, test_video):
    course, _ = import_package(_package(tmp_path / "content", test_video))
    original, copied, first, second = round_trip(app, course, tmp_path)

    assert _files(first) == _files(second)  # export → import into a fresh database → export: the same bytes
    assert copied == original  # the same course: fields, lessons, videos, captions, quiz questions
    files = _files(first)
    assert sorted(files) == [
        "01-dont-listen/captions.vtt", "01-dont-listen/lesson.md", "01-dont-listen/quiz.yaml",
        "01-dont-listen/video.mp4", "02-dont-pay/lesson.md", "02-dont-pay/quiz.yaml", "02-dont-pay/slides.yaml",
        "03-read-me/lesson.md", "course.yaml", "cover.jpg"]
    assert files["01-dont-listen/video.mp4"] == test_video.read_bytes()  # the original file, not a rendition
    assert not any(b"\r" in data for name, data in files.items() if not name.endswith((".mp4", ".jpg")))
    manifest = yaml.safe_load(files["course.yaml"])
    assert list(manifest) == sorted(manifest) and manifest["id"] == "fraud-basics-2024"
    assert manifest["lessons"][1] == {"slug": "dont-pay", "title": "不转账", "text": "02-dont-pay/lesson.md",
                                      "slides": "02-dont-pay/slides.yaml", "quiz": "02-dont-pay/quiz.yaml"}
    assert yaml.safe_load(files["02-dont-pay/slides.yaml"]) == SLIDES  # the script, not the render
    quiz = yaml.safe_load(files["02-dont-pay/quiz.yaml"])
    assert (quiz["ask"], len(quiz["pool"]), quiz["pass_score"]) == (3, 5, 80)
    scenario = yaml.safe_load(files["01-dont-listen/quiz.yaml"])["questions"][0]
    assert scenario == SCENARIO_QUESTION
    assert "explanation: |" in files["01-dont-listen/quiz.yaml"].decode()  # multi-line text stays readable
    assert original["cover"] and original["lessons"][1]["video"]["captions"].startswith("WEBVTT")


def test_course_made_in_the_browser_round_trips(app, tmp_path, make_user, test_video):
    from lms.courses import authoring
    from lms.media.services import create_upload_asset, run_asset
    from lms.quizzes import authoring as quiz_editor

    admin = make_user("chief", role="admin", unit="county")
    fields = authoring.CourseFields(title="网上办事", summary="在手机上挂号、缴费。\r\n第二行。", audiences=["elder"],
                                    mandatory=False, strict=True, credit_rule="fixed",
                                    credit_hours=Decimal("0.75"), credit_note="按线下课 45 分钟折算",
                                    watch_threshold=0.8)
    cover = io.BytesIO(_picture(tmp_path / "cover.png", "1024x768").read_bytes())
    course = authoring.create_course(admin, fields, slug="online-services", cover=cover)
    slides_lesson = authoring.add_lesson(admin, course, "挂号")
    authoring.update_lesson(admin, slides_lesson, "挂号", "## 挂号\r\n\r\n打开医院公众号。\r\n")
    asset = authoring.queue_slide_video(admin, slides_lesson, yaml.safe_dump(SLIDES, allow_unicode=True))
    assert run_asset(asset.id).ready  # the job: rendered, transcoded, swapped into the lesson
    quiz = quiz_editor.save_settings(admin, slides_lesson, 60, None)
    quiz_editor.add_question(admin, quiz, {"kind": "truefalse", "text": "挂号可以在手机上完成。",
                                           "choices": [("正确", True), ("错误", False)], "explanation": "可以。"})
    quiz_editor.set_enabled(admin, quiz, True)
    video_lesson = authoring.add_lesson(admin, course, "缴费")
    source = tmp_path / "upload.mp4"
    shutil.copyfile(test_video, source)
    assert run_asset(create_upload_asset(video_lesson, source, "缴费.mp4", uploader_id=admin.id).id).ready
    authoring.replace_captions(admin, video_lesson, b"WEBVTT\n\n00:00.000 --> 00:03.000\n\xe7\xbc\xb4\xe8\xb4\xb9\n",
                               "c.vtt")
    db.session.refresh(course)
    assert course.published is False and slides_lesson.video.ready and video_lesson.video.ready

    original, copied, first, second = round_trip(app, course, tmp_path)

    assert _files(first) == _files(second)
    assert copied == original  # unpublished, strict, fixed 学时 with its note, the cover, both videos
    manifest = yaml.safe_load((first / "course.yaml").read_text(encoding="utf-8"))
    assert (manifest["published"], manifest["credit_hours"], manifest["credit_note"]) == (False, 0.75, "按线下课 45 分钟折算")
    assert (first / "01-lesson-1" / "slides.yaml").is_file() and not (first / "01-lesson-1" / "captions.vtt").exists()
    assert (first / "02-lesson-2" / "video.mp4").read_bytes() == test_video.read_bytes()
    assert (first / "02-lesson-2" / "captions.vtt").read_text(encoding="utf-8").endswith("缴费\n")


def test_export_content_command(app, tmp_path, course):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["export-content", course.slug, str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    package = tmp_path / "out" / course.slug
    assert f"已导出 {course.slug}" in result.output and (package / "course.yaml").is_file()

    # exporting again replaces the course's own package: a lesson retired since is gone from it
    (package / "stale.txt").write_text("old", encoding="utf-8")
    assert runner.invoke(args=["export-content", course.slug, str(tmp_path / "out")]).exit_code == 0
    assert not (package / "stale.txt").exists() and (package / "course.yaml").is_file()

    missing = runner.invoke(args=["export-content", "no-such-course", str(tmp_path / "out")])
    assert missing.exit_code != 0 and "没有课程“no-such-course”" in missing.output

    # a folder that is not this course's package is never overwritten
    other = tmp_path / "busy" / course.slug
    other.mkdir(parents=True)
    (other / "notes.txt").write_text("别人的文件", encoding="utf-8")
    refused = runner.invoke(args=["export-content", course.slug, str(tmp_path / "busy")])
    assert refused.exit_code != 0 and "不是这门课程" in refused.output
    assert [p.name for p in (tmp_path / "busy").iterdir()] == [course.slug]
    assert (other / "notes.txt").read_text(encoding="utf-8") == "别人的文件"


def test_a_course_without_a_package_id_gets_one_on_export(app, tmp_path, course):
    course.package_id = None
    db.session.commit()
    result = export_course(course, tmp_path / "out")
    assert course.package_id and yaml.safe_load((result.folder / "course.yaml").read_text())["id"] == course.package_id
    assert AuditLog.query.filter_by(action="course.package_id", target=f"course:{course.id}").count() == 1
    assert import_package(result.folder)[1] == "updated"  # the same course, matched by its new id
    assert Course.query.count() == 1


def test_bad_cover_in_a_package_is_refused_naming_the_field(app, tmp_path, test_video):
    from lms.courses.importer import ContentError

    folder = _package(tmp_path / "content", test_video)
    (folder / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    with pytest.raises(ContentError, match=r"course.yaml: cover: 封面图片无法读取"):
        import_package(folder)
    assert Course.query.count() == 0


MEDIA = Path(__file__).resolve().parents[1] / "lms" / "media"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in MEDIA.glob("*.py") if p.name != "routes.py"))
def test_media_pipeline_imports_neither_lessons_nor_the_job_queue(module):
    """lms/media knows videos; lessons point at them (lms/courses/videos.py swaps a ready video in), and
    the jobs that call the pipeline enqueue what follows. Only the media blueprint (the lesson video
    pages, routes.py) sits on top of courses and jobs, as blueprints do."""
    imported = _imported_modules(MEDIA / module)
    assert not {m for m in imported if m.split(".")[:2] in (["lms", "courses"], ["lms", "jobs"])}


def test_video_asset_lives_in_media_with_its_table():
    import lms.courses.models as course_models
    from lms.media.models import VideoAsset

    assert VideoAsset.__tablename__ == "video_asset"
    assert not hasattr(course_models, "VideoAsset")


def test_a_transcode_job_puts_the_upload_in_its_lesson_and_then_queues_the_search_update(
        app, course, tmp_path, test_video, make_user, monkeypatch):
    """The pipeline only announces a ready video; the lesson takes it (lms/courses/videos.py) in the
    same commit, and the job — not the pipeline — queues the search update."""
    from lms import jobs
    from lms.media.services import create_upload_asset

    queued = []
    monkeypatch.setattr(jobs, "enqueue_search_update", queued.append)
    author = make_user("teacher", role="instructor")
    lesson = course.active_lessons[0]
    old_id = lesson.video_id
    source = tmp_path / "new.mp4"
    shutil.copyfile(test_video, source)
    asset = create_upload_asset(lesson, source, "new.mp4", uploader_id=author.id)
    assert lesson.video_id == old_id  # learners keep the old video until the new one is ready

    assert jobs.transcode_video.call_local(asset.id) == "ready"

    db.session.expire_all()
    assert lesson.video_id == asset.id and queued == [[course.id]]
    swap = AuditLog.query.filter_by(action="video.replace", target=f"lesson:{lesson.id}").one()
    assert swap.actor_id == author.id and swap.detail == f"asset {old_id} → {asset.id} (upload)"
