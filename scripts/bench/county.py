"""The benches' one county: an app on a throw-away database, the county's data, and the timing helpers.

    from county import make_app, seed_county, timed, p95, print_table

- `make_app(tmp)` — the app on a new SQLite database under `tmp`, built through the real migrations (so
  the real indexes and triggers); `make_app(tmp, database_uri=...)` on another database (PostgreSQL:
  `postgres_database()` makes a throw-away one and drops it afterwards); `make_app(…, revision="0017")`
  then `upgrade(app)` seeds before the rollup triggers (fast on PostgreSQL).
- `seed_county(db, people, records)` — 2,000 units (a county, 25 townships, 1,974 villages and classes),
  `people` people (ids 1–4: the county admin `admin`, a township's unit admin `ua-town`, a village's
  `ua-village`, an instructor `teacher`; then Chinese names drawn from common surnames and given names, so
  a name search matches hundreds, most with a phone number, a few deactivated, the usual mix of audiences
  and roles), 60 courses of 5 lessons, and `records` ledger rows over this year and last: each person
  completes distinct courses (certificate number, watched minutes, quiz score as crediting writes them),
  with a few offline records and corrections (negative hours) among them. `activity=True` adds what the
  console's home reads besides: recent lesson progress, video assets, requirements and 200,000 audit rows.
  Rows go in through the DBAPI (COPY on PostgreSQL), then ANALYZE.
- `timed`, `timed_cpu`, `p95`, `print_table` — one way to time and print.
"""
from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FMT = "%Y-%m-%d %H:%M:%S.%f"
COURSES = 60
TOWNSHIPS = 25
UNITS = 2000
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "桂兰秀英玉珍建国建华志强永红国平德明淑芬海燕丽华春梅文华金凤小军家明学文俊杰子涵欣怡浩然宇轩雨桐晓东大富福贵"
TOPICS = ["防范电信诈骗", "智能手机入门", "垫江白柚栽培", "生猪养殖", "人工智能", "碳达峰碳中和", "安全生产",
          "健康生活", "应急避险", "量子科技"]
RECORD_COLUMNS = ("id", "user_id", "course_id", "title", "kind", "hours", "watched_minutes", "quiz_score",
                  "earned_at", "source", "certificate_no", "completion_key", "reverses_id", "created_at")


def stamp(moment: datetime) -> str:
    return moment.strftime(FMT)


def make_app(tmp: Path, database_uri: str | None = None, revision: str = "heads", **config):
    """The app on a database built by the real migrations (up to `revision`: see `upgrade`); the test
    client signs in with `user=`."""
    os.environ["LMS_INSTANCE_DIR"] = str(tmp / "instance")
    from flask_login import FlaskLoginClient
    from flask_migrate import upgrade

    from lms import create_app
    from lms.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_uri or f"sqlite:///{tmp / 'bench.sqlite3'}",
                      "DATA_DIR": str(tmp / "data"), "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False, **config})
    app.test_client_class = FlaskLoginClient
    with app.app_context():
        upgrade(revision=revision)
        db.session.remove()
    return app


def seeded_app(prefix: str, people: int) -> tuple:
    """(app, what seed_county returns) on a new temporary SQLite database holding the county with `people`
    people (no ledger records) — the set-up of the people-list and unit-tree benches."""
    import tempfile
    import time

    from lms.extensions import db

    app = make_app(Path(tempfile.mkdtemp(prefix=prefix)))
    with app.app_context():
        started = time.perf_counter()
        seen = seed_county(db, people)
        print(f"seeded {people} people in 2000 units in {time.perf_counter() - started:.0f} s")
        db.session.remove()
    return app, seen


def upgrade(app, revision: str = "heads") -> None:
    """The rest of the migrations. On PostgreSQL the dashboard's rollup triggers (0018) cost ~1 ms a
    record, a quarter of an hour for a million: seed at 0017 and upgrade after, and 0018 fills the
    rollups from the seeded ledger with one GROUP BY, as it does for a real database."""
    from flask_migrate import upgrade as migrate

    from lms.extensions import db

    with app.app_context():
        migrate(revision=revision)
        db.session.remove()


