"""Attacks on the video and photo uploads (issue 9, defect 1) and on who may replace a course's videos
(defect 3). Each refused request must leave the uploads folder as it was; a request refused before
its body is read leaves the body unread (the WSGI input's position stays 0)."""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from lms.courses.authors import add_author
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.records.models import AuditLog
from tests.conftest import BrowserLikeClient


def upload_files(app) -> set[str]:
    folder = Path(app.config["DATA_DIR"]) / "uploads"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def post_multipart(client, url, fields: dict, files: dict, headers=None, **environ):
    """POST a multipart body from a stream we can inspect: its position tells how much was read."""
    parts = dict(fields)
    parts.update({name: FileStorage(io.BytesIO(data), filename) for name, (data, filename) in files.items()})
    boundary, body = encode_multipart(parts)
    stream = io.BytesIO(body)
    response = client.post(url, input_stream=stream, content_type=f"multipart/form-data; boundary={boundary}",
                           headers=headers or {}, environ_overrides=environ)
    return response, stream.tell()


VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + os.urandom(200_000)


@pytest.fixture
def lesson(course):
    return course.active_lessons[0]


@pytest.fixture
def author(make_user, course):
    user = make_user(role="instructor", unit="county", audience="cadre")
    add_author(course.slug, user.username)
    return user


def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    client.login(user.username)
    return client


def test_anonymous_multipart_post_is_not_read(app, lesson):
    """Anonymous multipart POST to a lesson's upload URL: 302 to sign-in, body unread, nothing on disk."""
    before = upload_files(app)
    response, read = post_multipart(app.test_client(), f"/admin/lessons/{lesson.id}/video",
                                    {"csrf_token": "x"}, {"video": (VIDEO_BYTES, "v.mp4")})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert read == 0
    assert upload_files(app) == before
    assert VideoAsset.query.filter_by(lesson_id=lesson.id).count() == 0


@pytest.mark.parametrize("role", ["learner", "instructor"])
def test_signed_in_non_author_upload_is_refused_unread(app, lesson, make_user, role):
    """A learner, or an instructor who does not author the course, POSTs a video with a valid CSRF
    token: 403 (the upload page too), body unread, nothing on disk."""
    client = signed_in(app, make_user(role=role, unit="county", audience="cadre"))
    assert client.get(f"/admin/lessons/{lesson.id}/video").status_code == 403
    token = client.refresh_token("/")
    before = upload_files(app)
    response, read = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                                    {"video": (VIDEO_BYTES, "v.mp4")})
    assert response.status_code == 403 and read == 0
    assert upload_files(app) == before


def test_upload_without_csrf_token_leaves_nothing(app, lesson, author):
    """An author's browser tricked into POSTing without the CSRF token: 400, no file left."""
    client = signed_in(app, author)
    before = upload_files(app)
    response, _ = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {},
                                 {"video": (VIDEO_BYTES, "v.mp4")})
    assert response.status_code == 400
    assert upload_files(app) == before
    assert VideoAsset.query.filter_by(lesson_id=lesson.id).count() == 0


def test_oversized_upload_leaves_nothing_chunked_or_not(app, lesson, author):
    """An author sends more than the limit, declared or chunked (no Content-Length): 413, no file left."""
    app.config["MAX_CONTENT_LENGTH"] = 100_000
    client = signed_in(app, author)
    token = client.refresh_token(f"/admin/lessons/{lesson.id}/video")
    before = upload_files(app)
    declared, read = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                                    {"video": (VIDEO_BYTES, "v.mp4")})
    assert declared.status_code == 413 and read == 0
    chunked, _ = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                                {"video": (VIDEO_BYTES, "v.mp4")}, headers={"Transfer-Encoding": "chunked"},
                                **{"wsgi.input_terminated": True})  # as gunicorn reads a chunked body
    assert upload_files(app) == before
    assert chunked.status_code == 413 and "最多" in chunked.get_data(as_text=True)


def test_corrupt_video_is_refused_naming_the_file(app, lesson, author):
    """An author uploads random bytes named .mp4: 400 naming the file, no asset queued, no file left."""
    client = signed_in(app, author)
    token = client.refresh_token(f"/admin/lessons/{lesson.id}/video")
    before = upload_files(app)
    response, _ = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                                 {"video": (VIDEO_BYTES, "坏视频.mp4")})
    assert response.status_code == 400
    assert "坏视频.mp4：无法识别的视频文件" in response.get_data(as_text=True)
    assert VideoAsset.query.filter_by(lesson_id=lesson.id).count() == 0
    assert upload_files(app) == before


