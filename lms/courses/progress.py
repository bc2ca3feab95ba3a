"""Crediting watched time — plain functions, no HTTP.

The player reports the intervals it played since its last heartbeat. The server keeps the
merged set of unique seconds and credits new seconds only within a wall-clock budget:
  * per viewing session: time since the session's clock started × rate + tolerance, less
    what the session has already earned (so rapid-fire heartbeats cannot each add tolerance,
    and heartbeats queued offline and sent together still earn what the wall clock allows);
  * the clock belongs to the account's study lease (lms/courses/lease.py), not to one lesson:
    one account accrues at one rate, whatever tabs, devices or lessons it opens. Taking the
    lease (a new player, or another lesson) restarts the clock and carries over at most the
    tolerance, so switching back and forth cannot mint time;
  * a session ends after SESSION_IDLE_RESET_SECONDS without an accepted heartbeat (the next one
    opens a new clock and earns nothing), except for the lease holder's next heartbeat in
    sequence arriving within the offline grace: that is a queue sent after a network gap;
  * an optional daily cap bounds what one account earns per local day.
The stored set stays small whatever a client sends: claims are coalesced (gaps under a second
joined, isolated fragments under a second dropped), so a video of D seconds keeps at most about
D/2 parts, and a heartbeat bisects into them instead of re-merging everything (fresh_parts).
Seeks, replays and forged claims therefore earn nothing beyond what real time allows.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime

MAX_INTERVALS_PER_HEARTBEAT = 200
SESSION_IDLE_RESET_SECONDS = 120  # a gap longer than this starts a new viewing session


class HeartbeatRejected(ValueError):
    """The heartbeat is malformed or impossible; nothing is changed."""


Interval = tuple[float, float]


MIN_GAP = 1.0  # claimed gaps shorter than this are joined (the player's own jitter)
MIN_FRAGMENT = 1.0  # an isolated watched part shorter than this is not kept


def coalesce(intervals, gap: float = MIN_GAP) -> list[Interval]:
    """Sorted union of the intervals, touching ones and gaps shorter than `gap` joined."""
    merged: list[list[float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in intervals if e > s):
        if merged and (start <= merged[-1][1] or start - merged[-1][1] < gap):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def max_stored_parts(duration: float) -> int:
    """The most parts fresh_parts/add_parts can leave: each ≥ MIN_FRAGMENT, MIN_GAP apart."""
    return int((duration + MIN_GAP) // (MIN_FRAGMENT + MIN_GAP)) + 1


def _start(part) -> float:
    return part[0]


def fresh_parts(stored, claims, budget: float) -> list[Interval]:
    """The parts of `claims` that `stored` (sorted, disjoint [start, end] pairs) lacks, in playback
    order, up to `budget` seconds.

    Claims are coalesced first, and a claim that comes within MIN_GAP of a stored part reaches it
    (the gap is charged to the budget like any claimed second). An isolated part shorter than
    MIN_FRAGMENT earns nothing, and a part the budget cuts stops MIN_GAP short of the next stored
    part. So stored parts stay ≥ MIN_FRAGMENT long and ≥ MIN_GAP apart: at most
    max_stored_parts(duration). Cost: a bisection per claim, O(k log n), plus one step per stored
    part a claim runs into — each such step is a part credited, so bounded by the budget too.
    """
    parts: list[Interval] = []
    for start, end in coalesce(claims):
        i = bisect_right(stored, start, key=_start)  # stored[i - 1] is the last part starting by `start`
        touches_left = i > 0 and stored[i - 1][1] > start - MIN_GAP
        cursor = stored[i - 1][1] if touches_left else start
        while cursor < end:
            touches_right = i < len(stored) and stored[i][0] < end + MIN_GAP
            stop = stored[i][0] if touches_right else end
            if budget < stop - cursor:  # the wall clock allows only part of it: the last part credited
                cut = cursor + budget
                if touches_right:
                    cut = min(cut, stop - MIN_GAP)
                if cut - cursor >= MIN_FRAGMENT or (touches_left and cut > cursor):
                    parts.append((cursor, cut))
                return parts
            if stop > cursor and (touches_left or touches_right or stop - cursor >= MIN_FRAGMENT):
                parts.append((cursor, stop))
                budget -= stop - cursor
            if not touches_right:
                break
            cursor, i, touches_left = stored[i][1], i + 1, True
    return parts


def add_parts(stored: list[list[float]], parts) -> None:
    """Insert fresh parts (disjoint from `stored`, from fresh_parts) into `stored`, joining touching ones."""
    for start, end in parts:
        i = bisect_right(stored, start, key=_start)
        if i > 0 and stored[i - 1][1] >= start:
            stored[i - 1][1] = max(stored[i - 1][1], end)
            if i < len(stored) and stored[i][0] <= stored[i - 1][1]:
                stored[i - 1][1] = max(stored[i - 1][1], stored[i][1])
                del stored[i]
        elif i < len(stored) and stored[i][0] <= end:
            stored[i][0] = start
        else:
            stored.insert(i, [start, end])


def compact(stored) -> list[list[float]]:
    """Bring a set stored before coalescing existed within max_stored_parts: gaps under MIN_GAP
    joined, parts under MIN_FRAGMENT dropped."""
    return [[s, e] for s, e in coalesce(stored) if e - s >= MIN_FRAGMENT]


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
    video_done: bool = False
    lesson_completed: bool = False


MAX_PLAYER_TOKEN = 64


def parse_player(payload: dict) -> tuple[str, bool, int | None]:
    """The player's token (which lease it claims), whether this is a play/start heartbeat, its sequence."""
    token = payload.get("player", "")
    if token is None:
        token = ""
    if not isinstance(token, str) or len(token) > MAX_PLAYER_TOKEN:
        raise HeartbeatRejected("player must be a string of at most %d characters" % MAX_PLAYER_TOKEN)
    start = payload.get("start", False)
    if not isinstance(start, bool):
        raise HeartbeatRejected("start must be true or false")
    seq = payload.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**31):
        raise HeartbeatRejected("seq must be a non-negative integer")
    return token, start, seq


