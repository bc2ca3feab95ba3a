"""Background jobs on Huey: SQLite storage under LMS_DATA_DIR by default, Redis when
LMS_REDIS_URL is set (then workers on several machines share one queue).

The database stays the source of truth: a job only says "look at asset N"; the asset's status
decides whether there is work, so a lost or repeated job is harmless, and a worker that starts
re-enqueues work abandoned by one that died (SIGKILL, power cut).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

from huey import RedisHuey, SqliteHuey, crontab
from huey.storage import SqliteStorage

log = logging.getLogger(__name__)
_app = None  # the Flask app jobs run in (set by init_app / the worker)


def _default_data_dir() -> str:
    from lms.config import _instance_dir

    return os.environ.get("LMS_DATA_DIR", str(_instance_dir() / "data"))


def _make_huey():
    redis_url = os.environ.get("LMS_REDIS_URL")
    if redis_url:
        return RedisHuey("kepu", url=redis_url)
    Path(_default_data_dir()).mkdir(parents=True, exist_ok=True)
    return SqliteHuey("kepu", filename=os.path.join(_default_data_dir(), "jobs.sqlite3"))


huey = _make_huey()


def init_app(app) -> None:
    """Bind jobs to `app`; a non-default DATA_DIR (tests, several instances) gets its own queue file."""
    global _app
    _app = app
    if isinstance(huey.storage, SqliteStorage):
        filename = os.path.join(app.config["DATA_DIR"], "jobs.sqlite3")
        if huey.storage.filename != filename:
            huey.storage = SqliteStorage("kepu", filename=filename)
    app.extensions["jobs"] = huey


def _in_app(fn):
    def wrapper(*args, **kwargs):
        from lms.extensions import db

        with _app.app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    wrapper.__name__ = fn.__name__
    return wrapper


@huey.task(retries=2, retry_delay=10)
@_in_app
def transcode_video(asset_id: int):
    from lms.courses.videos import course_id_of
    from lms.media.services import run_asset

    asset = run_asset(asset_id)  # a ready upload goes into its lesson (lms/courses/videos.py)
    course_id = course_id_of(asset) if asset is not None and asset.ready else None
    if course_id:
        enqueue_search_update([course_id])  # its lesson's video (and length) changed
    return asset.status if asset else "skipped"


@huey.task()
@_in_app
def update_search(course_ids: list[int]):
    try:
        from lms.search.index import update_courses
    except ImportError:  # search arrives with its own issue
        return "search not installed"
    update_courses(course_ids)
    return "ok"


@huey.task()
@_in_app
def export_hours(job_id: int):
    from lms.records.export_jobs import run_job

    return run_job(job_id)


def _requeue_abandoned() -> None:
    """Re-enqueue assets still pending or abandoned mid-transcode, and exports waiting or abandoned
    (a claim makes repeats harmless)."""
    from lms.media.services import pending_asset_ids
    from lms.records.export_jobs import pending_job_ids

    for asset_id in pending_asset_ids():
        transcode_video(asset_id)
    for job_id in pending_job_ids():
        export_hours(job_id)


@huey.periodic_task(crontab(minute="*"))
@_in_app
def recover_abandoned_work():
    """Every minute, for work whose worker died while others kept running."""
    _requeue_abandoned()


@huey.periodic_task(crontab(minute="*/10"))
@_in_app
def sweep_stray_uploads():
    """Every ten minutes: upload temp files untouched for an hour, left by a web process killed
    mid-upload (a finished request removes its own, whatever its outcome)."""
    from lms.media.services import remove_stray_uploads

    removed = remove_stray_uploads()
    if removed:
        log.info("removed %d stray upload file(s)", len(removed))
    return len(removed)


@huey.periodic_task(crontab(minute="*/10"))
@_in_app
def sweep_expired_exports():
    """Every ten minutes: delete export files kept their day (lms/records/export_jobs.py)."""
    from lms.records.export_jobs import sweep

    removed = sweep()
    if removed:
        log.info("removed %d expired export file(s)", removed)
    return removed


@huey.periodic_task(crontab(minute="17"))
@_in_app
def forget_old_signin_failures():
    """Hourly: failed sign-in counts whose window has passed and that block nothing."""
    from lms.accounts.throttle import purge

    return purge()


def enqueue_transcode(asset_id: int) -> None:
    transcode_video(asset_id)


def enqueue_search_update(course_ids: list[int]) -> None:
    update_search(list(course_ids))


def enqueue_export(job_id: int) -> None:
    export_hours(job_id)


def queue_state() -> dict:
    try:
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
    huey.put(WORKER_HEARTBEAT_KEY, {"at": time.time(), "host": socket.gethostname(), "pid": os.getpid()})


def last_worker_heartbeat() -> dict | None:
    """The newest stamp of any worker ({"at": unix time, "host", "pid"}), or None if none ever ran."""
    return huey.get(WORKER_HEARTBEAT_KEY, peek=True)


def _stamp_forever() -> None:
    while True:
        try:
            stamp_worker_heartbeat()
        except Exception:  # the queue's storage is down for a moment: try again next time
            log.exception("could not stamp the worker heartbeat")
        time.sleep(WORKER_HEARTBEAT_SECONDS)


def run_worker(workers: int = 1) -> None:
    """The consumer loop (`lms worker`): recover abandoned work, then serve the queue."""
    threading.Thread(target=_stamp_forever, name="worker-heartbeat", daemon=True).start()
    with _app.app_context():
        _requeue_abandoned()
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True,
                                    check_worker_health=True)
    consumer.run()
