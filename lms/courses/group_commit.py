"""Group commit for heartbeats on SQLite.

SQLite writes one transaction at a time, and with synchronous=FULL each commit waits for the disk
(a few hundred to a few thousand a second, depending on the disk and on what else writes to it).
One commit per heartbeat would make the disk the limit. So the heartbeats of one process that
arrive while a commit is under way are written together in the next transaction, by whichever of
their threads gets there first (the leader), and each request answers only once the commit that
holds its rows has returned: nothing acknowledged is lost, and synchronous=FULL stays.

A write is a list of (RawStatement, params) (lms/courses/services.py), each an UPDATE that must change exactly one row (it
checks the version the request read). When the first changes nothing, a concurrent request won:
that write is dropped (nothing of it was written) and its request reads again. When a later one
changes nothing, the transaction is rolled back and redone without that write. PostgreSQL groups
concurrent commits itself, so there each request commits its own write (`write`).
"""
from __future__ import annotations

import threading

from flask import current_app

from lms import sqlite_turns
from lms.extensions import db


class _Write:
    __slots__ = ("work", "applied", "error", "done")

    def __init__(self, work):
        self.work, self.applied, self.error, self.done = work, None, None, False


class GroupCommit:
    def __init__(self, lock_path: str | None):
        self._leader = threading.Lock()  # held by the thread writing a batch
        self._mutex = threading.Lock()  # guards _pending
        self._pending: list[_Write] = []
        self._lock_path = lock_path  # the web workers' leaders take turns on it (lms/sqlite_turns.py)

    def write(self, connection, work) -> bool:
        """The leader writes the batch on its own request's connection."""
        item = _Write(work)
        with self._mutex:
            self._pending.append(item)
        with self._leader:
            if not item.done:  # no earlier leader took it: lead, taking everything queued meanwhile
                with sqlite_turns.turn(self._lock_path):
                    with self._mutex:
                        batch, self._pending = self._pending, []
                    _write_batch(connection, batch)
        if item.error is not None:
            raise item.error
        return item.applied


def _apply(cursor, item: _Write) -> bool | None:
    """True: every statement changed its row; False: the first changed none (nothing written);
    None: a later one changed none (the transaction holds part of this write)."""
    first, *rest = item.work
    if first[0].execute(cursor, first[1]).rowcount != 1:
        return False
    return True if all(statement.execute(cursor, params).rowcount == 1 for statement, params in rest) else None


def _write_batch(connection, batch: list[_Write]) -> None:
    todo = batch
    try:
        cursor = connection.cursor()
        while True:
            broken = None
            for item in todo:
                item.applied = _apply(cursor, item)
                if item.applied is None:
                    broken = item
                    break
            if broken is None:
                connection.commit()
                return
            connection.rollback()
            broken.applied = False
            for item in todo:
                if item.applied:  # rolled back with the rest: written again in the next round
                    item.applied = None
            todo = [item for item in todo if item.applied is None]
    except Exception as exc:  # the commit failed: none of the batch was written
        connection.rollback()
        for item in batch:
            item.applied, item.error = False, exc
    finally:
        for item in batch:
            item.done = True


def write(connection, work) -> bool:
    """Write `work` (see the module docstring) on `connection` (a pooled driver connection, whose
    reads are over) and commit; False when a concurrent request changed one of its rows first."""
    if db.engine.dialect.name != "sqlite":
        cursor = connection.cursor()
        if all(statement.execute(cursor, params).rowcount == 1 for statement, params in work):
            connection.commit()
            return True
        connection.rollback()
        return False
    group = current_app.extensions.get("heartbeat_group_commit")
    if group is None:
        group = current_app.extensions.setdefault("heartbeat_group_commit",
                                                  GroupCommit(sqlite_turns.lock_path("heartbeat")))
    return group.write(connection, work)
