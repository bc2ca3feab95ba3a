"""Course and lesson authoring in the browser (issue 10): what an instructor or administrator does on
/admin/courses, what learners then see, and how editing a course keeps the rules of learners already in
progress (course versions)."""
from __future__ import annotations

import io
import json
import re
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from lms.accounts.models import utcnow
from lms.courses import authoring, rules
from lms.courses.authors import add_author
from lms.courses.completion import settle_completion
from lms.courses.models import Course, CourseAuthor, CourseVersion, Lesson, LessonProgress
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.records.models import AuditLog, TrainingRecord
from tests.conftest import BrowserLikeClient


# ---- helpers ----------------------------------------------------------------------------------

def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    return client


def course_form(**overrides) -> dict:
    data = {"title": "防范养老诈骗", "summary": "识破“以房养老”“保健品”骗局", "audiences": ["elder"],
            "credit_rule": "tiers", "credit_hours": "", "credit_note": "", "watch_threshold": "95"}
    data.update(overrides)
    return data


def post_form(client, url, data: dict, files: dict | None = None, **kwargs):
    """A browser form POST with the page's CSRF token (multipart when files are given)."""
    fields = {"csrf_token": client.token, **data}
    if not files:
        return client.post(url, data=fields, **kwargs)
    parts = dict(fields)
    parts.update({name: FileStorage(io.BytesIO(content), filename) for name, (content, filename) in files.items()})
    boundary, body = encode_multipart(parts)
    stream = io.BytesIO(body)
    response = client.post(url, input_stream=stream, content_type=f"multipart/form-data; boundary={boundary}",
                           **kwargs)
    response.body_read = stream.tell()
    return response


def page_text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def teacher(make_user):
    return make_user("teacher", role="instructor", unit="county", audience="cadre", full_name="王老师")


@pytest.fixture
def admin(make_user):
    return make_user("county-admin", role="admin", unit="county", audience="cadre")


@pytest.fixture
def draft(app, teacher):
    """A course the teacher made in the browser: two text lessons, not yet published."""
    course = authoring.create_course(teacher, authoring.CourseFields(
        title="智能手机入门", summary="", audiences=["elder"], mandatory=False, strict=False, credit_rule="fixed",
        credit_hours=Decimal("1"), credit_note="与社区学校线下课一致", watch_threshold=0.95))
    for title, text in (("认识手机", "## 开机\n\n长按电源键。"), ("视频通话", "## 打视频电话\n\n点绿色按钮。")):
        lesson = authoring.add_lesson(teacher, course, title)
        authoring.update_lesson(teacher, lesson, title, text)
    return course


@pytest.fixture(scope="session")
def cover_png(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("cover") / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=1280x720:duration=1", "-frames:v", "1",
                    "-y", str(path)], check=True)
    return path.read_bytes()


def actions(target: str) -> list[str]:
    return [row.action for row in AuditLog.query.filter_by(target=target).order_by(AuditLog.id)]


# ---- creating and editing a course --------------------------------------------------------------

def test_an_instructor_creates_a_course_and_is_recorded_as_its_author(app, teacher):
    client = signed_in(app, teacher)
    client.refresh_token("/admin/courses/new")
    response = post_form(client, "/admin/courses/new", course_form(slug="pension-fraud"))
    assert response.status_code == 302
    course = Course.query.filter_by(slug="pension-fraud").one()
    assert response.headers["Location"].endswith(f"/admin/courses/{course.id}")
    assert not course.published and course.audiences == ["elder"] and course.package_id
    assert db.session.get(CourseAuthor, (course.id, teacher.id)) is not None
    # 学时 by video length: no video yet, so the lowest tier
    assert course.credit_rule == "tiers" and course.credit_hours == Decimal("0.25")
    assert actions(f"course:{course.id}") == ["course.create", "course.author.add"]
    listing = page_text(client.get("/admin/courses"))
    assert "防范养老诈骗" in listing and "未发布" in listing


