#!/usr/bin/env python3
"""Sign-in day: N learners signing in M at a time against our gunicorn, and against a Kolibri for the
ratio when KOLIBRI_URL names one.

    .venv/bin/python scripts/bench/signin.py [--learners 200] [--concurrency 50] [--workers N] [--old-hashes]
    KOLIBRI_URL=http://127.0.0.1:8080 KOLIBRI_USERS=users.txt .venv/bin/python scripts/bench/signin.py
    GUNICORN_CMD_ARGS="--worker-class gthread" .venv/bin/python scripts/bench/signin.py   # gunicorn's own worker

It builds a throw-away instance (temporary SQLite database, instance and data folders), creates the
learners (their passwords hashed as the app hashes them; with --old-hashes as werkzeug scrypt, as
stored before Argon2id, so every sign-in also upgrades the hash), serves it with gunicorn on loopback
using gunicorn.conf.py, and signs every learner in from a pool of M threads, each sign-in a fresh
client: GET /login for the CSRF token, then POST /login (302 = signed in). It prints the wall time of
the burst and p50/p95/p99 of one sign-in (both requests), then the CPU time of one hash check of the
old scrypt and of the configured Argon2id.

KOLIBRI_USERS is a file of "username password" lines (comma, tab or space between) of learners of
that Kolibri (KOLIBRI_FACILITY: a facility id, when not the default one). The same burst goes to its
/api/auth/session/ (200 = signed in), and the ratio of the wall times is printed.

The bench's own config: every learner signs in from 127.0.0.1, and the per-address limit
(SIGNIN_LIMITS "password-address", 30 an hour) counts right passwords too, so the served app raises that
one limit; the per-account limits stay. Only loopback is used; each request times out after 60 s.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-9"
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
TIMEOUT = 60
WARM_UP = 10  # sign-ins before the burst, by other accounts: every worker has rendered the pages once
# served by gunicorn: the app as deployed, with the one limit a burst from one address would trip raised
BENCH_APP = textwrap.dedent('''
    from lms import create_app

    app = create_app()
    # every bench learner comes from 127.0.0.1, and the per-address limit counts right passwords too
    app.config["SIGNIN_LIMITS"]["password-address"] = (1_000_000, 60, 900, 3600)
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(env: dict, learners: int, old_hashes: bool) -> list[str]:
    """Migrate, create the learners (one hash computed, stored for all: the check costs the same), and
    return their account names, warm-up accounts first."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade
    from werkzeug.security import generate_password_hash

    from lms import create_app
    from lms.accounts import passwords
    from lms.accounts.models import User
    from lms.accounts.services import get_or_create_unit
    from lms.extensions import db

    app = create_app()
    with app.app_context():
        upgrade(revision="heads")
        unit = get_or_create_unit("bench", "压测单位", "county")
        stored = generate_password_hash(PASSWORD) if old_hashes else passwords.hash_password(PASSWORD)
        names = [f"warm{n:02d}" for n in range(WARM_UP)] + [f"learner{n:04d}" for n in range(learners)]
        db.session.add_all(User(username=name, full_name=f"学员{name}", password_hash=stored, role="learner",
                                audience="farmer", unit=unit) for name in names)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return names


def start_gunicorn(workdir: Path, env: dict, workers: int | None):
    port = free_port()
    command = [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--bind",
               f"127.0.0.1:{port}", "--log-level", "warning", "bench_app:app"]
    if workers:
        command[3:3] = ["--workers", str(workers)]
    log = open(workdir / "gunicorn.log", "wb")
    proc = subprocess.Popen(command, cwd=str(workdir), env={**os.environ, **env}, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc, port
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("gunicorn did not start: " + (workdir / "gunicorn.log").read_text(errors="replace")[-2000:])


def processes_cpu_seconds(chosen) -> float:
    """User + system CPU time so far of the processes for which `chosen(name, ppid)` is true (Linux /proc;
    0 elsewhere)."""
    total, tick = 0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _paren, rest = stat.read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()  # after the name: state, ppid, … utime (12), stime (13)
        if chosen(head.partition("(")[2], int(fields[1])):
            total += int(fields[11]) + int(fields[12])
    return total / tick


def workers_cpu_seconds(master: int) -> float:
    """User + system CPU time of gunicorn's workers so far."""
    return processes_cpu_seconds(lambda _name, ppid: ppid == master)


def workers_rss_mb(master: int) -> list[int]:
    """Resident memory of each gunicorn worker, in MB (Linux /proc)."""
    sizes = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(master):
            sizes.append(int(fields["VmRSS"].split()[0]) // 1024)
    return sorted(sizes)


def sign_in_ours(base: str, username: str, password: str) -> tuple[float, bool]:
    started = time.perf_counter()
    with requests.Session() as client:
        page = client.get(f"{base}/login", timeout=TIMEOUT)
        token = CSRF_RE.search(page.text).group(1)
        answer = client.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": token},
                             allow_redirects=False, timeout=TIMEOUT)
    return time.perf_counter() - started, answer.status_code == 302


def sign_in_kolibri(base: str, username: str, password: str) -> tuple[float, bool]:
    started = time.perf_counter()
    with requests.Session() as client:
        client.get(f"{base}/api/auth/session/current/", timeout=TIMEOUT)  # sets the csrftoken cookie
        body = {"username": username, "password": password}
        if os.environ.get("KOLIBRI_FACILITY"):
            body["facility"] = os.environ["KOLIBRI_FACILITY"]
        answer = client.post(f"{base}/api/auth/session/", json=body, timeout=TIMEOUT,
                             headers={"X-CSRFToken": client.cookies.get("csrftoken", "")})
    return time.perf_counter() - started, answer.status_code == 200


def burst(sign_in, base: str, accounts: list[tuple[str, str]], concurrency: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda account: sign_in(base, *account), accounts))
    wall = time.perf_counter() - started
    latencies = sorted(seconds for seconds, _ok in results)
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    return {"wall": wall, "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "max": latencies[-1],
            "failed": sum(not ok for _seconds, ok in results), "n": len(results)}


