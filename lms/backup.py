"""`lms backup PATH`: a consistent copy of the database and the media.

SQLite is copied with SQLite's online backup API (consistent while the site runs); PostgreSQL
with pg_dump. Media files are immutable once renamed into place, so a copy of the tree taken
after the database is consistent with it (files newer than the copy are simply not referenced).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy.engine import make_url

from lms.extensions import db


class BackupError(RuntimeError):
    pass


def backup(target: Path, progress=None) -> dict:
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"目标文件夹不是空的：{target}")
    target.mkdir(parents=True, exist_ok=True)
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        database_file = target / "lms.sqlite3"
        source = sqlite3.connect(url.database)
        dest = sqlite3.connect(database_file)
        with dest:
            source.backup(dest)
        source.close()
        dest.close()
    elif url.get_backend_name() == "postgresql":
        if not shutil.which("pg_dump"):
            raise BackupError("找不到 pg_dump：请安装 postgresql-client")
        database_file = target / "database.dump"
        env = dict(os.environ, PGPASSWORD=url.password or "")
        command = ["pg_dump", "--format=custom", f"--file={database_file}", "--host", url.host or "localhost",
                   "--port", str(url.port or 5432), "--username", url.username or "postgres", url.database]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise BackupError("pg_dump 失败：" + result.stderr[-300:])
    else:
        raise BackupError(f"不支持的数据库：{url.get_backend_name()}")
    media = Path(current_app.config["DATA_DIR"]) / "media"
    files = [p for p in media.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")] if media.exists() else []
    for index, path in enumerate(files, start=1):
        dest = target / "media" / path.relative_to(media)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)  # immutable files: a hard link is a free, consistent copy
        except OSError:
            shutil.copy2(path, dest)
        if progress:
            progress(index, len(files))
    from lms.records.models import TrainingRecord

    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": database_file.name,
        "dialect": url.get_backend_name(),
        "training_records": db.session.query(TrainingRecord).count(),
        "media_files": len(files),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest
