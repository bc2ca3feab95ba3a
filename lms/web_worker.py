"""gunicorn's threaded worker, taking a new connection only when it is among the least busy workers.

All workers wait on one listening socket and every one of them is woken by a new connection; with
gunicorn's gthread worker, whichever main thread runs first accepts it, however many requests that
worker already has queued for its threads. On a sign-in day (scripts/bench/signin.py: 200 learners,
50 at a time) one worker of five took 92 of 210 connections and its learners waited behind its
queue of password checks, while others had threads free: that queue was the sign-in's p99.

Here each worker publishes how many requests it has handed to its threads and not finished (its
load) in a small table shared by the workers of one gunicorn (made in the master, before forking).
A worker accepts a new connection only while its load is no more than the least load of the live
workers; otherwise it stops listening until one of its own requests finishes or PAUSE_SECONDS pass,
whichever comes first, so a busier worker leaves the connection to a less busy one — and never waits
longer than that for work when all are equally busy. Kept-alive connections stay with the worker
that has them, as before; only the choice of who accepts changes.

Needs gunicorn's gthread worker as of version 27 (its accept, enqueue_req and finish_request).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from multiprocessing.sharedctypes import RawArray

from gunicorn.workers.gthread import ThreadWorker

SLOTS = 64  # workers of one gunicorn at once (a dead one's slot is taken again by the next to start)
PAUSE_SECONDS = 0.1  # the longest a busier worker stays out of accepting

# made at import, in the master (gunicorn loads the worker class before forking): shared by its workers
_pids = RawArray(ctypes.c_long, SLOTS)
_loads = RawArray(ctypes.c_int, SLOTS)
_claiming = multiprocessing.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process that reused the number: not a worker of ours
        return False
    return True


def claim_slot(pid: int) -> int:
    """A slot of the shared table for this worker: an empty one, or one whose worker is gone."""
    with _claiming:
        for slot in range(SLOTS):
            if _pids[slot] == 0 or not _alive(_pids[slot]):
                _pids[slot], _loads[slot] = pid, 0
                return slot
    return -1  # more workers than slots: this one accepts as gunicorn's own worker does


def release_slot(slot: int) -> None:
    if slot >= 0:
        with _claiming:
            _pids[slot], _loads[slot] = 0, 0


class FairThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.load = 0
        self.slot = -1
        self._paused_until = None

    def init_process(self):
        self.slot = claim_slot(os.getpid())
        try:
            super().init_process()  # runs the worker until it stops
        finally:
            release_slot(self.slot)

    def _publish(self) -> None:
        if self.slot >= 0:
            _loads[self.slot] = self.load

    def enqueue_req(self, conn):
        self.load += 1
        self._publish()
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        self.load -= 1
        self._publish()
        super().finish_request(conn, fs)  # may hand the connection to a thread again (enqueue_req)
        if self._paused_until is not None:
            self._resume()

    def accept(self, listener):
        if self.slot >= 0 and self._busier_than_others():
            self._paused_until = time.monotonic() + PAUSE_SECONDS
            self.set_accept_enabled(False)  # no busy loop on the readable listener meanwhile
            return
        super().accept(listener)

    def _busier_than_others(self) -> bool:
        """Another live worker has fewer requests in hand (a killed one keeps its slot, and its last
        load, until a new worker takes the slot: only live ones count)."""
        return any(slot != self.slot and _pids[slot] and _loads[slot] < self.load and _alive(_pids[slot])
                   for slot in range(SLOTS))

    def set_accept_enabled(self, enabled):
        if enabled and self._paused_until is not None:
            return  # gunicorn's loop turns accepting back on each time round; not while paused
        super().set_accept_enabled(enabled)

    def _resume(self) -> None:
        self._paused_until = None
        if self.alive and self.nr_conns < self.worker_connections:
            self.set_accept_enabled(True)

    def wait_for_and_dispatch_events(self, timeout):
        if self._paused_until is not None:
            left = self._paused_until - time.monotonic()
            if left <= 0:
                self._resume()
            else:
                timeout = min(timeout, left)
        super().wait_for_and_dispatch_events(timeout)