@pytest.mark.parametrize("overrides, field_message", [
    ({"audiences": []}, "请至少选择一个面向的人群"),
    ({"credit_rule": "fixed", "credit_hours": "2", "credit_note": " "}, "固定学时请写明依据"),
    ({"credit_rule": "fixed", "credit_hours": "abc", "credit_note": "线下课"}, "学时必须是数字"),
    ({"credit_rule": "fixed", "credit_hours": "0", "credit_note": "线下课"}, "固定学时要大于 0"),
    ({"watch_threshold": "30"}, "观看比例必须是 50 到 100 之间的整数"),
    ({"title": ""}, "请填写课程名称"),
    ({"slug": "有 空格"}, "网址标识只能用小写字母"),
])
def test_bad_course_fields_are_named_and_nothing_is_created(app, teacher, overrides, field_message):
    client = signed_in(app, teacher)
    client.refresh_token("/admin/courses/new")
    response = post_form(client, "/admin/courses/new", course_form(**overrides))
    assert response.status_code == 400
    assert field_message in page_text(response)
    assert Course.query.count() == 0 and AuditLog.query.filter_by(action="course.create").count() == 0


def test_a_fixed_credit_needs_a_note_that_admins_see_in_the_list(app, teacher, admin):
    client = signed_in(app, teacher)
    client.refresh_token("/admin/courses/new")
    post_form(client, "/admin/courses/new", course_form(credit_rule="fixed", credit_hours="2",
                                                         credit_note="相当于线下两个课时的讲座"))
    course = Course.query.one()
    assert (course.credit_rule, course.credit_hours, course.credit_note) == ("fixed", Decimal("2.00"), "相当于线下两个课时的讲座")
    assert "相当于线下两个课时的讲座" in page_text(signed_in(app, admin).get("/admin/courses"))


def test_editing_a_course_saves_every_field_and_audits_what_changed(app, teacher, draft):
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    response = post_form(client, f"/admin/courses/{draft.id}", course_form(
        title="智能手机入门（新版）", audiences=["elder", "farmer"], mandatory="y", strict="y", credit_rule="fixed",
        credit_hours="1.5", credit_note="两次线下课", watch_threshold="90"))
    assert response.status_code == 302
    db.session.expire_all()
    course = db.session.get(Course, draft.id)
    assert course.title == "智能手机入门（新版）" and sorted(course.audiences) == ["elder", "farmer"]
    assert course.mandatory and course.strict and course.watch_threshold == pytest.approx(0.9)
    assert course.credit_hours == Decimal("1.50")
    update = AuditLog.query.filter_by(action="course.update", target=f"course:{draft.id}").one()
    assert "标题：智能手机入门 → 智能手机入门（新版）" in update.detail and "学时：1.00 → 1.50" in update.detail
    assert update.actor_id == teacher.id


def test_instructors_see_and_edit_only_the_courses_they_author(app, draft, make_user, admin):
    other = make_user("other-teacher", role="instructor", unit="county", audience="cadre")
    client = signed_in(app, other)
    assert "智能手机入门" not in page_text(client.get("/admin/courses"))
    assert client.get(f"/admin/courses/{draft.id}").status_code == 403
    assert client.get(f"/admin/courses/{draft.id}/lessons/{draft.lessons[0].id}").status_code == 403
    client.refresh_token("/admin/courses")
    assert post_form(client, f"/admin/courses/{draft.id}", course_form(title="改掉")).status_code == 403
    assert db.session.get(Course, draft.id).title == "智能手机入门"
    # an admin sees and edits every course
    assert "智能手机入门" in page_text(signed_in(app, admin).get("/admin/courses"))
    assert signed_in(app, admin).get(f"/admin/courses/{draft.id}").status_code == 200


# ---- publishing ---------------------------------------------------------------------------------