def session_budget(clock, now: datetime, max_rate: float, tolerance: float) -> float:
    """What the clock's session may still credit at `now` (0 when no session is open)."""
    if clock.clock_started_at is None:
        return 0.0
    elapsed = max(0.0, (now - clock.clock_started_at).total_seconds())
    return max(0.0, elapsed * max_rate + tolerance - (clock.clock_credited or 0.0))


def open_session(clock, now: datetime, tolerance: float, carry: float | None = None) -> None:
    """Start the clock at `now`; later heartbeats may use `carry` (≤ tolerance) on top of real time."""
    carry = tolerance if carry is None else max(0.0, min(carry, tolerance))
    clock.clock_started_at = now
    clock.clock_credited = tolerance - carry


def apply_heartbeat(
    progress,
    intervals: list[Interval],
    position: float,
    now: datetime,
    duration: float,
    max_rate: float,
    tolerance: float,
    *,
    clock=None,
    take_over: bool = False,
    in_sequence: bool = False,
    offline_grace: float = 0.0,
    update_position: bool = True,
    day_allowance: float | None = None,
) -> HeartbeatResult:
    """Merge a validated heartbeat into `progress` (a LessonProgress-like object).

    `clock` holds the session (last_heartbeat_at, clock_started_at, clock_credited): the account's
    lease in the application, `progress` itself when none is given. `take_over`: this heartbeat
    moves the lease to a new player or lesson, so the session restarts (carrying ≤ tolerance).
    `in_sequence`: the lease holder's next heartbeat by sequence number, which may continue the
    session across a network gap of up to `offline_grace` seconds. `update_position`: False for
    a heartbeat older than one already applied (its seconds count, its position does not).
    `day_allowance`: seconds the daily cap still allows (None: no cap).
    """
    clock = progress if clock is None else clock
    last = clock.last_heartbeat_at
    if last is not None and now < last:
        raise HeartbeatRejected("heartbeat from the past")
    since_last = (now - last).total_seconds() if last else None
    gap_limit = max(SESSION_IDLE_RESET_SECONDS, offline_grace) if in_sequence else SESSION_IDLE_RESET_SECONDS

    if since_last is None or since_last > gap_limit:
        # A new viewing session: its clock starts now, so it can only earn from now on.
        open_session(clock, now, tolerance)
        budget = 0.0
    elif take_over:
        # Another player or lesson takes the session: unused time does not follow it (≤ tolerance).
        open_session(clock, now, tolerance, carry=session_budget(clock, now, max_rate, tolerance))
        budget = 0.0
    else:
        budget = session_budget(clock, now, max_rate, tolerance)
    if day_allowance is not None:
        budget = min(budget, max(0.0, day_allowance))

    stored = [[s, e] for s, e in progress.intervals]
    if len(stored) > max_stored_parts(duration):
        stored = compact(stored)
        progress.intervals = stored
        progress.watched_seconds = min(duration, sum(e - s for s, e in stored))
    credited = fresh_parts(stored, intervals, budget)
    gained = sum(e - s for s, e in credited)
    if credited:
        add_parts(stored, credited)
        progress.intervals = stored
        progress.watched_seconds = min(duration, (progress.watched_seconds or 0.0) + gained)
        progress.furthest_position = max(progress.furthest_position or 0.0, stored[-1][1])
    clock.clock_credited = (clock.clock_credited or 0.0) + gained
    clock.last_heartbeat_at = now
    if update_position:
        progress.last_position = position
    if progress is not clock:
        progress.last_heartbeat_at = now
    share = progress.watched_seconds / duration if duration else 1.0
    return HeartbeatResult(credited_seconds=gained, watched_seconds=progress.watched_seconds, watched_share=share)
