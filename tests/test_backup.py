"""`lms backup`: a copy that opens on its own and holds the ledger and the media."""
import json
import sqlite3

from lms.records.services import credit_course_completion


def test_backup_copies_database_and_media(app, make_user, course, tmp_path):
    credit_course_completion(make_user().id, course)
    target = tmp_path / "backup"
    result = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training_records"] == 1 and manifest["media_files"] >= 3
    copy = sqlite3.connect(target / "lms.sqlite3")
    assert copy.execute("SELECT title, hours FROM training_record").fetchall() == [("测试课程：防范电信诈骗", 0.5)]
    video = course.active_lessons[0].video
    assert (target / "media" / video.renditions["360p"]).stat().st_size > 1000
    again = app.test_cli_runner().invoke(args=["backup", str(target)])
    assert again.exit_code != 0 and "不是空的" in again.output  # never overwrites an earlier backup