def test_a_course_with_no_lesson_cannot_be_published_and_nothing_is_half_saved(app, teacher):
    course = authoring.create_course(teacher, authoring.CourseFields(
        title="空课程", summary="", audiences=["farmer"], mandatory=False, strict=False, credit_rule="tiers",
        credit_hours=None, credit_note="", watch_threshold=0.95))
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{course.id}")
    button = post_form(client, f"/admin/courses/{course.id}/publish", {"published": "1"})
    assert button.status_code == 400 and "课程还没有任何课时" in page_text(button)
    # the same through the settings form, together with a new title: refused as a whole
    form = post_form(client, f"/admin/courses/{course.id}", course_form(title="新标题", published="y"))
    assert form.status_code == 400 and "不能发布：课程还没有任何课时" in page_text(form)
    db.session.expire_all()
    course = db.session.get(Course, course.id)
    assert not course.published and course.title == "空课程"
    assert AuditLog.query.filter(AuditLog.action.in_(["course.publish", "course.update"])).count() == 0
    assert client.get(f"/courses/{course.slug}").status_code == 404


def test_publishing_waits_for_a_lesson_video_still_processing(app, teacher, draft, test_video):
    lesson = draft.lessons[0]
    db.session.add(VideoAsset(lesson_id=lesson.id, status="processing", source_path=str(test_video)))
    db.session.commit()
    assert authoring.publish_problems(draft) == ["第 1 节“认识手机”的视频还在处理中，处理好以后再发布"]
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    response = post_form(client, f"/admin/courses/{draft.id}/publish", {"published": "1"})
    assert response.status_code == 400 and "视频还在处理中" in page_text(response)
    VideoAsset.query.filter_by(lesson_id=lesson.id).one().status = "failed"
    db.session.commit()
    assert "处理失败" in authoring.publish_problems(draft)[0]


def test_publish_and_unpublish_are_audited_and_change_what_learners_see(app, teacher, draft, make_user):
    learner = make_user("old-li", audience="elder")
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    assert post_form(client, f"/admin/courses/{draft.id}/publish", {"published": "1"}).status_code == 302
    learner_client = signed_in(app, learner)
    assert "智能手机入门" in page_text(learner_client.get("/"))
    assert learner_client.get(f"/courses/{draft.slug}").status_code == 200
    assert post_form(client, f"/admin/courses/{draft.id}/publish", {"published": "0"}).status_code == 302
    assert learner_client.get(f"/courses/{draft.slug}").status_code == 404
    assert actions(f"course:{draft.id}")[-2:] == ["course.publish", "course.unpublish"]


# ---- lessons ------------------------------------------------------------------------------------

def test_lessons_are_added_reordered_without_javascript_and_retired_not_deleted(app, teacher, draft, make_user):
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    assert post_form(client, f"/admin/courses/{draft.id}/lessons", {"title": "扫码支付"}).status_code == 302
    first, second, third = db.session.get(Course, draft.id).active_lessons
    assert [first.title, second.title, third.title] == ["认识手机", "视频通话", "扫码支付"]
    page = page_text(client.get(f"/admin/courses/{draft.id}"))
    # each 上移/下移 form carries its direction once (what a browser sends); the edges are disabled
    assert page.count('name="direction"') == 6 and page.count('type="submit" disabled>') == 2
    # 上移 on the third: a plain form POST and a redirect back to the course page
    moved = post_form(client, f"/admin/courses/{draft.id}/lessons/{third.id}/move", {"direction": "up"})
    assert moved.status_code == 302 and moved.headers["Location"].endswith(f"#lesson-{third.id}")
    db.session.expire_all()
    assert [lesson.title for lesson in db.session.get(Course, draft.id).active_lessons] == ["认识手机", "扫码支付", "视频通话"]
    # reorder.js asks for JSON and gets the new order
    moved = post_form(client, f"/admin/courses/{draft.id}/lessons/{first.id}/move", {"direction": "down"},
                      headers={"Accept": "application/json"})
    assert moved.get_json() == {"moved": True, "order": [third.id, first.id, second.id]}
    # the first cannot go further up
    assert post_form(client, f"/admin/courses/{draft.id}/lessons/{third.id}/move", {"direction": "up"},
                     headers={"Accept": "application/json"}).get_json()["moved"] is False
    # retire: progress stays, learners no longer see it
    authoring.update_lesson(teacher, third, third.title, "先看清收款人。")
    authoring.set_published(teacher, db.session.get(Course, draft.id), True)
    learner = make_user(audience="elder")
    db.session.add(LessonProgress(user_id=learner.id, lesson_id=second.id, opened_at=utcnow()))
    db.session.commit()
    assert post_form(client, f"/admin/courses/{draft.id}/lessons/{second.id}/retire", {}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Lesson, second.id).retired
    assert LessonProgress.query.filter_by(lesson_id=second.id).count() == 1
    assert signed_in(app, learner).get(f"/courses/{draft.slug}/lessons/{second.slug}").status_code == 404
    assert "已停用的课时" in page_text(client.get(f"/admin/courses/{draft.id}"))
    assert post_form(client, f"/admin/courses/{draft.id}/lessons/{second.id}/restore", {}).status_code == 302
    db.session.expire_all()
    assert not db.session.get(Lesson, second.id).retired
    assert [row for row in actions(f"lesson:{second.id}") if row != "lesson.update"] == \
        ["lesson.create", "lesson.retire", "lesson.restore"]
    assert actions(f"lesson:{third.id}")[-2:] == ["lesson.move", "lesson.update"]


