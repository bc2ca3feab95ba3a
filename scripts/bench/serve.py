"""The benches' real server: gunicorn (with gunicorn.conf.py) and `lms worker` on a throw-away instance,
loopback only.

    from serve import instance_env, start_gunicorn, start_worker, stop, worker_pids

- `instance_env(tmp)` — the environment of an instance under `tmp` (secret key, instance and data
  folders, a SQLite database file; `database_url=` for another database), the same one
  `county.make_app(tmp)` seeds.
- `start_gunicorn(cwd, env, app="wsgi:app", workers=N)` — gunicorn as deployed (gunicorn.conf.py; the
  app module is looked up in `cwd`, then in the project), waits until `ready_path` answers; returns
  (process, port). Its log goes to `cwd/gunicorn.log`.
- `start_worker(env, cwd)` — `lms worker`; `stop(proc)` — SIGTERM, then SIGKILL after `timeout`.
- `worker_pids(master)` — the pids of gunicorn's workers (the master's children).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def instance_env(tmp: Path, database_url: str | None = None) -> dict:
    return {"LMS_SECRET_KEY": secrets.token_hex(16), "LMS_INSTANCE_DIR": str(tmp / "instance"),
            "LMS_DATA_DIR": str(tmp / "data"),
            "LMS_DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"}


def _wait_ready(proc, port: int, path: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            time.sleep(0.2)
    return False


def start_gunicorn(cwd: Path, env: dict, app: str = "wsgi:app", workers: int | None = None, args=(),
                   ready_path: str = "/login", timeout: float = 60):
    port = free_port()
    command = [str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), "--bind",
               f"127.0.0.1:{port}", "--log-level", "warning", "--pythonpath", f"{cwd},{ROOT}", *args]
    if workers:
        command += ["--workers", str(workers)]
    log_path = Path(cwd) / "gunicorn.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command + [app], cwd=str(cwd), env={**os.environ, **env}, stdout=log,
                                stderr=subprocess.STDOUT)
    if not _wait_ready(proc, port, ready_path, timeout):
        stop(proc, 5)
        raise RuntimeError("gunicorn did not start: " + log_path.read_text(errors="replace")[-2000:])
    return proc, port


def start_worker(env: dict, cwd: Path):
    with open(Path(cwd) / "worker.log", "ab") as log:
        return subprocess.Popen([str(ROOT / ".venv/bin/lms"), "worker"], cwd=str(cwd), env={**os.environ, **env},
                                stdout=log, stderr=subprocess.STDOUT)


def stop(proc, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker_pids(master: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # after the name: state, ppid, …
            pids.append(int(stat.parent.name))
    return sorted(pids)
