#!/usr/bin/env python3
"""The attacks of issue 9, run against a live gunicorn on loopback; one line per attack and what it got.

    .venv/bin/python scripts/attack.py [--only uploads,signin,...] [--keep] [--url http://127.0.0.1:8123]

Builds a throw-away instance (its own instance folder, data folder, SQLite database and secret key):
units whose codes LIKE would read as wildcards (town_1/town11, a%/ab), an admin, unit admins, learners,
an instructor who authors nothing, a strict cadre course with a 6-second ffmpeg video, captions and a
quiz drawn from a pool (imported by the real importer), a text-only course and an unpublished one. It
serves that instance with `gunicorn -w 2`, attacks it with `requests` and prints PASS when a defence
held as tests/security/ promises, FAIL when not; the exit status is 1 when anything FAILed.

It only ever talks to loopback: the URL must be a 127.x.x.x address (the sign-in attacks come from
other 127.0.0.x source addresses, as different clients). A whole run is bounded by --time-limit.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import html
import io
import ipaddress
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
import yaml
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # .venv/bin: gunicorn and lms beside this interpreter
PASSWORD = "correct-horse-9"
REQUEST_TIMEOUT = 30
VIDEO_SECONDS = 6
UPLOAD_BYTES = 20 * 1024 * 1024
CSRF_RE = re.compile(r'name="csrf[-_]token" (?:type="hidden" )?(?:content|value)="([^"]+)"')
CHOICE_RE = re.compile(r'name="q(\d+)" value="(\d+)"[^>]*>\s*<span>([^<]*)</span>')
ATTEMPT_RE = re.compile(r'name="attempt" value="([\w-]+)"')

# the strict course's quiz: a pool of 5 single-choice questions, 3 asked; every choice text is unique
POOL = [{"type": "single", "text": f"人工智能第{n}问：哪一项说法对？",
         "choices": [{"text": f"说法{n}甲"}, {"text": f"说法{n}乙", "correct": True}, {"text": f"说法{n}丙"}],
         "explanation": f"解析{n}：只有说法{n}乙经得起检验。"} for n in range(1, 6)]
RIGHT_CHOICES = {f"说法{n}乙" for n in range(1, 6)}
EXPLANATIONS = [question["explanation"] for question in POOL]
# what a page may show only for a committed answer (tests/security/test_quiz.py)
VERDICT_MARKS = ["正确答案", 'class="verdict', 'class="explanation"', "答对了", "✘", 'class="ok"']
# after a failed strict attempt: which questions were wrong, but no right answer or explanation
ANSWER_MARKS = ["正确答案", 'class="ok"']


# --- where the attacks may go ----------------------------------------------------------------------

def loopback_base(url: str) -> tuple[str, str, int]:
    """(base URL, host, port) of a http://127.x.x.x[:port] URL; SystemExit for anything else."""
    parts = urlsplit(url)
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        address = None
    if parts.scheme != "http" or address is None or address.version != 4 or not address.is_loopback:
        raise SystemExit(f"attack.py attacks loopback only: {url!r} is not http://127.x.x.x[:port] "
                         "(a name such as localhost is refused too: it could resolve elsewhere)")
    port = parts.port or free_port(str(address))
    return f"http://{address}:{port}", str(address), port


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class SourceAddress(HTTPAdapter):
    """Connections from one loopback address (127.0.0.x): to the server, another client."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Visitor:
    """A browser: its own cookies, the CSRF token read from pages, optionally its own source address.
    It takes paths, never URLs, so every request goes to the loopback server."""

    def __init__(self, base: str, source: str | None = None):
        self.base = base
        self.http = requests.Session()
        if source is not None:
            if not ipaddress.ip_address(source).is_loopback:
                raise SystemExit(f"source address {source} is not loopback")
            self.http.mount("http://", SourceAddress(source))
        self.token: str | None = None

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        assert path.startswith("/"), path
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return self.http.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def read_token(self, path: str = "/login") -> str:
        page = self.get(path).text
        match = CSRF_RE.search(page)
        if not match:
            raise RuntimeError(f"no CSRF token on {path}")
        self.token = match.group(1)
        return self.token

    def try_login(self, username: str, password: str) -> requests.Response:
        return self.post("/login", data={"username": username, "password": password, "csrf_token": self.token})

    def login(self, username: str, password: str = PASSWORD) -> Visitor:
        self.read_token("/login")
        response = self.try_login(username, password)
        if response.status_code != 302:
            raise RuntimeError(f"{username} could not sign in: {response.status_code}")
        self.read_token("/")
        return self


def location(response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


# --- the throw-away instance -------------------------------------------------------------------------

@dataclass
class Instance:
    folder: Path
    env: dict
    app: object = None
    ids: dict = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return Path(self.env["LMS_DATA_DIR"])


def instance_env(folder: Path) -> dict:
    """The environment of every process of the instance; nothing LMS_* inherited from the caller."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LMS_")}
    env.update(LMS_INSTANCE_DIR=str(folder / "instance"), LMS_DATA_DIR=str(folder / "data"),
               LMS_DATABASE_URL=f"sqlite:///{folder / 'lms.sqlite3'}", LMS_SECRET_KEY=secrets.token_hex(32),
               PYTHONPATH=str(ROOT))
    return env


def make_clip(path: Path, seconds: int, source: str = "testsrc") -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"{source}=size=320x240:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(path)],
                   check=True, timeout=60)
    return path


