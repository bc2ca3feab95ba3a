"""The heartbeat's hot path (issue 12): few statements, an edited lesson seen at once, and heartbeats
written in batches (lms/courses/heartbeat_batch.py) losing nothing when many viewers beat at once."""
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event

from lms.accounts.models import utcnow
from lms.courses import services
from lms.courses.models import LessonProgress
from lms.extensions import db
from tests.conftest import _make_app, write_package


def _statements(app):
    """Every statement SQLite runs from here on, as the driver sends it (the hot path bypasses
    SQLAlchemy's execution events: lms/courses/services.py RawStatement)."""
    seen = []

    def trace(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(lambda statement: seen.append(" ".join(statement.split())))

    db.engine.dispose()  # new connections from here on, each traced
    event.listen(db.engine, "connect", trace)
    return seen, lambda: event.remove(db.engine, "connect", trace)


def test_a_heartbeat_is_one_select_and_two_updates(app, browser_client, make_user, course):
    """The user's session version is read in the heartbeat's own SELECT (lms/courses/fast_heartbeat.py)."""
    user = make_user()
    browser_client.login(user.username)
    lesson_id = course.active_lessons[0].id
    first = browser_client.heartbeat(lesson_id, {"player": "p", "seq": 1, "start": True, "position": 0})
    assert first.status_code == 200
    seen, stop = _statements(app)
    try:
        response = browser_client.heartbeat(lesson_id, {"player": "p", "seq": 2, "position": 0.5,
                                                        "intervals": [[0, 0.5]]})
    finally:
        stop()
    assert response.status_code == 200 and response.get_json()["watched_seconds"] >= 0
    kinds = [statement.split()[0] for statement in seen if not statement.startswith(("PRAGMA", "BEGIN", "COMMIT"))]
    assert kinds == ["SELECT", "UPDATE", "UPDATE"], seen
    assert "session" not in response.headers.get("Set-Cookie", "")  # the cookie is not re-issued each beat


def test_an_unpublished_course_stops_heartbeats_at_once(app, browser_client, make_user, course):
    """Nothing about the lesson is cached between heartbeats: taking the course off line is seen by the next one."""
    user = make_user()
    browser_client.login(user.username)
    lesson = course.active_lessons[0]
    assert browser_client.heartbeat(lesson.id, {"player": "p", "seq": 1, "start": True}).status_code == 200
    course.published = False
    db.session.commit()
    response = browser_client.heartbeat(lesson.id, {"player": "p", "seq": 2})
    assert response.status_code == 400 and response.get_json()["error"] == "not_visible"


VIEWERS = 12


def test_many_viewers_at_once_each_keep_what_was_acknowledged(tmp_path, test_video):
    """12 viewers beat at the same moment on a SQLite file (the heartbeats share commits): every one
    answered is written, each viewer is credited exactly the seconds the server said."""
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package

    app = _make_app(tmp_path)
    with app.app_context():
        unit = get_or_create_unit("county", "垫江县", "county")
        user_ids = [create_user(f"viewer{n}", f"观众{n}", "correct-horse", "learner", "elder", unit.code).id
                    for n in range(VIEWERS)]
        db.session.commit()
        course, _ = import_package(write_package(tmp_path / "content", test_video))
        lesson_id = course.active_lessons[0].id
    start = utcnow() - timedelta(seconds=60)
    credited = {}

    def viewer(user_id, barrier):
        from lms.accounts.models import User

        with app.app_context():
            try:
                user = db.session.get(User, user_id)
                services.record_heartbeat(user, lesson_id, {"player": "p", "seq": 1, "start": True}, now=start)
                barrier.wait()
                result, _ = services.record_heartbeat(user, lesson_id, {"player": "p", "seq": 2,
                                                                        "intervals": [[0, 3]], "position": 3},
                                                      now=start + timedelta(seconds=3))
                credited[user_id] = result.credited_seconds
            finally:
                db.session.remove()

    barrier = threading.Barrier(VIEWERS)
    threads = [threading.Thread(target=viewer, args=(user_id, barrier)) for user_id in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        watched = {row.user_id: row.watched_seconds for row in LessonProgress.query}
        db.engine.dispose()
    assert sorted(credited) == sorted(user_ids)
    assert all(credited[user_id] == pytest.approx(3) for user_id in user_ids)
    assert watched == {user_id: pytest.approx(credited[user_id]) for user_id in user_ids}


class _ChangesNothingOnce:
    """A heartbeat UPDATE whose first run finds its row changed (as a concurrent writer would leave it)."""

    def __init__(self, real):
        self.real, self.fired = real, False

    def execute(self, cursor, params):
        if not self.fired:
            self.fired = True
            return SimpleNamespace(rowcount=0)
        return self.real.execute(cursor, params)


def test_a_batch_that_finds_a_row_changed_leaves_every_heartbeat_to_read_again(app, make_user, course):
    """Two viewers' heartbeats in one batch; the first's write finds its row changed: nothing of the batch
    stays and both read again (none is left without an answer), then each is credited once."""
    from lms.courses import heartbeat_batch

    lesson_id = course.active_lessons[0].id
    user_ids = [make_user().id, make_user().id]
    start = utcnow() - timedelta(seconds=60)
    for user_id in user_ids:
        services.record_heartbeat(SimpleNamespace(id=user_id), lesson_id, {"player": "p", "seq": 1, "start": True},
                                  now=start)
    read, writes = services._raw_heartbeat_statements()
    key = next(key for key, value in services._raw_statements_by_dialect.items() if value == (read, writes))
    services._raw_statements_by_dialect[key] = (read, (_ChangesNothingOnce(writes[0]), writes[1]))
    try:
        beats = [heartbeat_batch.Beat(user_id, lesson_id, {"player": "p", "seq": 2, "intervals": [[0, 3]],
                                                           "position": 3}, start + timedelta(seconds=3), None)
                 for user_id in user_ids]
        services.heartbeat_batches()._run(beats)
        assert [beat.outcome for beat in beats] == [heartbeat_batch.STALE] * 2
        assert LessonProgress.query.filter_by(lesson_id=lesson_id).with_entities(
            db.func.sum(LessonProgress.watched_seconds)).scalar() == 0
        results = [services.record_heartbeat(SimpleNamespace(id=user_id), lesson_id,
                                             {"player": "p", "seq": 2, "intervals": [[0, 3]], "position": 3},
                                             now=start + timedelta(seconds=3))[0] for user_id in user_ids]
    finally:
        services._raw_statements_by_dialect[key] = (read, writes)
    assert [result.credited_seconds for result in results] == [pytest.approx(3)] * 2
    db.session.expire_all()
    assert {row.user_id: row.watched_seconds for row in LessonProgress.query.filter_by(lesson_id=lesson_id)} == {
        user_id: pytest.approx(3) for user_id in user_ids}


# ---- the connection heartbeat batches are written on (lms/courses/heartbeat_batch.py) ------------------
def _beat_twice(client, lesson_id, player="p"):
    first = client.heartbeat(lesson_id, {"player": player, "seq": 1, "start": True, "position": 0})
    second = client.heartbeat(lesson_id, {"player": player, "seq": 2, "position": 0.5, "intervals": [[0, 0.5]]})
    return first, second


def test_a_kept_heartbeat_connection_holds_no_transaction_between_heartbeats(app, browser_client, make_user, course):
    """An open read on the kept connection would pin SQLite's WAL: no checkpoint could empty it, and the
    file would grow all day. A checkpoint from elsewhere must find nobody in its way."""
    import sqlite3

    browser_client.login(make_user().username)
    assert all(answer.status_code == 200 for answer in _beat_twice(browser_client, course.active_lessons[0].id))
    db.session.remove()
    checkpoint = sqlite3.connect(db.engine.url.database)
    try:
        busy, _log, _done = checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        checkpoint.close()
    assert busy == 0


@pytest.mark.postgres
def test_a_kept_postgresql_connection_is_idle_between_heartbeats_and_replaced_when_cut(
        tmp_path, media_dir, test_video, postgres_url):
    """Idle, not 'idle in transaction' (which would hold locks and block VACUUM); and when the server cuts
    it (as a restart or an administrator's pg_terminate_backend does) the next heartbeat is still answered
    and credited, on a new connection."""
    from sqlalchemy import text

    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from tests.conftest import BrowserLikeClient

    app = _make_app(tmp_path, database_url=postgres_url, data_dir=media_dir)
    app.config["TESTING"] = False  # as in production: a lost connection is an answer, not a raise
    try:
        with app.app_context():
            get_or_create_unit("county", "垫江县", "county")
            create_user("viewer", "观众", "correct-horse", "learner", "elder", "county")
            course, _ = import_package(write_package(tmp_path / "content", test_video))
            lesson_id = course.active_lessons[0].id
            db.session.commit()
            client = BrowserLikeClient(app.test_client())
            client.login("viewer")
            assert all(answer.status_code == 200 for answer in _beat_twice(client, lesson_id))
            kept = services.heartbeat_batches().connection.dbapi_connection.info.backend_pid

            def state_of(pid):
                return db.session.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                                          {"pid": pid}).scalar()

            assert state_of(kept) == "idle"

            rollbacks = []

            def lost(*_args):  # what a connection cut by a restart answers to a rollback (the pool logs it as an error)
                rollbacks.append(1)
                raise OSError("the connection is lost")

            cut = services.heartbeat_batches().connection.dbapi_connection
            cut.rollback = lost
            db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept})
            db.session.commit()
            answer = client.heartbeat(lesson_id, {"player": "p", "seq": 3, "position": 1.5, "intervals": [[0.5, 1.5]]})
            assert answer.status_code == 200, answer.get_data(as_text=True)
            assert services.heartbeat_batches().connection.dbapi_connection.info.backend_pid != kept
            assert cut.closed and not rollbacks  # closed by the driver, no rollback tried on a lost connection
            watched = db.session.query(LessonProgress.watched_seconds).filter_by(lesson_id=lesson_id).scalar()
            assert watched == pytest.approx(answer.get_json()["watched_seconds"])
            db.session.remove()
    finally:
        with app.app_context():
            services._drop_heartbeat_connection()
            db.session.remove()
            db.engine.dispose()