def test_bad_captions_are_refused_and_the_video_is_not_kept(app, lesson, author, test_video):
    """A good video with captions that are not WebVTT/SubRip: 400 naming the captions file, no file left."""
    client = signed_in(app, author)
    token = client.refresh_token(f"/admin/lessons/{lesson.id}/video")
    before = upload_files(app)
    response, _ = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                                 {"video": (test_video.read_bytes(), "v.mp4"), "captions": (b"hello", "c.srt")})
    assert response.status_code == 400 and "c.srt：字幕文件应为" in response.get_data(as_text=True)
    assert upload_files(app) == before


def test_a_crash_after_the_file_was_claimed_leaves_nothing(app, lesson, author, test_video, monkeypatch):
    """The database fails while the upload is being recorded: the error propagates, no file is left."""
    from lms.media import services

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "create_upload_asset", broken)
    client = signed_in(app, author)
    token = client.refresh_token(f"/admin/lessons/{lesson.id}/video")
    before = upload_files(app)
    with pytest.raises(RuntimeError):
        post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                       {"video": (test_video.read_bytes(), "v.mp4")})
    assert upload_files(app) == before


def test_periodic_sweep_removes_stray_upload_temp_files(app):
    """Temp files of a web process killed mid-upload: removed after an hour untouched; fresh ones stay."""
    from lms.jobs import sweep_stray_uploads

    folder = Path(app.config["DATA_DIR"]) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    stale, fresh, source = folder / ".tmp-upload-stale", folder / ".tmp-upload-fresh", folder / "kept-source.mp4"
    for path in (stale, fresh, source):
        path.write_bytes(b"x" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    os.utime(source, (two_hours_ago, two_hours_ago))
    assert sweep_stray_uploads.call_local() >= 1
    assert not stale.exists() and fresh.exists() and source.exists()
    fresh.unlink()
    source.unlink()


def test_finished_replacement_is_audited_with_who_old_and_new(app, lesson, author, test_video):
    """An author replaces a video: the audit log says who uploaded it and, when it is swapped in, old → new."""
    from lms.media.services import run_asset

    old_id = lesson.video_id
    client = signed_in(app, author)
    token = client.refresh_token(f"/admin/lessons/{lesson.id}/video")
    response, _ = post_multipart(client, f"/admin/lessons/{lesson.id}/video", {"csrf_token": token},
                                 {"video": (test_video.read_bytes(), "新版.mp4")})
    assert response.status_code == 302
    asset = VideoAsset.query.filter_by(lesson_id=lesson.id).one()
    assert Path(asset.source_path).is_file() and not Path(asset.source_path).name.startswith(".tmp-")
    upload = AuditLog.query.filter_by(action="video.upload").one()
    assert (upload.actor_id, upload.target) == (author.id, f"asset:{asset.id}")
    assert run_asset(asset.id).status == "ready"
    replace = AuditLog.query.filter_by(action="video.replace").one()
    assert replace.actor_id == author.id and replace.target == f"lesson:{lesson.id}"
    assert f"{old_id} → {asset.id}" in replace.detail and replace.created_at is not None


def test_status_retry_and_overview_only_for_the_courses_one_authors(app, lesson, make_user, tmp_path, test_video):
    """A non-author instructor asks for an asset's status, retries it, lists videos: 404, 404, course not listed."""
    from lms.courses.importer import import_package
    from lms.media.services import create_upload_asset
    from tests.conftest import write_package

    own_course, _ = import_package(write_package(tmp_path / "own", None, slug="own-course", title="自己的课程"))
    outsider = make_user(role="instructor", unit="county", audience="cadre")
    add_author(own_course.slug, outsider.username)
    asset = create_upload_asset(lesson, Path("/nonexistent.mp4"), "x.mp4")
    asset.status = "failed"
    db.session.commit()
    client = signed_in(app, outsider)
    assert client.get(f"/admin/videos/{asset.id}/status").status_code == 404
    token = client.refresh_token("/admin/videos")
    assert client.post(f"/admin/videos/{asset.id}/retry", data={"csrf_token": token}).status_code == 404
    db.session.expire_all()
    assert db.session.get(VideoAsset, asset.id).status == "failed"
    listing = client.get("/admin/videos").get_data(as_text=True)
    assert "自己的课程" in listing and lesson.course.title not in listing
    admin = signed_in(app, make_user(role="admin", unit="county", audience="cadre"))
    assert admin.get(f"/admin/videos/{asset.id}/status").get_json()["status"] == "failed"


def test_course_authors_command_adds_lists_and_removes(app, course, make_user):
    """`lms courses authors`: adding a learner is refused with a reason; an instructor is added, then removed."""
    from lms.courses.authors import may_author

    teacher = make_user(username="liu", role="instructor", unit="county", audience="cadre")
    learner = make_user(username="zhao")
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["courses", "authors", course.slug, "--add", "zhao"])
    assert refused.exit_code != 0 and "zhao" in refused.output and "instructor" in refused.output
    added = runner.invoke(args=["courses", "authors", course.slug, "--add", "liu"])
    assert added.exit_code == 0 and "liu" in added.output.splitlines()[-1]
    assert may_author(teacher, course.id) and not may_author(learner, course.id)
    removed = runner.invoke(args=["courses", "authors", course.slug, "--remove", "liu"])
    assert removed.exit_code == 0 and not may_author(teacher, course.id)
    actions = AuditLog.query.filter(AuditLog.action.startswith("course.author")).order_by(AuditLog.id)
    assert [row.action for row in actions] == ["course.author.add", "course.author.remove"]


