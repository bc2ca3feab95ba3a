"""Heartbeats written in batches: the heartbeats of one process that arrive together are read, judged
and written in one transaction.

Every viewer's player posts a heartbeat every 10 s, and on a busy day a process has several in hand
at once. Each one alone was a transaction of its own (BEGIN, a SELECT, two UPDATEs, COMMIT): on
PostgreSQL five round trips whose server work cost more CPU than the heartbeat's own Python, and on
SQLite one synced commit each and a page cache that every other commit made stale
(scripts/bench/heartbeat.py; issue 12). Here the first thread to arrive leads: it takes every
heartbeat queued meanwhile (one per account: a second one of the same account waits for the next
batch, since both would change the same lease), reads what they need, judges each with the same pure
function as before (services._credit), writes them and commits once; each request answers only after
the commit that holds its rows returned, so nothing acknowledged is lost and synchronous=FULL stays.

- PostgreSQL, on a connection in autocommit: one SELECT for the whole batch (the heartbeat's own
  SELECT, joined to the batch's keys), then one statement that writes both tables for every heartbeat
  whose two rows are still at the versions it read (locked first: both rows or neither) and is its
  own transaction. Two round trips a batch instead of five a heartbeat. A heartbeat whose rows another
  request changed meanwhile is not written, and reads again in a later batch.
- SQLite: BEGIN IMMEDIATE (the write lock first, so what is read cannot change before it is written;
  the processes' leaders take turns on a lock file, lms/sqlite_turns.py), then each heartbeat's
  SELECT and two UPDATEs on the leader's connection, one COMMIT.

A heartbeat refused (lesson not visible, lease held by another player, malformed, the user not
verified) gets its exception and writes nothing, whatever the others in its batch get; a first
heartbeat (no progress row or lease yet) goes back to its request, which makes the rows through the
ORM and submits it again. Any other failure (the database lost) fails the whole batch, written
nothing, and each request fails as before (lms/db_resilience.py re-runs it).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from datetime import date, datetime

from flask import current_app

from lms import sqlite_turns
from lms.extensions import db

FIRST = "first"  # no progress row or lease yet: the request makes them, then submits again
STALE = "stale"  # a row changed after it was read: read again

_LEASE_TYPES = {"token": "varchar", "lesson_id": "integer", "acquired_at": "timestamp",
                "last_heartbeat_at": "timestamp", "clock_started_at": "timestamp", "clock_credited": "float8",
                "last_seq": "integer", "day": "date", "day_credited": "float8"}
_PROGRESS_TYPES = {"video_asset_id": "integer", "intervals_json": "text", "watched_seconds": "float8",
                   "furthest_position": "float8", "last_position": "float8", "last_heartbeat_at": "timestamp",
                   "completed_at": "timestamp"}


def _write_statement() -> str:
    """Both tables' UPDATEs for a batch in one statement (on a connection in autocommit: it is its own
    transaction, one round trip). The batch comes as one JSON array of rows (one parameter costs the
    driver far less than a list per column): each heartbeat's new values and the versions it read.
    A heartbeat is written only where both its rows are still at the versions read (locked first, so
    it is both or neither); returns the accounts of those written."""
    columns = {"l_user_id": "integer", "l_version": "integer", "p_id": "integer", "p_version": "integer",
               **{"l_" + name: kind for name, kind in _LEASE_TYPES.items()},
               **{"p_" + name: kind for name, kind in _PROGRESS_TYPES.items()}}

    def assignments(prefix: str, types: dict) -> str:
        return ", ".join([f"{name} = ok.{prefix}{name}" for name in types] + ["version = t.version + 1"])

    return (
        f"WITH ok AS (SELECT v.* FROM json_to_recordset(%s::json) AS v("
        f"{', '.join(f'{name} {kind}' for name, kind in columns.items())}) "
        "JOIN study_lease AS l ON l.user_id = v.l_user_id AND l.version = v.l_version "
        "JOIN lesson_progress AS p ON p.id = v.p_id AND p.version = v.p_version FOR UPDATE OF l, p), "
        f"leases AS (UPDATE study_lease AS t SET {assignments('l_', _LEASE_TYPES)} FROM ok "
        "WHERE t.user_id = ok.l_user_id RETURNING t.user_id), "
        f"progress AS (UPDATE lesson_progress AS t SET {assignments('p_', _PROGRESS_TYPES)} FROM ok "
        "WHERE t.id = ok.p_id RETURNING t.id) "
        "SELECT user_id FROM leases")


_WRITE = _write_statement()
_WRITE_KEYS = ("l_user_id", "l_version", "p_id", "p_version", *("l_" + name for name in _LEASE_TYPES),
               *("p_" + name for name in _PROGRESS_TYPES))


class Beat:
    """One heartbeat in a batch, and what became of it (`outcome`: (result, facts), FIRST or STALE)."""

    __slots__ = ("user_id", "lesson_id", "payload", "now", "verify_user", "outcome", "error", "done")

    def __init__(self, user_id: int, lesson_id: int, payload, now, verify_user):
        self.user_id, self.lesson_id, self.payload, self.now, self.verify_user = (
            user_id, lesson_id, payload, now, verify_user)
        self.outcome = self.error = None
        self.done = False


class HeartbeatBatches:
    """One per app and process: the queue, the leader's turn and the connection the leaders write on."""

    def __init__(self, lock_path: str | None, judge, statements):
        self._judge = judge  # (beat, facts read) → (result, the UPDATEs' parameters), None, or raises a refusal
        self._statements = statements  # (many=False) → (the SELECT, the two UPDATEs); (many=True) → the batch's SELECT
        self._lock_path = lock_path
        self._pid = os.getpid()
        self._leader = threading.Lock()  # held by the thread running a batch
        self._mutex = threading.Lock()  # guards _pending
        self._pending: list[Beat] = []
        self._pool = self._connection = None

    def _forked(self) -> None:
        if self._pid != os.getpid():  # made before a fork: nothing of the parent's is ours
            self.__init__(self._lock_path, self._judge, self._statements)

    def submit(self, beat: Beat):
        """Queue `beat` and return its outcome once a batch holding it is over (raising its refusal or
        the batch's failure)."""
        self._forked()
        with self._mutex:
            self._pending.append(beat)
        with self._leader:
            while not beat.done:  # taken by no earlier leader (or left for later, behind one of its account): lead
                with sqlite_turns.turn(self._lock_path):
                    with self._mutex:  # everything queued while this thread waited for its turn
                        batch, self._pending = _one_per_account(self._pending)
                    self._run(batch)
        if beat.error is not None:
            raise beat.error
        return beat.outcome

    def drop_connection(self) -> None:
        connection, self._connection, self._pool = self._connection, None, None
        if connection is not None:
            # the driver's own close: the pool's would first try a rollback on a connection that may be
            # lost, and log the failure as an error with two tracebacks
            with contextlib.suppress(Exception):
                connection.dbapi_connection.close()

    @property
    def connection(self):
        """The connection the leaders write on, kept outside the pool from one batch to the next: a
        checkout and check-in cost more than a heartbeat's SQL on SQLite, and on PostgreSQL the pool's
        pre-ping is a round trip of its own. Idle between batches (committed or rolled back, no lock
        held); a lost one is dropped (_run) and the requests re-run (lms/db_resilience.py); a disposed
        engine (a new pool) gets a new one."""
        engine = db.engine
        if self._connection is None or self._pool is not engine.pool:
            self.drop_connection()
            connection = engine.raw_connection()  # made by the pool: its connect-time set-up applies
            connection.detach()
            if engine.dialect.name == "postgresql":  # each statement its own transaction (_run_postgresql)
                connection.dbapi_connection.autocommit = True
            self._pool, self._connection = engine.pool, connection
        return self._connection

    def _run(self, batch: list[Beat]) -> None:
        try:
            connection = self.connection
            if db.engine.dialect.name == "postgresql":
                self._run_postgresql(connection, batch)
            else:
                self._run_sqlite(connection, batch)
        except BaseException as exc:
            # closed, not rolled back (the connection may be lost): its transaction ends with it, and the
            # next batch starts on a new connection
            self.drop_connection()
            for beat in batch:
                beat.outcome, beat.error = None, exc
        finally:
            for beat in batch:
                if beat.outcome is None and beat.error is None:  # not written, nothing to say: read again
                    beat.outcome = STALE
                beat.done = True

    def _judged(self, beat: Beat, facts):
        """(result, the UPDATEs' parameters), or None with the beat's error or outcome set."""
        try:
            judged = self._judge(beat, facts)
        except Exception as exc:  # a refusal: this heartbeat writes nothing
            beat.error = exc
            return None
        if judged is None:
            beat.outcome = FIRST
        return judged

    def _run_sqlite(self, connection, batch: list[Beat]) -> None:
        read, writes = self._statements()
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        written = []
        for beat in batch:
            facts = read.first(cursor, {"user_id": beat.user_id, "lesson_id": beat.lesson_id})
            judged = self._judged(beat, facts)
            if judged is None:
                continue
            if not all(statement.execute(cursor, judged[1]).rowcount == 1 for statement in writes):
                # cannot happen while the write lock is held from the read on; if it does, nothing of the
                # batch stays, and each of its heartbeats that was to be written reads again (_run)
                connection.rollback()
                for done in written:
                    done.outcome = None
                return
            beat.outcome = (judged[0], facts)
            written.append(beat)
        connection.commit()

    def _run_postgresql(self, connection, batch: list[Beat]) -> None:
        read_many = self._statements(many=True)
        cursor = connection.cursor()
        rows = read_many.all(cursor, {"user_ids": _int_array(beat.user_id for beat in batch),
                                      "lesson_ids": _int_array(beat.lesson_id for beat in batch)})
        facts_of = {row["n"]: row for row in rows}
        todo = []
        for n, beat in enumerate(batch, 1):
            facts = facts_of.get(n)
            judged = self._judged(beat, facts)
            if judged is not None:
                todo.append((beat, judged, facts))
        written = set()
        if todo:
            written = {row[0] for row in cursor.execute(_WRITE, [_rows_json(todo)])}
        for beat, (result, params), facts in todo:
            beat.outcome = (result, facts) if params["l_user_id"] in written else STALE