def test_the_last_lesson_of_a_published_course_cannot_be_retired(app, teacher, draft):
    authoring.set_published(teacher, draft, True)
    authoring.set_retired(teacher, draft.lessons[0], True)
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    last = db.session.get(Course, draft.id).active_lessons[0]
    response = post_form(client, f"/admin/courses/{draft.id}/lessons/{last.id}/retire", {})
    assert response.status_code == 400 and "最后一节" in page_text(response)
    assert not db.session.get(Lesson, last.id).retired


def test_a_lesson_of_another_course_is_not_found(app, teacher, draft):
    other = authoring.create_course(teacher, authoring.CourseFields(
        title="另一门", summary="", audiences=["youth"], mandatory=False, strict=False, credit_rule="tiers",
        credit_hours=None, credit_note="", watch_threshold=0.95))
    client = signed_in(app, teacher)
    assert client.get(f"/admin/courses/{other.id}/lessons/{draft.lessons[0].id}").status_code == 404


# ---- lesson text, Markdown preview --------------------------------------------------------------

HOSTILE = "## 小标题\n\n<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n[点我](javascript:alert(2)) **加粗**"


def test_markdown_with_script_is_sanitised_in_the_preview_and_when_saved(app, teacher, draft):
    lesson = draft.lessons[0]
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}/lessons/{lesson.id}")
    preview = client.post("/admin/courses/markdown-preview", data={"text": HOSTILE},
                          headers={"X-CSRFToken": client.token}).get_json()["html"]
    assert "<h2>小标题</h2>" in preview and "<strong>加粗</strong>" in preview
    for harmful in ("<script", "onerror", "javascript:", "<img"):
        assert harmful not in preview
    # the preview button of the form (no JavaScript) shows the same, and saves nothing
    shown = post_form(client, f"/admin/courses/{draft.id}/lessons/{lesson.id}",
                      {"title": lesson.title, "text": HOSTILE, "action": "preview"})
    assert shown.status_code == 200 and "<h2>小标题</h2>" in page_text(shown)
    assert "<script>alert" not in page_text(shown)
    assert db.session.get(Lesson, lesson.id).text_markdown == "## 开机\n\n长按电源键。"
    saved = post_form(client, f"/admin/courses/{draft.id}/lessons/{lesson.id}",
                      {"title": lesson.title, "text": HOSTILE, "action": "save"})
    assert saved.status_code == 302
    db.session.expire_all()
    lesson = db.session.get(Lesson, lesson.id)
    assert lesson.text_html == preview  # learners get exactly what the preview showed
    assert lesson.text_markdown == HOSTILE


def test_the_preview_endpoint_needs_the_csrf_token(app, teacher):
    client = signed_in(app, teacher)
    assert client.post("/admin/courses/markdown-preview", data={"text": "x"}).status_code == 400


# ---- cover picture ------------------------------------------------------------------------------