@contextlib.contextmanager
def postgres_database(admin_url: str = PG_ADMIN_URL):
    """A new PostgreSQL database (its SQLAlchemy URL), dropped on exit."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"lms_bench_{uuid.uuid4().hex[:10]}"
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


class Loader:
    """Bulk rows through the DBAPI: executemany on SQLite, COPY on PostgreSQL (10× faster there)."""

    def __init__(self, db):
        self.conn = db.engine.raw_connection()
        self.postgres = db.engine.dialect.name == "postgresql"
        self.cur = self.conn.cursor()
        self.tables: set[str] = set()

    def insert(self, table: str, columns, rows) -> None:
        if "id" in columns:
            self.tables.add(table)
        if self.postgres:
            with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            self.cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def close(self) -> None:
        if self.postgres:  # the ids were given: move each sequence past them
            for table in self.tables:
                self.cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))")
        self.conn.commit()
        if self.postgres:
            self.conn.driver_connection.autocommit = True
        self.cur.execute("ANALYZE")
        self.conn.close()


def seed_units(loader: Loader, created: str) -> tuple[list, list]:
    """A county, its townships, and villages (every tenth unit a class) spread over them."""
    units = [(1, "county", "垫江县", "county", None, "/county/")]
    towns = []
    for t in range(TOWNSHIPS):
        uid = len(units) + 1
        units.append((uid, f"town-{t}", f"镇{t}", "township", 1, f"/county/town-{t}/"))
        towns.append((uid, f"/county/town-{t}/"))
    leaves = []
    while len(units) < UNITS:
        uid = len(units) + 1
        town_id, town_path = towns[uid % len(towns)]
        kind = "class" if uid % 10 == 0 else "village"
        code = f"{kind[0]}-{uid}"
        units.append((uid, code, f"{'班' if kind == 'class' else '村'}{uid}", kind, town_id, f"{town_path}{code}/"))
        leaves.append(uid)
    loader.insert("unit", ("id", "code", "name", "kind", "parent_id", "path", "active", "created_at"),
                  [u + (True, created) for u in units])
    return units, [uid for uid, _ in towns], leaves


def seed_people(loader: Loader, rng, people: int, towns: list, leaves: list, created: str) -> list:
    audiences = ["elder"] * 4 + ["farmer"] * 4 + ["cadre", "worker", "youth"]
    rows = [(1, "admin", "县管理员", "admin", "cadre", 1, True, None),
            (2, "ua-town", "镇管理员", "unit_admin", "cadre", towns[0], True, None),
            (3, "ua-village", "村管理员", "unit_admin", "cadre", leaves[0], True, None),
            (4, "teacher", "老师", "instructor", "cadre", 1, True, None)]
    for uid in range(5, people + 1):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        role = rng.choices(["learner", "instructor", "unit_admin"], [97, 2, 1])[0]
        phone = f"1{rng.choice('3578')}{rng.randrange(10 ** 9):09d}" if rng.random() < 0.7 else None
        rows.append((uid, f"u{uid}", name, role, rng.choice(audiences), rng.choice(leaves), rng.random() >= 0.03,
                     phone))
    loader.insert('"user"', ("id", "username", "full_name", "role", "audience", "unit_id", "active", "phone",
                             "password_hash", "session_version", "created_at", "must_change_password", "data_saver"),
                  [row + ("x", 0, created, False, False) for row in rows])
    return rows


def seed_courses(loader: Loader, created: str) -> list:
    """60 published courses of 5 lessons; returns (id, title, 学时) of each."""
    courses = [(c, f"{TOPICS[c % len(TOPICS)]}（第{c}讲）", (0.25, 0.5, 1.0)[c % 3]) for c in range(1, COURSES + 1)]
    loader.insert("course", ("id", "slug", "title", "summary", "credit_hours", "mandatory", "strict",
                             "watch_threshold", "published", "created_at", "updated_at"),
                  [(c, f"c{c}", title, "", hours, False, False, 0.95, True, created, created)
                   for c, title, hours in courses])
    loader.insert("lesson", ("id", "course_id", "slug", "position", "title", "text_markdown", "text_html", "retired"),
                  [(5 * (c - 1) + n + 1, c, f"l{n}", n, f"课{n}", "", "", False)
                   for c in range(1, COURSES + 1) for n in range(5)])
    loader.insert("course_author", ("course_id", "user_id"), [(1, 4), (2, 4)])
    return courses


def seed_records(loader: Loader, rng, people: list, courses: list, records: int, now: datetime) -> int:
    """`records` ledger rows over this year and last for the people from id 5 on, each completing distinct
    courses; 1 in 50 is an offline activity, and 1 person in 200 has a correction (−学时) of one record."""
    learners = [row[0] for row in people if row[0] >= 5] or [row[0] for row in people]
    start = datetime(now.year - 1, 1, 1)
    span = (now - start).total_seconds()
    corrected = {uid for uid in learners if uid % 200 == 0} if records >= 2 * len(learners) else set()
    base, extra = divmod(records - len(corrected), len(learners))  # so that exactly `records` are written
    batch, rid = [], 0
    for n, uid in enumerate(learners):
        mine = min(base + (n < extra), COURSES)
        first = None
        for course_id, title, hours in rng.sample(courses, mine):
            rid += 1
            earned_at = start + timedelta(seconds=rng.random() * span)
            earned = stamp(earned_at)
            if rid % 50 == 0:
                batch.append((rid, uid, None, f"线下科普活动：{title}", "offline", 1.0, None, None, earned, "offline",
                              None, f"offline:{rid}:user:{uid}", None, earned))
            else:
                batch.append((rid, uid, course_id, title, "course", hours, round(rng.uniform(5, 60), 1),
                               rng.choice((None, 60, 80, 100)), earned, "online",
                               f"KP{earned_at.year}-{course_id}-{uid}-{rid:06X}", f"course:{course_id}:user:{uid}",
                               None, earned))
            first = first or (rid, hours, title, earned_at)
        if first and uid in corrected:
            rid += 1
            original, hours, title, earned_at = first
            when = stamp(min(now, earned_at + timedelta(days=3)))
            batch.append((rid, uid, None, f"更正：{title}", "correction", -hours, None, None, when, "admin", None,
                          f"reversal:{original}", original, when))
        if len(batch) >= 50_000:
            loader.insert("training_record", RECORD_COLUMNS, batch)
            batch = []
    if batch:
        loader.insert("training_record", RECORD_COLUMNS, batch)
    return rid


def seed_activity(loader: Loader, rng, people: int, towns: list, now: datetime, created: str) -> None:
    """What the console's home reads besides the ledger: a progress row with a heartbeat in the last 60 days
    for every other person, 200 video assets, 10 requirements, 200,000 audit rows."""
    lessons = COURSES * 5
    loader.insert("video_asset", ("id", "lesson_id", "status", "renditions_json", "progress", "attempts",
                                  "updated_at"),
                  [(i, (i % lessons) + 1, rng.choice(["ready"] * 8 + ["failed", "pending"]), "{}", 0, 0, created)
                   for i in range(1, 201)])
    loader.insert("lesson_progress", ("user_id", "lesson_id", "intervals_json", "watched_seconds",
                                      "furthest_position", "last_position", "last_heartbeat_at", "clock_credited",
                                      "version"),
                  [(uid, rng.randint(1, lessons), "[]", 0, 0, 0, stamp(now - timedelta(days=rng.random() * 60)), 0, 1)
                   for uid in range(5, people + 1, 2)])
    audiences = ["elder", "farmer", "cadre", "worker", "youth"]
    today = now.date()
    loader.insert("requirement", ("id", "course_id", "due_date", "audience", "unit_id", "note", "active", "created_at"),
                  [(r, (r % COURSES) + 1, (today + timedelta(days=rng.randint(-60, 60))).isoformat(),
                    audiences[r % 5] if r % 2 else None, towns[r % len(towns)] if r % 3 == 0 else None, "", True,
                    created) for r in range(1, 11)])
    actions = ["user.create", "user.update", "unit.rename", "course.publish", "record.credit", "video.upload"]
    audit = [(n, rng.randint(1, people), rng.choice(actions), f"user:{rng.randint(5, max(5, people))}", "detail",
              stamp(now - timedelta(seconds=rng.random() * 3e7))) for n in range(1, 200_001)]
    audit.sort(key=lambda row: row[5])
    loader.insert("audit_log", ("id", "actor_id", "action", "target", "detail", "created_at"),
                  [(n,) + row[1:] for n, row in enumerate(audit, start=1)])


def seed_county(db, people: int, records: int = 0, activity: bool = False, seed: int = 7) -> dict:
    """Seed the county (see the module docstring) into the app's empty database; returns what benches
    look up: the first township's and village's ids, a village code, a township code, the person half-way
    down the people list (name, id), part of a phone number, the number of records written."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    created = stamp(now - timedelta(days=400))
    loader = Loader(db)
    units, towns, leaves = seed_units(loader, created)
    rows = seed_people(loader, rng, people, towns, leaves, created)
    courses = seed_courses(loader, created)
    written = seed_records(loader, rng, rows, courses, records, now) if records else 0
    if activity:
        seed_activity(loader, rng, people, towns, now, created)
    loader.close()
    middle = sorted((r[2], r[0]) for r in rows)[people // 2]
    return {"town": towns[0], "village": leaves[0], "village_code": units[100][1], "town_code": "town-3",
            "deep": middle, "phone": next((r[7] for r in rows[1000:] if r[7]), "13800000000")[3:9],
            "records": written}


def timed(fn, runs: int) -> list[float]:
    """Milliseconds of each of `runs` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def timed_cpu(fn, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run (after one warm-up). CPU time is this process's own
    work: on a shared machine it leaves out the time spent waiting for a core."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def p95(samples):
    return sorted(samples)[max(0, round(0.95 * len(samples)) - 1)]


def print_table(results: dict[str, list[float]], bare: str) -> None:
    """p50 and p95 of each case in ms, and each p95's ratio to the p95 of the `bare` case."""
    floor = p95(results[bare])
    width = max(len(label) for label in results) + 2
    print(f"{'case':{width}} {'p50 ms':>8} {'p95 ms':>8} {'p95/bare':>9}")
    for label, samples in results.items():
        print(f"{label:{width}} {statistics.median(samples):8.1f} {p95(samples):8.1f} {p95(samples) / floor:9.1f}")
