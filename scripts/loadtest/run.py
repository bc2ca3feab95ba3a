#!/usr/bin/env python3
"""Load and fault test: simulated learners against gunicorn (4 workers) and one `lms worker`.

    .venv/bin/pip install -e ".[load]"          # aiohttp, the load generator's client
    .venv/bin/python scripts/loadtest/run.py [--learners 1000] [--minutes 5] [--db sqlite|postgres] [--faults]

Not part of the test suite. It builds a throw-away instance: a temporary SQLite file, or with
--db postgres a private PostgreSQL cluster (initdb in a temporary folder, on a free loopback port,
so that restarting it disturbs no other database on the machine). Seeded with two course packages
(tests/conftest.py write_package) of real videos that ffmpeg makes (--video-seconds long, 40 s for 5 minutes): one
ordinary, one strict (1.0× only, a failed quiz waits LMS_QUIZ_RETRY_WAIT_SECONDS=60), and the learners
(scripts/bench/signin.py seed: one Argon2id hash stored for all). Served as scripts/bench/signin.py
serves it: gunicorn with gunicorn.conf.py, the per-address sign-in limit raised (every learner comes
from 127.0.0.1). Learners start spread over the first fifth of the run (at most 90 s) and behave as
scripts/loadtest/learner.py says. When the time is up each leaves its page (a last heartbeat); the
run waits up to 90 s for answers, then stops everything it started.

--faults, during the run: SIGKILL one gunicorn worker at 30 % (the master starts another), SIGKILL
`lms worker` at 50 % and start it again, and with --db postgres restart PostgreSQL (pg_ctl restart
-m fast) at 70 %.

It prints requests by kind, status counts, p50/p95/p99 per kind, then checks, and exits 1 when one fails:
- no 5xx (each printed); no request left without an answer, except those a SIGKILLed gunicorn worker
  had accepted (noticed within AROUND_KILL_SECONDS of the kill; counted and printed);
- every heartbeat answered 200 is counted: per learner and lesson, lesson_progress.watched_seconds ≥ the
  sum of the credited_seconds the server acknowledged, and equals the last acknowledged watched_seconds;
  no watched time in the database that no answer acknowledged;
- the course completions announced to learners (heartbeat course_completed, the quiz's 🎉 line) are
  exactly the training_record rows, and their 学时 total is the same; no completion_key twice;
- no partial video: each media answer's bytes equal its Content-Length, and the file's size (200) or
  the range in its Content-Range (206).
Every response is also written to a CSV (--record). Only 127.0.0.1 is used.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts" / "bench")]

import signin  # noqa: E402  scripts/bench/signin.py: seeding learners, serving with gunicorn.conf.py
from serve import worker_pids  # noqa: E402  scripts/bench/serve.py: a gunicorn master's workers

from pgcluster import PrivatePostgres, Unavailable  # noqa: E402  scripts/loadtest/pgcluster.py

WORKERS = 4
GRACE_SECONDS = 90
KEEPALIVE_SECONDS = 3.5  # the client's idle-connection limit, under gunicorn.conf.py's keepalive
AROUND_KILL_SECONDS = 10  # a no-answer this soon after SIGKILLing a gunicorn worker is that kill's
COURSES = [  # slug, 学时, extra course.yaml fields
    ("loadtest-a", 0.5, {}),
    ("loadtest-b", 1.0, {"strict": True, "mandatory": True}),
]
LESSONS = 3


# ---- the instance -----------------------------------------------------------------------------------
def make_video(path: Path, seconds: float) -> Path:
    """A real H.264/AAC clip, as tests/conftest.py's test_video makes (longer)."""
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size=320x240:rate=25:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(path)], check=True)
    return path