def test_a_cover_picture_is_checked_shrunk_and_shown_in_the_catalogue(app, teacher, draft, cover_png, make_user):
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    response = post_form(client, f"/admin/courses/{draft.id}", course_form(title=draft.title),
                         files={"cover": (cover_png, "封面.png")})
    assert response.status_code == 302
    course = db.session.get(Course, draft.id)
    stored = Path(app.config["DATA_DIR"]) / course.cover_path
    assert stored.read_bytes()[:3] == b"\xff\xd8\xff"  # re-encoded as a JPEG
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "json", str(stored)],
                           capture_output=True, check=True)
    size = json.loads(probe.stdout)["streams"][0]
    assert (size["width"], size["height"]) == (640, 360)
    # unpublished: only its authors see the picture; published: everyone, from the catalogue
    cover_url = re.search(r'src="(/courses/[^"]+/cover[^"]*)"', page_text(client.get(f"/admin/courses/{draft.id}"))).group(1)
    assert client.get(cover_url).status_code == 200
    assert app.test_client().get(cover_url).status_code == 404
    authoring.set_published(teacher, course, True)
    catalogue = page_text(app.test_client().get("/"))
    assert cover_url.replace("&", "&amp;") in catalogue or cover_url in catalogue
    assert app.test_client().get(cover_url).headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("content, name, message", [
    (b"GIF89a" + b"\x00" * 100, "pic.png", "封面图片必须是 PNG、JPEG 或 WebP 图片"),
    (b"<html><script>alert(1)</script></html>", "pic.jpg", "封面图片必须是 PNG、JPEG 或 WebP 图片"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000, "broken.png", "封面图片无法读取"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024), "big.png", "封面图片太大：最多 5 MB"),
])
def test_a_bad_cover_is_refused_naming_the_field_and_nothing_is_saved(app, teacher, draft, content, name, message):
    covers = set((Path(app.config["DATA_DIR"]) / "covers").glob("*"))
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    response = post_form(client, f"/admin/courses/{draft.id}", course_form(title="不该保存的标题"),
                         files={"cover": (content, name)})
    assert response.status_code == 400 and message in page_text(response)
    db.session.expire_all()
    course = db.session.get(Course, draft.id)
    assert course.title == "智能手机入门" and course.cover_path is None
    assert set((Path(app.config["DATA_DIR"]) / "covers").glob("*")) == covers  # no file kept, no temp left


def test_a_200_mb_cover_is_refused_before_it_is_read(app, teacher, draft):
    """The request declares 200 MB: refused by the upload gate before a byte of the body is read."""
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    declared = 200 * 1024 * 1024
    response = post_form(client, f"/admin/courses/{draft.id}", course_form(title="不该保存"),
                         files={"cover": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000, "huge.png")},
                         environ_overrides={"CONTENT_LENGTH": str(declared)})
    assert response.status_code == 413 and response.body_read == 0
    assert "封面图片太大：最多 5 MB" in page_text(response) and "什么都没有保存" in page_text(response)
    assert db.session.get(Course, draft.id).title == "智能手机入门"
    # a new course with one is refused the same way, and no course is made
    response = post_form(client, "/admin/courses/new", course_form(),
                         files={"cover": (b"\xff\xd8\xff" + b"\x00" * 1000, "huge.jpg")},
                         environ_overrides={"CONTENT_LENGTH": str(declared)})
    assert response.status_code == 413 and response.body_read == 0
    assert Course.query.count() == 1


# ---- video from a slide script, captions --------------------------------------------------------

SCRIPT = """slides:
  - title: 视频通话
    points: [打开微信, 点视频通话]
    caption: 打开微信，找到家人，点视频通话。
  - title: 挂断
    caption: 说完了，点红色按钮挂断。
"""


@pytest.mark.parametrize("script, message", [
    ("slides: [", "YAML 格式有误"),
    ("title: 没有 slides", "slides: 开头"),
    ("slides:\n  - title: 只有标题\n", "第 1 张幻灯片缺少字幕（caption）"),
    ("slides:\n  - &a {title: x, caption: y}\n  - *a\n", "锚点和别名"),
    ("slides:\n  - title: t\n    caption: c\n    points: [1, 2, 3, 4]\n", "最多 3 条"),
])
def test_a_bad_slide_script_is_refused_naming_the_problem(app, teacher, draft, script, message):
    lesson = draft.lessons[0]
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}/lessons/{lesson.id}")
    response = post_form(client, f"/admin/courses/{draft.id}/lessons/{lesson.id}/slides", {"script": script})
    assert response.status_code == 400 and message in page_text(response)
    assert VideoAsset.query.count() == 0


