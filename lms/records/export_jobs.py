"""Exports as background jobs: a large export asked for on the web is written by the worker into
DATA_DIR/exports (mode 0600) while its page shows the progress, and the administrator who asked — no
one else — downloads it for a day; then lms/jobs' sweep deletes the file and the page says 已过期.

The job row is the source of truth, as for videos (lms/media/services.py): the queued task only says
"look at job N", and taking a job is one UPDATE, so a lost or repeated task is harmless and a job
whose worker died (its progress silent for JOB_STALE_SECONDS) is taken again by the requeue loop.
The filters are checked against the requester's scope again when the job runs (a unit admin moved or
demoted meanwhile gets nothing beyond their new subtree).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import time
from datetime import date, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, update

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import OutsideScope, oversight_root, scoped_unit
from lms.extensions import db
from lms.records import export_sql
from lms.records.audit import audit
from lms.records.xlsx import MAX_ROWS, TooManyRows

log = logging.getLogger(__name__)

KEEP = timedelta(days=1)  # a finished export is downloadable this long
MAX_ATTEMPTS = 3  # a job whose worker died this many times is failed, not taken again
PROGRESS_SECONDS = 2.0  # how often a running job writes its progress (also its liveness)
STATUS_LABELS = {"queued": _l("排队中"), "running": _l("正在导出"), "done": _l("已完成"), "failed": _l("失败")}
EXPIRED_LABEL = _l("已过期")
MIMETYPES = {"csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ExportJob(db.Model):
    """One export asked for on the web, written in the background."""

    id = db.Column(db.Integer, primary_key=True)
    requested_by_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    filters_json = db.Column(db.Text, nullable=False)  # {"date_from", "date_to", "unit" (code), "audience"}
    fmt = db.Column(db.String(10), nullable=False)  # csv / xlsx
    summary = db.Column(db.Boolean, nullable=False, default=False)
    lang = db.Column(db.String(5), nullable=False, default="zh")
    status = db.Column(db.String(20), nullable=False, default="queued", index=True)
    rows_done = db.Column(db.Integer, nullable=False, default=0)
    rows_total = db.Column(db.Integer)  # counted when asked (the bar's length)
    file_name = db.Column(db.String(100))  # under DATA_DIR/exports, made here, never from a request
    error = db.Column(db.Text)
    attempts = db.Column(db.Integer, nullable=False, default=0)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow)  # progress: the liveness signal
    finished_at = db.Column(db.DateTime)
    expires_at = db.Column(db.DateTime, nullable=False)

    requested_by = db.relationship(User)

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()

    @property
    def downloadable(self) -> bool:
        return self.status == "done" and not self.expired and self.file_name is not None

    @property
    def label(self) -> str:
        return str(EXPIRED_LABEL if self.status == "done" and self.expired else STATUS_LABELS[self.status])

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(99, self.rows_done * 100 // self.rows_total) if self.rows_total else 0

    @property
    def filters(self) -> dict:
        return json.loads(self.filters_json)

    @property
    def download_name(self) -> str:
        filters = self.filters
        stem = f"xueshi-{filters['date_from'] or 'all'}-{filters['date_to'] or self.created_at.date()}"
        return f"{stem}{'-summary' if self.summary else ''}.{self.fmt}"


def exports_dir() -> Path:
    folder = Path(current_app.config["DATA_DIR"]) / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def create_job(user, filters: export_sql.Filters, fmt: str, summary: bool, lang: str, total: int) -> ExportJob:
    """Queue an export of `filters` (already scoped to `user`) and audit the request."""
    now = utcnow()
    job = ExportJob(requested_by_id=user.id, fmt=fmt, summary=summary, lang=lang, status="queued",
                    rows_total=total, created_at=now, updated_at=now, expires_at=now + KEEP,
                    filters_json=json.dumps({
                        "date_from": filters.date_from and filters.date_from.isoformat(),
                        "date_to": filters.date_to and filters.date_to.isoformat(),
                        "unit": filters.unit.code if filters.unit is not None else None,
                        "audience": filters.audience}))
    db.session.add(job)
    audit(user, "records.export", job, f"{'汇总' if summary else '明细'} {fmt} {total} 行")
    db.session.commit()
    from lms.jobs import enqueue_export

    enqueue_export(job.id)
    return job


def job_for(user, job_id: int) -> ExportJob | None:
    """The job if `user` asked for it; None for anyone else's (a 404: whose it is stays unknown)."""
    job = db.session.get(ExportJob, job_id)
    return job if job is not None and job.requested_by_id == user.id else None


def recent_jobs(user, limit: int = 10) -> list[ExportJob]:
    return (ExportJob.query.filter_by(requested_by_id=user.id)
            .order_by(ExportJob.created_at.desc(), ExportJob.id.desc()).limit(limit).all())


def file_path(job: ExportJob) -> Path | None:
    """The job's file, only ever inside the exports folder (whatever the row says)."""
    if not job.file_name:
        return None
    folder = exports_dir().resolve()
    path = (folder / job.file_name).resolve()
    return path if path.parent == folder and path.is_file() else None


class JobRefused(Exception):
    """A job that must not run: its message is what the job page shows."""


