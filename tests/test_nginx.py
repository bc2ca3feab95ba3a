"""Debian's nginx with the configuration docs/deploy.md documents, in front of gunicorn: a learner plays a
video (tests/nginx_site.py sets it up; the attacks on it are in tests/security/test_nginx_media.py).

Run as root (as scripts/test does), nginx's workers run as www-data, as on a server, and a video nginx
cannot read answers 403 — what the documented set-up did before media files were created honouring the
umask. Run as another user, nginx shares the test's user, which is why the files' modes and group are
asserted too.
"""
from __future__ import annotations

import os
import pwd
import stat

import pytest

from tests.nginx_site import PROJECT, WEB_USER, running_site, session, signed_in

pytestmark = pytest.mark.nginx


@pytest.fixture(scope="module")
def site(test_video):
    with running_site(test_video) as running:
        yield running


def test_a_signed_in_learner_plays_the_video_through_nginx(site):
    """The app checks the viewer, nginx sends the file: whole (200) and in parts (Range → 206)."""
    s = signed_in(site)
    url = site["url"] + "/media/" + site["media"]["video"]
    data = (site["data"] / "media" / site["media"]["video"]).read_bytes()

    whole = s.get(url)
    assert whole.status_code == 200, site["nginx_log"].read_text()[-2000:]
    assert whole.content == data
    assert whole.headers["Content-Type"] == "video/mp4"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Cache-Control"] == "private, max-age=604800"
    assert "X-Accel-Redirect" not in whole.headers

    part = s.get(url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert part.content == data[100:1100]
    tail = s.get(url, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]

    for kind in ("poster", "captions"):
        response = s.get(site["url"] + "/media/" + site["media"][kind])
        assert response.status_code == 200, kind
        assert response.content == (site["data"] / "media" / site["media"][kind]).read_bytes()


def test_media_files_are_readable_by_the_web_servers_group(site):
    """Under UMask=0027 in a set-group-ID media folder, everything the pipeline wrote is group www-data
    (as root) and group-readable, folders group-searchable: not mkstemp's private 0600."""
    root = site["data"] / "media"
    seen = 0
    for path in [root, *root.rglob("*")]:
        st = path.stat()
        assert st.st_gid == site["web_gid"], path
        if path.is_dir():
            assert stat.S_IMODE(st.st_mode) == 0o2750, (path, oct(st.st_mode))
        else:
            assert stat.S_IMODE(st.st_mode) == 0o640, (path, oct(st.st_mode))
            seen += 1
    assert seen >= 3  # the rendition, its poster, the captions
    with site["app"].app_context():
        from lms.doctor import media_readable

        check = media_readable(WEB_USER if site["as_root"] else pwd.getpwuid(os.geteuid()).pw_name)
    assert check.ok, check


def test_static_files_redirect_and_the_visitors_address(site):
    """/static/ from the program folder for an hour; http → https; HSTS; and with LMS_TRUSTED_PROXIES=1 the
    app judges the visitor's address from nginx's X-Forwarded-For."""
    s = session(site)
    css = s.get(site["url"] + "/static/css/app.css")
    assert css.status_code == 200 and css.headers["Cache-Control"] == "max-age=3600"
    assert css.content == (PROJECT / "lms/static/css/app.css").read_bytes()
    plain = s.get(site["http_url"] + "/courses?x=1", allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    assert s.get(site["url"] + "/").headers["Strict-Transport-Security"] == "max-age=31536000"
    # The visitor (loopback here) is who the app judges through nginx's X-Forwarded-For: it sees the checks.
    assert "checks" in s.get(site["url"] + "/healthz").json()
