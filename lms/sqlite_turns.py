"""SQLite writers of one kind take turns on a lock file beside the database.

SQLite lets one writer in; one that finds it busy sleeps in growing steps (up to 100 ms) before it
tries again, so in a burst short write transactions waited far longer than they ran, and one process's
writers could starve another's. Writers that queue on a lock file instead are each woken as soon as
the one before is done. Used by the heartbeats' batches (lms/courses/heartbeat_batch.py) and the
sign-in throttle (lms/accounts/throttle.py). Only speed depends on it: a lock file that cannot be
opened leaves the writers to SQLite's own waiting. PostgreSQL locks rows: nothing to do there.

A process opens each lock file once; its threads share that descriptor, which excludes nothing between
them, so callers hold a thread lock of their own as well.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager

from lms.extensions import db

_descriptors: dict[str, tuple[int, int | None]] = {}  # lock file → (the process that opened it, descriptor)


def lock_path(kind: str) -> str | None:
    """`<database file>.<kind>-lock` for a SQLite database file; None for other databases and in-memory ones."""
    url = db.engine.url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return f"{database}.{kind}-lock"


@contextmanager
def turn(path: str | None):
    """Hold the lock file at `path` (None: nothing to hold) for the block; the caller holds its thread lock."""
    descriptor = _descriptor(path) if path else None
    if descriptor is None:
        yield
        return
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


def _descriptor(path: str) -> int | None:
    opened = _descriptors.get(path)
    if opened is None or opened[0] != os.getpid():  # opened before a fork: a lock shared with the parent excludes nothing
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            descriptor = None
        opened = _descriptors[path] = (os.getpid(), descriptor)
    return opened[1]
