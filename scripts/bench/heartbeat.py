#!/usr/bin/env python3
"""Heartbeat endpoint throughput against a bare Flask endpoint, both under gunicorn with the same
worker settings, driven by the same load generator in one run.

    .venv/bin/python scripts/bench/heartbeat.py [--viewers 300] [--seconds 20] [--workers 2] [--threads 4]
                                                [--worker-class gthread]
    .venv/bin/python scripts/bench/heartbeat.py --paced     # also 1,000 viewers at the real pace for 60 s

For each database (a temporary SQLite file; PostgreSQL too when 127.0.0.1:5432 is reachable, in a
throw-away database that is dropped afterwards) it seeds one course and N signed-in viewers, starts
gunicorn on the real app, drives N concurrent viewers each sending heartbeats back-to-back on a
keep-alive connection (a closed loop: the worst case, far above the real rate of one per 10 s), then
does the same against a bare Flask app whose endpoint returns the same JSON. It prints requests/s, the
workers' CPU per answer (steadier than requests/s when something else shares the cores), the ratio
real/bare, p50/p99 latency, and the load generator's own longest garbage collection (a pause of the
client, not of the server, that the latencies include). It also divides the CPU that the workers,
PostgreSQL, the load generator and the whole machine used by the answers (when the machine's share per
answer is its whole capacity, cores / rate, the cores were the limit), and measures what each endpoint
costs by itself, called in this process without gunicorn. At the real pace (--interval,
--paced-viewers; --paced is 1,000 viewers × one heartbeat per 10 s for 60 s) each heartbeat opens its
own connection, as a browser does after its keep-alive lapsed (gunicorn's is 5 s); the connect counts
in its latency, and each viewer's first heartbeat (its player takes the lease, its rows are made if it has
none) is also counted apart from the later ones. Only 127.0.0.1 is used; every run is bounded in time.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import runpy
import secrets
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from signin import processes_cpu_seconds, workers_cpu_seconds  # noqa: E402  (this folder's sign-in bench)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
USER_AGENT = "kepu-bench"
BARE_APP = textwrap.dedent('''
    from flask import Flask, jsonify, request

    app = Flask(__name__)

    @app.post("/api/lessons/<int:lesson_id>/heartbeat")
    def heartbeat(lesson_id):
        request.get_json(silent=True)
        return jsonify(credited_seconds=0.5, watched_seconds=120.5, watched_share=0.0335,
                       video_done=False, lesson_completed=False, course_completed=False)
''')


class ClientPauses:
    """The longest garbage collection in this process (the load generator) since the last reset: while
    it runs, no answer is read, so it would count as the server's latency."""

    def __init__(self):
        self.longest, self._started = 0.0, None
        gc.callbacks.append(self._callback)

    def _callback(self, phase, _info):
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.longest = max(self.longest, time.perf_counter() - self._started)

    def reset(self) -> float:
        longest, self.longest = self.longest, 0.0
        return longest


CLIENT_PAUSES = ClientPauses()


