"""The server is the judge: each forged heartbeat pattern, on a strict (1.0×) course, earns exactly
what an honest viewer would have earned in the same wall-clock time.

These tests run with HEARTBEAT_TOLERANCE_SECONDS = 0 so that "what an honest viewer earns" is an
exact number (the server's clock is passed explicitly). The production tolerance (5 s, for network
jitter) is granted once per viewing session; `test_tolerance_is_granted_once_however_players_switch`
shows a forger cannot multiply it.
"""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from lms.accounts.models import User, utcnow
from lms.courses import services
from lms.courses.models import LessonProgress
from lms.courses.progress import HeartbeatRejected
from lms.extensions import db
from tests.conftest import _make_app, write_package

DURATION = 600.0


def _setup(app, tmp_path, test_video, users=("viewer",)):
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package

    with app.app_context():
        unit = get_or_create_unit("county", "垫江县", "county")
        for name in users:
            create_user(name, name, "correct-horse", "learner", "cadre", unit.code)
        course, _ = import_package(write_package(tmp_path / "content", test_video, slug="strict-course", lessons=2,
                                                 audiences=("cadre",), mandatory=True, strict=True))
        assert course.strict
        for lesson in course.active_lessons:  # the judge uses the stored duration: make it a 10-minute video
            lesson.video.duration = DURATION
        db.session.commit()
        return [lesson.id for lesson in course.active_lessons]


@pytest.fixture
def exact_app(tmp_path, media_dir):
    app = _make_app(tmp_path, data_dir=media_dir, HEARTBEAT_TOLERANCE_SECONDS=0.0)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def lessons(exact_app, tmp_path, test_video):
    return _setup(exact_app, tmp_path, test_video, users=("viewer", "honest", "forger"))


T0 = utcnow() - timedelta(hours=3)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def beat(username, lesson_id, seconds, intervals=(), position=None, player="p1", start=False, seq=None):
    user = User.query.filter_by(username=username).one()
    payload = {"intervals": [list(i) for i in intervals], "player": player, "start": start,
               "position": position if position is not None else (intervals[-1][1] if intervals else 0)}
    if seq is not None:
        payload["seq"] = seq
    result, _ = services.record_heartbeat(user, lesson_id, payload, now=at(seconds))
    return result.credited_seconds


def watched(username, lesson_id):
    db.session.expire_all()
    user = User.query.filter_by(username=username).one()
    progress = LessonProgress.query.filter_by(user_id=user.id, lesson_id=lesson_id).one()
    return progress.watched_seconds


def honest_viewer(lesson_id, until, username="honest"):
    """Plays from 0 at 1.0×, a heartbeat every 10 s: earns exactly the seconds watched."""
    beat(username, lesson_id, 0, start=True)
    for t in range(10, until + 1, 10):
        beat(username, lesson_id, t, [(t - 10, t)])
    return watched(username, lesson_id)


def test_claim_of_600_seconds_after_10_seconds(lessons):
    lesson = lessons[0]
    honest = honest_viewer(lesson, 10)
    beat("forger", lesson, 0, start=True)
    assert beat("forger", lesson, 10, [(0, 600)], position=600) == 10
    assert watched("forger", lesson) == honest == 10


def test_intervals_past_the_duration(lessons):
    lesson = lessons[0]
    beat("forger", lesson, 0, start=True, position=590)
    with pytest.raises(HeartbeatRejected):  # far beyond the end: refused outright, nothing changes
        beat("forger", lesson, 10, [(590, 900)])
    assert watched("forger", lesson) == 0
    # slightly past the end (rounding in a browser) is clamped to the duration: 590 → 600
    beat("honest", lesson, 0, start=True, position=590)
    assert beat("honest", lesson, 10, [(590, 600)]) == 10
    assert beat("forger", lesson, 20, [(590, 600)]) == 10
    assert watched("forger", lesson) == watched("honest", lesson) == 10


def test_the_same_interval_replayed(lessons):
    lesson = lessons[0]
    honest = honest_viewer(lesson, 10)
    beat("forger", lesson, 0, start=True)
    beat("forger", lesson, 10, [(0, 10)])
    for t in (20, 30, 40, 50):
        assert beat("forger", lesson, t, [(0, 10)]) == 0
    assert watched("forger", lesson) == honest == 10


