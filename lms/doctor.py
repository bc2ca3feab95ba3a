"""`lms doctor`: check a deployment and say what to fix.

Each check returns a Check — ✔ or ✘, what was found, and for ✘ the command or setting that repairs
it (docs/deploy.md explains the set-up they refer to). The checks that /healthz makes (database,
ffmpeg, search index, job queue) come from lms/health.py; the rest need an operator's view of the
machine: migrations, folders and their modes, the worker's heartbeat, the clock.

Run it as the site's user with the site's environment (`sudo -u kepu kepu-lms doctor`, see
docs/deploy.md): as another user, "writable" would say nothing about the site.
"""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import current_app
from sqlalchemy import func, text

from lms import health
from lms.extensions import db

WORKER_SILENT_SECONDS = 90  # three missed heartbeats (lms.jobs.WORKER_HEARTBEAT_SECONDS)
CLOCK_TOLERANCE_SECONDS = 60
MIN_FREE_BYTES = 1024 ** 3  # one transcode of a long lecture needs a few hundred MB of room
MEDIA_FILES_CHECKED = 50_000  # enough for any county; the walk stays under a few seconds
DEFAULT_WEB_USER = "www-data"  # the user Debian's nginx runs as


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not run (it needs something that already failed)
    found: str
    fix: str = ""


def run_doctor(web_user: str | None = None, echo=print) -> int:
    """Print every check (✔/✘ and how to fix) and return the exit status: 0 all good, 1 otherwise."""
    checks = all_checks(web_user)
    for check in checks:
        mark = {True: "✔", False: "✘", None: "·"}[check.ok]
        echo(f"{mark} {check.name}：{check.found}")
        if check.ok is False and check.fix:
            echo(f"    修复：{check.fix}")
    problems = sum(check.ok is False for check in checks)
    echo(f"发现 {problems} 个问题。" if problems else "一切正常。")
    if os.geteuid() == 0:
        echo("注意：以 root 运行时“可写”总是成立；请以网站的账户运行：sudo -u kepu kepu-lms doctor")
    return 1 if problems else 0


def all_checks(web_user: str | None = None) -> list[Check]:
    checks = [database()]
    if checks[0].ok:
        checks += [migrations(), search_index(), clock()]
    else:
        checks += [Check(name, None, "跳过：数据库不可用") for name in ("数据库结构", "搜索索引", "时钟")]
    return checks + [data_folder(), media_readable(web_user), ffmpeg(), workers()]


def database() -> Check:
    state = health.database_check()
    if state["ok"]:
        return Check("数据库", True, f"可以连接（{state['dialect']}）")
    url = db.engine.url.render_as_string(hide_password=True)
    return Check("数据库", False, f"无法连接 {url}：{state['error']}",
                 "检查 LMS_DATABASE_URL 和数据库服务（systemctl status postgresql），以及网站账户能否读写 SQLite 文件")


def migrations() -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    heads = set(scripts.get_heads())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    known = {revision.revision for revision in scripts.walk_revisions()}
    if current == heads:
        return Check("数据库结构", True, f"已是最新（{', '.join(sorted(heads))}）")
    if current - known:
        return Check("数据库结构", False, f"数据库的版本 {', '.join(sorted(current - known))} 比这份程序新",
                     "装上与数据库相符的程序版本（不要用旧程序打开新数据库）")
    return Check("数据库结构", False,
                 f"当前 {', '.join(sorted(current)) or '空数据库'}，最新 {', '.join(sorted(heads))}",
                 "先备份（lms backup），再运行 lms db upgrade heads")


def search_index() -> Check:
    state = health.search_check()
    if "error" in state:
        return Check("搜索索引", False, f"打不开：{state['error']}", "运行 lms search reindex")
    found = f"{state['courses']} 门课程在索引中，已发布 {state['published_courses']} 门"
    if state["ok"] and state["in_step"]:
        return Check("搜索索引", True, found)
    return Check("搜索索引", False, found + ("" if state["exists"] else "（索引不存在）"),
                 "运行 lms search reindex；若经常不一致，检查后台任务进程（lms worker）是否在运行")


def clock() -> Check:
    """The database's clock against this machine's (PostgreSQL on another machine), and this machine's
    against the newest ledger record: a clock set back (a flat CMOS battery) would date credits wrongly."""
    from lms.records.models import TrainingRecord

    now = datetime.now(timezone.utc)
    db_now = db.session.execute(text("SELECT CURRENT_TIMESTAMP")).scalar()
    if isinstance(db_now, str):  # SQLite: "YYYY-MM-DD HH:MM:SS" in UTC
        db_now = datetime.fromisoformat(db_now)
    if db_now.tzinfo is None:
        db_now = db_now.replace(tzinfo=timezone.utc)
    drift = (now - db_now).total_seconds()
    newest = db.session.query(func.max(TrainingRecord.created_at)).scalar()  # naive UTC
    fix = "开启时间同步：timedatectl set-ntp true（或安装 chrony / systemd-timesyncd），数据库服务器也要同步"
    if abs(drift) > CLOCK_TOLERANCE_SECONDS:
        return Check("时钟", False, f"本机与数据库相差 {drift:+.0f} 秒", fix)
    if newest is not None and (newest.replace(tzinfo=timezone.utc) - now).total_seconds() > CLOCK_TOLERANCE_SECONDS:
        return Check("时钟", False, f"本机时间 {now:%Y-%m-%d %H:%M} UTC 早于最近一条学时记录（{newest:%Y-%m-%d %H:%M} UTC）", fix)
    return Check("时钟", True, f"本机与数据库相差 {drift:+.0f} 秒")


