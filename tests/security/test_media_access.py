"""Attacks on /media/ (issue 9, defect 11): a signed-in user asks for files they may not see. A file is
served only when it belongs to the current video of a non-retired lesson of a published course, or to
a course the user authors, or to an admin; anything else is 404, as if it did not exist."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from lms.courses.authors import add_author
from lms.extensions import db
from tests.conftest import BrowserLikeClient


def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    client.login(user.username)
    return client


@pytest.fixture
def video(course):
    return course.active_lessons[0].video


def files_of(video) -> list[str]:
    return [video.renditions["360p"], video.poster_path, video.captions_path]


def test_learner_gets_published_media_with_range_but_not_an_unpublished_course(app, course, video, make_user):
    """A learner fetches a draft (unpublished) course's video, poster and captions by URL: 404 each."""
    learner = signed_in(app, make_user())
    url = f"/media/{video.renditions['360p']}"
    ranged = learner.get(url, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.data) == 100
    assert all(learner.get(f"/media/{path}").status_code == 200 for path in files_of(video))
    course.published = False
    db.session.commit()
    assert [learner.get(f"/media/{path}").status_code for path in files_of(video)] == [404, 404, 404]


def test_learner_cannot_fetch_a_retired_lessons_video(app, course, video, make_user):
    """A learner keeps the URL of a lesson later dropped from its package and fetches it: 404."""
    learner = signed_in(app, make_user())
    course.active_lessons[0].retired = True
    db.session.commit()
    assert learner.get(f"/media/{video.renditions['360p']}").status_code == 404


def test_only_authors_and_admins_see_a_draft_courses_media(app, course, video, make_user):
    """Instructors fetch a draft course's video: its author 200, another instructor 404, an admin 200."""
    course.published = False
    db.session.commit()
    author = make_user(role="instructor", unit="county", audience="cadre")
    add_author(course.slug, author.username)
    other = make_user(role="instructor", unit="county", audience="cadre")
    admin = make_user(role="admin", unit="county", audience="cadre")
    url = f"/media/{video.renditions['360p']}"
    assert signed_in(app, author).get(url).status_code == 200
    assert signed_in(app, other).get(url).status_code == 404
    assert signed_in(app, admin).get(url).status_code == 200


def test_a_file_that_belongs_to_no_video_is_hidden(app, course, make_user):
    """A learner guesses the path of a media file no lesson uses (an orphan, a half-written one): 404."""
    media = Path(app.config["DATA_DIR"]) / "media"
    orphan = media / "videos" / "zz" / "orphan-for-test" / "360p.mp4"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"\x00" * 64)
    partial = media / "videos" / "zz" / "orphan-for-test" / ".tmp-360p.mp4"
    partial.write_bytes(b"\x00" * 64)
    learner = signed_in(app, make_user())
    assert learner.get("/media/videos/zz/orphan-for-test/360p.mp4").status_code == 404
    assert learner.get("/media/videos/zz/orphan-for-test/.tmp-360p.mp4").status_code == 404
    assert learner.get("/media/videos/zz/orphan-for-test/../orphan-for-test/360p.mp4").status_code == 404
    assert signed_in(app, make_user(role="admin", unit="county", audience="cadre")).get(
        "/media/videos/zz/orphan-for-test/360p.mp4").status_code == 200


def test_x_accel_redirect_only_for_what_the_user_may_see(app, course, video, make_user):
    """Behind nginx, a learner asks for a draft course's video: 404 and no X-Accel-Redirect header."""
    app.config["MEDIA_ACCEL_PREFIX"] = "/_protected_media"
    learner = signed_in(app, make_user())
    path = video.renditions["360p"]
    allowed = learner.get(f"/media/{path}")
    assert allowed.status_code == 200 and allowed.headers["X-Accel-Redirect"] == f"/_protected_media/{path}"
    course.published = False
    db.session.commit()
    refused = learner.get(f"/media/{path}")
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused.headers


def test_the_visibility_check_is_one_indexed_query(app, course, video, make_user):
    """Every Range request runs the check: one SQL statement, found through the poster/captions indexes."""
    from lms.courses.videos import media_visible_to

    learner = make_user()
    path, _ = video.renditions["360p"], learner.role  # loaded now, so only the check itself is counted
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert media_visible_to(learner, path)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    statement, parameters = statements[0]
    plan = " ".join(str(row) for row in db.session.connection().exec_driver_sql(
        "EXPLAIN QUERY PLAN " + statement, parameters))
    assert "ix_video_asset_poster_path" in plan and "ix_video_asset_captions_path" in plan
    assert "SCAN" not in plan.replace("SCAN CONSTANT", "")  # no table is read row by row


@pytest.mark.postgres
def test_the_visibility_check_on_postgresql(tmp_path, postgres_url, media_dir, test_video):
    """The same check on PostgreSQL: a draft course's video is hidden from a learner and another
    instructor, shown to its author."""
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from lms.courses.videos import media_visible_to
    from tests.conftest import _make_app, write_package

    app = _make_app(tmp_path, database_url=postgres_url, data_dir=media_dir)
    with app.app_context():
        course, _ = import_package(write_package(tmp_path / "content", test_video))
        get_or_create_unit("county", "垫江县", "county")
        learner, author, other = (create_user(name, name, "correct-horse", role, "cadre", "county")
                                  for name, role in (("l", "learner"), ("a", "instructor"), ("o", "instructor")))
        db.session.commit()
        add_author(course.slug, "a")
        video = course.active_lessons[0].video
        files = files_of(video)
        assert all(media_visible_to(learner, path) for path in files)
        course.published = False
        db.session.commit()
        assert [media_visible_to(user, files[0]) for user in (learner, author, other)] == [False, True, False]
        assert media_visible_to(author, files[2]) and not media_visible_to(other, files[1])
        db.session.remove()
        db.engine.dispose()
