"""Fixtures per concern: an app on a throw-away database, users, a small course package with a
real (short) video, and clients that carry a CSRF token like a browser does."""
from __future__ import annotations

import contextlib
import os
import re
import threading
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from lms import create_app
from lms.extensions import db

TEST_VIDEO_SECONDS = 4
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Media is content-addressed, so tests can share transcodes of the same clip."""
    return tmp_path_factory.mktemp("data")


def _make_app(tmp_path: Path, database_url: str | None = None, data_dir: Path | None = None, **extra):
    os.environ["LMS_INSTANCE_DIR"] = str(tmp_path / "instance")
    config = {
        "SQLALCHEMY_DATABASE_URI": database_url or f"sqlite:///{tmp_path / 'lms.sqlite3'}",
        "DATA_DIR": str(data_dir or tmp_path / "data"),
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        **extra,
    }
    app = create_app(config)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="heads")
    return app


@pytest.fixture
def app(tmp_path, media_dir):
    app = _make_app(tmp_path, data_dir=media_dir)

    def _fresh_g():
        # The fixture keeps one app context pushed, so `g` would outlive a request; in production
        # each request has its own. Start each request with an empty `g`, as production does
        # (Flask-Login caches the user there, Flask-WTF the CSRF token).
        from flask import g

        g.__dict__.clear()

    app.before_request_funcs.setdefault(None, []).insert(0, _fresh_g)  # before any other hook

    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def test_video(tmp_path_factory) -> Path:
    """A real 4-second H.264/AAC clip, made by ffmpeg, so players and probes see a real video."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={TEST_VIDEO_SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={TEST_VIDEO_SECONDS}", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(path)],
        check=True,
    )
    return path


QUIZ = {
    "pass_score": 60,
    "questions": [
        {"type": "single", "text": "接到陌生电话让你把钱转到“安全账户”，应该？",
         "choices": [{"text": "马上转账"}, {"text": "挂断，拨打 96110 核实", "correct": True}],
         "explanation": "公检法机关不会要求转账到安全账户。"},
        {"type": "multiple", "text": "哪些信息不能告诉陌生人？",
         "choices": [{"text": "验证码", "correct": True}, {"text": "支付密码", "correct": True}, {"text": "今天的天气"}],
         "explanation": "验证码和支付密码只能自己知道。"},
        {"type": "truefalse", "text": "96110 是全国反诈预警专线。", "answer": True,
         "explanation": "96110 打来的电话要接听。"},
    ],
}


def write_package(root: Path, video: Path | None, slug: str = "test-course", audiences=("elder",),
                  lessons: int = 1, **course_fields) -> Path:
    folder = root / slug
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for n in range(1, lessons + 1):
        lesson_dir = folder / f"0{n}-lesson"
        lesson_dir.mkdir(exist_ok=True)
        (lesson_dir / "lesson.md").write_text(f"## 第{n}课\n\n不听、不信、不转账。\n", encoding="utf-8")
        (lesson_dir / "quiz.yaml").write_text(yaml.safe_dump(QUIZ, allow_unicode=True), encoding="utf-8")
        entry = {"slug": f"lesson-{n}", "title": f"第{n}课", "text": f"0{n}-lesson/lesson.md",
                 "quiz": f"0{n}-lesson/quiz.yaml"}
        if video is not None:
            (lesson_dir / "video.mp4").write_bytes(video.read_bytes())
            (lesson_dir / "captions.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:04.000\n不听不信不转账\n",
                                                     encoding="utf-8")
            entry.update(video=f"0{n}-lesson/video.mp4", captions=f"0{n}-lesson/captions.vtt")
        entries.append(entry)
    course = {"id": f"pkg-{slug}", "title": "测试课程：防范电信诈骗", "summary": "测试用", "audiences": list(audiences),
              "credit_hours": 0.5, "mandatory": False, "lessons": entries, **course_fields}
    (folder / "course.yaml").write_text(yaml.safe_dump(course, allow_unicode=True, sort_keys=False),
                                        encoding="utf-8")
    return folder


