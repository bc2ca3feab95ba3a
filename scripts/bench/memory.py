#!/usr/bin/env python3
"""Memory of the served site and the app's start-up time: gunicorn with 4 workers (gunicorn.conf.py) and
one `lms worker`, after every kind of page has gone through every worker.

    .venv/bin/python scripts/bench/memory.py [--workers 4] [--people 400] [--records 22000]
    .venv/bin/python scripts/bench/memory.py --startup-only     # the start-up figure alone (seconds)

A throw-away county (scripts/bench/county.py: units, people, 60 courses, ledger rows — more than
EXPORT_INLINE_MAX_ROWS, so a full export is a background job), plus a course package with quizzes for
the elder and the farmer, the search index built. Users of each role sign in through /login (an elder
learner with 长辈版 on, a farmer learner, the teacher, a township's unit admin, the county admin); then
each kind of page is requested on fresh connections until every worker has answered it (the served
app names its pid in a header). Searches come last, so the figures before them are those of
processes that have not searched. Meanwhile `lms worker` builds a large export and updates the index.

Memory from /proc/<pid>/smaps_rollup: USS (the process's own pages: Private_Clean + Private_Dirty —
what stopping it gives back), PSS (shared pages split between the processes sharing them; the sum of
PSS is what the set uses) and RSS. Start-up: `import wsgi` (gunicorn's entry point: import the app and
create_app()) in a fresh interpreter, best and median of 5 runs, and that process's memory after rendering
the catalogue through the test client.
The targets (issue 12): each web worker ≤ 120 MB USS, 4 workers + `lms worker` ≤ 600 MB, start-up ≤ 1 s.
BEFORE holds the figures measured on the tree before the memory work, printed beside this run's.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from county import ROOT, make_app, seed_county  # noqa: E402
from serve import instance_env, start_gunicorn, start_worker, stop, worker_pids  # noqa: E402

PASSWORD = "bench-memory-9"
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
TIMEOUT = 120
TARGET_WORKER_MB, TARGET_SET_MB, TARGET_STARTUP_S = 120, 600, 1.0
# measured on this machine (2 cores, shared) before the memory work (no preload, jieba at import)
BEFORE = {
    "worker_uss_before_search": 301.0, "worker_uss": 356.5, "job_worker_uss": 242.6, "set_uss": 1608.1,
    "set_pss": 1618.9, "startup_s": 3.09, "standalone_uss": 178.5,
}
# `import wsgi` as measured here (in the interpreter, from its first line), on 18070d0 before the start-up work
# (issue 12), 2 cores mostly idle, no .pyc for lms/: the same way as `--startup-only` prints it now
STARTUP_BEFORE = {"best": 1.10, "median": 1.14}
BENCH_APP = textwrap.dedent('''
    import os

    from lms import create_app

    app = create_app()


    @app.after_request
    def _which_worker(response):  # the bench checks that every worker has served every page
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response
''')
QUIZ = {"pass_score": 60, "questions": [
    {"type": "single", "text": "接到陌生电话让你把钱转到“安全账户”，应该？",
     "choices": [{"text": "马上转账"}, {"text": "挂断，拨打 96110 核实", "correct": True}], "explanation": "不转账。"},
    {"type": "truefalse", "text": "96110 是全国反诈预警专线。", "answer": True, "explanation": "要接听。"}]}
STARTUP = textwrap.dedent('''
    import time
    started, cpu = time.perf_counter(), time.process_time()
    import wsgi
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    app = wsgi.app
    with app.test_client() as client:
        client.get("/")
    rollup = open("/proc/self/smaps_rollup").read()
    print(took, cpu, rollup.replace("\\n", "|"))
''')


def smaps(pid: int) -> dict[str, float]:
    """USS, PSS, RSS of one process in MB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return {"uss": fields["Private_Clean"] + fields["Private_Dirty"], "pss": fields["Pss"], "rss": fields["Rss"]}