def test_a_slide_script_becomes_the_lessons_video_through_a_background_job(app, teacher, draft, monkeypatch):
    from lms.media.services import run_asset

    queued = []
    monkeypatch.setattr("lms.jobs.enqueue_transcode", queued.append)
    lesson = draft.lessons[1]
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}/lessons/{lesson.id}")
    response = post_form(client, f"/admin/courses/{draft.id}/lessons/{lesson.id}/slides", {"script": SCRIPT})
    assert response.status_code == 302
    asset = VideoAsset.query.filter_by(lesson_id=lesson.id).one()
    assert queued == [asset.id] and asset.status == "pending" and lesson.video_id is None
    assert "由幻灯片脚本生成" in page_text(client.get(f"/admin/courses/{draft.id}/lessons/{lesson.id}"))
    assert run_asset(asset.id).status == "ready"  # what the worker does
    db.session.expire_all()
    lesson = db.session.get(Lesson, lesson.id)
    assert lesson.video_id == asset.id and lesson.video.duration > 4
    captions = (Path(app.config["DATA_DIR"]) / "media" / lesson.video.captions_path).read_text(encoding="utf-8")
    assert "打开微信，找到家人，点视频通话。" in captions
    upload = AuditLog.query.filter_by(action="video.upload", target=f"asset:{asset.id}").one()
    assert upload.actor_id == teacher.id and "幻灯片脚本（2 张）" in upload.detail
    # the script is offered again on the lesson's page, to be mended
    assert "点说完了" not in SCRIPT and "打开微信，找到家人" in page_text(client.get(f"/admin/courses/{draft.id}/lessons/{lesson.id}"))


def test_captions_must_be_valid_webvtt_and_replace_the_videos_captions(app, course, make_user):
    teacher = make_user(role="instructor", unit="county", audience="cadre")
    add_author(course.slug, teacher.username)
    lesson = course.active_lessons[0]
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{course.id}/lessons/{lesson.id}")
    url = f"/admin/courses/{course.id}/lessons/{lesson.id}/captions"
    before = lesson.video.captions_path
    for content, message in ((b"hello", "第 1 行应是 WEBVTT"),
                             (b"WEBVTT\n\n00:01.000 --> 00:00.500\nx\n", "第 3 行的结束时间应晚于开始时间"),
                             (b"WEBVTT\n\n1 --> 2\nx\n", "第 3 行的时间格式不对"),
                             (b"WEBVTT\n\n", "字幕文件里没有任何一条字幕"),
                             ("WEBVTT\n\n00:00.000 --> 00:01.000\n字幕\n".encode("gbk"), "字幕文件不是 UTF-8")):
        response = post_form(client, url, {}, files={"captions": (content, "bad.vtt")})
        assert response.status_code == 400 and f"bad.vtt：{message}" in page_text(response), message
    assert post_form(client, url, {}, files={"captions": (b"WEBVTT\n", "c.srt")}).status_code == 400
    assert db.session.get(VideoAsset, lesson.video_id).captions_path == before
    good = "WEBVTT\n\n00:00:00.000 --> 00:00:03.500 line:90%\n不听、不信、不转账\n".encode()
    assert post_form(client, url, {}, files={"captions": (good, "新字幕.vtt")}).status_code == 302
    db.session.expire_all()
    video = db.session.get(VideoAsset, lesson.video_id)
    assert video.captions_path != before
    assert "不听、不信、不转账" in (Path(app.config["DATA_DIR"]) / "media" / video.captions_path).read_text(encoding="utf-8")
    assert AuditLog.query.filter_by(action="video.captions", target=f"asset:{video.id}").one().actor_id == teacher.id


# ---- preview as a learner -----------------------------------------------------------------------

