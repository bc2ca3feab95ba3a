"""Attacks on crediting (issue 9: defects 3, 7 and 8) and what each gets.

- a shorter replacement video no longer completes a lesson nobody watched: progress belongs to the
  video asset it was earned on;
- completion is decided by one idempotent function (lms/courses/completion.py) in one transaction:
  a failure part-way is retried by the next page view, retired lessons stop counting, text-only
  lessons complete when marked read after a reading time the server measures, certificate numbers
  cannot clash, `lms records settle` credits what is due;
- a client sending thousands of heartbeats of 200 tiny intervals keeps the stored set within
  (duration + 1) / 2 parts.
"""
from __future__ import annotations

import json
import random
import re
import secrets
from datetime import datetime, timedelta

import pytest
import yaml
from sqlalchemy import event

from lms.accounts.models import utcnow
from lms.courses import services
from lms.courses.completion import settle_completion
from lms.courses.importer import import_package
from lms.courses.models import LessonProgress
from lms.courses.progress import MIN_FRAGMENT, MIN_GAP, apply_heartbeat, max_stored_parts, parse_intervals
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.records.models import AuditLog, TrainingRecord
from tests.conftest import CSRF_RE, write_package
from tests.quizzing import RIGHT, submit_quiz
from tests.test_concurrency import _race, race_app  # noqa: F401 — the SQLite/PostgreSQL race fixture

READING_TEXT = "## 认识短信诈骗\n\n" + "收到带链接的短信，不点链接，不回复，拨打 96110 核实。" * 12


