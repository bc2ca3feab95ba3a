"""Completion is credited exactly once when many requests race — SQLite file and PostgreSQL."""
import threading
from datetime import timedelta

import pytest

from lms.accounts.models import utcnow
from lms.accounts.services import create_user, get_or_create_unit
from lms.courses import services
from lms.courses.importer import import_package
from lms.courses.models import LessonProgress
from lms.extensions import db
from lms.records.models import TrainingRecord
from lms.records.services import credit_course_completion
from tests.conftest import _make_app, write_package

RACERS = 20


def _setup(app, tmp_path, test_video):
    with app.app_context():
        unit = get_or_create_unit("county", "垫江县", "county")
        user = create_user("racer", "赛跑者", "correct-horse", "learner", "elder", unit.code)
        db.session.commit()
        course, _ = import_package(write_package(tmp_path / "content", test_video))
        return user.id, course.id, course.active_lessons[0].id


def _race(app, target):
    barrier = threading.Barrier(RACERS)
    errors = []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                target()
            except Exception as exc:  # collected and asserted on below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _assert_credited_once(app, tmp_path, test_video):
    user_id, course_id, _ = _setup(app, tmp_path, test_video)

    def complete():
        from lms.courses.models import Course

        credit_course_completion(user_id, db.session.get(Course, course_id))

    errors = _race(app, complete)
    with app.app_context():
        assert errors == []
        assert TrainingRecord.query.filter_by(user_id=user_id).count() == 1


def _assert_concurrent_heartbeats_merge(app, tmp_path, test_video):
    """20 heartbeats for one learner at once: no update lost, no more credited than the wall clock allows."""
    user_id, _, lesson_id = _setup(app, tmp_path, test_video)
    start = utcnow() - timedelta(seconds=30)
    with app.app_context():
        from lms.accounts.models import User

        services.record_heartbeat(db.session.get(User, user_id), lesson_id, {"intervals": [], "position": 0}, now=start)

    def beat():
        from lms.accounts.models import User

        services.record_heartbeat(db.session.get(User, user_id), lesson_id,
                                  {"intervals": [[0, 2]], "position": 2}, now=start + timedelta(seconds=2))

    errors = _race(app, beat)
    with app.app_context():
        assert errors == []
        progress = LessonProgress.query.filter_by(user_id=user_id).one()
        assert progress.watched_seconds == pytest.approx(2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def race_app(request, tmp_path):
    """An app on a file-backed SQLite database, then on a throw-away PostgreSQL one."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    app = _make_app(tmp_path, database_url=url)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_completion_credited_once_under_20_threads(race_app, tmp_path, test_video):
    _assert_credited_once(race_app, tmp_path, test_video)


def test_concurrent_heartbeats(race_app, tmp_path, test_video):
    _assert_concurrent_heartbeats_merge(race_app, tmp_path, test_video)