def test_a_jump_to_the_end(lessons):
    lesson = lessons[0]
    honest = honest_viewer(lesson, 30)
    beat("forger", lesson, 0, start=True)
    beat("forger", lesson, 10, [(0, 10)])
    # seeks to the end and claims the whole rest as played, 20 s of wall clock later
    assert beat("forger", lesson, 30, [(10, 600)], position=600) == 20
    assert watched("forger", lesson) == honest == 30
    user = User.query.filter_by(username="forger").one()
    assert not services.lesson_state(user.id, db.session.get(LessonProgress, 1).lesson)["video_done"]


def test_two_sessions_of_one_account_interleaving(lessons):
    """The learner moves from a tab (A) to a tablet (B); A stays open and keeps reporting."""
    lesson = lessons[0]
    beat("viewer", lesson, 0, player="A", start=True)
    assert beat("viewer", lesson, 10, [(0, 10)], player="A") == 10
    assert beat("viewer", lesson, 20, [(10, 20)], player="A") == 10
    assert beat("viewer", lesson, 25, player="B", start=True, position=20) == 0  # B takes over
    credited_a = 0
    for t in (30, 40, 50):
        with pytest.raises(services.LeaseLost):  # A gets 409s and earns nothing
            beat("viewer", lesson, t, [(t - 10, t + 100)], player="A")
        credited_a += 0
    assert beat("viewer", lesson, 35, [(20, 30)], player="B") == 10
    assert beat("viewer", lesson, 45, [(30, 40)], player="B") == 10
    # the other lesson in a third tab, without taking the lease, earns nothing either
    with pytest.raises(services.LeaseLost):
        beat("viewer", lessons[1], 46, [(0, 10)], player="C")
    # honest viewer: 20 s in A, then 20 s in B
    assert watched("viewer", lesson) == 40


def test_heartbeats_out_of_order_after_a_network_gap(lessons):
    """Offline for 5 minutes (longer than a session's idle limit): the queued heartbeats arrive
    together, one out of order and one twice; the learner earns exactly what they watched."""
    lesson = lessons[0]
    beat("viewer", lesson, 0, start=True, seq=1)
    assert beat("viewer", lesson, 10, [(0, 10)], seq=2) == 10
    queued = [(n, 10 * (n - 2), 10 * (n - 1)) for n in range(3, 33)]  # seq 3..32: 10..310 s, made offline
    arrival = 315.0
    order = queued[:2] + [queued[3], queued[2]] + queued[4:] + [queued[0]]  # seq 6 before 5; seq 3 again
    total = 0
    for i, (seq, start, end) in enumerate(order):
        total += beat("viewer", lesson, arrival + i * 0.05, [(start, end)], position=end, seq=seq)
    assert total == 300
    assert watched("viewer", lesson) == 310
    progress = LessonProgress.query.filter_by(lesson_id=lesson).one()
    assert progress.last_position == 310  # late arrivals never move the resume point back


def test_queued_claims_beyond_the_wall_clock_are_still_bounded(lessons):
    lesson = lessons[0]
    beat("forger", lesson, 0, start=True, seq=1)
    # 60 s offline, but the queue claims 30 heartbeats of 10 s (300 s)
    total = sum(beat("forger", lesson, 60 + 0.01 * n, [(10 * n, 10 * n + 10)], seq=2 + n) for n in range(30))
    assert total == pytest.approx(60, abs=0.5)
    assert watched("forger", lesson) == pytest.approx(60, abs=0.5)


def test_a_different_player_cannot_continue_a_gap(lessons):
    lesson = lessons[0]
    beat("viewer", lesson, 0, start=True, player="A", seq=1)
    beat("viewer", lesson, 10, [(0, 10)], player="A", seq=2)
    # after 5 minutes of silence a heartbeat out of sequence opens a new session: the gap is not banked
    assert beat("viewer", lesson, 310, [(10, 300)], player="A", seq=9) == 0
    assert watched("viewer", lesson) == 10


def _burst(app, lesson_id, user_id, n=50):
    start = utcnow() - timedelta(seconds=60)
    with app.app_context():
        services.record_heartbeat(db.session.get(User, user_id), lesson_id,
                                  {"intervals": [], "player": "p", "start": True}, now=start)
    barrier = threading.Barrier(n)
    errors = []

    def run(k):
        with app.app_context():
            try:
                barrier.wait()
                # 50 heartbeats at once, each claiming a different 10 s: 30 s have really passed
                services.record_heartbeat(db.session.get(User, user_id), lesson_id,
                                          {"intervals": [[10 * k, 10 * k + 10]], "player": "p", "seq": k + 1},
                                          now=start + timedelta(seconds=30))
            except Exception as exc:  # asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        assert errors == []
        progress = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson_id).one()
        assert progress.watched_seconds == pytest.approx(30)


