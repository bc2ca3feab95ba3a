"""Freed memory given back to the system (issue 12: each web worker ≤ 120 MB USS, scripts/bench/memory.py).

What Python frees goes back to glibc's malloc, which keeps it in its arenas (one per thread that allocated
it) for later instead of returning it: after a page that needs much for a moment (a certificate parses and
subsets a 19 MB CJK font) a gunicorn worker held ~40 MB of free heap for good (measured). malloc_trim(0)
returns the free pages of every arena (madvise), in 1–7 ms.

- `trim()` — malloc_trim(0) now; False where there is no glibc.
- `IdleTrim` — for a gunicorn worker (gunicorn.conf.py's pre_request/post_request hooks): when the last
  request in progress ends and the process has grown by at least `growth_mb` since the last trim, trim.
  A busy worker does not pay for it (it is not idle), and a steady one does not either (it does not grow).
"""
from __future__ import annotations

import ctypes
import os
import threading

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
    _malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):  # not glibc (musl, macOS)
    _malloc_trim = None

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def trim() -> bool:
    """Give every free page of malloc's arenas back to the system; False when there is no malloc_trim."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)  # ctypes lets go of the GIL: the other threads go on meanwhile
    return True


def resident_mb() -> float:
    """This process's resident memory (RSS), from /proc/self/statm (~10 µs)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return 0.0


class IdleTrim:
    """Counts requests in progress; `finished()` trims when none is left and the process has grown by
    `growth_mb` or more since the last trim (or since it started)."""

    def __init__(self, growth_mb: float = 4.0):
        self.growth_mb = growth_mb
        self.in_progress = 0
        self.trims = 0
        self._lock = threading.Lock()
        self._after_last_trim = resident_mb()

    def started(self) -> None:
        with self._lock:
            self.in_progress += 1

    def finished(self) -> None:
        with self._lock:
            self.in_progress = max(0, self.in_progress - 1)
            if self.in_progress > 0:
                return
        now = resident_mb()
        if now - self._after_last_trim < self.growth_mb:
            self._after_last_trim = min(self._after_last_trim, now)
            return
        if trim():
            self.trims += 1
        self._after_last_trim = resident_mb()