def report(label: str, r: dict) -> None:
    print(f"{label:<10}{r['wall']:>9.1f}{r['p50']:>9.2f}{r['p95']:>9.2f}{r['p99']:>9.2f}{r['max']:>9.2f}"
          f"{r['n']:>9}{r['failed']:>8}")


def hash_cpu_ms(repeat: int = 10) -> tuple[float, float, str]:
    """CPU milliseconds of one check: werkzeug's default scrypt (the old hashes) and the configured Argon2id."""
    from werkzeug.security import check_password_hash, generate_password_hash

    from lms.accounts import passwords
    from lms.config import PASSWORD_ARGON2

    old, new = generate_password_hash(PASSWORD), passwords.hash_password(PASSWORD)

    def cpu(check, stored):
        check(stored, PASSWORD)
        started = time.process_time()
        for _ in range(repeat):
            assert check(stored, PASSWORD)
        return (time.process_time() - started) / repeat * 1000

    params = "m={memory_cost} KiB, t={time_cost}, p={parallelism}".format(**PASSWORD_ARGON2)
    return cpu(check_password_hash, old), cpu(passwords.verify_password, new), f"{old.split('$')[0]} vs Argon2id {params}"


def kolibri_accounts(path: str, count: int) -> list[tuple[str, str]]:
    accounts = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = re.split(r"[,\t ]+", line.strip(), maxsplit=1)
        if len(parts) == 2 and not line.startswith("#"):
            accounts.append((parts[0], parts[1]))
    return accounts[:count]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--old-hashes", action="store_true",
                        help="learners' passwords stored as werkzeug scrypt: each sign-in also upgrades the hash")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kepu-signin-") as tmp:
        tmp = Path(tmp)
        env = {"LMS_SECRET_KEY": secrets.token_hex(16), "LMS_INSTANCE_DIR": str(tmp / "instance"),
               "LMS_DATA_DIR": str(tmp / "data"), "LMS_DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}"}
        names = seed(env, args.learners, args.old_hashes)
        (tmp / "bench_app.py").write_text(BENCH_APP)
        proc, port = start_gunicorn(tmp, env, args.workers)
        base = f"http://127.0.0.1:{port}"
        try:
            warm = burst(sign_in_ours, base, [(name, PASSWORD) for name in names[:WARM_UP]], WARM_UP)
            assert warm["failed"] == 0, f"warm-up sign-ins failed: see {tmp / 'gunicorn.log'}"
            server_cpu, client_cpu, load = workers_cpu_seconds(proc.pid), time.process_time(), os.getloadavg()[0]
            ours = burst(sign_in_ours, base, [(name, PASSWORD) for name in names[WARM_UP:]], args.concurrency)
            server_cpu = workers_cpu_seconds(proc.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
            rss = workers_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        workers = args.workers or f"{len(rss)} (gunicorn.conf.py)"
        overrides = os.environ.get("GUNICORN_CMD_ARGS")  # e.g. "--worker-class gthread", for an A/B
        print(f"\n== {args.learners} learners, {args.concurrency} at a time, gunicorn --workers {workers} "
              f"({f'GUNICORN_CMD_ARGS={overrides}' if overrides else 'its worker class'}, 4 threads), SQLite, "
              f"{os.cpu_count()} CPUs; "
              f"{'old scrypt hashes, upgraded as they sign in' if args.old_hashes else 'Argon2id hashes'}; "
              f"load average {load:.1f} before the burst")
        print(f"{'server':<10}{'wall s':>9}{'p50 s':>9}{'p95 s':>9}{'p99 s':>9}{'max s':>9}{'sign-ins':>9}{'failed':>8}")
        report("kepu", ours)
        kolibri = os.environ.get("KOLIBRI_URL")
        if kolibri and os.environ.get("KOLIBRI_USERS"):
            accounts = kolibri_accounts(os.environ["KOLIBRI_USERS"], args.learners)
            theirs = burst(sign_in_kolibri, kolibri.rstrip("/"), accounts, args.concurrency)
            report("Kolibri", theirs)
            print(f"wall time kepu / Kolibri = {ours['wall'] / theirs['wall']:.2f}  (aim ≤ 0.5); "
                  f"p99 {ours['p99']:.2f} s (aim ≤ 2 s)")
        else:
            print(f"no KOLIBRI_URL and KOLIBRI_USERS: no Kolibri in this run; p99 {ours['p99']:.2f} s (aim ≤ 2 s)")
        cores = os.cpu_count() or 1
        print(f"CPU per sign-in: server {server_cpu / args.learners * 1000:.0f} ms (gunicorn workers), "
              f"this client {client_cpu / args.learners * 1000:.0f} ms; on {cores} idle cores the burst needs "
              f"≥ {(server_cpu + client_cpu) / cores:.1f} s; workers' memory after it (RSS): {rss} MB")
        old_ms, new_ms, what = hash_cpu_ms()
        print(f"one hash check, CPU: {old_ms:.0f} ms → {new_ms:.0f} ms ({what}); "
              f"{args.learners} checks ≈ {old_ms * args.learners / 1000:.1f} s → {new_ms * args.learners / 1000:.1f} s of CPU")


if __name__ == "__main__":
    main()
