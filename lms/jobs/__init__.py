"""Background jobs on Huey: SQLite storage under LMS_DATA_DIR by default, Redis when
LMS_REDIS_URL is set (then workers on several machines share one queue).

The database stays the source of truth: a job only says "look at asset N"; the asset's status
decides whether there is work, so a lost or repeated job is harmless, and a worker that starts
re-enqueues work abandoned by one that died (SIGKILL, power cut).

The queue and its tasks live in lms/jobs/tasks.py, imported the first time a job is enqueued, the
queue is read (/healthz, `lms doctor`) or the worker runs: huey imports redis and psycopg with it
(~0.12 s of start-up, issue 12). `lms.jobs.huey`, `lms.jobs.transcode_video` and the other task
names resolve to it on first use, as they did when they were defined here.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)
_app = None  # the Flask app jobs run in (set by init_app / the worker)

# names defined by lms/jobs/tasks.py, read through this module (`from lms.jobs import huey`)
TASK_NAMES = frozenset({"huey", "transcode_video", "update_search", "export_hours", "recover_abandoned_work",
                        "sweep_stray_uploads", "sweep_expired_exports", "forget_old_signin_failures"})


def __getattr__(name: str):
    if name in TASK_NAMES:
        return getattr(_tasks(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _tasks():
    """lms/jobs/tasks.py: the queue, made on first use for the app bound by init_app."""
    from lms.jobs import tasks

    return tasks


def _default_data_dir() -> str:
    from lms.config import _instance_dir

    return os.environ.get("LMS_DATA_DIR", str(_instance_dir() / "data"))


def init_app(app) -> None:
    """Bind jobs to `app`; a non-default DATA_DIR (tests, several instances) gets its own queue file
    (when the queue is made, or at once if it already exists)."""
    global _app
    _app = app
    from sys import modules

    tasks = modules.get("lms.jobs.tasks")
    if tasks is not None and hasattr(tasks, "bind"):
        tasks.bind(app)


def _in_app(fn):
    def wrapper(*args, **kwargs):
        from lms.extensions import db

        with _app.app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    wrapper.__name__ = fn.__name__
    wrapper.__module__ = __name__  # huey names a task module.function: "lms.jobs.transcode_video" (tasks.py)
    return wrapper


def _requeue_abandoned() -> None:
    """Re-enqueue assets still pending or abandoned mid-transcode, and exports waiting or abandoned
    (a claim makes repeats harmless)."""
    from lms.media.services import pending_asset_ids
    from lms.records.export_jobs import pending_job_ids

    tasks = _tasks()
    for asset_id in pending_asset_ids():
        tasks.transcode_video(asset_id)
    for job_id in pending_job_ids():
        tasks.export_hours(job_id)


def enqueue_transcode(asset_id: int) -> None:
    _tasks().transcode_video(asset_id)


def enqueue_search_update(course_ids: list[int]) -> None:
    _tasks().update_search(list(course_ids))


def enqueue_export(job_id: int) -> None:
    _tasks().export_hours(job_id)


def queue_state() -> dict:
    try:
        huey = _tasks().huey
        beat = last_worker_heartbeat()
        return {"ok": True, "backend": type(huey.storage).__name__, "pending": huey.pending_count(),
                "worker_seen_seconds_ago": None if beat is None else max(0, round(time.time() - beat["at"]))}
    except Exception as exc:  # report, don't raise: /healthz reads this
        return {"ok": False, "error": str(exc)[:200]}


# A worker stamps this in the queue's own storage (so it is seen from every machine sharing the queue)
# from a thread of its own: a periodic task would wait behind a long transcode. `lms doctor` reads it.
WORKER_HEARTBEAT_KEY = "worker-heartbeat"
WORKER_HEARTBEAT_SECONDS = 30


def stamp_worker_heartbeat() -> None:
    _tasks().huey.put(WORKER_HEARTBEAT_KEY, {"at": time.time(), "host": socket.gethostname(), "pid": os.getpid()})


def last_worker_heartbeat() -> dict | None:
    """The newest stamp of any worker ({"at": unix time, "host", "pid"}), or None if none ever ran."""
    return _tasks().huey.get(WORKER_HEARTBEAT_KEY, peek=True)


def _stamp_forever() -> None:
    while True:
        try:
            stamp_worker_heartbeat()
        except Exception:  # the queue's storage is down for a moment: try again next time
            log.exception("could not stamp the worker heartbeat")
        time.sleep(WORKER_HEARTBEAT_SECONDS)


def run_worker(workers: int = 1) -> None:
    """The consumer loop (`lms worker`): recover abandoned work, then serve the queue."""
    huey = _tasks().huey
    threading.Thread(target=_stamp_forever, name="worker-heartbeat", daemon=True).start()
    with _app.app_context():
        _requeue_abandoned()
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True,
                                    check_worker_health=True)
    consumer.run()
