"""One simulated learner, as a browser and lms/static/js/player.js behave, over aiohttp.

Signs in (GET /login for the CSRF token, POST /login), browses the catalogue and a course, opens each
lesson (page, poster, captions and the video through Range requests, read to the end), plays it at
1.0× in real time and sends what player.js sends: a start heartbeat on play, then every 10 s the
intervals really played, and one more at the end or when leaving (X-CSRFToken from the page's meta
tag). Unanswered heartbeats stay queued and are sent again in order, as the player's localStorage
queue does (after a network error or a 5xx); a 409 drops them. Then the quiz through the server's
attempt flow (tests/quizzing.py reads the page), sometimes wrong first. Sometimes it reloads the
lesson mid-video (a new player, resuming where the server says).

Every response is recorded in `Run` (kind, status, latency); heartbeat answers, course completions
announced to the learner and media byte counts are kept apart for run.py's checks.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
import time
import uuid
from dataclasses import dataclass, field

import aiohttp

from tests.quizzing import RIGHT, WRONG, QuizPage

CSRF_FORM = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
HEARTBEAT_URL = re.compile(r'data-heartbeat-url="/api/lessons/(\d+)/heartbeat"')
RESUME_AT = re.compile(r'data-resume-at="([\d.]+)"')
DURATION = re.compile(r'data-duration="([\d.]+)"')
MEDIA = re.compile(r'(?:src|poster)="(/media/[^"]+)"')
HEARTBEAT_EVERY = 10.0  # player.js: setInterval(..., 10000)
RETRY_WAIT = 60  # LMS_QUIZ_RETRY_WAIT_SECONDS that run.py sets: a strict course's wait after a failed quiz
ATTEMPTS = 6  # tries of one request when no answer comes (connection dropped, worker killed)


@dataclass
class CourseInfo:
    slug: str
    hours: float
    lessons: list[str]


@dataclass
class Run:
    """What every learner saw, for the report and the checks."""
    started: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    responses: list = field(default_factory=list)  # (seconds since start, kind, status, ms, detail)
    acked: dict = field(default_factory=dict)  # (user, lesson id) -> [sum of credited_seconds, last watched_seconds, 200s]
    unsettled: dict = field(default_factory=dict)  # (user, lesson id) -> heartbeats never answered
    completions: set = field(default_factory=set)  # (user, course slug) announced as completed
    media: list = field(default_factory=list)  # (relpath, status, Content-Length, Content-Range, bytes read)
    lesson_course: dict = field(default_factory=dict)  # lesson id -> course slug

    def note(self, kind: str, status: int, seconds: float, detail: str = "") -> None:
        self.responses.append((round(time.monotonic() - self.started, 3), kind, status, round(seconds * 1000, 2),
                               detail))


class Learner:
    def __init__(self, run: Run, http: aiohttp.ClientSession, base: str, username: str, password: str, rng):
        self.run, self.http, self.base, self.username, self.password, self.rng = run, http, base, username, password, rng
        self.csrf = ""

    # ---- one request, recorded; sent again while no answer comes ------------------------------
    async def request(self, kind: str, method: str, path: str, *, media: bool = False, retry_5xx: bool = False,
                      **kwargs) -> tuple[int, str | bytes | None, aiohttp.typedefs.LooseHeaders | None]:
        for attempt in range(ATTEMPTS):
            started = time.monotonic()
            try:
                async with self.http.request(method, self.base + path, allow_redirects=False, **kwargs) as answer:
                    body = await (answer.read() if media else answer.text())
                    self.run.note(kind, answer.status, time.monotonic() - started)
                    if media:
                        self.run.media.append((path, answer.status, answer.headers.get("Content-Length"),
                                               answer.headers.get("Content-Range"), len(body)))
                    if answer.status >= 500 and retry_5xx and attempt < ATTEMPTS - 1:
                        await asyncio.sleep(2 ** attempt)
                        continue
                    return answer.status, body, answer.headers
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.run.note(kind, 0, time.monotonic() - started, type(exc).__name__)
                await asyncio.sleep(min(2 ** attempt, 8))
        return 0, None, None

    async def page(self, kind: str, path: str) -> str:
        status, body, _headers = await self.request(kind, "GET", path)
        if status == 200:
            match = CSRF_META.search(body)
            self.csrf = match.group(1) if match else self.csrf
        return body if status == 200 else ""

    async def pause(self, seconds: float) -> bool:
        """Wait, or less when the run is stopping; False once it is."""
        try:
            await asyncio.wait_for(self.run.stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            return True
        return False

    # ---- the session ------------------------------------------------------------------------------
    async def sign_in(self) -> bool:
        for _ in range(3):
            status, body, _ = await self.request("login_page", "GET", "/login")
            token = CSRF_FORM.search(body or "")
            if not token:
                continue
            status, _body, headers = await self.request(
                "login", "POST", "/login",
                data={"username": self.username, "password": self.password, "csrf_token": token.group(1)})
            if status == 302:
                await self.page("home", headers["Location"])
                return True
            if status == 429:
                await self.pause(float(headers.get("Retry-After", 5)))
        return False

    async def live(self, courses: list[CourseInfo]) -> None:
        if not await self.sign_in():
            return
        await self.page("catalogue", "/")
        for course in self.rng.sample(courses, len(courses)):
            if self.run.stop.is_set():
                return
            await self.page("course", f"/courses/{course.slug}")
            for lesson_slug in course.lessons:
                if self.run.stop.is_set():
                    return
                lesson_id = await self.watch(course, lesson_slug)
                if lesson_id is None or self.run.stop.is_set():
                    return
                await self.quiz(lesson_id, course)
        await self.page("my_hours", "/my/hours")
        while await self.pause(30 + self.rng.random() * 30):  # done: looks in now and then
            await self.page("catalogue", "/")

    # ---- a lesson: page, media, heartbeats at the real pace ---------------------------------------
    async def open_lesson(self, course: CourseInfo, lesson_slug: str, kind: str = "lesson"):
        text = await self.page(kind, f"/courses/{course.slug}/lessons/{lesson_slug}")
        lesson = HEARTBEAT_URL.search(text)
        if lesson is None:
            return None
        lesson_id = int(lesson.group(1))
        self.run.lesson_course[lesson_id] = course.slug
        for path in dict.fromkeys(html.unescape(p) for p in MEDIA.findall(text)):
            if path.endswith(".mp4"):  # as a browser plays it: from the start, then a seek further on
                await self.request("video", "GET", path, media=True, headers={"Range": "bytes=0-"})
                await self.request("video", "GET", path, media=True, headers={"Range": "bytes=1000-50999"})
            else:
                await self.request("poster" if path.endswith(".jpg") else "captions", "GET", path, media=True)
        return lesson_id, float(RESUME_AT.search(text).group(1)), float(DURATION.search(text).group(1))

    async def heartbeat(self, lesson_id: int, body: dict) -> dict | None:
        """POST one heartbeat; the answer's JSON on 200. Sent again after no answer or a 5xx, as the
        player keeps it queued; anything else settles it."""
        status, text, _ = await self.request(
            "heartbeat", "POST", f"/api/lessons/{lesson_id}/heartbeat", retry_5xx=True, data=json.dumps(body),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf})
        key = (self.username, lesson_id)
        if status == 0 or status >= 500:
            self.run.unsettled[key] = self.run.unsettled.get(key, 0) + 1
            return None
        if status != 200:
            return None
        result = json.loads(text)
        acked = self.run.acked.setdefault(key, [0.0, 0.0, 0])
        acked[0] += result["credited_seconds"]
        acked[1] = result["watched_seconds"]
        acked[2] += 1
        if result.get("course_completed"):
            self.run.completions.add((self.username, self.run.lesson_course[lesson_id]))
        return result

    async def watch(self, course: CourseInfo, lesson_slug: str) -> int | None:
        opened = await self.open_lesson(course, lesson_slug)
        if opened is None:
            return None
        lesson_id, resume, duration = opened
        reload_at = self.rng.uniform(5, duration) if self.rng.random() < 0.15 else None
        while True:
            player, seq = uuid.uuid4().hex[:24], 1
            position = resume if 1 < resume < duration - 2 else 0.0
            body = {"player": player, "seq": seq, "t": int(time.time() * 1000), "start": True, "intervals": [],
                    "position": position, "rate": 1}
            await self.heartbeat(lesson_id, body)
            played_from, clock = position, time.monotonic()
            reloading = False
            while position < duration:
                if not await self.pause(min(HEARTBEAT_EVERY, duration - position + 0.05)):
                    reloading = None  # the run is over: the page is left (pagehide sends what was played)
                now = time.monotonic()
                position = min(duration, position + (now - clock))
                clock = now
                seq += 1
                body = {"player": player, "seq": seq, "t": int(time.time() * 1000), "start": False,
                        "intervals": [[round(played_from, 3), round(position, 3)]], "position": round(position, 3),
                        "rate": 1}
                played_from = position
                result = await self.heartbeat(lesson_id, body)
                if reloading is None:
                    return None
                if reload_at is not None and position >= reload_at and position < duration:
                    reloading, reload_at = True, None
                    break
            if not reloading:
                return lesson_id if result and result.get("video_done") else None
            opened = await self.open_lesson(course, lesson_slug, kind="lesson_reload")
            if opened is None:
                return None
            lesson_id, resume, duration = opened

    # ---- the quiz: the server's attempt flow --------------------------------------------------------
    async def quiz(self, lesson_id: int, course: CourseInfo) -> None:
        answers = RIGHT if self.rng.random() < 0.75 else WRONG
        for _ in range(3):
            text = await self.page("quiz_open", f"/lessons/{lesson_id}/quiz")
            quiz = QuizPage(text)
            token = CSRF_FORM.search(text)
            if quiz.attempt is None or token is None:  # e.g. a strict course's wait after a failed try
                if 'id="quiz-wait"' in text and await self.pause(RETRY_WAIT + 5):
                    continue
                return
            form = [(name, value) for name, values in quiz.form(token.group(1), answers).items()
                    for value in (values if isinstance(values, list) else [values])]
            status, result, _ = await self.request("quiz_submit", "POST", f"/lessons/{lesson_id}/quiz", data=form)
            if status != 200:
                return
            if "🎉" in result:  # 恭喜完成课程《…》，获得 … 学时
                self.run.completions.add((self.username, course.slug))
            if "通过了" in result:
                return
            answers = RIGHT
            if 'id="quiz-wait"' in result and not await self.pause(RETRY_WAIT + 5):  # a strict course: wait
                return
