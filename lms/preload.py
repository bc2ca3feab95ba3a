"""One app loaded by gunicorn's master and shared by its workers (gunicorn.conf.py: preload_app).

Workers are forked after the master imported and created the app, so what it loaded sits in memory
pages every worker shares until one of them writes to a page (copy-on-write). Measured with
scripts/bench/memory.py (issue 12):
- `warm(app)` (master, before the first fork) also loads what a worker would otherwise load for itself
  at its first search or certificate: jieba's dictionary (~70 MB, and ~1 s at the first search) and
  fpdf2/fontTools (~30 MB), and the job queue (huey, ~10 MB: lms/jobs/tasks.py). Once in the master, not
  once per worker.
- `before_fork()` freezes the garbage collector's view of everything made so far: a collection in a
  worker then never walks (and so never writes to, and never copies) the master's objects.
- `after_fork(app)`, in each new worker: the database pool and the job queue's SQLite handle it
  inherited are dropped (the master opened none for requests, but a connection used by two processes
  corrupts silently), so the worker opens its own.
- `request_started()` / `request_finished()` (gunicorn's pre_request/post_request): when a worker falls
  idle having grown by 4 MB or more, malloc's free pages go back to the system (lms/memory.py). With the
  certificate's garbage collected at once (lms/records/certificates.py), the largest worker held 79–82 MB
  USS instead of 98–102 MB (scripts/bench/memory.py, 3 runs each, alternated on the same tree).
"""
from __future__ import annotations

import gc

from lms.memory import IdleTrim


def warm(app) -> None:
    from lms.search.analyzer import ensure_jieba

    with app.app_context():
        ensure_jieba()
    import fpdf  # noqa: F401  (certificates: lms/records/certificates.py imports it when it draws one)
    from fontTools import cffLib, subset, ttLib  # noqa: F401  (what fpdf2 loads to embed the CJK font)
    from lms.jobs import tasks  # noqa: F401  (the job queue: huey, with redis and psycopg, ~10 MB, made on first
    # use since issue 12's start-up work; /healthz and every enqueue in a worker use it)


def before_fork() -> None:
    gc.freeze()


def after_fork(app) -> None:
    global idle_trim
    from lms.extensions import db

    with app.app_context():
        db.engine.dispose(close=False)  # the pool is new; the master's connections are left to the master
    idle_trim = IdleTrim(growth_mb=4.0)
    storage = getattr(app.extensions.get("jobs"), "storage", None)
    if getattr(storage, "_conn", None) is not None:  # huey's SQLite storage opens it again on first use
        _inherited.append(storage._conn)  # not closed here, as above: it stays the master's
        storage._conn = None


_inherited: list = []


idle_trim: IdleTrim | None = None  # a worker's, made by after_fork


def request_started() -> None:
    if idle_trim is not None:
        idle_trim.started()


def request_finished() -> None:
    if idle_trim is not None:
        idle_trim.finished()