def write_package(root: Path) -> Path:
    folder = root / "bench-quiz"
    lessons = []
    for n in (1, 2):
        (folder / f"0{n}").mkdir(parents=True)
        (folder / f"0{n}/lesson.md").write_text(f"## 第{n}课\n\n防范电信诈骗：不听、不信、不转账。\n", encoding="utf-8")
        (folder / f"0{n}/quiz.yaml").write_text(yaml.safe_dump(QUIZ, allow_unicode=True), encoding="utf-8")
        lessons.append({"slug": f"lesson-{n}", "title": f"第{n}课 防范诈骗", "text": f"0{n}/lesson.md",
                        "quiz": f"0{n}/quiz.yaml"})
    course = {"id": "bench-quiz", "title": "识破电信诈骗（压测）", "summary": "测试用", "audiences": ["elder", "farmer"],
              "credit_hours": 0.5, "mandatory": False, "lessons": lessons}
    (folder / "course.yaml").write_text(yaml.safe_dump(course, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


def seed(tmp: Path, people: int, records: int) -> dict:
    """The county, the quiz course, passwords for one user of each role, the search index; what the pages need."""
    from lms.accounts.models import User
    from lms.courses.importer import import_package
    from lms.extensions import db
    from lms.search.index import rebuild

    app = make_app(tmp)
    with app.app_context():
        facts = seed_county(db, people, records)
        course, _ = import_package(write_package(tmp / "content"))
        users = {"admin": db.session.get(User, 1), "unit_admin": db.session.get(User, 2),
                 "teacher": db.session.get(User, 4)}
        learners = User.query.filter(User.id >= 5, User.role == "learner", User.active.is_(True))
        users["elder"] = learners.filter_by(audience="elder").first()
        users["farmer"] = learners.filter_by(audience="farmer").first()
        for user in users.values():
            user.set_password(PASSWORD)
        db.session.commit()
        rebuild()
        from lms.accounts.models import Unit
        facts.update(
            logins={role: user.username for role, user in users.items()},
            farmer_id=users["farmer"].id, quiz_slug=course.slug,
            quiz_lesson=(course.lessons[0].slug, course.lessons[0].id),
            class_code=Unit.query.filter_by(kind="class").order_by(Unit.id).first().code,
            course_ids=[course.id, 1])
        db.session.remove()
        db.engine.dispose()
    return facts


def pages(facts: dict) -> list[tuple[str, str, str]]:
    """(kind, role, path): every kind of page, each as the user who would open it."""
    slug, (lesson_slug, lesson_id) = facts["quiz_slug"], facts["quiz_lesson"]
    year = date.today().year
    return [
        ("catalogue", "farmer", "/"),
        ("course", "farmer", "/courses/c1"),
        ("lesson", "farmer", "/courses/c1/lessons/l0"),
        ("quiz", "farmer", f"/lessons/{lesson_id}/quiz"),
        ("my home", "farmer", "/my"),
        ("my hours", "farmer", "/my/hours"),
        ("certificate pdf", "farmer", f"/certificates/people/{facts['farmer_id']}/{year}.pdf"),
        ("elder catalogue", "elder", "/"),
        ("elder course", "elder", f"/courses/{slug}"),
        ("elder lesson", "elder", f"/courses/{slug}/lessons/{lesson_slug}"),
        ("elder quiz", "elder", f"/lessons/{lesson_id}/quiz"),
        ("elder help", "elder", "/help/elder"),
        ("classroom", "teacher", "/classroom"),
        ("class roster", "teacher", f"/classroom/{facts['class_code']}"),
        ("admin home", "admin", "/admin"),
        ("people", "admin", "/admin/people?q=王"),
        ("people (unit admin)", "unit_admin", "/admin/people"),
        ("dashboard", "admin", "/admin/dashboard"),
        ("export page", "admin", "/admin/hours"),
        ("export csv", "admin", f"/admin/hours/export?fmt=csv&unit={facts['village_code']}"),
        ("export xlsx", "admin", f"/admin/hours/export?fmt=xlsx&unit={facts['town_code']}&summary=y"),
        ("units", "admin", "/admin/units"),
        ("audit", "admin", "/admin/audit"),
    ]


SEARCHES = [("search", "farmer", "/search?q=防范电信诈骗"), ("search", "elder", "/search?q=碳中和"),
            ("search", "farmer", "/search?q=生猪养殖技术")]


def sign_in(base: str, username: str, elder: bool) -> dict:
    with requests.Session() as client:
        if elder:
            client.cookies.set("elder", "1")
        token = CSRF_RE.search(client.get(f"{base}/login", timeout=TIMEOUT).text).group(1)
        answer = client.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                             allow_redirects=False, timeout=TIMEOUT)
        if answer.status_code != 302:
            raise RuntimeError(f"{username} could not sign in: {answer.status_code}")
        return client.cookies.get_dict()


def through_every_worker(base: str, path: str, cookies: dict, pids: list[int], tries: int = 80) -> tuple[set, set]:
    """Request `path` on fresh connections, 4 at a time, until every worker has answered it; the pids
    that answered and the statuses seen."""
    served, statuses = set(), set()

    def one(_):
        answer = requests.get(base + path, cookies=cookies, headers={"Connection": "close"}, timeout=TIMEOUT)
        return int(answer.headers.get("X-Worker-Pid", 0)), answer.status_code

    with ThreadPoolExecutor(4) as pool:
        for _ in range(tries // 4):
            for pid, status in pool.map(one, range(4)):
                served.add(pid)
                statuses.add(status)
            if served >= set(pids):
                break
    return served, statuses


def measure(master: int, job_worker: int) -> dict:
    workers = {pid: smaps(pid) for pid in worker_pids(master)}
    return {"master": smaps(master), "workers": workers, "job": smaps(job_worker)}


def print_memory(label: str, figures: dict) -> None:
    print(f"\n== {label}")
    print(f"{'process':<22}{'USS MB':>9}{'PSS MB':>9}{'RSS MB':>9}")
    rows = [("gunicorn master", figures["master"])]
    rows += [(f"web worker {pid}", m) for pid, m in figures["workers"].items()]
    rows.append(("lms worker", figures["job"]))
    for name, m in rows:
        print(f"{name:<22}{m['uss']:>9.1f}{m['pss']:>9.1f}{m['rss']:>9.1f}")
    the_set = list(figures["workers"].values()) + [figures["job"]]
    sums = {k: sum(m[k] for m in the_set) for k in ("uss", "pss", "rss")}
    print(f"{'workers + lms worker':<22}{sums['uss']:>9.1f}{sums['pss']:>9.1f}{sums['rss']:>9.1f}"
          f"   (PSS with the master: {sums['pss'] + figures['master']['pss']:.1f})")
    figures["sums"] = sums


def startup(env: dict, runs: int = 5) -> tuple[dict, dict]:
    """Seconds of `import wsgi` (import + create_app) in a fresh interpreter, best and median of `runs`, wall
    and CPU; that process's memory after the catalogue. On a busy machine the wall time waits for a core;
    the CPU time does not."""
    times, cpus, memory = [], [], None
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", STARTUP], env={**os.environ, **env}, cwd=str(ROOT),
                             capture_output=True, text=True, check=True).stdout.split(" ", 2)
        times.append(float(out[0]))
        cpus.append(float(out[1]))
        fields = {}
        for line in out[2].split("|"):
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
        memory = {"uss": fields["Private_Clean"] + fields["Private_Dirty"], "pss": fields["Pss"], "rss": fields["Rss"]}
    took = {"best": min(times), "median": statistics.median(times), "cpu_best": min(cpus),
            "cpu_median": statistics.median(cpus)}
    return took, memory


def wait_for_jobs(tmp: Path, timeout: float = 180) -> None:
    """Until the job queue is empty and no export is waiting or running (bounded)."""
    import sqlite3

    deadline = time.monotonic() + timeout
    queue = tmp / "data" / "jobs.sqlite3"
    while time.monotonic() < deadline:
        with sqlite3.connect(tmp / "bench.sqlite3") as con:
            busy = con.execute("SELECT count(*) FROM export_job WHERE status IN ('queued', 'running')").fetchone()[0]
        if queue.exists():
            with sqlite3.connect(queue) as con:
                busy += con.execute("SELECT count(*) FROM task").fetchone()[0]
        if not busy:
            return
        time.sleep(1)
    print(f"(jobs still running after {timeout:.0f} s)")


def print_startup(took: dict, standalone: dict) -> None:
    verdict = "within" if took["median"] <= TARGET_STARTUP_S else "OVER"
    print(f"\nstart-up (import wsgi: import + create_app, 5 runs): best {took['best']:.2f} s, median "
          f"{took['median']:.2f} s wall ({verdict} the {TARGET_STARTUP_S:.0f} s aim); CPU best {took['cpu_best']:.2f} s, "
          f"median {took['cpu_median']:.2f} s; load average {os.getloadavg()[0]:.1f}; that process after the "
          f"catalogue: USS {standalone['uss']:.1f} MB, RSS {standalone['rss']:.1f} MB")


def startup_only() -> None:
    with tempfile.TemporaryDirectory(prefix="kepu-startup-") as tmp:
        tmp = Path(tmp)
        env = instance_env(tmp)
        os.environ.update(env)
        make_app(tmp)  # the database at the migrations' head, for the catalogue
        took, standalone = startup(env)
    print_startup(took, standalone)
    print(f"before the start-up work (18070d0): best {STARTUP_BEFORE['best']:.2f} s, median "
          f"{STARTUP_BEFORE['median']:.2f} s; aim ≤ {TARGET_STARTUP_S} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--records", type=int, default=22_000)
    parser.add_argument("--startup-only", action="store_true",
                        help="only the start-up figure, on an empty migrated database (no gunicorn, no county)")
    args = parser.parse_args()
    if args.startup_only:
        return startup_only()
    with tempfile.TemporaryDirectory(prefix="kepu-memory-") as tmp:
        tmp = Path(tmp)
        env = instance_env(tmp)
        os.environ.update(env)
        started = time.monotonic()
        facts = seed(tmp, args.people, args.records)
        print(f"seeded in {time.monotonic() - started:.0f} s: {args.people} people, {facts['records']} records")
        took, standalone = startup(env)
        (tmp / "bench_app.py").write_text(BENCH_APP)
        server, port = start_gunicorn(tmp, env, "bench_app:app", workers=args.workers)
        job_worker = start_worker(env, tmp)
        base = f"http://127.0.0.1:{port}"
        try:
            time.sleep(2)
            pids = worker_pids(server.pid)
            idle = measure(server.pid, job_worker.pid)
            print_memory("started, no page served yet", idle)
            cookies = {role: sign_in(base, name, role == "elder") for role, name in facts["logins"].items()}
            # a large export for `lms worker` (more rows than go inline), and an index update
            with requests.Session() as admin:
                admin.cookies.update(cookies["admin"])
                token = CSRF_RE.search(admin.get(f"{base}/admin/hours", timeout=TIMEOUT).text).group(1)
                admin.post(f"{base}/admin/hours/export", data={"fmt": "xlsx", "csrf_token": token}, timeout=TIMEOUT)
            from lms.jobs import update_search

            update_search(facts["course_ids"])
            problems = []
            for kind, role, path in pages(facts):
                served, statuses = through_every_worker(base, path, cookies[role], pids)
                if statuses != {200} or not served >= set(pids):
                    problems.append(f"{kind} {path}: statuses {sorted(statuses)}, {len(served & set(pids))}"
                                    f"/{len(pids)} workers")
            wait_for_jobs(tmp)
            before_search = measure(server.pid, job_worker.pid)
            print_memory("every kind of page but search, through every worker (no process has searched)",
                         before_search)
            for kind, role, path in SEARCHES:
                served, statuses = through_every_worker(base, path, cookies[role], pids)
                if statuses != {200} or not served >= set(pids):
                    problems.append(f"{kind} {path}: statuses {sorted(statuses)}, {len(served)} workers")
            final = measure(server.pid, job_worker.pid)
            print_memory("after searches too (every kind of page through every worker)", final)
        finally:
            stop(server)
            stop(job_worker)
    worst_before = max(m["uss"] for m in before_search["workers"].values())
    worst = max(m["uss"] for m in final["workers"].values())
    now = {"worker_uss_before_search": worst_before, "worker_uss": worst, "job_worker_uss": final["job"]["uss"],
           "set_uss": final["sums"]["uss"], "set_pss": final["sums"]["pss"], "startup_s": took["median"],
           "standalone_uss": standalone["uss"]}
    print_startup(took, standalone)
    labels = {"worker_uss_before_search": "largest web worker USS, before searching (MB)",
              "worker_uss": "largest web worker USS, after every page (MB)",
              "job_worker_uss": "lms worker USS (MB)", "set_uss": "4 workers + lms worker, USS (MB)",
              "set_pss": "4 workers + lms worker, PSS (MB)", "startup_s": "start-up, median of 5 (s)",
              "standalone_uss": "a process that imported, created the app, showed the catalogue: USS (MB)"}
    print(f"\n{'':<72}{'before':>8}{'now':>8}")
    for key, label in labels.items():
        old = BEFORE[key]
        print(f"{label:<72}{old if old is not None else float('nan'):>8.1f}{now[key]:>8.1f}")
    print(f"targets: worker ≤ {TARGET_WORKER_MB} MB USS, set ≤ {TARGET_SET_MB} MB, start-up ≤ {TARGET_STARTUP_S} s")
    for problem in problems:
        print("problem:", problem)


if __name__ == "__main__":
    main()