def data_folder() -> Check:
    """LMS_DATA_DIR and the folders the app writes in: a file can be created there, and room is left."""
    root = Path(current_app.config["DATA_DIR"])
    fix = (f"让网站账户（kepu）拥有 {root} 和其中的 media、uploads，权限按 docs/deploy.md “Users and folders”；"
           "或把 LMS_DATA_DIR 指向网站账户可写的文件夹")
    for folder in (root, root / "media", root / "uploads"):
        if folder != root and not folder.exists():
            continue  # made on first use
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-doctor-"):
                pass
        except OSError as exc:
            return Check("数据文件夹", False, f"{folder} 不可写（{exc.strerror or exc}）", fix)
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        return Check("数据文件夹", False, f"{root} 所在磁盘只剩 {free / 1024 ** 2:.0f} MB",
                     "清理磁盘或扩容（转码一个长视频需要几百 MB）")
    return Check("数据文件夹", True, f"{root} 可写，剩余 {free / 1024 ** 3:.1f} GB")


def _reader(web_user: str | None):
    """(uid, group ids) of the web server's user, or None to ask only for group/other read bits."""
    name = web_user or DEFAULT_WEB_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if web_user:
            raise
        return None
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
    return entry.pw_uid, groups


def _allows(st: os.stat_result, reader, bit: int) -> bool:
    """Whether `reader` gets permission `bit` (4 read, 1 search) on a file of status `st`."""
    if reader is None:  # unknown web user: readable by someone other than the owner
        return bool(st.st_mode & (bit << 3) or st.st_mode & bit)
    uid, groups = reader
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in groups:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def media_readable(web_user: str | None = None) -> Check:
    """Behind nginx (LMS_MEDIA_ACCEL_PREFIX), nginx's workers open media files themselves, as their own
    user: every folder from / down must let them through, and every file let them read."""
    name = "媒体文件可被 nginx 读取"
    if not current_app.config.get("MEDIA_ACCEL_PREFIX"):
        return Check(name, True, "未设置 LMS_MEDIA_ACCEL_PREFIX：媒体由应用自己发送，不经过 nginx")
    try:
        reader = _reader(web_user)
    except KeyError:
        return Check(name, False, f"没有名为 {web_user} 的用户", "用 --web-user 指明 nginx 的运行账户（nginx.conf 的 user 一行）")
    who = web_user or (DEFAULT_WEB_USER if reader else "组或其他用户")
    root = Path(current_app.config["DATA_DIR"]).resolve() / "media"
    group = DEFAULT_WEB_USER if web_user is None else (grp.getgrgid(pwd.getpwnam(web_user).pw_gid).gr_name)
    fix = (f"chgrp -R {group} {root} && chmod -R g+rX {root} && find {root} -type d -exec chmod g+s {{}} +；"
           "并在 kepu-web 和 kepu-worker 的 systemd 单元里设 UMask=0027，让以后的文件也对该组可读"
           "（docs/deploy.md “Users and folders”）")
    if not root.is_dir():
        return Check(name, True, f"{root} 还没有文件")
    blocked = [str(p) for p in [*reversed(root.parents), root] if not _allows(p.stat(), reader, 1)]
    if blocked:
        return Check(name, False, f"{who} 无法进入 {blocked[0]}",
                     f"chgrp {group} {blocked[0]} && chmod g+x {blocked[0]}（docs/deploy.md “Users and folders”）")
    bad, seen, started = [], 0, time.monotonic()
    for folder, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = os.path.join(folder, entry)
            if entry.startswith(".tmp-"):
                continue  # being written; never served
            try:
                st = os.lstat(path)
            except FileNotFoundError:  # replaced while we looked
                continue
            if stat.S_ISDIR(st.st_mode):
                if not _allows(st, reader, 1):  # nginx opens files by name: search (x) is enough
                    bad.append(path + "/")
            elif not _allows(st, reader, 4):
                bad.append(path)
            seen += 1
        if seen >= MEDIA_FILES_CHECKED:
            break
    if bad:
        shown = "、".join(bad[:3]) + (f" 等 {len(bad)} 项" if len(bad) > 3 else "")
        return Check(name, False, f"{who} 读不到 {shown}", fix)
    return Check(name, True, f"{who} 能读取 {seen} 个文件和文件夹（{time.monotonic() - started:.1f} 秒）")


def ffmpeg() -> Check:
    if health.ffmpeg_check()["ok"]:
        return Check("ffmpeg", True, f"{shutil.which('ffmpeg')}，{shutil.which('ffprobe')}")
    return Check("ffmpeg", False, "找不到 ffmpeg 或 ffprobe（PATH 中没有）",
                 "apt-get install ffmpeg；若装在别处，把它所在的文件夹加进服务的 PATH")


def workers() -> Check:
    from lms.jobs import queue_state

    state = queue_state()
    name = "后台任务进程"
    if not state["ok"]:
        return Check(name, False, f"任务队列打不开：{state['error']}",
                     "检查 LMS_REDIS_URL 和 Redis 服务（systemctl status redis-server），或 LMS_DATA_DIR/jobs.sqlite3 的权限")
    seen = state["worker_seen_seconds_ago"]
    fix = "systemctl restart kepu-worker（或运行 lms worker），再看 journalctl -u kepu-worker 里的错误"
    if seen is None:
        return Check(name, False, f"从没有 lms worker 运行过（排队任务 {state['pending']} 个）", fix)
    if seen > WORKER_SILENT_SECONDS:
        return Check(name, False, f"最近一次心跳在 {seen} 秒前，进程可能已停止（排队任务 {state['pending']} 个）", fix)
    return Check(name, True, f"{seen} 秒前有心跳，排队任务 {state['pending']} 个")