def _int_array(values) -> str:
    """An integer[] literal: a text parameter costs the driver less than a list it must inspect."""
    return "{" + ",".join(str(int(value)) for value in values) + "}"


def _one_per_account(pending: list[Beat]) -> tuple[list[Beat], list[Beat]]:
    """(the batch: the first queued heartbeat of each account, the rest: for a later batch)."""
    batch, later, accounts = [], [], set()
    for beat in pending:
        (later if beat.user_id in accounts else batch).append(beat)
        accounts.add(beat.user_id)
    return batch, later


def _rows_json(todo) -> str:
    """The parameter of _WRITE: each heartbeat's new values, its keys and the versions it read."""
    rows = []
    for _beat, (_result, params), _facts in todo:
        row = {name: params[name] for name in _WRITE_KEYS}
        for name, value in row.items():
            if isinstance(value, (datetime, date)):
                row[name] = value.isoformat()
        rows.append(row)
    return json.dumps(rows)


def batches(judge, statements) -> HeartbeatBatches:
    """This app's batches in this process."""
    found = current_app.extensions.get("heartbeat_batches")
    if found is None:
        found = current_app.extensions.setdefault(
            "heartbeat_batches", HeartbeatBatches(sqlite_turns.lock_path("heartbeat"), judge, statements))
    return found