def write_yaml(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def edit_course(folder: Path, change) -> None:
    """Rewrite a package's course.yaml after `change(lessons)`."""
    spec = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    change(spec["lessons"])
    write_yaml(folder / "course.yaml", spec)


def write_course(folder: Path, lessons: list[dict], **course) -> Path:
    """A package: course.yaml, and per lesson its folder with lesson.md and the files it names."""
    entries = []
    for n, lesson in enumerate(lessons, 1):
        where = folder / f"0{n}"
        where.mkdir(parents=True, exist_ok=True)
        (where / "lesson.md").write_text(lesson.pop("markdown", "## 第一课\n\n认真看完再答题。\n"), encoding="utf-8")
        entry = {"slug": f"lesson-{n}", "title": f"第{n}课", "text": f"0{n}/lesson.md"}
        if "video" in lesson:
            shutil.copyfile(lesson["video"], where / "video.mp4")
            (where / "captions.vtt").write_text(f"WEBVTT\n\n00:00.000 --> 00:0{VIDEO_SECONDS}.000\n认识人工智能\n",
                                                encoding="utf-8")
            entry.update(video=f"0{n}/video.mp4", captions=f"0{n}/captions.vtt")
        if "quiz" in lesson:
            write_yaml(where / "quiz.yaml", lesson["quiz"])
            entry["quiz"] = f"0{n}/quiz.yaml"
        entries.append(entry)
    write_yaml(folder / "course.yaml", {"id": f"attack-{folder.name}", "summary": "攻击测试用", **course,
                                        "lessons": entries})
    return folder


def create_instance(folder: Path) -> Instance:
    """The app of the instance in `folder`, its database created by the migrations."""
    env = instance_env(folder)
    os.environ.update({key: value for key, value in env.items() if key.startswith("LMS_")})
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from lms import create_app

    instance = Instance(folder, env)
    instance.app = create_app()
    with instance.app.app_context(), contextlib.redirect_stderr(io.StringIO()):  # alembic logs every migration
        upgrade(revision="heads")
    return instance


def populate(instance: Instance) -> None:
    """Units, people (one password hash for all), the courses imported by the real importer, records."""
    from werkzeug.security import generate_password_hash

    from lms.accounts.models import Unit, User, utcnow
    from lms.accounts.services import get_or_create_unit
    from lms.courses.authors import add_author
    from lms.courses.importer import import_package
    from lms.extensions import db
    from lms.records.models import TrainingRecord
    from lms.records.services import credit_course_completion
    from lms.search.index import rebuild

    folder = instance.folder
    with instance.app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        for code in ("town_1", "town11", "a%", "ab"):
            get_or_create_unit(code, f"单位{code}", "township", county)
        people = [("boss", "admin", "cadre", "county"), ("admin.town1", "unit_admin", "cadre", "town_1"),
                  ("admin.apct", "unit_admin", "cadre", "a%"), ("learner.town1", "learner", "cadre", "town_1"),
                  ("learner.town11", "learner", "cadre", "town11"), ("learner.apct", "learner", "cadre", "a%"),
                  ("learner.ab", "learner", "cadre", "ab"), ("teacher.none", "instructor", "cadre", "county"),
                  ("wang.teacher", "instructor", "cadre", "county"),
                  ("teacher.author", "instructor", "cadre", "county")]
        # cadre learners, one per attack, so that no attack changes what another one sees
        people += [(f"cadre.{job}", "learner", "cadre", "county")
                   for job in ("quiz", "beat", "tiny", "watch", "read", "media", "session", "upload")]
        password_hash = generate_password_hash(PASSWORD)  # hashed once: a hash takes a third of a second
        for username, role, audience, unit in people:
            db.session.add(User(username=username, full_name=f"学员{username}", password_hash=password_hash,
                                role=role, audience=audience, unit=Unit.query.filter_by(code=unit).one()))
        db.session.commit()

        content = folder / "content"
        clip = make_clip(folder / "clip.mp4", VIDEO_SECONDS)
        strict, _ = import_package(write_course(
            content / "strict", [{"video": clip, "quiz": {"pass_score": 60, "ask": 3, "pool": POOL}}],
            title="人工智能前沿（攻击测试）", audiences=["cadre"], mandatory=True, strict=True, credit_hours=1))
        reading, _ = import_package(write_course(
            content / "reading", [{"markdown": "## 读一读\n\n不点陌生链接。\n"}], title="阅读课（攻击测试）",
            audiences=["cadre"], credit_hours=0.25))
        draft, _ = import_package(write_course(
            content / "draft", [{"video": make_clip(folder / "draft.mp4", 2, "testsrc2")}], title="未发布课程",
            audiences=["cadre"], credit_hours=0.25))
        draft.published = False
        add_author(strict.slug, "teacher.author")
        users = {user.username: user for user in User.query}
        for username in ("learner.town1", "learner.town11", "learner.apct", "learner.ab"):
            credit_course_completion(users[username].id, strict)
        first = TrainingRecord.query.filter_by(user_id=users["learner.town1"].id).one()
        db.session.add(TrainingRecord(user_id=first.user_id, title="更正：重复记录", kind="correction",
                                      hours=-1, source="admin", earned_at=utcnow(), reverses_id=first.id))
        db.session.commit()
        rebuild()  # the search index, so /healthz reports a healthy instance
        lesson = strict.active_lessons[0]
        instance.ids = {
            "users": {name: user.id for name, user in users.items()},
            "strict_slug": strict.slug, "lesson": lesson.id, "lesson_slug": lesson.slug,
            "quiz": lesson.quiz.id, "duration": lesson.video.duration,
            "published_media": lesson.video.renditions["360p"],
            "draft_media": draft.active_lessons[0].video.renditions["360p"],
            "reading_slug": reading.slug, "reading_lesson": reading.active_lessons[0].slug,
            "reading_lesson_id": reading.active_lessons[0].id,
        }
        db.session.remove()


class Server:
    """`gunicorn -w 2 wsgi:app` for the instance, bound to a loopback address; started on entry (its
    workers load the app while the instance is populated), `wait_ready` for /healthz, stopped on exit."""

    def __init__(self, instance: Instance, host: str, port: int):
        self.instance, self.host, self.port = instance, host, port
        self.log = instance.folder / "gunicorn.log"
        self.process = None

    def __enter__(self):
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-w", "2", "-b", f"{self.host}:{self.port}", "--timeout", "60",
                 "--no-control-socket", "wsgi:app"],
                cwd=ROOT, env=self.instance.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, seconds: int = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + self.log.read_text(errors="replace")[-2000:])
            try:
                if requests.get(f"http://{self.host}:{self.port}/healthz", timeout=10).status_code in (200, 503):
                    return
            except requests.RequestException:  # not listening yet, or a worker still starting
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {seconds} s")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the attacks ----------------------------------------------------------------------------------------