def test_a_burst_of_50_concurrent_heartbeats_sqlite(exact_app, lessons):
    user_id = User.query.filter_by(username="viewer").one().id
    _burst(exact_app, lessons[0], user_id)


@pytest.mark.postgres
def test_a_burst_of_50_concurrent_heartbeats_postgres(tmp_path, media_dir, test_video, postgres_url):
    app = _make_app(tmp_path, database_url=postgres_url, data_dir=media_dir, HEARTBEAT_TOLERANCE_SECONDS=0.0)
    try:
        lesson_ids = _setup(app, tmp_path, test_video)
        with app.app_context():
            user_id = User.query.filter_by(username="viewer").one().id
        _burst(app, lesson_ids[0], user_id)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# ---- with the production tolerance ------------------------------------------------------------

@pytest.fixture
def default_app(tmp_path, media_dir, test_video):
    app = _make_app(tmp_path, data_dir=media_dir)
    ids = _setup(app, tmp_path, test_video)
    with app.app_context():
        yield app, ids
        db.session.remove()
        db.engine.dispose()


def test_tolerance_is_granted_once_however_players_switch(default_app):
    app, (one, two) = default_app
    tolerance = app.config["HEARTBEAT_TOLERANCE_SECONDS"]
    beat("viewer", one, 0, player="A", start=True)
    total = 0.0
    # every 0.5 s another player or lesson takes the lease and claims 10 fresh seconds
    for n in range(1, 41):
        lesson = one if n % 2 else two
        player = "A" if n % 4 in (0, 1) else "B"
        total += beat("viewer", lesson, n * 0.5, player=player, start=True, position=0)
        total += beat("viewer", lesson, n * 0.5 + 0.25, [(10 * n, 10 * n + 10)], player=player)
    assert total <= 20.25 + tolerance + 0.01  # 20.25 s of wall clock, one tolerance


def test_a_strict_course_allows_1x_only(default_app):
    app, (one, _) = default_app
    beat("viewer", one, 0, start=True)
    # a 2× viewer claims 20 s after 10 s: a strict course credits wall clock (+ tolerance) only
    assert beat("viewer", one, 10, [(0, 20)]) == 10 + app.config["HEARTBEAT_TOLERANCE_SECONDS"]


def test_daily_cap(tmp_path, media_dir, test_video):
    app = _make_app(tmp_path, data_dir=media_dir, HEARTBEAT_TOLERANCE_SECONDS=0.0, DAILY_CAP_HOURS=0.01)  # 36 s
    one, _ = _setup(app, tmp_path, test_video)
    with app.app_context():
        global T0
        saved, T0 = T0, T0.replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 in Shanghai
        try:
            beat("viewer", one, 0, start=True)
            credited = sum(beat("viewer", one, t, [(t - 10, t)]) for t in range(10, 61, 10))
            assert credited == 36 and watched("viewer", one) == 36
            # the next local day the cap starts again
            beat("viewer", one, 86400, start=True, position=60)
            assert beat("viewer", one, 86410, [(60, 70)]) == 10
        finally:
            T0 = saved
        db.session.remove()
        db.engine.dispose()


def test_http_409_for_the_player_that_lost_the_lease(app, browser_client, make_user, tmp_path, test_video):
    from lms.courses.importer import import_package

    course, _ = import_package(write_package(tmp_path / "c2", test_video, slug="strict-http", strict=True))
    lesson_id = course.active_lessons[0].id
    user = make_user(audience="cadre")
    browser_client.login(user.username)
    assert browser_client.heartbeat(lesson_id, {"player": "tab-1", "start": True, "intervals": []}).status_code == 200
    assert browser_client.heartbeat(lesson_id, {"player": "tab-2", "start": True, "intervals": []}).status_code == 200
    lost = browser_client.heartbeat(lesson_id, {"player": "tab-1", "intervals": [[0, 2]], "position": 2})
    assert lost.status_code == 409
    body = lost.get_json()
    assert body["error"] == "lease_lost" and body["player"] == "tab-1" and "另一个窗口或设备" in body["message"]
    assert LessonProgress.query.filter_by(user_id=user.id).one().watched_seconds == 0
    # a malformed token is a 400, not a crash
    assert browser_client.heartbeat(lesson_id, {"player": ["x"], "intervals": []}).status_code == 400
