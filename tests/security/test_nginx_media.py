"""Media behind the documented nginx (docs/deploy.md): attacks that try to get a video without the app's check.

Debian's nginx runs the guide's configuration in front of gunicorn (tests/nginx_site.py); videos are
sent by nginx only after the app has said yes through X-Accel-Redirect.
"""
from __future__ import annotations

import pytest

from tests.nginx_site import ACCEL_PREFIX, running_site, session, signed_in

pytestmark = pytest.mark.nginx


@pytest.fixture(scope="module")
def site(test_video):
    with running_site(test_video) as running:
        yield running


def test_anonymous_range_request_for_a_video_gets_sent_to_sign_in(site):
    """An anonymous visitor asks nginx for a video (with a Range): 302 to the sign-in page, no video bytes."""
    response = session(site).get(site["url"] + "/media/" + site["media"]["video"], allow_redirects=False,
                                 headers={"Range": "bytes=0-99"})
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert b"ftyp" not in response.content and "X-Accel-Redirect" not in response.headers


def test_the_internal_media_location_is_not_reachable_from_outside(site):
    """Anyone — anonymous or signed in — asks for /_protected_media/<the file> directly: 404, no bytes."""
    direct = site["url"] + ACCEL_PREFIX + "/" + site["media"]["video"]
    for client in (session(site), signed_in(site)):
        response = client.get(direct, headers={"Range": "bytes=0-99"})
        assert response.status_code == 404
        assert b"ftyp" not in response.content


def test_a_learner_asking_nginx_for_a_draft_courses_video_gets_404(site):
    """A signed-in learner asks nginx for a draft (unpublished) course's video by its path: 404, no bytes —
    the app's check decides behind nginx too."""
    response = signed_in(site).get(site["url"] + "/media/" + site["media"]["draft_video"],
                                   headers={"Range": "bytes=0-99"})
    assert response.status_code == 404
    assert b"ftyp" not in response.content


@pytest.mark.parametrize("path", [
    "/static/..%2f..%2flms%2fconfig.py",
    "/static/../../lms/config.py",
    "/static..%2flms%2fconfig.py",
    "/media/..%2f..%2fjobs.sqlite3",
    "/media/videos/..%2f..%2f..%2fjobs.sqlite3",
    ACCEL_PREFIX + "/..%2fjobs.sqlite3",
])
def test_path_tricks_reach_neither_the_program_nor_the_data_folder(site, path):
    """Encoded and plain `..` through /static/, /media/ and the internal location, signed in: never the
    program's source or the job queue — nginx folds the path, the app answers 404."""
    response = signed_in(site).get(site["url"] + path, allow_redirects=False)
    assert response.status_code in (302, 400, 404), response.status_code
    assert b"SQLite format" not in response.content and b"import " not in response.content