def test_preview_shows_the_learner_pages_of_the_chosen_audience_and_writes_nothing(app, teacher, draft, course):
    add_author(course.slug, "teacher")
    client = signed_in(app, teacher)
    page = page_text(client.get(f"/admin/courses/{draft.id}/preview?audience=elder"))
    assert "预览" in page and "课程还没有发布" in page
    assert '<html lang="zh-CN" class="elder' in page  # 长辈版, as an elder learner gets by default
    assert "1. 认识手机" in page and "待阅读" in page  # a text lesson not read yet
    lesson = draft.lessons[0]
    assert f"/admin/courses/{draft.id}/preview/{lesson.id}?audience=elder" in page
    lesson_page = page_text(client.get(f"/admin/courses/{draft.id}/preview/{lesson.id}?audience=elder"))
    assert "长按电源键。" in lesson_page and "我已读完" in lesson_page and "disabled" in lesson_page
    assert "/read" not in lesson_page
    # a video lesson: the player shows, but sends no heartbeat
    video_lesson = course.active_lessons[0]
    video_page = page_text(client.get(f"/admin/courses/{course.id}/preview/{video_lesson.id}?audience=farmer"))
    assert 'id="lesson-video"' in video_page and "data-heartbeat-url" not in video_page
    assert "js/player.js" not in video_page and "这门课不面向“农民”" in video_page
    assert 'class="elder' not in video_page
    assert f"/lessons/{video_lesson.id}/quiz" not in video_page  # no quiz attempt from a preview
    assert LessonProgress.query.count() == 0 and TrainingRecord.query.count() == 0


# ---- versions: editing never changes the rules of learners in progress ------------------------

def read_lesson(user, lesson):
    db.session.add(LessonProgress(user_id=user.id, lesson_id=lesson.id, opened_at=utcnow() - timedelta(hours=1),
                                  read_at=utcnow()))
    db.session.commit()


def test_editing_a_draft_does_not_make_versions(app, teacher, draft):
    authoring.update_course(teacher, draft, authoring.CourseFields(
        title=draft.title, summary="", audiences=["elder"], mandatory=False, strict=True, credit_rule="fixed",
        credit_hours=Decimal("3"), credit_note="改", watch_threshold=0.8))
    assert draft.version == 1
    kept = db.session.get(CourseVersion, (draft.id, 1))
    assert (kept.credit_hours, kept.strict, kept.watch_threshold) == (Decimal("3.00"), True, 0.8)


def test_learners_in_progress_keep_the_hours_and_lessons_of_the_version_they_started(app, teacher, draft, make_user):
    authoring.set_published(teacher, draft, True)
    first, second = draft.active_lessons
    started = make_user("started-early", audience="elder")
    read_lesson(started, first)  # started under version 1: 1 学时, two lessons
    # the author raises the hours and adds a third lesson
    client = signed_in(app, teacher)
    client.refresh_token(f"/admin/courses/{draft.id}")
    response = post_form(client, f"/admin/courses/{draft.id}", course_form(
        title=draft.title, credit_rule="fixed", credit_hours="2", credit_note="加了一节", published="y"))
    assert response.status_code == 302
    assert "课程进入第 2 版" in page_text(client.get(f"/admin/courses/{draft.id}"))
    third = authoring.add_lesson(teacher, db.session.get(Course, draft.id), "扫码支付")
    authoring.update_lesson(teacher, third, third.title, "扫码前先看清是谁。")
    course = db.session.get(Course, draft.id)
    assert course.version == 2  # the third lesson came while nobody had started version 2: still 2
    assert AuditLog.query.filter_by(action="course.version", target=f"course:{draft.id}").one().detail.startswith(
        "第 1 版 → 第 2 版：学时 1.00 → 2.00")
    # the early learner finishes the two lessons of version 1: credited 1 学时 under version 1
    read_lesson(started, second)
    record = settle_completion(started.id, course.id).record
    assert (record.hours, record.course_version) == (Decimal("1.00"), 1)
    # the course page tells them what they are credited by
    assert "1 学时" in page_text(signed_in(app, started).get(f"/courses/{course.slug}"))
    # a learner who starts now needs all three lessons and gets 2 学时 under version 2
    late = make_user("started-late", audience="elder")
    read_lesson(late, first)
    read_lesson(late, second)
    assert settle_completion(late.id, course.id).record is None
    read_lesson(late, third)
    record = settle_completion(late.id, course.id).record
    assert (record.hours, record.course_version) == (Decimal("2.00"), 2)


