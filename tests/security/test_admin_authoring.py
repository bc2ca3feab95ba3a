"""Who may author courses (issue 10): every /admin/courses route refuses learners and unit admins, and an
instructor who does not author the course; a cover or captions upload from them is refused before its
body is read; an unpublished course's cover is not shown to others."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from lms.courses import authoring
from lms.courses.models import Course
from lms.extensions import db
from lms.records.models import AuditLog
from tests.conftest import BrowserLikeClient


@pytest.fixture
def owned(app, make_user):
    """A course its author made in the browser, with one lesson, and its author."""
    author = make_user("author", role="instructor", unit="county", audience="cadre")
    course = authoring.create_course(author, authoring.CourseFields(
        title="碳达峰", summary="", audiences=["cadre"], mandatory=True, strict=True, credit_rule="fixed",
        credit_hours=Decimal("1"), credit_note="干部必修", watch_threshold=0.95))
    lesson = authoring.add_lesson(author, course, "什么是碳达峰")
    return course, lesson


def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/")
    return client


def authoring_urls(app, course_id: int, lesson_id: int) -> list[tuple[str, str]]:
    """Every (method, URL) of the authoring blueprint, its ids filled in: a new route is covered as it comes."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("authoring."):
            continue
        url = rule.rule.replace("<int:course_id>", str(course_id)).replace("<int:lesson_id>", str(lesson_id))
        urls += [(method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    assert len(urls) >= 15
    return urls


@pytest.mark.parametrize("role, unit", [("learner", "town-a"), ("unit_admin", "town-b"), ("unit_admin", "county")])
def test_learners_and_unit_admins_get_403_on_every_authoring_route(app, owned, make_user, role, unit):
    course, lesson = owned
    client = signed_in(app, make_user(role=role, unit=unit))
    before = AuditLog.query.count()
    for method, url in authoring_urls(app, course.id, lesson.id):
        response = client.open(url, method=method, data={"csrf_token": client.token, "title": "x", "direction": "up",
                                                           "text": "x", "script": "x", "published": "1"})
        assert response.status_code == 403, (method, url)
    assert AuditLog.query.count() == before
    assert db.session.get(Course, course.id).title == "碳达峰"


def test_an_instructor_who_is_not_the_author_gets_403_on_the_course(app, owned, make_user):
    course, lesson = owned
    client = signed_in(app, make_user(role="instructor", unit="county", audience="cadre"))
    open_to_every_author = {"/admin/courses", "/admin/courses/new", "/admin/courses/markdown-preview"}
    for method, url in authoring_urls(app, course.id, lesson.id):
        if url in open_to_every_author:
            continue
        response = client.open(url, method=method, data={"csrf_token": client.token, "title": "x", "direction": "up",
                                                           "published": "1"})
        assert response.status_code == 403, (method, url)
    assert not db.session.get(Course, course.id).published


def post_multipart(client, url: str, fields: dict, files: dict):
    parts = dict(fields)
    parts.update({name: FileStorage(io.BytesIO(data), filename) for name, (data, filename) in files.items()})
    boundary, body = encode_multipart(parts)
    stream = io.BytesIO(body)
    response = client.post(url, input_stream=stream, content_type=f"multipart/form-data; boundary={boundary}")
    return response, stream.tell()


PICTURE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100_000


def test_uploads_from_someone_who_may_not_author_are_refused_unread(app, owned, make_user):
    course, lesson = owned
    for user in (make_user(role="learner"), make_user(role="instructor", unit="county")):
        client = signed_in(app, user)
        for url, files in ((f"/admin/courses/{course.id}", {"cover": (PICTURE, "c.png")}),
                           (f"/admin/courses/{course.id}/lessons/{lesson.id}/captions", {"captions": (PICTURE, "c.vtt")})):
            response, read = post_multipart(client, url, {"csrf_token": client.token, "title": "x"}, files)
            assert response.status_code == 403 and read == 0, url
    client = signed_in(app, make_user(role="learner"))
    response, read = post_multipart(client, "/admin/courses/new", {"csrf_token": client.token}, {"cover": (PICTURE, "c.png")})
    assert response.status_code == 403 and read == 0
    anonymous, read = post_multipart(app.test_client(), "/admin/courses/new", {}, {"cover": (PICTURE, "c.png")})
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"] and read == 0
    assert Course.query.count() == 1


def test_an_unpublished_courses_cover_is_seen_by_its_authors_only(app, owned, make_user, tmp_path):
    import subprocess

    course, _ = owned
    picture = tmp_path / "c.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=green:s=320x180", "-frames:v", "1", "-y",
                    str(picture)], check=True)
    with picture.open("rb") as stream:
        course.cover_path = authoring.store_cover(stream)
    db.session.commit()
    url = f"/courses/{course.slug}/cover"
    assert signed_in(app, make_user(role="learner", audience="cadre")).get(url).status_code == 404
    assert signed_in(app, make_user(role="instructor", unit="county")).get(url).status_code == 404
    assert app.test_client().get(url).status_code == 404
    author = BrowserLikeClient(app.test_client())
    author.login("author")
    assert author.get(url).status_code == 200
