"""Backups and restore (issue 9, defect 9): a restore never overwrites an instance that holds data,
and a backup that does not match its own manifest is refused before anything is written."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lms.extensions import db
from lms.records.services import credit_course_completion
from tests.conftest import _make_app


@pytest.fixture
def backup_dir(app, make_user, course, tmp_path):
    """A backup of an instance with one credited completion."""
    credit_course_completion(make_user().id, course)
    target = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    return target


@pytest.fixture
def empty_instance(tmp_path):
    (tmp_path / "target").mkdir()
    target = _make_app(tmp_path / "target", data_dir=tmp_path / "target-data")
    yield target
    with target.app_context():
        db.engine.dispose()


def _restore(app, path):
    """`lms restore PATH` run by `app` (the fixture's app context would otherwise be the one used)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=["restore", str(path)])


def _ledger_count(app) -> int:
    from lms.records.models import TrainingRecord

    with app.app_context():
        return TrainingRecord.query.count()


def _data_files(app) -> list[str]:
    from lms.backup import data_files

    with app.app_context():
        return [name for name, _ in data_files(Path(app.config["DATA_DIR"])).files]


def test_restore_over_an_instance_with_data_is_refused(app, backup_dir):
    """Restore into the live instance itself → exit 1, 目标数据库已有数据; its ledger and files untouched."""
    before = (_ledger_count(app), _data_files(app))
    result = _restore(app, backup_dir)
    assert result.exit_code != 0 and "目标数据库已有数据" in result.output, result.output
    assert (_ledger_count(app), _data_files(app)) == before


def test_restore_into_a_data_folder_with_files_is_refused(backup_dir, empty_instance):
    """Empty database but a data folder holding a photo → exit 1, 数据文件夹…不是空的; the database stays empty."""
    photo = Path(empty_instance.config["DATA_DIR"]) / "photos" / "1.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8\xff someone's photo")
    result = _restore(empty_instance, backup_dir)
    assert result.exit_code != 0 and "不是空的" in result.output and "photos/1.jpg" in result.output, result.output
    assert _ledger_count(empty_instance) == 0 and _data_files(empty_instance) == ["photos/1.jpg"]


def test_a_backup_edited_after_it_was_written_is_refused(backup_dir, empty_instance):
    """A forged record added to the backup's copy of the ledger → exit 1, 备份…已损坏 (checksum); nothing restored."""
    copy = sqlite3.connect(backup_dir / "lms.sqlite3")
    with copy:
        copy.execute("INSERT INTO training_record (user_id, title, kind, hours, source, earned_at, created_at) "
                      "SELECT user_id, '人工智能前沿', kind, 50, source, earned_at, created_at FROM training_record")
    copy.close()
    result = _restore(empty_instance, backup_dir)
    assert result.exit_code != 0 and "已损坏" in result.output and "校验和" in result.output, result.output
    assert _ledger_count(empty_instance) == 0 and _data_files(empty_instance) == []


def test_a_backup_missing_a_data_file_is_refused(backup_dir, empty_instance):
    """One media file deleted from the backup → exit 1, 备份…已损坏 (file count); nothing restored."""
    next(path for path in (backup_dir / "data" / "media").rglob("*.mp4")).unlink()
    result = _restore(empty_instance, backup_dir)
    assert result.exit_code != 0 and "已损坏" in result.output and "数据文件" in result.output, result.output
    assert _ledger_count(empty_instance) == 0 and _data_files(empty_instance) == []


def test_a_folder_without_a_manifest_is_not_restored(tmp_path, empty_instance):
    """A folder holding only a database file → exit 1, 不是一份完整的备份; nothing restored."""
    (tmp_path / "half").mkdir()
    sqlite3.connect(tmp_path / "half" / "lms.sqlite3").close()
    result = _restore(empty_instance, tmp_path / "half")
    assert result.exit_code != 0 and "不是一份完整的备份" in result.output, result.output
    assert _ledger_count(empty_instance) == 0