def test_a_credited_record_never_changes_when_the_course_is_edited(app, teacher, draft, make_user):
    authoring.set_published(teacher, draft, True)
    learner = make_user(audience="elder")
    for lesson in draft.active_lessons:
        read_lesson(learner, lesson)
    record = settle_completion(learner.id, draft.id).record
    before = (record.id, record.hours, record.title, record.course_version)
    authoring.update_course(teacher, draft, authoring.CourseFields(
        title="改名了", summary="", audiences=["elder"], mandatory=True, strict=True, credit_rule="fixed",
        credit_hours=Decimal("5"), credit_note="改", watch_threshold=0.5, published=True))
    authoring.set_retired(teacher, draft.active_lessons[0], True)
    db.session.expire_all()
    record = db.session.get(TrainingRecord, before[0])
    assert (record.id, record.hours, record.title, record.course_version) == before
    assert TrainingRecord.query.count() == 1 and db.session.get(Course, draft.id).version == 2


def test_a_lowered_watch_threshold_does_not_apply_to_learners_who_started_before(app, teacher, make_user):
    course = authoring.create_course(teacher, authoring.CourseFields(
        title="视频课", summary="", audiences=["farmer"], mandatory=False, strict=False, credit_rule="tiers",
        credit_hours=None, credit_note="", watch_threshold=0.95))
    lesson = authoring.add_lesson(teacher, course, "第一节")
    video = VideoAsset(lesson_id=lesson.id, status="ready", duration=100.0)
    db.session.add(video)
    db.session.flush()
    lesson.video = video
    rules.record_rules(course)
    db.session.commit()
    authoring.set_published(teacher, course, True)

    def watched(user, seconds):
        db.session.add(LessonProgress(user_id=user.id, lesson_id=lesson.id, video_asset_id=video.id,
                                      watched_seconds=seconds, intervals=[[0, seconds]]))
        db.session.commit()

    early = make_user(audience="farmer")
    watched(early, 90)  # 90 % under version 1 (95 % needed)
    authoring.update_course(teacher, course, authoring.CourseFields(
        title="视频课", summary="", audiences=["farmer"], mandatory=False, strict=False, credit_rule="tiers",
        credit_hours=None, credit_note="", watch_threshold=0.85, published=True))
    assert course.version == 2
    assert settle_completion(early.id, course.id).record is None  # still 95 % for them
    late = make_user(audience="farmer")
    watched(late, 90)
    record = settle_completion(late.id, course.id).record
    assert record is not None and record.course_version == 2 and record.hours == Decimal("0.25")


def test_a_lesson_progress_row_records_the_course_version_it_was_made_under(app, teacher, draft, make_user):
    learner = make_user(audience="elder")
    read_lesson(learner, draft.lessons[0])
    row = LessonProgress.query.one()
    assert row.course_version == 1
    assert rules.learner_version(learner.id, draft) == 1


# ---- pages --------------------------------------------------------------------------------------

def test_authoring_pages_are_light_and_keep_the_content_security_policy(app, teacher, draft):
    client = signed_in(app, teacher)
    lesson = draft.lessons[0]
    for url in ("/admin/courses", "/admin/courses/new", f"/admin/courses/{draft.id}",
                f"/admin/courses/{draft.id}/lessons/{lesson.id}", f"/admin/courses/{draft.id}/preview"):
        response = client.get(url)
        body = response.get_data()
        assert response.status_code == 200, url
        assert len(body) < 150_000, url
        assert b"style=" not in body and not re.search(rb"<script(?![^>]*\bsrc=)", body), url
        assert b"http://" not in body.replace(b"http://localhost", b"") and b"https://" not in body, url