def test_demo_teacher_authors_the_demo_courses(app, course, make_user):
    """demo-setup's teacher account may replace the demo courses' videos (and running it again changes nothing)."""
    from lms.cli import _make_demo_teacher_author
    from lms.courses.authors import may_author

    teacher = make_user(username="teacher", role="instructor", unit="county", audience="elder")
    _make_demo_teacher_author()
    _make_demo_teacher_author()
    assert may_author(teacher, course.id)


# --- the roster photo ------------------------------------------------------------------------------

@pytest.fixture
def klass(app, units):
    from lms.accounts.services import get_or_create_unit

    unit = get_or_create_unit("class-9", "智能手机九班", "class", units["town_a"])
    db.session.commit()
    return unit


def test_anonymous_photo_post_is_not_read(app, klass, make_user):
    """Anonymous multipart POST to a class's roster page: 302 to sign-in, body unread."""
    pupil = make_user(unit="class-9")
    response, read = post_multipart(app.test_client(), f"/classroom/{klass.code}",
                                    {"csrf_token": "x", "user_id": str(pupil.id)},
                                    {"photo": (b"\xff\xd8\xff" + os.urandom(600_000), "p.jpg")})
    assert response.status_code == 302 and "/login" in response.headers["Location"] and read == 0


def test_oversized_photo_is_refused_before_it_is_read(app, klass, make_user):
    """A teacher sends a 3 MB 'photo': 413 before the body is read, the learner's photo unchanged."""
    teacher = make_user(role="instructor", unit="town-a", audience="elder")
    pupil = make_user(unit="class-9")
    client = signed_in(app, teacher)
    token = client.refresh_token(f"/classroom/{klass.code}")
    response, read = post_multipart(client, f"/classroom/{klass.code}", {"csrf_token": token, "user_id": str(pupil.id)},
                                    {"photo": (b"\xff\xd8\xff" + os.urandom(3 * 1024 * 1024), "p.jpg")})
    assert response.status_code == 413 and read == 0 and "2 MB" in response.get_data(as_text=True)
    db.session.refresh(pupil)
    assert pupil.photo_path is None


def test_photo_reader_stops_at_the_limit(app, make_user):
    """save_photo given an endless stream reads one byte past 2 MB and refuses, naming the size limit."""
    from lms.classroom.services import MAX_PHOTO_BYTES, ClassroomError, save_photo

    class Endless(io.RawIOBase):
        consumed = 0

        def read(self, size=-1):
            assert size != -1, "must not read without a limit"
            self.consumed += size
            return b"\xff" * size

    stream = Endless()
    with pytest.raises(ClassroomError, match="2 MB"):
        save_photo(make_user(), stream)
    assert stream.consumed == MAX_PHOTO_BYTES + 1
