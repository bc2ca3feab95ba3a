"""/healthz: anyone learns the overall status; database, ffmpeg, index path, job queue and error texts
only administrators and callers on the machine itself (monitoring) — also behind a proxy."""
from __future__ import annotations

import pytest

from lms.extensions import db
from tests.conftest import BrowserLikeClient, _make_app

REMOTE = "203.0.113.9"  # a documentation address: somebody on the internet
SECRET_ERROR = "index at /srv/kepu/data/search/index-v2 is corrupt"


def client_from(app, address: str) -> BrowserLikeClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return BrowserLikeClient(client)


@pytest.fixture
def broken_index(monkeypatch):
    """The search index fails to open with an error that names a server path."""
    from lms.search import index

    def fail():
        raise OSError(SECRET_ERROR)

    monkeypatch.setattr(index, "index_state", fail)


def test_anonymous_remote_caller_gets_only_the_status(app):
    """Anonymous GET /healthz from the internet: {"status": …} and nothing about database, ffmpeg, index or jobs."""
    response = client_from(app, REMOTE).get("/healthz")
    body = response.get_json()
    assert list(body) == ["status"]
    assert (response.status_code, body["status"]) in ((200, "ok"), (503, "degraded"))


def test_a_failing_check_gives_503_but_no_error_text_to_strangers(app, broken_index):
    """A broken index: strangers get 503 {"status": "degraded"} without the error or its path; loopback sees both."""
    response = client_from(app, REMOTE).get("/healthz")
    assert response.status_code == 503 and response.get_json() == {"status": "degraded"}
    assert "/srv/kepu" not in response.get_data(as_text=True)

    local = client_from(app, "127.0.0.1").get("/healthz")
    assert local.status_code == 503
    assert local.get_json()["checks"]["search"] == {"ok": False, "error": SECRET_ERROR}


def test_forged_forwarded_for_does_not_make_a_stranger_local(app):
    """X-Forwarded-For: 127.0.0.1 from the internet, no proxy declared: the header is ignored, status only."""
    response = client_from(app, REMOTE).get("/healthz", headers={"X-Forwarded-For": "127.0.0.1"})
    assert list(response.get_json()) == ["status"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_loopback_monitoring_sees_every_check_strangers_do_not(app, address):
    """A monitor on the machine itself (IPv4 or IPv6 loopback) gets database, ffmpeg, search and job
    checks; the same request from the internet gets the status only."""
    body = client_from(app, address).get("/healthz").get_json()
    assert {"database", "ffmpeg", "search", "jobs"} <= set(body["checks"])
    assert list(client_from(app, REMOTE).get("/healthz").get_json()) == ["status"]


def test_behind_an_undeclared_proxy_forwarded_requests_are_not_local(app):
    """Behind nginx without LMS_TRUSTED_PROXIES every request comes from loopback: one that carries
    X-Forwarded-For (as nginx adds) is treated as remote and gets the status only."""
    response = client_from(app, "127.0.0.1").get("/healthz", headers={"X-Forwarded-For": REMOTE})
    assert list(response.get_json()) == ["status"]


@pytest.mark.parametrize("role,sees_details", [("admin", True), ("unit_admin", False), ("learner", False)])
def test_only_administrators_see_details_from_afar(app, make_user, role, sees_details):
    """Signed in from the internet: an admin gets the checks; a unit admin or a learner the status only."""
    user = make_user(role=role, unit="county" if role == "admin" else "town-a")
    client = client_from(app, REMOTE)
    assert client.login(user.username).status_code == 302
    body = client.get("/healthz").get_json()
    assert ("checks" in body) is sees_details


@pytest.fixture
def proxied_app(tmp_path, media_dir):
    """The app as deployed behind the documented nginx: LMS_TRUSTED_PROXIES=1."""
    (tmp_path / "proxied").mkdir()
    app = _make_app(tmp_path / "proxied", data_dir=media_dir, TRUSTED_PROXIES=1)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_behind_a_declared_proxy_the_client_address_decides(proxied_app):
    """With LMS_TRUSTED_PROXIES=1 (nginx on loopback), ProxyFix makes the visitor's address the one
    judged: a remote visitor gets the status only, also with a forged X-Forwarded-For: 127.0.0.1
    (nginx appends the real address); curl on the server itself, through nginx, gets the checks."""
    nginx = client_from(proxied_app, "127.0.0.1")
    for forwarded_for, sees_details in ((REMOTE, False), (f"127.0.0.1, {REMOTE}", False), ("127.0.0.1", True)):
        body = nginx.get("/healthz", headers={"X-Forwarded-For": forwarded_for}).get_json()
        assert ("checks" in body) is sees_details, forwarded_for
