#!/usr/bin/env python3
"""The console's home (/admin) and audit log (/admin/audit) at county scale, beside a bare SELECT.

    .venv/bin/python scripts/bench/console_home.py [--users 50000] [--records 1000000] [--runs 15]
    .venv/bin/python scripts/bench/console_home.py --reuse /tmp/console-bench-XXXX   # time again, no seeding

Builds a temporary SQLite database through the real migrations (so the real indexes) with 2,000
units (a county, 20 townships, 1,979 villages), `--users` people, `--records` ledger rows over this
year and last (each person completes `records / users` distinct courses of 60), a progress row with
a heartbeat in the last 60 days for every other person, 10 assignments and 200,000 audit rows;
then times, in one run:

- bare: one page of the ledger (`SELECT … ORDER BY id DESC LIMIT 50`) — the floor of any page;
- the whole /admin page (figures, chart, 待办) for the county admin, a township's and a village's
  unit admin and an instructor, through the test client (rendering included);
- /admin/audit: the first page, a page filtered by an action prefix, and a unit admin's page.

It prints p50/p95 in ms and each p95's ratio to the bare SELECT's p95.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

FMT = "%Y-%m-%d %H:%M:%S.%f"
COURSES = 60
INSERT_RECORD = ("INSERT INTO training_record (id, user_id, course_id, title, kind, hours, earned_at, source, "
                 "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def stamp(moment: datetime) -> str:
    return moment.strftime(FMT)


def seed(db, users: int, records: int) -> dict:
    rng = random.Random(7)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    conn = db.engine.raw_connection()
    cur = conn.cursor()
    units = [(1, "county", "垫江县", "county", None, "/county/")]
    towns = []
    for t in range(20):
        uid = len(units) + 1
        units.append((uid, f"town-{t}", f"镇{t}", "township", 1, f"/county/town-{t}/"))
        towns.append(uid)
    villages = []
    while len(units) < 2000:
        uid = len(units) + 1
        town = towns[uid % 20]
        code = f"v-{uid}"
        units.append((uid, code, f"村{uid}", "village", town, f"/county/town-{town - 2}/{code}/"))
        villages.append(uid)
    cur.executemany("INSERT INTO unit (id, code, name, kind, parent_id, path) VALUES (?, ?, ?, ?, ?, ?)", units)
    audiences = ["elder", "farmer", "cadre", "worker", "youth"]
    created = stamp(now - timedelta(days=400))
    people = [(1, "admin", "县管理员", "x", "admin", "cadre", 1, 1, 0, created),
              (2, "ua-town", "镇管理员", "x", "unit_admin", "cadre", towns[0], 1, 0, created),
              (3, "ua-village", "村管理员", "x", "unit_admin", "cadre", villages[0], 1, 0, created),
              (4, "teacher", "老师", "x", "instructor", "cadre", 1, 1, 0, created)]
    for uid in range(5, users + 1):
        people.append((uid, f"u{uid}", f"学员{uid}", "x", "learner", rng.choice(audiences), rng.choice(villages), 1, 0,
                       created))
    cur.executemany('INSERT INTO "user" (id, username, full_name, password_hash, role, audience, unit_id, active, '
                    "session_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", people)
    courses, lessons = [], []
    for c in range(1, COURSES + 1):
        courses.append((c, f"c{c}", f"课程{c}", "", 1, 0, 0, 0.95, 1, created, created))
        for n in range(5):
            lessons.append((len(lessons) + 1, c, f"l{n}", n, f"课{n}", "", "", 0))
    cur.executemany("INSERT INTO course (id, slug, title, summary, credit_hours, mandatory, strict, watch_threshold, "
                    "published, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", courses)
    cur.executemany("INSERT INTO lesson (id, course_id, slug, position, title, text_markdown, text_html, retired) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", lessons)
    cur.executemany("INSERT INTO course_author (course_id, user_id) VALUES (?, 4)", [(1,), (2,)])
    assets = [(i, (i % len(lessons)) + 1, rng.choice(["ready"] * 8 + ["failed", "pending"]), "{}", 0, 0, created)
              for i in range(1, 201)]
    cur.executemany("INSERT INTO video_asset (id, lesson_id, status, renditions_json, progress, attempts, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", assets)
    start_last_year = datetime(now.year - 1, 1, 1)
    span = (now - start_last_year).total_seconds()
    batch, per_person, rid = [], max(1, records // users), 0
    for uid in range(5, users + 1):  # each person completes distinct courses, as the ledger allows
        for course_id in rng.sample(range(1, COURSES + 1), min(per_person, COURSES)):
            rid += 1
            earned = stamp(start_last_year + timedelta(seconds=rng.random() * span))
            batch.append((rid, uid, course_id, "课程", "course", 0.5, earned, "online", earned))
        if len(batch) >= 50_000:
            cur.executemany(INSERT_RECORD, batch)
            batch = []
    if batch:
        cur.executemany(INSERT_RECORD, batch)
    progress = []
    for uid in range(5, users + 1, 2):
        progress.append((uid, rng.randint(1, len(lessons)), stamp(now - timedelta(days=rng.random() * 60))))
    cur.executemany("INSERT INTO lesson_progress (user_id, lesson_id, intervals_json, watched_seconds, "
                    "furthest_position, last_position, last_heartbeat_at, clock_credited, version) "
                    "VALUES (?, ?, '[]', 0, 0, 0, ?, 0, 1)", progress)
    today = now.date()
    requirements = [(r, (r % COURSES) + 1, (today + timedelta(days=rng.randint(-60, 60))).isoformat(),
                     audiences[r % 5] if r % 2 else None, towns[r % 20] if r % 3 == 0 else None, "", 1, created)
                    for r in range(1, 11)]
    cur.executemany("INSERT INTO requirement (id, course_id, due_date, audience, unit_id, note, active, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", requirements)
    actions = ["user.create", "user.update", "unit.rename", "course.publish", "record.credit", "video.upload"]
    audit = [(rng.randint(1, users), rng.choice(actions), f"user:{rng.randint(5, users)}", "detail",
              stamp(now - timedelta(seconds=rng.random() * 3e7))) for _ in range(200_000)]
    audit.sort(key=lambda row: row[4])
    cur.executemany("INSERT INTO audit_log (actor_id, action, target, detail, created_at) VALUES (?, ?, ?, ?, ?)",
                    audit)
    conn.commit()
    cur.execute("ANALYZE")
    conn.close()
    return {"town": towns[0], "village": villages[0]}


def timed(fn, runs: int) -> list[float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples):
    return sorted(samples)[max(0, round(0.95 * len(samples)) - 1)]


def print_table(results: dict[str, list[float]], bare: str) -> None:
    """p50 and p95 of each case in ms, and each p95's ratio to the p95 of the `bare` case."""
    floor = p95(results[bare])
    width = max(len(label) for label in results) + 2
    print(f"{'case':{width}} {'p50 ms':>8} {'p95 ms':>8} {'p95/bare':>9}")
    for label, samples in results.items():
        print(f"{label:{width}} {statistics.median(samples):8.1f} {p95(samples):8.1f} {p95(samples) / floor:9.1f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reuse", help="time again on the database a previous run left in this folder")
    args = parser.parse_args()
    tmp = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="console-bench-"))
    os.environ["LMS_INSTANCE_DIR"] = str(tmp / "instance")
    from flask_migrate import upgrade
    from sqlalchemy import text

    from lms import create_app
    from lms.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.sqlite3'}", "DATA_DIR": str(tmp / "data"),
                      "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False})
    with app.app_context():
        upgrade(revision="heads")
        if not args.reuse:
            started = time.perf_counter()
            seed(db, args.users, args.records)
            print(f"seeded {args.users} people, {args.records} records in {time.perf_counter() - started:.0f} s "
                  f"in {tmp}")
        db.session.remove()

    from flask_login import FlaskLoginClient

    app.test_client_class = FlaskLoginClient
    results = {}
    with app.app_context():
        from lms.accounts.models import User

        bare = text("SELECT id, user_id, hours, earned_at FROM training_record ORDER BY id DESC LIMIT 50")
        results["bare SELECT of one ledger page"] = timed(lambda: db.session.execute(bare).all(), args.runs)
        users = {user.username: user for user in User.query.filter(User.id <= 4)}
        db.session.expunge_all()
    cases = [("admin", "/admin", "/admin (county admin)"), ("ua-town", "/admin", "/admin (township unit admin)"),
             ("ua-village", "/admin", "/admin (village unit admin)"), ("teacher", "/admin", "/admin (instructor)"),
             ("admin", "/admin/audit", "/admin/audit first page (admin)"),
             ("admin", "/admin/audit?action=unit.", "/admin/audit action prefix (admin)"),
             ("ua-town", "/admin/audit", "/admin/audit first page (township unit admin)")]
    for username, path, label in cases:  # each request in its own app context, as in production
        client = app.test_client(user=users[username])

        def get(client=client, path=path, name=users[username].full_name):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert name in response.get_data(as_text=True)  # signed in as the case's user

        results[label] = timed(get, args.runs)
    print_table(results, "bare SELECT of one ledger page")


if __name__ == "__main__":
    main()
