"""The Huey queue and its tasks, imported on first use through lms.jobs (see its docstring): importing
huey imports huey.storage, which imports redis and psycopg whether they are used or not (~0.12 s and
~10 MB), so a web process that never enqueues or reads the queue never loads them.

Task names are those of the functions wrapped by lms.jobs._in_app, whose module is "lms.jobs"
("lms.jobs.transcode_video", ...): the names jobs had when they were defined in lms/jobs/__init__.py,
so a queue filled by an older version is served by this one.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from huey import RedisHuey, SqliteHuey, crontab
from huey.storage import SqliteStorage

from lms import jobs
from lms.jobs import _in_app

log = logging.getLogger("lms.jobs")


def _make_huey():
    redis_url = os.environ.get("LMS_REDIS_URL")
    if redis_url:
        return RedisHuey("kepu", url=redis_url)
    data_dir = jobs._app.config["DATA_DIR"] if jobs._app is not None else jobs._default_data_dir()
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return SqliteHuey("kepu", filename=os.path.join(data_dir, "jobs.sqlite3"))


huey = _make_huey()


def bind(app) -> None:
    """Serve `app`'s queue: a non-default DATA_DIR (tests, several instances) gets its own queue file."""
    if isinstance(huey.storage, SqliteStorage):
        filename = os.path.join(app.config["DATA_DIR"], "jobs.sqlite3")
        if huey.storage.filename != filename:
            huey.storage = SqliteStorage("kepu", filename=filename)
    app.extensions["jobs"] = huey


@huey.task(retries=2, retry_delay=10)
@_in_app
def transcode_video(asset_id: int):
    from lms.courses.videos import course_id_of
    from lms.media.services import run_asset

    asset = run_asset(asset_id)  # a ready upload goes into its lesson (lms/courses/videos.py)
    course_id = course_id_of(asset) if asset is not None and asset.ready else None
    if course_id:
        jobs.enqueue_search_update([course_id])  # its lesson's video (and length) changed
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


@huey.periodic_task(crontab(minute="*"))
@_in_app
def recover_abandoned_work():
    """Every minute, for work whose worker died while others kept running."""
    jobs._requeue_abandoned()


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


if jobs._app is not None:
    bind(jobs._app)