def test_the_first_heartbeats_of_a_new_worker_each_find_both_signature_checks(app, monkeypatch):
    """A worker's threads answer its first heartbeats at once, and each must find both checks made, the
    session cookie's and the CSRF token's: one that found the first made and the second not yet raised,
    and its viewer got a 500 and then only 409s (scripts/bench/heartbeat.py, 8 threads, once in 8 runs)."""
    from lms.courses import fast_heartbeat

    real_init = fast_heartbeat._Verified.__init__
    made_by_first: list = []
    between = threading.Event()

    def slow_in_first_thread(self, serializer):  # the first thread pauses between making its two checks
        real_init(self, serializer)
        if threading.current_thread() is first:
            made_by_first.append(self)
            if len(made_by_first) == 2:
                between.set()
                time.sleep(0.3)

    monkeypatch.setattr(fast_heartbeat._Verified, "__init__", slow_in_first_thread)
    door = fast_heartbeat.FastHeartbeat(app, app.wsgi_app)
    found = []
    first = threading.Thread(target=lambda: found.append(door._verifiers()))
    first.start()
    assert between.wait(5)
    found.append(door._verifiers())  # a second heartbeat, while the first thread is between its two checks
    first.join()
    assert len(found) == 2 and all(sessions is not None and tokens is not None for sessions, tokens in found)


def test_a_first_heartbeat_makes_its_rows_stamped_with_the_course_version_of_that_moment(app, make_user, course):
    """A first heartbeat's progress row and lease are two INSERTs, not the ORM (at 1,000 viewers starting at
    once the ORM's ~6 ms each made the slowest heartbeats); the row still records the course's version
    then, as the ORM's do (lms/courses/rules.py), so the learner keeps the rules they started under."""
    from lms.courses.lease import StudyLease

    course.version = 3
    db.session.commit()
    lesson_id, user_id = course.active_lessons[0].id, make_user().id
    result, _record = services.record_heartbeat(SimpleNamespace(id=user_id), lesson_id,
                                                {"player": "tablet-7", "seq": 1, "start": True, "position": 0})
    assert result.credited_seconds == 0
    row = LessonProgress.query.filter_by(user_id=user_id, lesson_id=lesson_id).one()
    assert (row.course_version, row.watched_seconds, row.intervals, row.version) == (3, 0.0, [], 2)
    lease = db.session.get(StudyLease, user_id)
    assert (lease.token, lease.lesson_id, lease.clock_credited, lease.day_credited) == ("tablet-7", lesson_id, 0.0, 0.0)
