"""Crediting rules as plain functions: what a viewer earns for what they really watched."""
from datetime import datetime, timedelta

import pytest

from lms.courses.progress import (
    HeartbeatRejected,
    apply_heartbeat,
    coalesce,
    parse_intervals,
)

T0 = datetime(2026, 3, 1, 9, 0, 0)
DURATION = 300.0
TOL = 5.0


class Progress:
    """The fields of LessonProgress that crediting reads and writes."""

    def __init__(self):
        self.intervals = []
        self.watched_seconds = 0.0
        self.furthest_position = 0.0
        self.last_position = 0.0
        self.last_heartbeat_at = None
        self.clock_started_at = None
        self.clock_credited = 0.0


def beat(progress, at_seconds, intervals, rate=1.0, position=None):
    position = position if position is not None else (intervals[-1][1] if intervals else 0.0)
    return apply_heartbeat(progress, intervals, position, T0 + timedelta(seconds=at_seconds), DURATION, rate, TOL)


def test_coalesce_joins_overlapping_repeated_and_nearly_touching_intervals():
    assert coalesce([(0, 10), (5, 15), (5, 15), (20, 30), (30, 31)]) == [(0, 15), (20, 31)]
    assert coalesce([(0, 10), (10.5, 12), (14, 15)]) == [(0, 12), (14, 15)]  # gaps under a second join


def test_honest_viewer_earns_what_they_watched():
    p = Progress()
    assert beat(p, 0, []).credited_seconds == 0  # the play event opens the clock
    for n in range(1, 7):
        result = beat(p, 10 * n, [(10 * (n - 1), 10 * n)])
        assert result.credited_seconds == pytest.approx(10)
    assert p.watched_seconds == pytest.approx(60)


def test_replaying_the_same_part_earns_nothing_more():
    p = Progress()
    beat(p, 0, [])
    beat(p, 10, [(0, 10)])
    again = beat(p, 20, [(0, 10)])
    overlapping = beat(p, 30, [(5, 12)])
    assert again.credited_seconds == 0
    assert overlapping.credited_seconds == pytest.approx(2)
    assert p.watched_seconds == pytest.approx(12)


def test_seek_to_the_end_earns_only_real_time():
    p = Progress()
    beat(p, 0, [])
    # The client claims it played from 0 to the end, but only 10 s of wall clock have passed.
    result = beat(p, 10, [(0, DURATION)])
    assert result.credited_seconds <= 10 + TOL
    assert p.watched_seconds < 0.1 * DURATION


def test_claim_of_600_seconds_after_10_seconds_of_wall_clock():
    p = Progress()
    beat(p, 0, [])
    with pytest.raises(HeartbeatRejected):
        parse_intervals([[0, 600]], DURATION, TOL)  # longer than the video: absurd
    result = beat(p, 10, [(0, 290)])
    assert result.credited_seconds == pytest.approx(10 + TOL)
    assert p.watched_seconds == pytest.approx(15)


def test_rapid_fire_heartbeats_do_not_each_earn_the_tolerance():
    p = Progress()
    beat(p, 0, [])
    credited = sum(beat(p, 0.1 * n, [(10 * n, 10 * n + 10)]).credited_seconds for n in range(1, 21))
    assert credited <= 2 + TOL  # 2 s of wall clock, plus one tolerance for the whole session


def test_first_heartbeat_of_a_session_earns_nothing():
    p = Progress()
    assert beat(p, 0, [(0, 10)]).credited_seconds == 0
    # After a long absence the clock restarts too: the gap is not banked.
    beat(p, 10, [(0, 10)])
    assert beat(p, 10 + 3600, [(100, 290)]).credited_seconds == 0


def test_allowed_rate_scales_the_budget():
    p = Progress()
    beat(p, 0, [], rate=2.0)
    assert beat(p, 10, [(0, 20)], rate=2.0).credited_seconds == pytest.approx(20)
    strict = Progress()
    beat(strict, 0, [], rate=1.0)
    assert beat(strict, 10, [(0, 20)], rate=1.0).credited_seconds == pytest.approx(10 + TOL)


def test_heartbeat_from_the_past_is_rejected_and_changes_nothing():
    p = Progress()
    beat(p, 0, [])
    beat(p, 10, [(0, 10)])
    with pytest.raises(HeartbeatRejected):
        beat(p, 5, [(10, 20)])
    assert p.watched_seconds == pytest.approx(10)


@pytest.mark.parametrize("raw", [
    [[-5, 3]],            # negative
    [[20, 10]],           # reversed
    [[0, 1e9]],           # absurd
    [[float("nan"), 3]],  # not a number
    [["a", "b"]],
    [[1, 2, 3]],
    "0-10",
    [[0, 1]] * 500,       # too many
])
def test_malformed_intervals_are_rejected(raw):
    with pytest.raises(HeartbeatRejected):
        parse_intervals(raw, DURATION, TOL)
