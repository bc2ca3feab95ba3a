"""Crediting watched time — plain functions, no HTTP.

The player reports the intervals it played since its last heartbeat. The server keeps the
merged set of unique seconds and credits new seconds only within a wall-clock budget:
  * per heartbeat: time since the previous accepted heartbeat × allowed rate + tolerance;
  * per viewing session: time since the session's clock started × rate + tolerance, less
    what the session has already earned (so rapid-fire heartbeats cannot each add tolerance).
Seeks, replays and forged claims therefore earn nothing beyond what real time allows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

MAX_INTERVALS_PER_HEARTBEAT = 200
SESSION_IDLE_RESET_SECONDS = 120  # a gap longer than this starts a new viewing session


class HeartbeatRejected(ValueError):
    """The heartbeat is malformed or impossible; nothing is changed."""


Interval = tuple[float, float]


def merge_intervals(intervals) -> list[Interval]:
    """Union of intervals, sorted, touching ones joined."""
    merged: list[list[float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in intervals if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def covered_seconds(intervals) -> float:
    return sum(e - s for s, e in merge_intervals(intervals))


def subtract_intervals(new, existing) -> list[Interval]:
    """The parts of `new` not already in `existing` (both merged first)."""
    result: list[Interval] = []
    existing = merge_intervals(existing)
    for start, end in merge_intervals(new):
        cursor = start
        for ex_start, ex_end in existing:
            if ex_end <= cursor or ex_start >= end:
                continue
            if ex_start > cursor:
                result.append((cursor, ex_start))
            cursor = max(cursor, ex_end)
            if cursor >= end:
                break
        if cursor < end:
            result.append((cursor, end))
    return result


def take_budget(segments, budget: float) -> list[Interval]:
    """The first `budget` seconds of `segments`, in playback order."""
    taken: list[Interval] = []
    for start, end in segments:
        if budget <= 0:
            break
        length = min(end - start, budget)
        taken.append((start, start + length))
        budget -= length
    return taken


def parse_intervals(raw, duration: float, tolerance: float) -> list[Interval]:
    """Validate the client's intervals; raise HeartbeatRejected for anything impossible."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS_PER_HEARTBEAT:
        raise HeartbeatRejected("intervals must be a list of at most %d pairs" % MAX_INTERVALS_PER_HEARTBEAT)
    parsed = []
    for item in raw:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise HeartbeatRejected("each interval is a [start, end] pair")
        try:
            start, end = float(item[0]), float(item[1])
        except (TypeError, ValueError):
            raise HeartbeatRejected("interval bounds must be numbers") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise HeartbeatRejected("interval bounds must be finite")
        if start < 0 or end < 0:
            raise HeartbeatRejected("interval bounds cannot be negative")
        if end < start:
            raise HeartbeatRejected("interval ends before it starts")
        if start > duration + tolerance or end > duration + tolerance:
            raise HeartbeatRejected("interval lies beyond the end of the video")
        parsed.append((start, min(end, duration)))
    return parsed


def parse_position(raw, duration: float, tolerance: float) -> float:
    try:
        position = float(raw or 0)
    except (TypeError, ValueError):
        raise HeartbeatRejected("position must be a number") from None
    if not math.isfinite(position) or position < 0 or position > duration + tolerance:
        raise HeartbeatRejected("position outside the video")
    return min(position, duration)


@dataclass
class HeartbeatResult:
    credited_seconds: float
    watched_seconds: float
    watched_share: float


def apply_heartbeat(
    progress,
    intervals: list[Interval],
    position: float,
    now: datetime,
    duration: float,
    max_rate: float,
    tolerance: float,
) -> HeartbeatResult:
    """Merge a validated heartbeat into `progress` (a LessonProgress-like object)."""
    last = progress.last_heartbeat_at
    if last is not None and now < last:
        raise HeartbeatRejected("heartbeat from the past")
    since_last = (now - last).total_seconds() if last else None

    if since_last is None or since_last > SESSION_IDLE_RESET_SECONDS:
        # A new viewing session: its clock starts now, so it can only earn from now on.
        progress.clock_started_at = now
        progress.clock_credited = 0.0
        budget = 0.0
    else:
        session_elapsed = (now - progress.clock_started_at).total_seconds()
        budget = min(
            since_last * max_rate + tolerance,
            session_elapsed * max_rate + tolerance - progress.clock_credited,
        )
        budget = max(0.0, budget)

    existing = progress.intervals
    fresh = subtract_intervals(intervals, existing)
    credited = take_budget(fresh, budget)
    gained = sum(e - s for s, e in credited)
    if credited:
        merged = merge_intervals(existing + credited)
        progress.intervals = merged
        progress.watched_seconds = min(duration, sum(e - s for s, e in merged))
        progress.furthest_position = max(progress.furthest_position or 0.0, max(e for _, e in merged))
    progress.clock_credited = (progress.clock_credited or 0.0) + gained
    progress.last_position = position
    progress.last_heartbeat_at = now
    share = progress.watched_seconds / duration if duration else 1.0
    return HeartbeatResult(credited_seconds=gained, watched_seconds=progress.watched_seconds, watched_share=share)
