"""`lms doctor`: a healthy deployment passes (exit 0); each broken part is named with its fix (exit 1)."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lms import create_app
from lms.extensions import db
from tests.conftest import _make_app


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An app with its own database, data folder, job queue and search index, its worker alive."""
    import lms.doctor
    from lms.jobs import stamp_worker_heartbeat

    monkeypatch.setattr(lms.doctor, "MIN_FREE_BYTES", 0)  # whatever the test machine's disk holds
    app = _make_app(tmp_path)
    with app.app_context():
        stamp_worker_heartbeat()
        yield app
        db.session.remove()
        db.engine.dispose()


def doctor(app, *args) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["doctor", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def check_line(output: str, name: str) -> str:
    """The line of one check, with the fix printed under it when it failed."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line[2:].startswith(name + "："):
            fix = lines[index + 1] if index + 1 < len(lines) and lines[index + 1].startswith("    修复：") else ""
            return line + "\n" + fix
    raise AssertionError(f"no line for {name!r} in:\n{output}")


def test_a_healthy_deployment_passes(site):
    code, output = doctor(site)
    assert code == 0, output
    for name in ("数据库", "数据库结构", "搜索索引", "时钟", "数据文件夹", "媒体文件可被 nginx 读取", "ffmpeg", "后台任务进程"):
        assert check_line(output, name).startswith("✔"), output
    assert "一切正常" in output and "修复" not in output


def test_migrations_behind_head_say_to_upgrade(site):
    from alembic.script import ScriptDirectory
    from flask import current_app

    scripts = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    head = scripts.get_revision(scripts.get_current_head())
    db.session.execute(db.text("UPDATE alembic_version SET version_num = :v"), {"v": head.down_revision})
    db.session.commit()
    code, output = doctor(site)
    assert code == 1
    line = check_line(output, "数据库结构")
    assert line.startswith("✘") and f"当前 {head.down_revision}，最新 {head.revision}" in line
    assert "lms db upgrade heads" in line
    assert "发现 1 个问题" in output


def test_a_data_folder_that_cannot_be_written_is_named(site, tmp_path):
    """A file where the data folder should be (root may write anywhere, so modes alone prove nothing here)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    site.config["DATA_DIR"] = str(blocker)
    code, output = doctor(site)
    assert code == 1
    line = check_line(output, "数据文件夹")
    assert line.startswith("✘") and str(blocker) in line and "不可写" in line
    assert "LMS_DATA_DIR" in line


def test_a_nearly_full_disk_is_reported(site, monkeypatch):
    import lms.doctor

    monkeypatch.setattr(lms.doctor, "MIN_FREE_BYTES", 1 << 60)
    code, output = doctor(site)
    line = check_line(output, "数据文件夹")
    assert code == 1 and line.startswith("✘") and "所在磁盘只剩" in line and "清理磁盘" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any mode")
def test_a_read_only_data_folder_is_named(site):
    data = Path(site.config["DATA_DIR"])
    data.chmod(0o500)
    try:
        code, output = doctor(site)
    finally:
        data.chmod(0o700)
    assert code == 1 and check_line(output, "数据文件夹").startswith("✘")


def test_missing_ffmpeg_says_how_to_install_it(site, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, output = doctor(site)
    assert code == 1
    line = check_line(output, "ffmpeg")
    assert line.startswith("✘") and "apt-get install ffmpeg" in line


def test_a_silent_worker_is_reported(site):
    from lms.jobs import WORKER_HEARTBEAT_KEY, huey

    huey.put(WORKER_HEARTBEAT_KEY, {"at": time.time() - 600, "host": "web1", "pid": 1})
    code, output = doctor(site)
    assert code == 1
    line = check_line(output, "后台任务进程")
    assert line.startswith("✘") and "600 秒前" in line and "systemctl restart kepu-worker" in line


def test_a_worker_that_never_ran_is_reported(tmp_path):
    app = _make_app(tmp_path)  # no heartbeat stamped
    with app.app_context():
        code, output = doctor(app)
        db.engine.dispose()
    assert code == 1
    assert "从没有 lms worker 运行过" in check_line(output, "后台任务进程")


def test_a_running_worker_stamps_its_heartbeat(tmp_path):
    """The real `lms worker` process: doctor sees it alive while it runs."""
    from lms.jobs import last_worker_heartbeat

    app = _make_app(tmp_path)
    env = {**os.environ, "LMS_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "LMS_DATA_DIR": app.config["DATA_DIR"], "LMS_INSTANCE_DIR": str(tmp_path / "instance"),
           "LMS_SECRET_KEY": "test-secret"}
    env.pop("LMS_REDIS_URL", None)
    worker = subprocess.Popen([str(Path(sys.executable).with_name("lms")), "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with app.app_context():
            deadline = time.monotonic() + 30
            while last_worker_heartbeat() is None:
                assert worker.poll() is None, "lms worker exited"
                assert time.monotonic() < deadline, "no heartbeat within 30 s"
                time.sleep(0.2)
            assert last_worker_heartbeat()["pid"] == worker.pid
            code, output = doctor(app)
            assert check_line(output, "后台任务进程").startswith("✔"), output
            db.engine.dispose()
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_a_search_index_out_of_step_says_reindex(app, course, tmp_path):
    """A published course the index does not hold (imported without indexing): ✘ until reindexed."""
    from lms.jobs import stamp_worker_heartbeat
    from lms.search.index import rebuild

    app.config["SEARCH_DIR"] = str(tmp_path / "search")  # not the index other tests share
    stamp_worker_heartbeat()
    code, output = doctor(app)
    line = check_line(output, "搜索索引")
    assert code == 1 and line.startswith("✘") and "已发布 1 门" in line and "lms search reindex" in line
    rebuild()
    code, output = doctor(app)
    assert check_line(output, "搜索索引").startswith("✔")


def test_a_clock_off_from_the_database_is_reported(site, monkeypatch):
    import lms.doctor

    class Skewed(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(minutes=5)

    monkeypatch.setattr(lms.doctor, "datetime", Skewed)
    code, output = doctor(site)
    line = check_line(output, "时钟")
    assert code == 1 and line.startswith("✘") and "timedatectl set-ntp true" in line
    assert re.search(r"相差 \+30[01] 秒", line)  # SQLite's clock has whole seconds


def test_a_database_that_does_not_answer_skips_what_needs_it(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'no-such-folder' / 'lms.sqlite3'}",
                      "DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "x", "TESTING": True})
    with app.app_context():
        code, output = doctor(app)
    assert code == 1
    assert check_line(output, "数据库").startswith("✘") and "LMS_DATABASE_URL" in output
    assert "· 数据库结构：跳过" in output


@pytest.mark.skipif(not any(u.pw_name == "www-data" for u in pwd.getpwall()), reason="no www-data user")
def test_media_files_nginx_cannot_read_are_named_with_the_fix(site):
    """Behind nginx (LMS_MEDIA_ACCEL_PREFIX), a 0600 video — what mkstemp made before — is unreadable for
    www-data; once readable (here by everyone, as a non-root test cannot give it to www-data's group) ✔;
    a folder on the way that www-data cannot pass is named."""
    base = Path(tempfile.mkdtemp(prefix="kepu-doctor-"))  # not under pytest's basetemp (0700)
    try:
        base.chmod(0o755)
        site.config.update(MEDIA_ACCEL_PREFIX="/_protected_media", DATA_DIR=str(base / "data"))
        media = base / "data" / "media"
        video = media / "videos" / "ab" / "cdef" / "360p.mp4"
        video.parent.mkdir(parents=True)
        for folder in (base / "data", media, *video.relative_to(media).parents):
            (media / folder if folder != base / "data" else folder).chmod(0o755)
        video.write_bytes(b"\0" * 100)
        video.chmod(0o600)
        code, output = doctor(site)
        line = check_line(output, "媒体文件可被 nginx 读取")
        assert code == 1 and line.startswith("✘") and str(video) in line
        assert "chgrp -R www-data" in line and "UMask=0027" in line

        video.chmod(0o644)
        code, output = doctor(site, "--web-user", "www-data")
        assert check_line(output, "媒体文件可被 nginx 读取").startswith("✔"), output

        media.chmod(0o700)
        code, output = doctor(site)
        assert code == 1 and f"www-data 无法进入 {media}" in check_line(output, "媒体文件可被 nginx 读取")
    finally:
        shutil.rmtree(base, ignore_errors=True)