def write_reading_package(root, slug="reading-course", lessons=1):
    """A course of text-only lessons (no video, no quiz), as docs/content-format.md allows."""
    folder = root / slug
    folder.mkdir(parents=True)
    entries = []
    for n in range(1, lessons + 1):
        (folder / f"{n}.md").write_text(READING_TEXT, encoding="utf-8")
        entries.append({"slug": f"read-{n}", "title": f"阅读{n}", "text": f"{n}.md"})
    course = {"id": f"pkg-{slug}", "title": "阅读课：防范短信诈骗", "summary": "只有课文", "audiences": ["elder"],
              "credit_hours": 0.25, "lessons": entries}
    (folder / "course.yaml").write_text(yaml.safe_dump(course, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


def beat(user, lesson, at, intervals, position=None):
    position = intervals[-1][1] if position is None and intervals else (position or 0)
    return services.record_heartbeat(user, lesson.id, {"intervals": intervals, "position": position}, now=at)


def watch_all(user, lesson):
    """The player's heartbeats over the whole test video, the server's clock in step."""
    t0 = utcnow() - timedelta(minutes=10)
    beat(user, lesson, t0, [])
    beat(user, lesson, t0 + timedelta(seconds=4), [[0, 4]])
    return t0


def lesson_url(course, lesson):
    return f"/courses/{course.slug}/lessons/{lesson.slug}"


def replace_video(lesson, duration):
    """A new, ready asset (another upload) swapped in where the app swaps videos."""
    from lms.courses.videos import swap_lesson_video

    old = lesson.video
    asset = VideoAsset(lesson_id=lesson.id, status="ready", duration=duration, renditions_json=old.renditions_json,
                       poster_path=old.poster_path, source_sha256="f" * 64)
    db.session.add(asset)
    swap_lesson_video(lesson, asset, actor_id=None, reason="upload")
    db.session.commit()
    return asset


# --- defect 3: a replacement video ----------------------------------------------------------------

def test_shorter_replacement_video_does_not_complete_a_lesson_nobody_watched(browser_client, make_user, course):
    """80% of a 60 s video watched, quiz passed, video replaced by a 10 s one: not complete (0% of the new
    video, resume at 0), no record; only watching the new video completes it."""
    lesson = course.active_lessons[0]
    lesson.video.duration = 60.0
    db.session.commit()
    user = make_user()
    browser_client.login(user.username)
    t0 = utcnow() - timedelta(minutes=10)
    beat(user, lesson, t0, [])
    result, _ = beat(user, lesson, t0 + timedelta(seconds=48), [[0, 48]])
    assert result.watched_seconds == pytest.approx(48) and not result.video_done
    submit_quiz(browser_client, lesson.id, RIGHT)
    assert TrainingRecord.query.count() == 0

    replace_video(lesson, duration=10.0)
    result, record = beat(user, lesson, t0 + timedelta(seconds=60), [])
    assert (result.watched_seconds, result.video_done, result.lesson_completed, record) == (0, False, False, None)
    page = browser_client.get(lesson_url(course, lesson)).get_data(as_text=True)
    assert "已看 0%" in page and 'data-resume-at="0.0"' in page and 'data-furthest="0.0"' in page
    assert LessonProgress.query.filter_by(user_id=user.id).one().completed_at is None
    assert TrainingRecord.query.count() == 0

    result, record = beat(user, lesson, t0 + timedelta(seconds=70), [[0, 10]])
    assert result.video_done and result.lesson_completed and record is not None


def test_replacing_a_video_leaves_completed_lessons_and_records_alone(browser_client, make_user, course):
    """A learner who completed the lesson keeps it (completed_at, watched seconds, the one record) after the
    video is replaced and they send heartbeats on the new one."""
    lesson = course.active_lessons[0]
    user = make_user()
    browser_client.login(user.username)
    t0 = watch_all(user, lesson)
    submit_quiz(browser_client, lesson.id, RIGHT)
    progress = LessonProgress.query.filter_by(user_id=user.id).one()
    before = (progress.completed_at, progress.watched_seconds, progress.intervals_json)
    record = TrainingRecord.query.filter_by(user_id=user.id).one()

    replace_video(lesson, duration=30.0)
    beat(user, lesson, t0 + timedelta(seconds=20), [[0, 10]])
    browser_client.get(lesson_url(course, lesson))
    db.session.expire_all()
    progress = LessonProgress.query.filter_by(user_id=user.id).one()
    assert (progress.completed_at, progress.watched_seconds, progress.intervals_json) == before
    assert [r.id for r in TrainingRecord.query.filter_by(user_id=user.id)] == [record.id]


# --- defect 7: one completion function ------------------------------------------------------------

@pytest.fixture
def reading_course(app, tmp_path):
    course, _ = import_package(write_reading_package(tmp_path / "reading"))
    return course


def csrf_from(page: str) -> str:
    return CSRF_RE.search(page).group(1)


def test_text_only_lesson_is_completed_by_marking_it_read_after_the_reading_time(app, browser_client, make_user,
                                                                                reading_course):
    """我已读完 straight after opening the page: 303 and "再过 N 秒", nothing completed; after the reading
    time the server measured: the lesson and the course are complete, credited once."""
    lesson = reading_course.active_lessons[0]
    user = make_user()
    browser_client.login(user.username)
    page = browser_client.get(lesson_url(reading_course, lesson)).get_data(as_text=True)
    assert "我已读完" in page
    response = browser_client.post(lesson_url(reading_course, lesson) + "/read", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 303
    page = browser_client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r"再过 \d+ 秒才能点“我已读完”", page)
    progress = LessonProgress.query.filter_by(user_id=user.id).one()
    assert progress.read_at is None and progress.completed_at is None and TrainingRecord.query.count() == 0

    # the reading time passes on the server's clock
    progress.opened_at -= timedelta(seconds=app.config["READING_MAX_SECONDS"])
    db.session.commit()
    response = browser_client.post(lesson_url(reading_course, lesson) + "/read", data={"csrf_token": csrf_from(page)},
                                   follow_redirects=True)
    assert "已完成本课程，获得 0.25 学时" in response.get_data(as_text=True)
    browser_client.post(lesson_url(reading_course, lesson) + "/read", data={"csrf_token": csrf_from(page)})
    assert LessonProgress.query.filter_by(user_id=user.id).one().completed_at is not None
    assert TrainingRecord.query.filter_by(user_id=user.id).count() == 1


def test_marking_read_without_the_page_or_the_token_gets_nothing(browser_client, make_user, reading_course, course):
    """我已读完 posted without ever opening the page: told to wait the full reading time; without the CSRF
    token: 400; on a lesson with a video: 400. Nothing is completed."""
    lesson = reading_course.active_lessons[0]
    user = make_user()
    browser_client.login(user.username)
    token = browser_client.refresh_token("/")
    response = browser_client.post(lesson_url(reading_course, lesson) + "/read", data={"csrf_token": token},
                                   follow_redirects=True)
    assert re.search(r"再过 \d+ 秒", response.get_data(as_text=True))
    assert browser_client.post(lesson_url(reading_course, lesson) + "/read").status_code == 400
    video_lesson = course.active_lessons[0]
    assert browser_client.post(lesson_url(course, video_lesson) + "/read", data={"csrf_token": token}).status_code == 400
    assert LessonProgress.query.filter(LessonProgress.completed_at.isnot(None)).count() == 0
    assert TrainingRecord.query.count() == 0


def test_a_crediting_failure_after_the_lesson_is_retried_by_the_next_page_view(browser_client, make_user, course):
    """The ledger write fails once as the quiz completes the course: nothing is half-written (the lesson is
    not marked complete alone), and the next lesson page view credits the course."""
    lesson = course.active_lessons[0]
    user = make_user()
    browser_client.login(user.username)
    watch_all(user, lesson)

    def refuse(mapper, connection, target):
        raise RuntimeError("disk full")

    event.listen(TrainingRecord, "before_insert", refuse)
    try:
        with pytest.raises(RuntimeError):
            submit_quiz(browser_client, lesson.id, RIGHT)
    finally:
        event.remove(TrainingRecord, "before_insert", refuse)
    db.session.rollback()
    assert LessonProgress.query.filter_by(user_id=user.id).one().completed_at is None
    assert TrainingRecord.query.count() == 0

    browser_client.get(lesson_url(course, lesson))
    assert LessonProgress.query.filter_by(user_id=user.id).one().completed_at is not None
    assert TrainingRecord.query.filter_by(user_id=user.id).count() == 1


def test_retiring_the_unfinished_lesson_credits_a_learner_who_finished_the_rest(browser_client, make_user, tmp_path,
                                                                               test_video):
    """A re-import retires the one lesson a learner had not done: their next course page view credits the
    course (before, they were stranded for good)."""
    package = write_package(tmp_path / "content", test_video, slug="two-lessons", lessons=2)
    course, _ = import_package(package)
    first, second = course.active_lessons
    user = make_user()
    browser_client.login(user.username)
    watch_all(user, first)
    submit_quiz(browser_client, first.id, RIGHT)
    assert TrainingRecord.query.count() == 0

    spec = yaml.safe_load((package / "course.yaml").read_text(encoding="utf-8"))
    spec["lessons"] = spec["lessons"][:1]
    (package / "course.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    import_package(package)
    assert db.session.get(type(second), second.id).retired
    page = browser_client.get(f"/courses/{course.slug}").get_data(as_text=True)
    assert "已完成本课程" in page
    assert TrainingRecord.query.filter_by(user_id=user.id).count() == 1


def test_certificate_numbers_are_unique_whatever_the_random_part(monkeypatch, make_user, course):
    """Every random tail the same: two learners still get two records with different certificate
    numbers (before, the second credit failed on the clash)."""
    from lms.records.services import credit_course_completion

    learners = [make_user(), make_user()]
    monkeypatch.setattr(secrets, "token_hex", lambda n=None: "00" * (n or 4))
    first = credit_course_completion(learners[0].id, course)
    second = credit_course_completion(learners[1].id, course)
    assert first.id != second.id and first.certificate_no != second.certificate_no


def test_records_settle_credits_what_is_due_once_and_says_so(app, make_user, reading_course):
    """Completions whose credit never happened: `--dry-run` lists them and writes nothing; `settle` writes
    each once and prints a line per credit and a total; a second run credits nothing."""
    lesson = reading_course.active_lessons[0]
    due = [make_user(full_name=f"学员{n}") for n in range(2)]
    idle = make_user()
    for user in due + [idle]:
        services.progress_for(user.id, lesson.id).opened_at = utcnow() - timedelta(hours=1)
    for user in due:  # marked read, then the crediting was lost
        services.progress_for(user.id, lesson.id).read_at = utcnow()
    db.session.commit()
    runner = app.test_cli_runner()

    dry = runner.invoke(args=["records", "settle", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert all(f"应记入 {user.username}（{user.full_name}）阅读课：防范短信诈骗 0.25 学时" in dry.output for user in due)
    assert "应记入 2 条，共 0.5 学时" in dry.output and TrainingRecord.query.count() == 0

    done = runner.invoke(args=["records", "settle"])
    assert done.exit_code == 0, done.output
    assert done.output.count("已记入 ") == 3 and "已记入 2 条，共 0.5 学时" in done.output
    assert sorted(r.user_id for r in TrainingRecord.query) == sorted(user.id for user in due)
    assert "已记入 0 条，共 0 学时" in runner.invoke(args=["records", "settle"]).output
    assert TrainingRecord.query.count() == 2


def test_twenty_concurrent_settles_credit_once(race_app, tmp_path):
    """20 requests settle the same learner's course at once (SQLite file and PostgreSQL): both lessons
    completed, one record, one audit entry, no error."""
    from lms.accounts.services import create_user, get_or_create_unit

    with race_app.app_context():
        unit = get_or_create_unit("county", "垫江县", "county")
        user_id = create_user("racer", "赛跑者", "correct-horse", "learner", "elder", unit.code).id
        course, _ = import_package(write_reading_package(tmp_path / "content", lessons=2))
        course_id = course.id
        for lesson in course.active_lessons:
            progress = services.progress_for(user_id, lesson.id)
            progress.opened_at, progress.read_at = utcnow() - timedelta(hours=1), utcnow()
        db.session.commit()

    errors = _race(race_app, lambda: settle_completion(user_id, course_id))
    with race_app.app_context():
        assert errors == []
        assert TrainingRecord.query.filter_by(user_id=user_id).count() == 1
        assert AuditLog.query.filter_by(action="record.credit").count() == 1
        assert LessonProgress.query.filter_by(user_id=user_id).filter(LessonProgress.completed_at.is_(None)).count() == 0


# --- defect 8: bounded heartbeats -----------------------------------------------------------------

def unsaved_progress() -> LessonProgress:
    return LessonProgress(intervals_json="[]", watched_seconds=0.0, furthest_position=0.0, last_position=0.0,
                          clock_credited=0.0)


def test_thousands_of_heartbeats_of_tiny_intervals_keep_the_stored_set_small():
    """3000 heartbeats of 200 scattered fragments (0.01–1.5 s) on a 600 s video: at every step at most
    (600 + 1) // 2 + 1 = 301 stored parts, each ≥ 1 s and ≥ 1 s apart, a row under 7 kB, and no more
    credited than the wall clock allows."""
    duration, tolerance, rate = 600.0, 5.0, 2.0
    progress = unsaved_progress()
    rng = random.Random(9)
    t0 = datetime(2026, 3, 1, 9, 0, 0)
    apply_heartbeat(progress, [], 0, t0, duration, rate, tolerance)
    bound = max_stored_parts(duration)
    largest = 0
    for n in range(1, 3001):
        fragments = []
        for _ in range(200):
            start = rng.uniform(0, duration - 2)
            fragments.append([round(start, 3), round(start + rng.choice([0.01, 0.05, 0.3, 0.9, 1.0, 1.5]), 3)])
        intervals = parse_intervals(fragments, duration, tolerance)
        apply_heartbeat(progress, intervals, intervals[-1][1], t0 + timedelta(seconds=10 * n), duration, rate,
                        tolerance)
        parts = progress.intervals
        largest = max(largest, len(progress.intervals_json))
        assert len(parts) <= bound
        assert all(end - start >= MIN_FRAGMENT - 1e-3 for start, end in parts)
        assert all(b[0] - a[1] >= MIN_GAP - 1e-3 for a, b in zip(parts, parts[1:]))
        assert progress.watched_seconds <= min(duration, 10 * n * rate + tolerance) + 1e-6
        assert progress.watched_seconds == pytest.approx(sum(e - s for s, e in parts), abs=0.01)
    assert largest < 7000
    assert json.loads(progress.intervals_json) == progress.intervals


def test_honest_fragments_still_count_and_small_gaps_are_charged():
    """A player's own jitter (a 0.4 s gap) is joined and paid for from the wall clock; a lone 0.5 s
    fragment earns nothing; a replay earns nothing."""
    progress = unsaved_progress()
    t0 = datetime(2026, 3, 1, 9, 0, 0)
    apply_heartbeat(progress, [], 0, t0, 300, 1.0, 0.0)
    result = apply_heartbeat(progress, [(0, 4.8), (5.2, 10)], 10, t0 + timedelta(seconds=10), 300, 1.0, 0.0)
    assert result.credited_seconds == pytest.approx(10) and progress.intervals == [[0, 10]]
    result = apply_heartbeat(progress, [(100, 100.5)], 100.5, t0 + timedelta(seconds=20), 300, 1.0, 0.0)
    assert result.credited_seconds == 0 and progress.intervals == [[0, 10]]
    result = apply_heartbeat(progress, [(0, 10)], 10, t0 + timedelta(seconds=30), 300, 1.0, 0.0)
    assert result.credited_seconds == 0


def test_stored_set_from_before_coalescing_is_compacted_on_the_next_heartbeat(app, make_user, course):
    """A row left with thousands of fragments by the old code shrinks to the bound at its next heartbeat."""
    lesson = course.active_lessons[0]
    user = make_user()
    t0 = utcnow() - timedelta(minutes=10)
    beat(user, lesson, t0, [])
    progress = LessonProgress.query.filter_by(user_id=user.id).one()
    progress.intervals = [(i * 0.001, i * 0.001 + 0.0005) for i in range(4000)]
    db.session.commit()
    beat(user, lesson, t0 + timedelta(seconds=2), [[0, 1]])
    progress = LessonProgress.query.filter_by(user_id=user.id).one()
    assert len(progress.intervals) <= max_stored_parts(lesson.video.duration)