def cpu_seconds() -> dict:
    """CPU used so far by this process (the load generator), by PostgreSQL's processes, and by the whole
    machine (busy = not idle, not waiting for the disk), from Linux /proc: where the cores went."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    own = os.times()
    return {"client": own.user + own.system,
            "postgres": processes_cpu_seconds(lambda name, _ppid: name == "postgres"),
            "machine": (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict, viewers: int) -> tuple[int, list[tuple[str, str]]]:
    """Migrate, create one ready 1-hour video lesson and `viewers` users; return (lesson id, [(cookie, csrf)])."""
    os.environ.update(env)
    from flask import g, session
    from flask_login.utils import _create_identifier
    from flask_migrate import upgrade
    from flask_wtf.csrf import generate_csrf
    from werkzeug.security import generate_password_hash

    from lms import create_app
    from lms.accounts.models import User
    from lms.accounts.services import get_or_create_unit
    from lms.courses.models import Course, CourseAudience, Lesson
    from lms.media.models import VideoAsset
    from lms.extensions import db

    app = create_app({"SECRET_KEY": env["LMS_SECRET_KEY"]})
    with app.app_context():
        upgrade(revision="heads")
        unit = get_or_create_unit("bench", "压测单位", "county")
        course = Course(slug="bench", title="压测课程", summary="", credit_hours=1, strict=True, mandatory=True)
        course.audience_rows = [CourseAudience(audience="cadre")]
        video = VideoAsset(status="ready", duration=3600.0, renditions_json='{"360p": "bench/360p.mp4"}')
        lesson = Lesson(course=course, slug="l1", title="第一课", video=video)
        db.session.add_all([course, video, lesson])
        password = generate_password_hash("bench-password", method="pbkdf2:sha256:1000")
        users = [User(username=f"viewer{n:04d}", full_name=f"观众{n}", password_hash=password, role="learner",
                      audience="cadre", unit=unit) for n in range(viewers)]
        db.session.add_all(users)
        db.session.commit()
        serializer = app.session_interface.get_signing_serializer(app)
        credentials = []
        for user in users:  # what a sign-in leaves in the session cookie, without 300 sign-in requests
            with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"},
                                          headers={"User-Agent": USER_AGENT}):
                g.pop("csrf_token", None)  # g lives in the app context shared by these request contexts
                token = generate_csrf()
                session.update({"_user_id": user.get_id(), "_fresh": True, "_id": _create_identifier()})
                credentials.append((serializer.dumps(dict(session)), token))
        lesson_id = lesson.id
        db.session.remove()
        db.engine.dispose()
    return lesson_id, credentials


def by_itself(env: dict, lesson_id: int, credentials, count: int = 3000) -> dict:
    """CPU per answer of the heartbeat and of the bare endpoint, each called through its WSGI app in this
    process: one thread, no gunicorn, no other writer (PostgreSQL's processes counted too). What each
    costs by itself, before serving and concurrency add theirs."""
    from werkzeug.test import EnvironBuilder

    from lms import create_app
    from lms.courses import services
    from lms.extensions import db

    app = create_app({"SECRET_KEY": env["LMS_SECRET_KEY"]})
    bare = {"__name__": "bare_app"}
    exec(BARE_APP, bare)  # noqa: S102  (the bench's own app, above)
    path = f"/api/lessons/{lesson_id}/heartbeat"
    viewers = [(cookie, csrf, uuid.uuid4().hex) for cookie, csrf in credentials]

    def requests(seq: int) -> list[dict]:  # one heartbeat from each viewer, the seq-th of its player
        return [EnvironBuilder(
            path=path, method="POST", content_type="application/json", environ_base={"REMOTE_ADDR": "127.0.0.1"},
            headers={"Cookie": f"session={cookie}", "X-CSRFToken": csrf, "User-Agent": USER_AGENT},
            data=json.dumps({"player": player, "seq": seq, "start": seq == 1, "position": seq * 0.01,
                             "intervals": [[(seq - 1) * 0.01, seq * 0.01]]})).get_environ()
            for cookie, csrf, player in viewers]

    def cost(wsgi_app, environs) -> float:
        answered = []
        before, postgres = time.process_time(), cpu_seconds()["postgres"]
        for environ in environs:
            b"".join(wsgi_app(environ, lambda status, headers, exc_info=None: answered.append(status)))
        spent = time.process_time() - before + cpu_seconds()["postgres"] - postgres
        if set(answered) != {"200 OK"}:
            raise RuntimeError(f"in-process heartbeats answered {sorted(set(answered))}")
        return spent * 1000 / len(environs)

    try:
        cost(app.wsgi_app, requests(1))  # the first heartbeats make their rows
        rounds = range(2, max(1, count // len(viewers)) + 2)
        return {"kepu heartbeat": cost(app.wsgi_app, [environ for seq in rounds for environ in requests(seq)]),
                "bare Flask": cost(bare["app"].wsgi_app, [environ for seq in rounds for environ in requests(seq)])}
    finally:
        with app.app_context():
            services._drop_heartbeat_connection()
            db.session.remove()
            db.engine.dispose()


def start_gunicorn(app_spec: str, env: dict, workers: int, threads: int, cwd: Path, worker_class: str, log: Path):
    """gunicorn on a free loopback port, its log (warnings, errors and their tracebacks) written to `log`: a
    pipe nobody reads would stop the workers once it filled."""
    port = free_port()
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--workers", str(workers), "--threads", str(threads),
             "--worker-class", worker_class, "--keep-alive", "5", "--backlog", "2048", "--log-level", "warning",
             "--bind", f"127.0.0.1:{port}", app_spec],
            cwd=str(cwd), env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start: " + log.read_text(errors="replace")[-2000:])


def first_error(log: Path, lines: int = 40) -> str:
    """The first traceback in a gunicorn log (where an answer that was not 200 can be explained), or ''."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    start = next((n for n, line in enumerate(text) if "Traceback" in line), None)
    return "" if start is None else "\n".join(text[max(0, start - 1):start + lines])


async def viewer(port: int, path: str, cookie: str, csrf: str, stop_at: float, firsts: list, later: list,
                 errors: list, interval: float = 0.0):
    """One viewer on one keep-alive connection: heartbeats until stop_at, back to back (interval 0)
    or one every `interval` seconds like a real player (first one at a random offset)."""
    if interval:
        await asyncio.sleep(random.uniform(0, interval))
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    player, seq, position, last = uuid.uuid4().hex, 0, 0.0, time.monotonic()
    try:
        while time.monotonic() < stop_at:
            seq += 1
            now = time.monotonic()  # an honest player: it claims the time that really passed
            played, last = (0.0 if seq == 1 else min(now - last, 30.0)), now
            if position + played > 3590:
                position = 0.0
            body = json.dumps({"player": player, "seq": seq, "start": seq == 1, "position": position + played,
                               "intervals": [[round(position, 3), round(position + played, 3)]]}).encode()
            position += played
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
                       f"Cookie: session={cookie}\r\nX-CSRFToken: {csrf}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            if not interval or seq > 1:
                started = time.monotonic()
            if interval and seq > 1:  # the keep-alive lapsed between beats: a new connection, timed
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:  # the server closed the keep-alive connection: reconnect
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            length, close = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            payload = await reader.readexactly(length)
            # a viewer's first heartbeat (its player takes the lease, its rows are made) is counted apart
            (firsts if seq == 1 else later).append(time.monotonic() - started)
            status = int(status_line.split()[1])
            if status != 200:
                errors.append(status)
                if len(errors) == 1:
                    print(f"first non-200 answer: {status} {payload[:300].decode(errors='replace')}")
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if interval:
                writer.close()
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        writer.close()


async def drive(port: int, path: str, credentials, seconds: float, interval: float = 0.0):
    firsts, later, errors = [], [], []
    CLIENT_PAUSES.reset()
    stop_at = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(*(viewer(port, path, cookie, csrf, stop_at, firsts, later, errors, interval)
                           for cookie, csrf in credentials), return_exceptions=False)
    elapsed = time.monotonic() - started
    latencies = firsts + later
    return {"rps": len(latencies) / elapsed, "p50": _percentile(latencies, 0.50), "p99": _percentile(latencies, 0.99),
            "n": len(latencies), "errors": len(errors), "statuses": sorted(set(errors)),
            "client_gc_ms": CLIENT_PAUSES.reset() * 1000, "firsts": firsts, "later": later}


def _percentile(seconds: list, share: float) -> float:
    """In ms; nan for none."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else float("nan")


def measure(label: str, env: dict, args, workdir: Path):
    lesson_id, credentials = seed(env, max(args.viewers, args.paced_viewers if args.interval else 0))
    path = f"/api/lessons/{lesson_id}/heartbeat"
    (workdir / "bare_app.py").write_text(BARE_APP)
    alone = by_itself(env, lesson_id, credentials[:args.viewers])
    # seeding and the step above left whole apps' objects in this process, none of them garbage: out of the
    # collector's way, or a full collection stops the load generator for 50-100 ms (seen), counted as latency
    gc.collect()
    gc.freeze()
    results = {}
    for name, spec, cwd in (("kepu heartbeat", "wsgi:app", ROOT), ("bare Flask", "bare_app:app", workdir)):
        log = workdir / f"gunicorn-{label}-{spec.partition(':')[0]}.log"
        proc, port = start_gunicorn(spec, env, args.workers, args.threads, cwd, args.worker_class, log)
        try:
            asyncio.run(drive(port, path, credentials[:5], 2))  # warm up (imports, connections)
            cpu_before, others_before = workers_cpu_seconds(proc.pid), cpu_seconds()
            results[name] = result = asyncio.run(drive(port, path, credentials[:args.viewers], args.seconds))
            # the workers' own CPU per answer: steadier than req/s when something else shares the cores
            answers = max(1, result["n"])
            result["cpu_ms"] = (workers_cpu_seconds(proc.pid) - cpu_before) * 1000 / answers
            result.update({key + "_ms": (value - others_before[key]) * 1000 / answers
                           for key, value in cpu_seconds().items()})
            if args.interval and name == "kepu heartbeat":
                paced = asyncio.run(drive(port, path, credentials[:args.paced_viewers], args.paced_seconds,
                                          args.interval))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        if result["errors"] or (name == "kepu heartbeat" and args.interval and paced["errors"]):
            print(f"{name}: answers that were not 200; gunicorn's log, {log}, from its first traceback:\n"
                  + (first_error(log) or "(no traceback)"))
    real, bare = results["kepu heartbeat"], results["bare Flask"]
    print(f"\n== {label}: {args.viewers} concurrent viewers, {args.seconds:.0f} s each, gunicorn "
          f"--workers {args.workers} --threads {args.threads} --worker-class {args.worker_class}, {os.cpu_count()} CPUs")
    print(f"{'endpoint':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'non-200':>9}"
          f"{'worker CPU ms/req':>19}{'client GC ms':>14}")
    for name, r in results.items():
        print(f"{name:<16}{r['rps']:>10.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}{r['n']:>10}{r['errors']:>9}"
              f"{r['cpu_ms']:>19.3f}{r['client_gc_ms']:>14.1f}"
              + (f"  {r['statuses']}" if r["errors"] else ""))
    print("CPU per answer (ms) — workers / PostgreSQL / load generator / whole machine busy; "
          f"the machine has {os.cpu_count() * 1000 / bare['rps']:.3f} ms of CPU per answer at the bare endpoint's rate:")
    for name, r in results.items():
        print(f"  {name:<16}{r['cpu_ms']:.3f} / {r['postgres_ms']:.3f} / {r['client_ms']:.3f} / {r['machine_ms']:.3f}")
    # if serving a heartbeat cost the machine what serving the bare answer costs beyond the bare app itself
    serving = bare["machine_ms"] - alone["bare Flask"]
    print(f"by itself (in this process, one thread, no gunicorn): heartbeat {alone['kepu heartbeat']:.3f} ms of CPU, "
          f"bare {alone['bare Flask']:.3f} ms; with gunicorn and the load generator adding the bare answer's "
          f"{serving:.3f} ms and nothing more, the ratio could reach "
          f"{bare['machine_ms'] / (serving + alone['kepu heartbeat']):.2f}")
    print(f"throughput ratio kepu/bare = {real['rps'] / bare['rps']:.2f}  (aim ≥ 0.5); "
          f"worker CPU per answer bare/kepu = {bare['cpu_ms'] / real['cpu_ms']:.2f}")
    if args.interval:
        print(f"real pace: {args.paced_viewers} viewers × one heartbeat per {args.interval:.0f} s for "
              f"{args.paced_seconds:.0f} s → {paced['rps']:.0f} req/s, p50 {paced['p50']:.1f} ms, "
              f"p99 {paced['p99']:.1f} ms, non-200 {paced['errors']}; the load generator's longest garbage "
              f"collection {paced['client_gc_ms']:.1f} ms")
        print(f"  of which each viewer's first heartbeat (its player takes the lease; rows made where it has none): "
              f"{len(paced['firsts'])}, p50 {_percentile(paced['firsts'], 0.5):.1f} ms, p99 "
              f"{_percentile(paced['firsts'], 0.99):.1f} ms; the later ones: {len(paced['later'])}, p50 "
              f"{_percentile(paced['later'], 0.5):.1f} ms, p99 {_percentile(paced['later'], 0.99):.1f} ms")
    return real["rps"] / bare["rps"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0,
                        help="also measure latency at a real player's pace (0 to skip)")
    parser.add_argument("--paced-seconds", type=float, default=30.0)
    parser.add_argument("--paced-viewers", type=int, default=None, help="viewers at the real pace (default --viewers)")
    parser.add_argument("--paced", action="store_true",
                        help="the issue's real-pace target: 1,000 viewers, one heartbeat each per 10 s, for 60 s")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--worker-class", default=runpy.run_path(str(ROOT / "gunicorn.conf.py"))["worker_class"],
                        help="for both apps (default: gunicorn.conf.py's, as deployed)")
    args = parser.parse_args()
    if args.paced:
        args.interval, args.paced_viewers, args.paced_seconds = 10.0, 1000, 60.0
    if args.paced_viewers is None:
        args.paced_viewers = args.viewers
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="kepu-bench-") as tmp:
        tmp = Path(tmp)
        base_env = {"LMS_SECRET_KEY": secrets.token_hex(16), "LMS_INSTANCE_DIR": str(tmp / "instance"),
                    "LMS_DATA_DIR": str(tmp / "data")}
        sqlite_env = {**base_env, "LMS_DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}"}
        if not args.no_sqlite:
            measure("SQLite", sqlite_env, args, tmp)
        if args.no_postgres:
            return
        try:
            import sqlalchemy

            admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            connection = admin.connect()
        except Exception as exc:  # noqa: BLE001
            print(f"\n== PostgreSQL: not reachable at 127.0.0.1:5432 ({exc.__class__.__name__}); skipped")
            return
        name = f"kepu_bench_{uuid.uuid4().hex[:10]}"
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        try:
            pg_env = {**base_env, "LMS_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + "/" + name,
                      "LMS_INSTANCE_DIR": str(tmp / "instance-pg")}
            measure("PostgreSQL", pg_env, args, tmp)
        finally:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.close()
            admin.dispose()


if __name__ == "__main__":
    main()