@pytest.fixture
def package(tmp_path, test_video) -> Path:
    return write_package(tmp_path / "content", test_video)


@pytest.fixture
def course(app, package):
    from lms.courses.importer import import_package

    course, _ = import_package(package)
    return course


@pytest.fixture
def units(app):
    from lms.accounts.services import get_or_create_unit

    county = get_or_create_unit("county", "垫江县", "county")
    town_a = get_or_create_unit("town-a", "桂溪街道", "township", county)
    town_b = get_or_create_unit("town-b", "澄溪镇", "township", county)
    db.session.commit()
    return {"county": county, "town_a": town_a, "town_b": town_b}


@pytest.fixture
def make_user(app, units):
    from lms.accounts.services import create_user

    def make(username=None, role="learner", audience="elder", unit="town-a", full_name=None, password="correct-horse"):
        username = username or f"u{uuid.uuid4().hex[:8]}"
        user = create_user(username, full_name or username, password, role, audience, unit)
        db.session.commit()
        return user

    return make


@contextlib.contextmanager
def serve_app(app):
    """Serve `app` over real HTTP on a free loopback port for a browser; yields the base URL."""
    from werkzeug.serving import make_server


    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


CSRF_RE = re.compile(r'name="csrf[-_]token" (?:type="hidden" )?(?:content|value)="([^"]+)"')


class BrowserLikeClient:
    """A test client that reads the CSRF token from pages as a browser form would carry it."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def refresh_token(self, path="/login"):
        page = self.client.get(path).get_data(as_text=True)
        match = CSRF_RE.search(page) or re.search(r'csrf_token" type="hidden" value="([^"]+)"', page)
        self.token = match.group(1)
        return self.token

    def login(self, username, password="correct-horse"):
        self.refresh_token("/login")
        return self.client.post("/login", data={"username": username, "password": password,
                                                "csrf_token": self.token})

    def heartbeat(self, lesson_id, payload):
        if self.token is None:
            self.refresh_token("/")
        return self.client.post(f"/api/lessons/{lesson_id}/heartbeat", json=payload,
                                headers={"X-CSRFToken": self.token})

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
def browser_client(app):
    return BrowserLikeClient(app.test_client())


@pytest.fixture
def postgres_url():
    """A throw-away PostgreSQL database for this test, dropped afterwards; skip when none is reachable."""
    with throwaway_postgres() as url:
        yield url


@contextlib.contextmanager
def throwaway_postgres():
    """A new PostgreSQL database, dropped on exit (a test needing two, e.g. restore, calls it again)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        connection = engine.connect()
    except Exception as exc:  # no server here: the SQLite variant still runs
        pytest.skip(f"PostgreSQL not reachable: {exc.__class__.__name__}")
    name = f"lms_test_{uuid.uuid4().hex[:12]}"
    connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.close()
        engine.dispose()


# What Chromium logs to the console when the Content-Security-Policy blocks something
CSP_CONSOLE_MARKS = ("Content Security Policy", "Refused to")


def watch_csp(browser) -> list[str]:
    """Collect every Content-Security-Policy violation logged by any page of any context of `browser`."""
    violations: list[str] = []
    new_context = browser.new_context

    def on_console(message):
        if any(mark in message.text for mark in CSP_CONSOLE_MARKS):
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def new_watched_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        context.on("console", on_console)
        return context

    browser.new_context = new_watched_context
    return violations


@pytest.fixture
def browser():
    """Chromium; every browser test also fails when a page breaks the app's Content-Security-Policy."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package); browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        browser.csp_violations = watch_csp(browser)
        try:
            yield browser
        finally:
            browser.close()
        assert not browser.csp_violations, "Content-Security-Policy violations:\n" + "\n".join(browser.csp_violations)