def scoped_filters(job: ExportJob) -> export_sql.Filters:
    """The job's filters as its requester may still use them now (JobRefused otherwise)."""
    requester = db.session.get(User, job.requested_by_id)
    if requester is None or not requester.active or not requester.can_export_hours:
        raise JobRefused(str(_l("申请人已没有导出学时的权限，未导出。")))
    stored = job.filters
    unit = None
    if stored["unit"]:
        unit = Unit.query.filter_by(code=stored["unit"]).first()
        if unit is None:
            raise JobRefused(str(_l("单位编码不存在：%(code)s，未导出。", code=stored["unit"])))
    try:
        if unit is None and oversight_root(requester) is not None:
            raise OutsideScope("all units")
        unit = scoped_unit(requester, unit)
    except OutsideScope:
        raise JobRefused(str(_l("所选单位不在申请人的管理范围内，未导出。"))) from None
    return export_sql.Filters(
        date.fromisoformat(stored["date_from"]) if stored["date_from"] else None,
        date.fromisoformat(stored["date_to"]) if stored["date_to"] else None,
        unit, stored["audience"] or None)


def _stale_before():
    return utcnow() - timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])


def _takeable():
    return (ExportJob.attempts < MAX_ATTEMPTS) & or_(
        ExportJob.status == "queued", (ExportJob.status == "running") & (ExportJob.updated_at < _stale_before()))


def claim(job_id: int) -> bool:
    """Atomically take a queued (or abandoned) job; False if another worker has it or it is finished."""
    result = db.session.execute(update(ExportJob).where(ExportJob.id == job_id).where(_takeable())
                                .values(status="running", rows_done=0, attempts=ExportJob.attempts + 1,
                                        updated_at=utcnow()))
    db.session.commit()
    return result.rowcount == 1


def pending_job_ids() -> list[int]:
    """Jobs to queue again: waiting ones whose task may be lost (queued a while ago — a fresh one is in
    the queue already), and running ones whose worker went silent."""
    return [row[0] for row in db.session.query(ExportJob.id).filter(_takeable(), ExportJob.updated_at < _stale_before())
            .order_by(ExportJob.id)]


def run_job(job_id: int) -> str:
    """The job body: write the file, or fail the job with the reason. Never raises."""
    if not claim(job_id):
        return "skipped"
    job = db.session.get(ExportJob, job_id)
    final = exports_dir() / f"{job.id}-{secrets.token_hex(8)}.{job.fmt}"
    partial = final.with_name(f".{final.name}.part")
    try:
        filters = scoped_filters(job)
        if job.fmt == "xlsx" and job.rows_total and job.rows_total >= MAX_ROWS:
            raise TooManyRows(job.rows_total)
        done = _write(job, filters, partial)
        os.replace(partial, final)
    except Exception as exc:  # noqa: BLE001 — every failure is told on the job's page
        partial.unlink(missing_ok=True)
        db.session.rollback()
        job = db.session.get(ExportJob, job_id)
        job.status, job.finished_at, job.updated_at = "failed", utcnow(), utcnow()
        job.error = _reason(exc)
        db.session.commit()
        return "failed"
    now = utcnow()
    job.status, job.rows_done, job.rows_total, job.file_name = "done", done, done, final.name
    job.finished_at = job.updated_at = now
    job.expires_at = now + KEEP
    db.session.commit()
    return "done"


def _reason(exc: Exception) -> str:
    if isinstance(exc, JobRefused):
        return str(exc)
    if isinstance(exc, TooManyRows):
        return str(_l("共 %(rows)d 行，超过 Excel 一张工作表的上限（%(limit)d 行），请改用 CSV 或缩小范围。",
                      rows=exc.rows, limit=MAX_ROWS - 1))
    log.exception("export job failed")
    return str(_l("导出时发生内部错误（%(kind)s），请重试或联系管理员。", kind=type(exc).__name__))


def _write(job: ExportJob, filters: export_sql.Filters, path: Path) -> int:
    """Write the export to `path` (created 0600), recording progress every few seconds; returns rows."""
    job_id, fmt, summary, lang = job.id, job.fmt, job.summary, job.lang
    written, last = 0, time.monotonic()

    def progress(rows: int) -> None:
        nonlocal written, last
        written += rows
        if time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            with db.engine.begin() as connection:  # not the reading connection, which is mid-query
                connection.execute(update(ExportJob).where(ExportJob.id == job_id)
                                   .values(rows_done=written, updated_at=utcnow()))

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        if fmt == "xlsx":
            return export_sql.write_xlsx(out, summary, filters, lang, progress)
        export_sql.write_csv(out, summary, filters, lang, progress)
    return written


def sweep() -> int:
    """Delete the files of expired jobs (and stray partial files a killed worker left); returns how many."""
    removed = 0
    for job in ExportJob.query.filter(ExportJob.file_name.isnot(None), ExportJob.expires_at <= utcnow()):
        path = file_path(job)
        if path is not None:
            path.unlink(missing_ok=True)
            removed += 1
        job.file_name = None
    db.session.commit()
    cutoff = time.time() - KEEP.total_seconds()
    for stray in exports_dir().glob(".*.part"):
        if stray.stat().st_mtime < cutoff:
            stray.unlink(missing_ok=True)
            removed += 1
    return removed
