"""`lms backup` and `lms restore`: a copy read back before it is called a backup, everything under
LMS_DATA_DIR but the search index and temp files, and a restore that gives the same ledger."""
import json
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask

from lms import create_app
from lms.extensions import db
from lms.records.services import credit_course_completion
from tests.conftest import _make_app, throwaway_postgres, write_package

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # the backup copies bytes; it does not look at them


def _fill(app, tmp_path, test_video) -> dict:
    """A credited learner with a correction, a roster photo and a video upload still waiting to be
    transcoded; returns what a restore must give back."""
    from lms.accounts.models import User, utcnow
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.courses.importer import import_package
    from lms.media.services import create_upload_asset, uploads_root
    from lms.records.models import TrainingRecord

    with app.app_context():
        get_or_create_unit("county", "垫江县", "county")
        learner = create_user("li-guilan", "李桂兰", "correct-horse", "learner", "elder", "county")
        db.session.commit()
        course, _ = import_package(write_package(tmp_path / "content", test_video))
        record = credit_course_completion(learner.id, course)
        db.session.add(TrainingRecord(user_id=learner.id, title="更正：重复记录", kind="correction",
                                      hours=Decimal("-0.50"), source="admin", earned_at=utcnow(),
                                      reverses_id=record.id, note="含\t制表符\n和换行的说明\\"))
        learner = db.session.get(User, learner.id)
        learner.photo_path = f"photos/{learner.id}.jpg"
        data = Path(app.config["DATA_DIR"])
        (data / "photos").mkdir(parents=True, exist_ok=True)
        (data / learner.photo_path).write_bytes(JPEG)
        upload = uploads_root() / f"pending-{uuid.uuid4().hex}.mp4"
        upload.write_bytes(test_video.read_bytes())
        lesson = course.active_lessons[0]
        create_upload_asset(lesson, upload, "新讲座.mp4")
        db.session.commit()
        (uploads_root() / ".tmp-upload-half-written").write_bytes(b"x" * 100)
        return {"ledger": _ledger(), "photo": learner.photo_path, "upload": upload.name,
                "rendition": lesson.video.renditions["360p"]}