def seed(env: dict, learners: int, tmp: Path, video_seconds: float) -> tuple[list[str], list]:
    """The learners (signin.seed: migrations, unit, accounts) and the course packages."""
    from tests.conftest import write_package

    names = signin.seed(env, learners, old_hashes=False)[signin.WARM_UP:]
    from learner import CourseInfo

    from lms import create_app
    from lms.courses.importer import import_package
    from lms.extensions import db

    video = make_video(tmp / "clip.mp4", video_seconds)
    app = create_app()
    courses = []
    with app.app_context():
        for slug, hours, fields in COURSES:
            folder = write_package(tmp / "content", video, slug=slug, audiences=("farmer",), lessons=LESSONS,
                                   credit_hours=hours, title=f"压测课程 {slug}", **fields)
            import_package(folder)
            courses.append(CourseInfo(slug, hours, [f"lesson-{n}" for n in range(1, LESSONS + 1)]))
        db.session.remove()
        db.engine.dispose()
    return names, courses


def start_worker(tmp: Path, env: dict) -> subprocess.Popen:
    log = open(tmp / "worker.log", "ab")
    return subprocess.Popen([str(ROOT / ".venv/bin/lms"), "worker"], cwd=str(tmp), env={**os.environ, **env},
                            stdout=log, stderr=subprocess.STDOUT)


# ---- the run ----------------------------------------------------------------------------------------
async def faults(run, seconds: float, master: int, state: dict, tmp: Path, env: dict, pg: PrivatePostgres | None,
                 timeline: list) -> None:
    loop = asyncio.get_running_loop()

    def at(share):
        return max(0.0, run.started + share * seconds - time.monotonic())

    def log(text):
        timeline.append(f"{time.monotonic() - run.started:6.1f} s  {text}")

    await asyncio.sleep(at(0.3))
    victim = worker_pids(master)[0]
    os.kill(victim, signal.SIGKILL)
    run.worker_killed_at = time.monotonic() - run.started  # its in-flight requests can get no answer
    log(f"SIGKILL gunicorn worker {victim}")
    for _ in range(600):
        await asyncio.sleep(0.1)
        current = worker_pids(master)
        if len(current) >= WORKERS and victim not in current:
            log(f"gunicorn has {len(current)} workers again")
            break
    await asyncio.sleep(at(0.5))
    old = state["worker"]
    old.kill()
    await loop.run_in_executor(None, old.wait)
    log(f"SIGKILL lms worker {old.pid}")
    await asyncio.sleep(2)
    state["worker"] = start_worker(tmp, env)
    log(f"lms worker started again: {state['worker'].pid}")
    if pg is not None:
        await asyncio.sleep(at(0.7))
        started = time.monotonic()
        log("restarting PostgreSQL (pg_ctl restart -m fast)")
        await loop.run_in_executor(None, pg.restart)
        log(f"PostgreSQL back after {time.monotonic() - started:.1f} s")