class Run:
    def __init__(self, instance: Instance, base: str):
        self.instance, self.base, self.ids = instance, base, instance.ids
        self.results: list[bool] = []
        self.reading: dict = {}

    def report(self, defect: str, attack: str, got: str, ok: bool) -> None:
        self.results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'}  [{defect}] {attack} → {got}", flush=True)

    def visitor(self, source: str | None = None) -> Visitor:
        return Visitor(self.base, source)

    def signed_in(self, username: str) -> Visitor:
        return self.visitor().login(username)

    def db(self):
        """The instance's database, read afresh (what the web workers committed)."""
        from lms.extensions import db

        db.session.remove()
        return db

    # 1 ---------------------------------------------------------------------------------------------
    def uploads(self):
        folder = self.instance.data / "uploads"
        lesson = self.ids["lesson"]
        body = {"video": ("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (UPLOAD_BYTES - 12), "video/mp4")}
        for who, expected in (("anonymous", 302), ("cadre.upload", 403), ("teacher.none", 403)):
            client = self.visitor() if who == "anonymous" else self.signed_in(who)
            before = files_under(folder)
            try:
                response = client.post(f"/admin/lessons/{lesson}/video", files=body,
                                       data={"csrf_token": client.token or "forged"})
                status = response.status_code
                got = f"{status}{' → ' + location(response) if response.is_redirect else ''}"
                refused = status == expected and (status != 302 or location(response) == "/login")
            except requests.ConnectionError as exc:
                got, refused = f"connection closed before the body was sent ({type(exc).__name__})", True
            after = files_under(folder)
            self.report("1", f"{who} multipart POST of 20 MB to /admin/lessons/{lesson}/video",
                        f"{got}; uploads/ {len(before)} → {len(after)} files", refused and after == before)

    # 2 ---------------------------------------------------------------------------------------------
    def quiz(self):
        from lms.quizzes.models import QuizAnswer, QuizAttempt

        lesson, user_id = self.ids["lesson"], self.ids["users"]["cadre.quiz"]
        client = self.signed_in("cadre.quiz")
        client.post("/prefs/elder", data={"csrf_token": client.token, "elder": "1", "next": "/"})  # 看答案 buttons
        rules = [rule for rule in self.instance.app.url_map.iter_rules() if "quiz" in rule.rule]
        forged = [{}, {"q0": "1", "q1": "1", "q2": "1"}, {"q0": "1", "check": "0"},
                  {"attempt": "999999", "check": "0", "q0": "1"}]
        leaked, tried = [], 0

        def probe(forms):
            nonlocal tried
            for method in ("POST", "GET"):  # POSTs first: before opening, the attacker has no attempt yet
                for rule in (r for r in rules if method in r.methods):
                    path = quiz_path(rule, self.ids)
                    for form in forms if method == "POST" else [None]:
                        body = (client.get(path) if form is None else
                                client.post(path, data={"csrf_token": client.token, **form})).text
                        tried += 1
                        leaked.extend(f"{method} {path} {form}: {mark}" for mark in leaks(body, VERDICT_MARKS))

        probe(forged)
        page = client.get(f"/lessons/{lesson}/quiz").text
        attempt = ATTEMPT_RE.search(page).group(1) if ATTEMPT_RE.search(page) else None
        probe([{"attempt": attempt}, {"attempt": attempt, "check": "0"}, {"attempt": attempt, "check": "7", "q7": "0"}])
        db = self.db()
        committed = QuizAnswer.query.join(QuizAttempt).filter(QuizAttempt.user_id == user_id).count()
        finished = QuizAttempt.query.filter(QuizAttempt.user_id == user_id, QuizAttempt.finished_at.isnot(None)).count()
        db.session.remove()
        self.report("2", f"read answers through every quiz endpoint ({len(rules)} URL rules with “quiz”, "
                         "GET and forged POSTs) before answering",
                    f"{tried} requests, {len(leaked)} leaks, {committed} answers committed, {finished} attempts "
                    f"finished{': ' + leaked[0] if leaked else ''}",
                    tried >= 10 and not leaked and committed == 0 and finished == 0)

        choices = quiz_choices(client.get(f"/lessons/{lesson}/quiz").text)
        wrong = {f"q{index}": next(value for text, value in shown.items() if text not in RIGHT_CHOICES)
                 for index, shown in choices.items()}
        failed = client.post(f"/lessons/{lesson}/quiz", data={"csrf_token": client.token, "attempt": attempt, **wrong})
        shown = leaks(failed.text, EXPLANATIONS + ANSWER_MARKS)
        wrong_listed = re.search(r"答错的题：第 [^<]*题", failed.text)
        self.report("2", f"fail the strict quiz ({len(choices)} of {len(POOL)} pool questions drawn), read the result",
                    f"{failed.status_code}, {wrong_listed.group(0) if wrong_listed else 'no wrong-question list'}, "
                    f"answers shown: {shown or 'none'}",
                    failed.status_code == 200 and wrong_listed is not None and not shown and len(choices) == 3)
        again = client.get(f"/lessons/{lesson}/quiz")
        wait = re.search(r"下一次可以在[^（]*（(\d+) 分钟后）", again.text)
        recheck = client.post(f"/lessons/{lesson}/quiz/check",
                              data={"csrf_token": client.token, "attempt": attempt, "check": "0", "q0": "0"})
        late = leaks(recheck.text, EXPLANATIONS + ANSWER_MARKS)
        self.report("2", "retry the failed strict quiz at once, and 看答案 on the failed attempt",
                    f"{again.status_code}, {'wait ' + wait.group(1) + ' min' if wait else 'no wait'}, "
                    f"{'a new attempt offered' if ATTEMPT_RE.search(again.text) else 'no new attempt'}; "
                    f"看答案 {recheck.status_code}, answers shown: {late or 'none'}",
                    wait is not None and not ATTEMPT_RE.search(again.text) and not late)

    # 3 and 8 -----------------------------------------------------------------------------------------
    def heartbeats(self):
        from lms.courses.models import LessonProgress
        from lms.courses.progress import max_stored_parts

        config = self.instance.app.config
        tolerance, duration, lesson = config["HEARTBEAT_TOLERANCE_SECONDS"], self.ids["duration"], self.ids["lesson"]
        page = f"/courses/{self.ids['strict_slug']}/lessons/{self.ids['lesson_slug']}"

        forger = self.signed_in("cadre.beat")
        forger.read_token(page)
        started = time.monotonic()
        beat(forger, lesson, {"player": "forger", "seq": 1, "start": True, "intervals": [], "position": 0})
        claim = beat(forger, lesson, {"player": "forger", "seq": 2, "intervals": [[0, duration]], "position": duration})
        elapsed = time.monotonic() - started
        credited = claim.json().get("credited_seconds", 0) if claim.ok else 0
        allowed = tolerance + elapsed * 1.0  # strict: 1.0× only
        self.report("3", f"forged heartbeat claiming the whole {duration:.1f} s video {elapsed:.2f} s after starting",
                    f"{claim.status_code}, credited {credited} s (allowed: tolerance {tolerance:g} s + "
                    f"{elapsed:.2f} s × 1.0)", credited <= allowed + 0.01)

        tiny = self.signed_in("cadre.tiny")
        tiny.read_token(page)
        beats, statuses = 60, Counter()
        started = time.monotonic()
        statuses[beat(tiny, lesson, {"player": "tiny", "seq": 1, "start": True, "intervals": [],
                                     "position": 0}).status_code] += 1
        scatter = random.Random(9)
        for seq in range(2, beats + 2):
            starts = sorted(scatter.uniform(0, duration - 1.5) for _ in range(200))
            fragments = [[round(start, 3), round(start + scatter.choice([0.01, 0.05, 0.3, 0.9, 1.0, 1.5]), 3)]
                         for start in starts]
            statuses[beat(tiny, lesson, {"player": "tiny", "seq": seq, "intervals": fragments,
                                         "position": fragments[-1][1]}).status_code] += 1
        elapsed = time.monotonic() - started
        db = self.db()
        progress = LessonProgress.query.filter_by(user_id=self.ids["users"]["cadre.tiny"], lesson_id=lesson).one()
        parts, size, watched = len(progress.intervals), len(progress.intervals_json), progress.watched_seconds
        db.session.remove()
        bound = max_stored_parts(duration)
        self.report("8", f"{beats} heartbeats × 200 tiny intervals over {elapsed:.1f} s",
                    f"answers {dict(statuses)}; stored intervals: {parts} (bound {bound}), {size} bytes, "
                    f"{watched:.2f} s watched", parts <= bound and size < 200 and watched <= elapsed + tolerance)

    def replacement(self):
        """A learner watched most of the 6 s video and passed the quiz; the author swaps in a 2 s one."""
        from lms.courses.models import Lesson
        from lms.media.models import VideoAsset
        from lms.media.services import run_asset
        from lms.records.models import AuditLog, TrainingRecord

        lesson, duration = self.ids["lesson"], self.ids["duration"]
        watcher = self.signed_in("cadre.watch")
        watcher.read_token(f"/courses/{self.ids['strict_slug']}/lessons/{self.ids['lesson_slug']}")
        beat(watcher, lesson, {"player": "watch", "seq": 1, "start": True, "intervals": [], "position": 0})
        before = beat(watcher, lesson, {"player": "watch", "seq": 2, "intervals": [[0, duration]],
                                        "position": duration}).json()
        page = watcher.get(f"/lessons/{lesson}/quiz").text
        right = {f"q{index}": [value for text, value in shown.items() if text in RIGHT_CHOICES]
                 for index, shown in quiz_choices(page).items()}
        passed = watcher.post(f"/lessons/{lesson}/quiz", data={"csrf_token": watcher.token,
                                                                "attempt": ATTEMPT_RE.search(page).group(1), **right})
        author = self.signed_in("teacher.author")
        author.read_token(f"/admin/lessons/{lesson}/video")
        short = make_clip(self.instance.folder / "short.mp4", 2, "smptebars")
        db = self.db()
        old_asset = db.session.get(Lesson, lesson).video_id
        uploaded = author.post(f"/admin/lessons/{lesson}/video", data={"csrf_token": author.token},
                               files={"video": ("短版.mp4", short.read_bytes(), "video/mp4")})
        db = self.db()
        for asset in VideoAsset.query.filter_by(lesson_id=lesson, status="pending"):
            run_asset(asset.id)  # what `lms worker` does with the upload's job
        db = self.db()
        new_asset = db.session.get(Lesson, lesson).video_id
        after = beat(watcher, lesson, {"player": "watch", "seq": 3, "intervals": [], "position": 0}).json()
        credited = TrainingRecord.query.filter_by(user_id=self.ids["users"]["cadre.watch"]).count()
        audit = AuditLog.query.filter_by(action="video.replace", target=f"lesson:{lesson}").all()
        db.session.remove()
        quiz_passed, completed = "通过了！" in passed.text, bool(after.get("lesson_completed"))
        self.report("3", f"watched {before.get('watched_share', 0):.0%} of the {duration:.0f} s video, "
                         f"{'passed' if quiz_passed else 'did not pass'} the quiz, then the author uploads a 2 s video",
                    f"upload {uploaded.status_code}, asset {old_asset} → {new_asset}; on the new video "
                    f"{after.get('watched_seconds')} s watched, lesson {'complete' if completed else 'not complete'}, "
                    f"{credited} records; audit: {audit[-1].detail if audit else 'none'}",
                    quiz_passed and new_asset != old_asset and after.get("watched_seconds") == 0 and not completed
                    and credited == 0 and bool(audit))

    def scoping(self):
        for admin, mine, sibling, sibling_unit in (("admin.town1", "learner.town1", "learner.town11", "town11"),
                                                   ("admin.apct", "learner.apct", "learner.ab", "ab")):
            client = self.signed_in(admin)
            for query in ("fmt=csv", "fmt=csv&summary=y"):
                response = client.get(f"/admin/hours/export?{query}")
                names = csv_column(response, "账号") if response.ok else set()
                self.report("4", f"unit admin {admin} exports /admin/hours/export?{query}",
                            f"{response.status_code}, accounts in it: {', '.join(sorted(names)) or 'none'}",
                            response.status_code == 200 and mine in names and sibling not in names)
            response = client.get(f"/admin/hours/export?fmt=csv&unit={quote(sibling_unit)}")
            self.report("4", f"unit admin {admin} exports sibling unit {sibling_unit!r}", str(response.status_code),
                        response.status_code == 403)

    # 5 ---------------------------------------------------------------------------------------------
    def signin(self):
        limit = self.instance.app.config["SIGNIN_LIMITS"]["password"][0]
        guessers = [self.visitor("127.0.0.2") for _ in range(40)]
        for guesser in guessers:
            guesser.read_token("/login")
        barrier = threading.Barrier(len(guessers))

        def guess(guesser):
            barrier.wait()
            return guesser.try_login("wang.teacher", "wrong-guess").status_code

        with ThreadPoolExecutor(len(guessers)) as pool:
            statuses = Counter(pool.map(guess, guessers))
        right = guessers[0].try_login("wang.teacher", PASSWORD)
        self.report("5", "40 parallel wrong passwords for one account from 127.0.0.2, then the right one",
                    f"{dict(sorted(statuses.items()))} (at most {limit} may be checked); right password: "
                    f"{right.status_code}, Retry-After {right.headers.get('Retry-After', '—')}",
                    statuses[400] <= limit and statuses[302] == 0 and right.status_code == 429
                    and int(right.headers.get("Retry-After", "0")) > 0)

        owner = self.visitor("127.0.0.3")
        owner.read_token("/login")
        signed = owner.try_login("wang.teacher", PASSWORD)
        self.report("5", "the owner signs in from 127.0.0.3 while 127.0.0.2 is throttled",
                    f"{signed.status_code}{' → ' + location(signed) if signed.is_redirect else ''}",
                    signed.status_code == 302)

        prober = self.visitor("127.0.0.4")
        pages = {}
        for name in ("wang.teacher", "wang.teachr"):
            prober.read_token("/login")
            response = prober.try_login(name, "wrong-guess")
            pages[name] = (response.status_code, comparable(response.text, name))
        same = pages["wang.teacher"] == pages["wang.teachr"]
        self.report("5", "wrong password for a real account vs an unknown one (127.0.0.4)",
                    f"{pages['wang.teacher'][0]} vs {pages['wang.teachr'][0]}, pages "
                    f"{'identical' if same else 'differ'}", same)

        address_limit = self.instance.app.config["SIGNIN_LIMITS"]["password-address"][0]
        sprayer = self.visitor("127.0.0.5")
        sprayer.read_token("/login")
        names = [f"user{n:03d}" for n in range(address_limit + 6)]
        sprayed = Counter(sprayer.try_login(name, "12345678").status_code for name in names)
        real = sprayer.try_login("cadre.session", PASSWORD)
        elsewhere = self.visitor("127.0.0.6")
        elsewhere.read_token("/login")
        other = elsewhere.try_login("cadre.session", PASSWORD)
        self.report("5", f"one password sprayed over {len(names)} accounts from 127.0.0.5",
                    f"{dict(sorted(sprayed.items()))} (address limit {address_limit}); a real account's right "
                    f"password from there: {real.status_code}, from 127.0.0.6: {other.status_code}",
                    sprayed[400] <= address_limit and sprayed[429] >= 1 and real.status_code == 429
                    and other.status_code == 302)

    # 6 and 10 --------------------------------------------------------------------------------------
    def packages(self):
        """Hostile packages, and a copy of the strict package under another folder name (so another
        slug, the same id), in one `lms import-content` run as the operator starts it."""
        from lms.courses.models import Course

        root = self.instance.folder
        hostile, outside = root / "hostile", root / "outside"
        outside.mkdir()
        shutil.copyfile(root / "clip.mp4", outside / "secret.mp4")
        climb = write_course(hostile / "climb", [{"video": root / "clip.mp4"}], title="越界字幕", audiences=["cadre"])
        edit_course(climb, lambda lessons: lessons[0].update(captions="../../x"))
        linked = write_course(hostile / "linked-video", [{"video": root / "clip.mp4"}], title="链接视频",
                              audiences=["cadre"])
        (linked / "01" / "video.mp4").unlink()
        (linked / "01" / "video.mp4").symlink_to(outside / "secret.mp4")
        slides = write_course(hostile / "dangling", [{}], title="悬空字幕", audiences=["cadre"])
        write_yaml(slides / "01" / "slides.yaml", {"slides": [{"title": "验证码", "caption": "验证码不告诉任何人。"}]})
        edit_course(slides, lambda lessons: lessons[0].update(slides="01/slides.yaml"))
        (slides / "01" / "captions.vtt").symlink_to(outside / "planted.vtt")
        shutil.copytree(root / "content" / "strict", hostile / "ai-again")

        db = self.db()
        courses_before = Course.query.count()
        db.session.remove()
        outside_before = sorted(p.name for p in outside.iterdir())
        result = subprocess.run([str(BIN / "lms"), "import-content", str(hostile)], env=self.instance.env,
                                cwd=root, capture_output=True, text=True, timeout=90)
        output = (result.stdout + result.stderr).replace(f"{hostile}/", "")
        db = self.db()
        courses_after = Course.query.count()
        db.session.remove()
        for defect, attack, named, refusal in (
                ("6", "captions: ../../x", "../../x", "指向课程文件夹之外"),
                ("6", "01/video.mp4 → a symlink out of the package", "01/video.mp4", "指向课程文件夹之外"),
                ("6", "01/captions.vtt beside slides.yaml → a dangling symlink out", "01/captions.vtt", "指向课程文件夹之外"),
                ("10", "the strict package's copy in folder ai-again (another slug, the same id)", "ai-again",
                 "--rename")):
            line = next((text for text in output.splitlines() if named in text), "")
            self.report(defect, f"lms import-content of a package with {attack}",
                        f"exit {result.returncode}, {('“' + line.strip() + '”') if line else 'file not named'}",
                        result.returncode != 0 and refusal in line)
        second = self.signed_in("cadre.media").get("/courses/ai-again")
        untouched = sorted(p.name for p in outside.iterdir()) == outside_before and not (root / "x").exists()
        self.report("6", "after those imports: files outside the packages, courses in the database and on the site",
                    f"outside/ {outside_before} → {sorted(p.name for p in outside.iterdir())}, ../../x "
                    f"{'exists' if (root / 'x').exists() else 'absent'}; courses {courses_before} → {courses_after}, "
                    f"/courses/ai-again {second.status_code}",
                    untouched and courses_after == courses_before and second.status_code == 404)

    def reimport(self):
        """The strict package re-imported without the quiz a learner has attempts of."""
        from lms.quizzes.models import Quiz, QuizAttempt

        package = self.instance.folder / "content" / "strict"
        db = self.db()
        attempts = QuizAttempt.query.filter_by(quiz_id=self.ids["quiz"]).count()
        db.session.remove()
        edit_course(package, lambda lessons: lessons[0].pop("quiz"))
        result = self.instance.app.test_cli_runner().invoke(args=["import-content", str(package)])
        db = self.db()
        quiz = db.session.get(Quiz, self.ids["quiz"])
        retired = quiz is not None and quiz.retired
        kept = QuizAttempt.query.filter_by(quiz_id=self.ids["quiz"]).count()
        db.session.remove()
        self.report("10", f"re-import without the quiz that has {attempts} attempts",
                    f"exit {result.exit_code}, quiz {'retired' if retired else 'not retired'}, attempts kept {kept}",
                    result.exit_code == 0 and retired and kept == attempts)

    # 9 ---------------------------------------------------------------------------------------------
    def backup(self):
        """`lms backup` of the live instance, restored into an empty one: the same ledger."""
        from flask_migrate import upgrade

        from lms import create_app
        from lms.records.models import TrainingRecord

        target = self.instance.folder / "backup"
        result = self.instance.app.test_cli_runner().invoke(args=["backup", str(target)])
        made = re.search(r"学时记录 (\d+) 条，校验和 (\w+)", result.output)
        linked = [str(p.relative_to(target)) for p in target.rglob("*") if p.is_file() and p.stat().st_nlink > 1]
        db = self.db()
        live = TrainingRecord.query.count()
        db.session.remove()
        restored = self.instance.folder / "restored"
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{restored / 'lms.sqlite3'}",
                          "DATA_DIR": str(restored / "data"), "SECRET_KEY": secrets.token_hex(16)})
        with app.app_context():
            with contextlib.redirect_stderr(io.StringIO()):
                upgrade(revision="heads")
            outcome = app.test_cli_runner().invoke(args=["restore", str(target)])
            back = re.search(r"学时记录 (\d+) 条，校验和 (\w+)", outcome.output)
            count = TrainingRecord.query.count()
            db.session.remove()
            db.engine.dispose()
        said = f"{made.group(1)} records, {made.group(2)}" if made else result.output.strip()[-120:]
        self.report("9", "lms backup of the live instance, then lms restore into an empty one",
                    f"backup exit {result.exit_code} ({said}), {len(linked)} hard links; restore exit "
                    f"{outcome.exit_code}, {count} of {live} records, checksum {back.group(2) if back else '—'}",
                    result.exit_code == 0 and outcome.exit_code == 0 and made is not None and back is not None
                    and made.groups() == back.groups() and count == live and not linked)

    # 7 ---------------------------------------------------------------------------------------------
    def reading_start(self):
        """Mark the text-only lesson read at once (refused); the attack ends in reading_finish."""
        client = self.signed_in("cadre.read")
        path = f"/courses/{self.ids['reading_slug']}/lessons/{self.ids['reading_lesson']}"
        client.read_token(path)
        opened = time.monotonic()
        response = client.post(path + "/read", data={"csrf_token": client.token})
        page = client.get(path).text
        wait = re.search(r"再过 (\d+) 秒", page)
        done = self.reading_state()
        self.report("7", "我已读完 on a text-only lesson right after opening it",
                    f"{response.status_code}, {'“再过 ' + wait.group(1) + ' 秒”' if wait else 'no wait shown'}, "
                    f"lesson {'complete' if done[0] else 'not complete'}, records: {done[1]}",
                    response.status_code == 303 and wait is not None and done == (False, 0))
        self.reading = {"client": client, "path": path, "ready_at": opened + int(wait.group(1)) + 1 if wait else 0}

    def reading_finish(self):
        if not self.reading:
            return
        client, path = self.reading["client"], self.reading["path"]
        time.sleep(max(0.0, self.reading["ready_at"] - time.monotonic()))
        response = client.post(path + "/read", data={"csrf_token": client.token})
        page = client.get(path).text
        done = self.reading_state()
        said = re.search(r"已完成本课程[^<]*|本节已完成[^<]*", page)
        self.report("7", "我已读完 again after the reading time the server measured",
                    f"{response.status_code}, {'“' + said.group(0) + '”' if said else 'no message'}, "
                    f"lesson {'complete' if done[0] else 'not complete'}, records: {done[1]}",
                    done == (True, 1))

    def reading_state(self) -> tuple[bool, int]:
        from lms.courses.models import LessonProgress
        from lms.records.models import TrainingRecord

        user_id = self.ids["users"]["cadre.read"]
        db = self.db()
        progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=self.ids["reading_lesson_id"]).first()
        state = (progress is not None and progress.completed_at is not None,
                 TrainingRecord.query.filter_by(user_id=user_id).count())
        db.session.remove()
        return state

    # 11 --------------------------------------------------------------------------------------------
    def smaller(self):
        learner = self.signed_in("cadre.media")
        response = learner.get("/my/hours?year=9999")
        self.report("11", "/my/hours?year=9999", str(response.status_code), response.status_code == 400)

        plain = requests.get(self.base + "/healthz", timeout=REQUEST_TIMEOUT)
        forwarded = requests.get(self.base + "/healthz", headers={"X-Forwarded-For": "203.0.113.9"},
                                 timeout=REQUEST_TIMEOUT)
        keys = sorted(forwarded.json())
        self.report("11", "anonymous /healthz from loopback, then with X-Forwarded-For: 203.0.113.9 "
                          "(no proxy declared)",
                    f"{plain.status_code} {sorted(plain.json())}, then {forwarded.status_code} {keys}",
                    "checks" in plain.json() and keys == ["status"])

        headers = requests.get(self.base + "/login", timeout=REQUEST_TIMEOUT).headers
        policy = headers.get("Content-Security-Policy", "")
        script_src = next((part.strip() for part in policy.split(";") if part.strip().startswith("script-src")), "")
        missing = [name for name, ok in (
            ("script-src 'self'", script_src == "script-src 'self'"),
            ("frame-ancestors", "frame-ancestors" in policy),
            ("nosniff", headers.get("X-Content-Type-Options") == "nosniff"),
            ("Referrer-Policy", bool(headers.get("Referrer-Policy")))) if not ok]
        self.report("11", "security headers of /login",
                    f"CSP “{policy[:60]}…”, Referrer-Policy {headers.get('Referrer-Policy')}, "
                    f"missing: {missing or 'none'}", not missing)

        session = self.signed_in("cadre.session")
        copied = session.http.cookies.get("session")
        session.post("/logout", data={"csrf_token": session.token})
        replay = self.visitor()
        replay.http.cookies.set("session", copied)
        response = replay.get("/my/hours")
        self.report("11", "session cookie copied before 退出, replayed after",
                    f"{response.status_code}{' → ' + location(response) if response.is_redirect else ''}",
                    response.status_code == 302 and location(response) == "/login")

        published = learner.get(f"/media/{self.ids['published_media']}", headers={"Range": "bytes=0-99"})
        draft = learner.get(f"/media/{self.ids['draft_media']}")
        self.report("11", "a learner fetches an unpublished course's video by its /media/ path",
                    f"{draft.status_code} (a published one: {published.status_code})",
                    draft.status_code == 404 and published.status_code == 206)

        response = self.signed_in("boss").get("/admin/hours/export?fmt=csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))) if response.ok else []
        correction = next((row for row in rows if row.get("类型") == "更正"), {})
        self.report("11", "CSV export of a correction (−1.00 学时)",
                    f"{response.status_code}, 学时 cell {correction.get('学时')!r}", correction.get("学时") == "-1.00")


def beat(client: Visitor, lesson: int, payload: dict) -> requests.Response:
    return client.post(f"/api/lessons/{lesson}/heartbeat", json=payload, headers={"X-CSRFToken": client.token})


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.is_dir() else []


def leaks(body: str, marks: list[str]) -> list[str]:
    return [mark for mark in marks if mark in body]


def quiz_path(rule, ids: dict) -> str:
    """A URL of a quiz rule, its arguments filled with the strict lesson's values."""
    known = {"lesson_id": ids["lesson"], "quiz_id": ids["quiz"], "slug": ids["strict_slug"],
             "lesson_slug": ids["lesson_slug"]}
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^:>]+:)?{name}>", str(known.get(name, ids["lesson"])), path)
    return path


def quiz_choices(page: str) -> dict[int, dict[str, str]]:
    """Question index → {choice text: the value this attempt names it by}."""
    choices: dict[int, dict[str, str]] = {}
    for index, value, text in CHOICE_RE.findall(page):
        choices.setdefault(int(index), {})[html.unescape(text)] = value
    return choices


def csv_column(response, column: str) -> set[str]:
    return {row[column] for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))}


def comparable(page: str, username: str) -> str:
    """A sign-in page with what may differ (CSRF token, echoed name, seconds to wait) blanked."""
    page = CSRF_RE.sub(lambda match: match.group(0).replace(match.group(1), ""), page).replace(username, "NAME")
    return re.sub(r"\d+ 秒", "N 秒", page)


# in running order: a throttled address never blocks a later attack; reading waits out its time meanwhile
ATTACKS = ["reading", "uploads", "smaller", "scoping", "quiz", "heartbeats", "replacement", "packages", "reimport",
           "backup", "signin"]


class TimeUp(Exception):
    pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1",
                        help="where gunicorn serves the throw-away instance: http://127.x.x.x[:port] "
                             "(default a free port on 127.0.0.1); anything not loopback is refused")
    parser.add_argument("--only", default=",".join(ATTACKS),
                        help=f"comma-separated attacks to run, of: {', '.join(ATTACKS)} (default all)")
    parser.add_argument("--time-limit", type=int, default=170, help="seconds the whole run may take (default 170)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance folder and print it")
    args = parser.parse_args(argv)
    base, host, port = loopback_base(args.url)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ATTACKS))
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(ATTACKS)}")

    def time_up(signum, frame):
        raise TimeUp(f"the run took longer than --time-limit {args.time_limit} s")

    signal.signal(signal.SIGALRM, time_up)
    signal.alarm(args.time_limit)
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="lms-attack-"))
    run = None
    try:
        instance = create_instance(folder)
        with instance.app.app_context(), Server(instance, host, port) as server:
            populate(instance)
            built = time.monotonic()
            server.wait_ready()
            print(f"instance built in {built - started:.0f} s; gunicorn -w 2 on {base}, ready "
                  f"{time.monotonic() - built:.0f} s later", flush=True)
            run = Run(instance, base)
            for name in (name for name in ATTACKS if name in chosen):
                attack = run.reading_start if name == "reading" else getattr(run, name)
                try:
                    attack()
                except TimeUp:
                    raise
                except Exception as exc:  # noqa: BLE001 — an attack that breaks is a FAIL, the others still run
                    run.report("-", f"{name} attacks", f"stopped by {type(exc).__name__}: {exc}", False)
            if "reading" in chosen:
                run.reading_finish()
    except TimeUp as exc:
        print(f"FAIL  {exc}", flush=True)
        return 1
    finally:
        signal.alarm(0)
        if args.keep:
            print(f"instance kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    failed = run.results.count(False)
    print(f"{len(run.results)} attacks, {failed} FAIL, {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