def _ledger():
    from lms.records.models import TrainingRecord

    return [(r.id, r.user_id, r.title, r.kind, r.hours, r.certificate_no, r.reverses_id, r.note, r.earned_at)
            for r in TrainingRecord.query.order_by(TrainingRecord.id)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_urls(request, tmp_path):
    """(source, target) database URLs: two SQLite files, then two throw-away PostgreSQL databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.sqlite3'}", f"sqlite:///{tmp_path / 'target.sqlite3'}"
        return
    source = request.getfixturevalue("postgres_url")
    with throwaway_postgres() as target:
        yield source, target


def test_backup_then_restore_into_a_fresh_instance_gives_the_same_ledger(database_urls, tmp_path, test_video):
    from lms.accounts.models import User
    from lms.media.models import VideoAsset

    source_url, target_url = database_urls
    source = _make_app(tmp_path / "source", database_url=source_url, data_dir=tmp_path / "source-data")
    expected = _fill(source, tmp_path, test_video)
    backup_dir = tmp_path / "backup"

    result = source.test_cli_runner().invoke(args=["backup", str(backup_dir)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((backup_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_records"] == 2 and manifest["tables"]["user"] == 1
    data = backup_dir / "data"
    assert (data / expected["photo"]).read_bytes() == JPEG
    assert (data / "media" / expected["rendition"]).stat().st_size > 1000
    assert (data / "uploads" / expected["upload"]).is_file()
    assert not (data / "search").exists() and not list(data.rglob(".tmp-*"))

    target = _make_app(tmp_path / "target", database_url=target_url, data_dir=tmp_path / "target-data")
    result = target.test_cli_runner().invoke(args=["restore", str(backup_dir)])
    assert result.exit_code == 0, result.output
    assert "lms search reindex" in result.output and "待转码" in result.output
    target_data = tmp_path / "target-data"
    with target.app_context():
        assert _ledger() == expected["ledger"]
        learner = User.query.filter_by(username="li-guilan").one()
        assert (target_data / learner.photo_path).read_bytes() == JPEG
        assert (target_data / "media" / expected["rendition"]).stat().st_size > 1000
        pending = VideoAsset.query.filter_by(status="pending").one()
        assert pending.source_path == str(target_data / "uploads" / expected["upload"])  # the restored copy

    again = target.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup-of-restored")])
    assert again.exit_code == 0, again.output
    round_trip = json.loads((tmp_path / "backup-of-restored" / "manifest.json").read_text(encoding="utf-8"))
    assert round_trip["ledger"] == manifest["ledger"] and round_trip["tables"] == manifest["tables"]
    for app in (source, target):
        with app.app_context():
            db.engine.dispose()


def test_backup_copies_database_and_files_and_hard_links_only_when_asked(app, make_user, course, tmp_path):
    credit_course_completion(make_user().id, course)
    target = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_records"] == 1 and manifest["data_files"] >= 3
    copy = sqlite3.connect(target / "lms.sqlite3")
    assert copy.execute("SELECT title, hours FROM training_record").fetchall() == [("测试课程：防范电信诈骗", 0.5)]
    video = course.active_lessons[0].video.renditions["360p"]
    original = Path(app.config["DATA_DIR"]) / "media" / video
    assert (target / "data" / "media" / video).stat().st_ino != original.stat().st_ino  # a copy, not a link
    linked = app.test_cli_runner().invoke(args=["backup", "--link", str(tmp_path / "linked")])
    assert linked.exit_code == 0, linked.output
    assert (tmp_path / "linked" / "data" / "media" / video).stat().st_ino == original.stat().st_ino
    again = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert again.exit_code != 0 and "不是空的" in again.output  # never overwrites an earlier backup


def test_backup_with_a_relative_sqlite_url_copies_the_database_the_app_uses(tmp_path, monkeypatch):
    """A relative SQLite URL is resolved against the app's instance folder (Flask-SQLAlchemy), not
    the working directory: run from elsewhere, the backup still holds the ledger."""
    from lms.accounts.models import utcnow
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.records.models import TrainingRecord

    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path / "flask-instance"))
    app = _make_app(tmp_path, database_url="sqlite:///lms.sqlite3")
    with app.app_context():
        get_or_create_unit("county", "垫江县", "county")
        learner = create_user("cadre1", "陈干部", "correct-horse", "learner", "cadre", "county")
        db.session.add(TrainingRecord(user_id=learner.id, title="人工智能前沿", kind="course",
                                      hours=Decimal("1.00"), source="online", earned_at=utcnow()))
        db.session.commit()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(tmp_path / "backup" / "lms.sqlite3")
    assert copy.execute("SELECT title FROM training_record").fetchall() == [("人工智能前沿",)]
    assert list(elsewhere.iterdir()) == []  # no empty database made in the working directory
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("state, message", [
    ("absent", "数据库文件不存在"),
    ("not a database", "无法读取数据库"),
    ("no tables", "没有学时记录表"),
])
def test_backup_of_a_missing_or_unreadable_database_fails_clearly(tmp_path, state, message):
    database = tmp_path / "lms.sqlite3"
    if state == "not a database":
        database.write_bytes(b"this is not an SQLite file " * 200)
    elif state == "no tables":
        sqlite3.connect(database).close()
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "DATA_DIR": str(tmp_path / "data"),
                      "SECRET_KEY": "test-secret", "TESTING": True})
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code != 0 and message in result.output, result.output
    assert str(database) in result.output
    assert not (tmp_path / "backup").exists()  # no half-written backup that looks like one
    assert database.exists() == (state != "absent")  # the backup did not create an empty database
    with app.app_context():
        db.engine.dispose()


@pytest.mark.postgres
def test_backup_refuses_a_pg_dump_older_than_the_server(tmp_path, postgres_url, monkeypatch):
    """pg_dump cannot dump a newer server: the command names both versions instead of failing obscurely."""
    import lms.backup

    monkeypatch.setattr(lms.backup, "_client_major", lambda tool: 9)
    app = _make_app(tmp_path, database_url=postgres_url)
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code != 0 and "pg_dump 是 9 版" in result.output, result.output
    assert not (tmp_path / "backup").exists()
    with app.app_context():
        db.engine.dispose()


def test_a_record_credited_while_the_backup_runs_is_not_half_in_it(database_urls, tmp_path, monkeypatch):
    """A learner credited between the live count and the copy: the copy is of the same snapshot as
    the counts, so the backup verifies and holds exactly the records of that moment."""
    import lms.backup
    from lms.accounts.models import utcnow
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.records.models import TrainingRecord

    app = _make_app(tmp_path / "source", database_url=database_urls[0], data_dir=tmp_path / "data")
    with app.app_context():
        get_or_create_unit("county", "垫江县", "county")
        learner_id = create_user("cadre1", "陈干部", "correct-horse", "learner", "cadre", "county").id
        db.session.add(TrainingRecord(user_id=learner_id, title="量子科技", kind="course", hours=Decimal("1.00"),
                                      source="online", earned_at=utcnow()))
        db.session.commit()
    measured = lms.backup._live_figures

    def credit_meanwhile(conn):
        figures = measured(conn)
        with db.engine.begin() as other:  # another connection, as a web worker would be
            other.execute(TrainingRecord.__table__.insert().values(
                user_id=learner_id, title="人工智能前沿", kind="course", hours=Decimal("1.00"), source="online",
                earned_at=utcnow(), created_at=utcnow()))
        return figures

    monkeypatch.setattr(lms.backup, "_live_figures", credit_meanwhile)
    result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_records"] == 1
    with app.app_context():
        assert TrainingRecord.query.count() == 2
        db.engine.dispose()