async def drive(base: str, names: list[str], courses, seconds: float, fault_args):
    import aiohttp

    from learner import Learner, Run

    run = Run()
    rng = random.Random(12)
    ramp = min(90.0, seconds / 5)
    # Idle connections are dropped before gunicorn's keepalive (5 s, gunicorn.conf.py) closes them: else a
    # request sent on a connection the server is closing that instant fails in a few ms (seen at 2 per
    # 4,000 answers), which a browser retries unseen and this client would count as unanswered.
    connector = aiohttp.TCPConnector(limit=0, force_close=False, keepalive_timeout=KEEPALIVE_SECONDS)
    timeout = aiohttp.ClientTimeout(total=60)

    async def one(name, delay, seed):
        await asyncio.sleep(delay)
        async with aiohttp.ClientSession(connector=connector, connector_owner=False, timeout=timeout,
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await Learner(run, http, base, name, signin.PASSWORD, random.Random(seed)).live(courses)

    tasks = [asyncio.create_task(one(name, ramp * n / len(names), rng.random())) for n, name in enumerate(names)]
    fault_task = asyncio.create_task(faults(run, seconds, *fault_args)) if fault_args else None
    await asyncio.sleep(seconds)
    run.stop.set()
    done, pending = await asyncio.wait(tasks, timeout=GRACE_SECONDS)
    for task in pending:
        task.cancel()
    run.cut_short = len(pending)
    for task in done:
        if task.exception():
            run.crashed = getattr(run, "crashed", []) + [repr(task.exception())]
    if fault_task:
        if not fault_task.done():
            fault_task.cancel()
        elif fault_task.exception():
            raise fault_task.exception()
    await connector.close()
    return run


# ---- the checks and the report ------------------------------------------------------------------------
def pct(values, p):
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


def report_requests(run) -> list[str]:
    failures = []
    by_kind = defaultdict(list)
    statuses = defaultdict(Counter)
    for _t, kind, status, ms, _detail in run.responses:
        statuses[kind][status] += 1
        if status:
            by_kind[kind].append(ms)
    print(f"\n{'kind':<14}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  statuses")
    for kind in sorted(statuses, key=lambda k: -sum(statuses[k].values())):
        values = sorted(by_kind[kind])
        codes = ", ".join(f"{code or 'no answer'}×{n}" for code, n in sorted(statuses[kind].items()))
        print(f"{kind:<14}{sum(statuses[kind].values()):>9}{pct(values, .5):>9.0f}{pct(values, .95):>9.0f}"
              f"{pct(values, .99):>9.0f}  {codes}")
    total = Counter(status for _t, _k, status, _ms, _d in run.responses)
    print("all statuses: " + ", ".join(f"{code or 'no answer'}×{n}" for code, n in sorted(total.items())))
    errors = [r for r in run.responses if r[2] >= 500]
    for t, kind, status, ms, _ in errors[:30]:
        print(f"  5xx at {t:.1f} s: {kind} {status} ({ms:.0f} ms)")
    if errors:
        failures.append(f"{len(errors)} answers were 5xx")
    dropped = [r for r in run.responses if r[2] == 0]
    if dropped:
        kinds = Counter(f"{r[1]} ({r[4]})" for r in dropped)
        print(f"  no answer ({len(dropped)}): " + ", ".join(f"{k}×{n}" for k, n in kinds.most_common()))
        print(f"  at: {', '.join(f'{r[0]:.0f}' for r in dropped[:20])} s")
        # Only a SIGKILLed gunicorn worker's requests are excused: the ones it had accepted (in its
        # threads, or sent on its kept-alive connections) fail when it dies, and are noticed at once.
        # The job worker's death and a PostgreSQL restart must cost no answer at all.
        killed = getattr(run, "worker_killed_at", None)
        excused = [r for r in dropped if killed is not None and killed <= r[0] <= killed + AROUND_KILL_SECONDS]
        print(f"  of which within {AROUND_KILL_SECONDS} s after the gunicorn worker was killed"
              f"{f' ({killed:.1f} s)' if killed is not None else ''}: {len(excused)}")
        if len(dropped) > len(excused):
            failures.append(f"{len(dropped) - len(excused)} requests got no answer"
                            + (", not around the killed gunicorn worker" if run.faults else ""))
    return failures


def check_database(run, courses, data_dir: Path) -> list[str]:
    from sqlalchemy import func

    from lms import create_app
    from lms.accounts.models import User
    from lms.courses.models import Course, LessonProgress
    from lms.extensions import db
    from lms.records.models import TrainingRecord

    failures = []
    app = create_app()
    with app.app_context():
        users = dict(db.session.query(User.id, User.username).filter(User.username.like("learner%")).all())
        progress = {(users[u], lesson): watched or 0.0 for u, lesson, watched in db.session.query(
            LessonProgress.user_id, LessonProgress.lesson_id, LessonProgress.watched_seconds)
            .filter(LessonProgress.user_id.in_(list(users))).all()}
        records = db.session.query(TrainingRecord.user_id, Course.slug, TrainingRecord.hours, TrainingRecord.kind) \
            .outerjoin(Course, TrainingRecord.course_id == Course.id).filter(TrainingRecord.user_id.in_(list(users))).all()
        twice = db.session.query(TrainingRecord.completion_key).group_by(TrainingRecord.completion_key) \
            .having(func.count() > 1).all()
        from lms.jobs import last_worker_heartbeat

        stamp = last_worker_heartbeat()
        db.session.remove()
        db.engine.dispose()

    # heartbeats
    answered = sum(a[2] for a in run.acked.values())
    acked_credit = sum(a[0] for a in run.acked.values())
    short, unequal = [], []
    for key, (credited, last, count) in run.acked.items():
        stored = progress.get(key, 0.0)
        if stored + 0.005 * count + 0.01 < credited:
            short.append((key, credited, stored))
        if abs(round(stored, 2) - last) > 0.011 and not run.unsettled.get(key):
            unequal.append((key, last, stored))
    unacked = {key: w for key, w in progress.items() if w > 0 and key not in run.acked and not run.unsettled.get(key)}
    stored_total = sum(progress.get(key, 0.0) for key in run.acked)
    print(f"\nheartbeats answered 200: {answered}; credited seconds in those answers: {acked_credit:.1f} s; "
          f"lesson_progress.watched_seconds of those learners' lessons: {stored_total:.1f} s; "
          f"last acknowledged totals: {sum(a[1] for a in run.acked.values()):.1f} s "
          f"({len(run.acked)} learner-lessons; heartbeats never answered: {sum(run.unsettled.values())})")
    if short:
        failures.append(f"{len(short)} learner-lessons hold less than their 200s credited, e.g. {short[:3]}")
    if unequal:
        failures.append(f"{len(unequal)} learner-lessons differ from the last acknowledged total, e.g. {unequal[:3]}")
    if unacked:
        failures.append(f"{len(unacked)} learner-lessons hold watched time no answer acknowledged")

    # completions and 学时
    hours_of = {c.slug: c.hours for c in courses}
    credited = Counter((users[u], slug) for u, slug, _h, kind in records if kind == "course")
    stored_hours = sum(float(h) for _u, _s, h, _k in records)
    announced_hours = sum(hours_of[slug] for _u, slug in run.completions)
    print(f"course completions announced to learners: {len(run.completions)} ({announced_hours:g} 学时); "
          f"training_record rows: {sum(credited.values())} ({stored_hours:g} 学时); "
          f"completion_key written twice: {len(twice)}")
    if set(credited) != run.completions:
        failures.append(f"completions: {len(set(credited) - run.completions)} credited but never announced, "
                        f"{len(run.completions - set(credited))} announced but not in the ledger")
    if abs(stored_hours - announced_hours) > 1e-6:
        failures.append(f"学时: ledger {stored_hours:g} ≠ announced {announced_hours:g}")
    if twice or any(n > 1 for n in credited.values()):
        failures.append(f"records written twice: {twice[:5]}")

    # media
    bad, sizes = [], {}
    for path, status, length, content_range, received in run.media:
        size = sizes.setdefault(path, (data_dir / "media" / path.removeprefix("/media/")).stat().st_size)
        if status == 200:
            ok = length is not None and int(length) == received == size
        elif status == 206:
            m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range or "")
            ok = bool(m) and int(m[3]) == size and int(m[2]) < size and \
                int(length) == received == int(m[2]) - int(m[1]) + 1
        else:  # a 304 carries no body; an error answer is counted with the statuses above
            continue
        if not ok:
            bad.append((path, status, length, content_range, received, size))
    print(f"media answers: {len(run.media)} ({Counter(s for _p, s, *_ in run.media)}), "
          f"{sum(r[4] for r in run.media) / 1e6:.0f} MB read; not whole or inconsistent: {len(bad)}")
    if bad:
        failures.append(f"{len(bad)} partial or inconsistent media answers, e.g. {bad[:3]}")
    if run.faults:
        print(f"job worker's newest stamp: pid {stamp and stamp.get('pid')} "
              f"(restarted worker: {run.restarted_worker})")
        if not stamp or stamp.get("pid") != run.restarted_worker:
            failures.append("the restarted lms worker has not stamped its heartbeat")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--video-seconds", type=float,
                        help="length of each lesson's video (default: a sixth of the run, 10–40 s, so that "
                             "learners finish courses within it)")
    parser.add_argument("--record", help="CSV of every response (default: /tmp/kepu-loadtest-<db>-<time>.csv)")
    args = parser.parse_args()
    seconds = args.minutes * 60
    args.video_seconds = args.video_seconds or min(40.0, max(10.0, seconds / 6))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    record = Path(args.record or f"/tmp/kepu-loadtest-{args.db}-{stamp}.csv")
    tree = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                          text=True).stdout.strip()
    print(f"== load test {datetime.now():%Y-%m-%d %H:%M:%S}, tree {tree}: {args.learners} learners, "
          f"{args.minutes:g} min, {args.db}, gunicorn {WORKERS} workers × 4 threads + 1 lms worker"
          f"{', with faults' if args.faults else ''}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    try:
        pg = PrivatePostgres() if args.db == "postgres" else None
    except Unavailable as exc:
        raise SystemExit(f"--db postgres: {exc}") from None
    try:
        return run_once(args, seconds, record, pg)
    finally:
        if pg is not None:
            pg.stop()


def run_once(args, seconds: float, record: Path, pg: PrivatePostgres | None) -> int:
    with tempfile.TemporaryDirectory(prefix="kepu-loadtest-") as tmp:
        tmp = Path(tmp)
        env = {"LMS_SECRET_KEY": secrets.token_hex(16), "LMS_INSTANCE_DIR": str(tmp / "instance"),
               "LMS_DATA_DIR": str(tmp / "data"), "LMS_QUIZ_RETRY_WAIT_SECONDS": "60",
               "LMS_DATABASE_URL": f"sqlite:///{tmp / 'loadtest.sqlite3'}"}
        gunicorn = worker_state = None
        try:
            if pg is not None:
                pg.start()
                env["LMS_DATABASE_URL"] = pg.url
            started = time.monotonic()
            names, courses = seed(env, args.learners, tmp, args.video_seconds)
            print(f"seeded in {time.monotonic() - started:.0f} s: {len(names)} learners, {len(courses)} courses × "
                  f"{LESSONS} lessons of {args.video_seconds:g} s video")
            (tmp / "bench_app.py").write_text(signin.BENCH_APP)
            gunicorn, port = signin.start_gunicorn(tmp, env, WORKERS)
            worker_state = {"worker": start_worker(tmp, env)}
            timeline = []
            fault_args = (gunicorn.pid, worker_state, tmp, env, pg, timeline) if args.faults else None
            run = asyncio.run(drive(f"http://127.0.0.1:{port}", names, courses, seconds, fault_args))
            run.faults = args.faults
            run.restarted_worker = worker_state["worker"].pid
            load = os.getloadavg()
        finally:
            if gunicorn is not None:
                gunicorn.terminate()
                gunicorn.wait(timeout=40)
            if worker_state is not None:
                worker_state["worker"].terminate()
                worker_state["worker"].wait(timeout=40)
        with open(record, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(("seconds", "kind", "status", "ms", "detail"))
            writer.writerows(run.responses)
        elapsed = max(r[0] for r in run.responses) if run.responses else 0
        print(f"\n{len(run.responses)} responses in {elapsed:.0f} s ({len(run.responses) / max(elapsed, 1):.0f}/s); "
              f"load average at the end {load[0]:.1f}; learners cut short after the {GRACE_SECONDS} s grace: "
              f"{run.cut_short}; every response in {record}, gunicorn's log beside it")
        for line in getattr(run, "crashed", [])[:5]:
            print(f"  a simulated learner crashed: {line}")
        if args.faults:
            print("faults:\n  " + "\n  ".join(timeline))
        failures = report_requests(run)
        failures += check_database(run, courses, tmp / "data")
        if getattr(run, "crashed", None):
            failures.append(f"{len(run.crashed)} simulated learners crashed")
        log = (tmp / "gunicorn.log").read_text(errors="replace")
        record.with_suffix(".gunicorn.log").write_text(log)  # kept: the tracebacks, and db_resilience's notes
        timeouts = log.count("WORKER TIMEOUT")
        if timeouts:  # the arbiter killed a worker that stopped checking in (gunicorn.conf.py timeout)
            print(f"gunicorn.log: {timeouts} WORKER TIMEOUT (workers killed by the arbiter)")
        raised = Counter(re.findall(r"^(\w+(?:\.\w+)*(?:Error|Exception)\b[^\n]{0,120})", log, re.M))
        if raised:
            print(f"gunicorn.log: {log.count('Traceback')} tracebacks, ending in:\n  "
                  + "\n  ".join(f"{n}× {line}" for line, n in raised.most_common(8)))
    print("\nFAILED:\n- " + "\n- ".join(failures) if failures else "\nall checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
