"""`lms backup PATH` and `lms restore PATH`: a verified copy of an instance, and putting it back.

A backup folder holds
  manifest.json                  what the copy holds, read back from the copy itself
  lms.sqlite3 | database.dump    the database (SQLite online backup API | pg_dump custom format)
  data/                          LMS_DATA_DIR without what can be rebuilt (see `_is_derived`)

The database is the one the app uses (the engine's URL: Flask-SQLAlchemy resolves a relative
SQLite path against the app's instance folder, not the working directory). It is copied inside one
read snapshot, in which the live table row counts and the ledger checksum are taken too; the copy
is then read back and must give the same figures, or the backup fails and leaves nothing.
Files under LMS_DATA_DIR are immutable once renamed into place (or replaced whole), so copying
them after the database snapshot gives every file the snapshot refers to.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from flask import current_app
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from lms.extensions import db

MANIFEST = "manifest.json"
FORMAT = 2  # layout of the backup folder
DATA_FOLDER = "data"
SQLITE_FILE = "lms.sqlite3"
POSTGRES_FILE = "database.dump"
LEDGER_TABLE = "training_record"
SCHEMA_TABLE = "alembic_version"  # holds the schema revision, not data: an "empty" database has it
# Under LMS_DATA_DIR, rebuilt from the database rather than backed up: the search index
# (`lms search reindex`) and the job queue (a job only names an asset whose status in the database
# says whether work is left, and workers re-enqueue pending work when they start).
DERIVED_NAMES = {"search", "jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "jobs.sqlite3-journal"}
TEMP_PREFIX = ".tmp-"  # files being written (uploads, transcodes): never complete, never needed


class BackupError(RuntimeError):
    pass


# --- what a database holds: row counts and the ledger checksum ---------------------------------

@dataclass
class Figures:
    tables: dict[str, int]
    ledger_columns: list[str]
    ledger_rows: int
    ledger_sha256: str

    def as_manifest(self) -> dict:
        return {"tables": self.tables, "ledger": {"table": LEDGER_TABLE, "columns": self.ledger_columns,
                                                  "rows": self.ledger_rows, "sha256": self.ledger_sha256}}

    @classmethod
    def from_manifest(cls, manifest: dict) -> "Figures":
        ledger = manifest["ledger"]
        return cls(manifest["tables"], ledger["columns"], ledger["rows"], ledger["sha256"])

    def differences(self, actual: "Figures") -> list[str]:
        """What `actual` lacks or has in excess of self (tables only `actual` has are fine when empty)."""
        found = []
        for table, rows in sorted(self.tables.items()):
            if table not in actual.tables:
                found.append(f"缺少数据表 {table}")
            elif actual.tables[table] != rows:
                found.append(f"数据表 {table}：应有 {rows} 行，实有 {actual.tables[table]} 行")
        found += [f"多出数据表 {table}（{rows} 行）" for table, rows in sorted(actual.tables.items())
                  if table not in self.tables and rows]
        if (self.ledger_rows, self.ledger_sha256) != (actual.ledger_rows, actual.ledger_sha256):
            found.append(f"学时记录（{LEDGER_TABLE}）校验和不同：应为 {self.ledger_rows} 条 {self.ledger_sha256[:12]}，"
                         f"实为 {actual.ledger_rows} 条 {actual.ledger_sha256[:12]}")
        return found


def _canonical(python_type):
    """One text form per value whatever the source gave (SQLite's raw values, PostgreSQL's typed
    values, or the text of a dump), so the same ledger gives the same checksum everywhere."""
    if python_type is Decimal:  # few distinct amounts: cached
        return lru_cache(maxsize=4096)(lambda v: format(Decimal(str(v)).normalize(), "f"))
    if python_type is datetime:
        return lambda v: (datetime.fromisoformat(v) if isinstance(v, str) else v).isoformat()
    if python_type is date:
        return lambda v: (date.fromisoformat(v) if isinstance(v, str) else v).isoformat()
    if python_type is int:
        return int
    if python_type is bool:
        return lambda v: v in (True, 1, "t", "true", "1")
    return str


class LedgerChecksum:
    """sha256 over the ledger's rows in id order, each row the repr of its canonical values on a line.
    SQL reads come in id order and are hashed as they come; a dump holds rows in storage order, so
    with ordered=False its lines are kept and sorted first."""

    def __init__(self, columns: list[str], ordered: bool = True):
        from lms.records.models import TrainingRecord

        model_columns = TrainingRecord.__table__.c
        self.columns = list(columns)
        self.converters = [_canonical(model_columns[name].type.python_type) if name in model_columns else str
                           for name in columns]
        self.id_index = self.columns.index("id")
        self.digest = hashlib.sha256()
        self.rows = 0
        self.last_id = None
        self.unordered: list[tuple[int, bytes]] | None = None if ordered else []

    def add(self, values) -> None:
        canonical = tuple(None if v is None else convert(v) for convert, v in zip(self.converters, values))
        line = repr(canonical).encode() + b"\n"
        row_id = canonical[self.id_index]
        self.rows += 1
        if self.unordered is not None:
            self.unordered.append((row_id, line))
            return
        if self.last_id is not None and row_id <= self.last_id:
            raise BackupError(f"学时记录编号不是递增的（{self.last_id} 之后是 {row_id}）")
        self.last_id = row_id
        self.digest.update(line)

    def figures(self, tables: dict[str, int]) -> Figures:
        for _, line in sorted(self.unordered or ()):
            self.digest.update(line)
        return Figures(tables, self.columns, self.rows, self.digest.hexdigest())


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _live_figures(conn) -> Figures:
    """Row counts and ledger checksum of the database behind SQLAlchemy connection `conn`."""
    inspector = inspect(conn)
    names = sorted(inspector.get_table_names())
    if LEDGER_TABLE not in names:
        raise BackupError(f"数据库 {_shown_url()} 里没有学时记录表 {LEDGER_TABLE}（有 {len(names)} 张表）："
                          "LMS_DATABASE_URL 指的是正在使用的数据库吗？是否还没运行 lms db upgrade？")
    tables = {name: conn.exec_driver_sql(f"SELECT count(*) FROM {_quoted(name)}").scalar() for name in names}
    columns = [column["name"] for column in inspector.get_columns(LEDGER_TABLE)]
    checksum = LedgerChecksum(columns)
    rows = conn.exec_driver_sql(f"SELECT {', '.join(map(_quoted, columns))} FROM {LEDGER_TABLE} ORDER BY id")
    for row in rows:
        checksum.add(row)
    return checksum.figures(tables)


def _schema_revisions(conn) -> list[str]:
    if SCHEMA_TABLE not in inspect(conn).get_table_names():
        return []
    return sorted(row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {SCHEMA_TABLE}"))


# --- SQLite -------------------------------------------------------------------------------------

def _sqlite_path(url) -> Path:
    """The file behind the engine's (already resolved) SQLite URL; it must exist, or a connection
    would quietly create an empty database and the backup would copy nothing."""
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        raise BackupError("内存数据库无法备份：请在 LMS_DATABASE_URL 里指定数据库文件")
    path = Path(url.database.removeprefix("file:")).resolve()
    if not path.is_file():
        raise BackupError(f"数据库文件不存在：{path}（LMS_DATABASE_URL 指的是正在使用的数据库吗？）")
    return path


def _backup_sqlite(engine, target: Path) -> tuple[Figures, list[str]]:
    """Copy with SQLite's online backup API inside the same read transaction that takes the live
    figures, so both describe one moment while the site keeps writing."""
    _sqlite_path(engine.url)
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN")  # pysqlite begins lazily; the snapshot must start here
        live = _live_figures(conn)
        revisions = _schema_revisions(conn)
        copy = sqlite3.connect(target)
        try:
            conn.connection.driver_connection.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
        conn.rollback()
    return live, revisions


def _open_sqlite_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _read_sqlite_copy(path: Path, columns: list[str]) -> Figures:
    try:
        copy = _open_sqlite_readonly(path)
        try:
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"数据库副本 {path} 已损坏：{check}")
            names = sorted(row[0] for row in copy.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"))
            tables = {name: copy.execute(f"SELECT count(*) FROM {_quoted(name)}").fetchone()[0] for name in names}
            checksum = LedgerChecksum(columns)
            for row in copy.execute(f"SELECT {', '.join(map(_quoted, columns))} FROM {LEDGER_TABLE} ORDER BY id"):
                checksum.add(row)
        finally:
            copy.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"无法读取数据库副本 {path}：{exc}") from None
    return checksum.figures(tables)


def _restore_sqlite(engine, path: Path) -> None:
    """Copy the backup into the database the app uses, through its own engine (same file, same
    resolution of a relative URL)."""
    copy = _open_sqlite_readonly(path)
    try:
        with engine.connect() as conn:
            copy.backup(conn.connection.driver_connection)
    finally:
        copy.close()
    engine.dispose()


# --- PostgreSQL ---------------------------------------------------------------------------------

def _client_major(tool: str) -> int:
    if not shutil.which(tool):
        raise BackupError(f"找不到 {tool}：请安装 postgresql-client（与服务器同一主版本或更新）")
    output = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    if not match:
        raise BackupError(f"无法识别 {tool} 的版本：{output.strip()}")
    return int(match.group(1))


def _libpq(url) -> tuple[str, dict]:
    """A libpq connection URL for the PostgreSQL tools, the password passed in the environment."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run_tool(command: list[str], env: dict, what: str) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what}失败：{result.stderr.strip()[-500:]}")


def _backup_postgresql(engine, target: Path) -> tuple[Figures, list[str], int]:
    """pg_dump of the snapshot the live figures are read in (pg_export_snapshot + --snapshot)."""
    client = _client_major("pg_dump")
    connection_url, env = _libpq(engine.url)
    with engine.connect() as conn:
        server = conn.dialect.server_version_info[0]
        if server > client:
            raise BackupError(f"PostgreSQL 服务器是 {server} 版，本机 pg_dump 是 {client} 版，"
                              f"旧版 pg_dump 不能备份新版服务器：请安装 postgresql-client-{server}")
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            live = _live_figures(conn)
            revisions = _schema_revisions(conn)
            _run_tool(["pg_dump", "--format=custom", "--no-password", f"--snapshot={snapshot}",
                       f"--file={target}", f"--dbname={connection_url}"], env, "pg_dump ")
    return live, revisions, client


COPY_LINE = re.compile(r'^COPY (?:("(?:[^"]|"")+"|[^\s."]+)\.)?("(?:[^"]|"")+"|[^\s("]+) \((.*)\) FROM stdin;$')
COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _copy_field(text: str):
    """One field of COPY's text format (what pg_dump writes)."""
    if text == r"\N":
        return None
    if "\\" not in text:
        return text
    return re.sub(r"\\(.)", lambda m: COPY_ESCAPES.get(m.group(1), m.group(1)), text)


def _read_postgresql_copy(path: Path, columns: list[str]) -> Figures:
    """Read the dump's data back without a server: pg_restore writes its COPY blocks as text."""
    _client_major("pg_restore")
    errors = tempfile.TemporaryFile()  # not a pipe: a full one would stall pg_restore while we read stdout
    process = subprocess.Popen(["pg_restore", "--data-only", "--file=-", str(path)], stdout=subprocess.PIPE,
                               stderr=errors, text=True, encoding="utf-8")
    tables: dict[str, int] = {}
    checksum = LedgerChecksum(columns, ordered=False)
    table = picks = None
    for line in process.stdout:
        line = line.rstrip("\n")
        if table is None:
            match = COPY_LINE.match(line)
            if match:
                table = _unquote(match.group(2))  # the app keeps its tables in one schema
                tables[table] = 0
                names = [_unquote(name.strip()) for name in match.group(3).split(",")]
                picks = [names.index(c) for c in columns] if table == LEDGER_TABLE else None
        elif line == "\\.":
            table = None
        else:
            tables[table] += 1
            if picks is not None:
                fields = line.split("\t")
                checksum.add([_copy_field(fields[i]) for i in picks])
    if process.wait() != 0:
        errors.seek(0)
        raise BackupError(f"无法读取数据库副本 {path}：{errors.read().decode(errors='replace').strip()[-500:]}")
    errors.close()
    return checksum.figures(tables)


def _restore_postgresql(engine, path: Path, dumped_by: int) -> None:
    client = _client_major("pg_restore")
    if dumped_by > client:
        raise BackupError(f"备份由 {dumped_by} 版 pg_dump 写成，本机 pg_restore 是 {client} 版：请安装 "
                          f"postgresql-client-{dumped_by}")
    connection_url, env = _libpq(engine.url)
    # The target's tables, if any, were checked empty: --clean replaces them; one transaction, so a
    # failure leaves the target as it was.
    _run_tool(["pg_restore", "--no-owner", "--no-privileges", "--single-transaction", "--clean", "--if-exists",
               "--no-password", f"--dbname={connection_url}", str(path)], env, "pg_restore ")
    engine.dispose()


# --- files under LMS_DATA_DIR -------------------------------------------------------------------

@dataclass
class DataFiles:
    root: Path
    files: list[tuple[str, int]] = field(default_factory=list)  # (path relative to root, size)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def _is_derived(relative: Path, skip: set[Path]) -> bool:
    return (relative.parts[0] in DERIVED_NAMES or any(part.startswith(TEMP_PREFIX) for part in relative.parts)
            or relative in skip)


def data_files(root: Path, skip: set[Path] = frozenset()) -> DataFiles:
    """Regular files under `root` that a backup holds, in a stable order (symlinks are not followed)."""
    found = DataFiles(root)
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _is_derived((base / d).relative_to(root), skip))
        for name in sorted(names):
            relative = (base / name).relative_to(root)
            info = (base / name).lstat()
            if stat.S_ISREG(info.st_mode) and not _is_derived(relative, skip):
                found.files.append((relative.as_posix(), info.st_size))
    return found


def _instance_data_files() -> DataFiles:
    """LMS_DATA_DIR's files, without a database or search index configured to live inside it."""
    root = Path(current_app.config["DATA_DIR"]).resolve()
    skip = set()
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database.removeprefix("file:")).resolve()
        skip |= {Path(str(database) + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
    if current_app.config.get("SEARCH_DIR"):
        skip.add(Path(current_app.config["SEARCH_DIR"]).resolve())
    return data_files(root, {p.relative_to(root) for p in skip if root in p.parents})


def _copy_files(source: DataFiles, dest_root: Path, link: bool, progress) -> DataFiles:
    """Copy (or hard-link) each file, then check every size; a file gone meanwhile is left out."""
    copied = DataFiles(dest_root)
    done = 0
    for relative, size in source.files:
        src, dst = source.root / relative, dest_root / relative
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            if link:
                try:
                    os.link(src, dst)
                except OSError:  # another file system: a copy instead
                    shutil.copy2(src, dst)
            else:
                shutil.copy2(src, dst)
        except FileNotFoundError:
            continue
        written = dst.stat().st_size
        if written != size:
            raise BackupError(f"复制 {relative} 不完整：应为 {size} 字节，写入 {written} 字节")
        copied.files.append((relative, written))
        done += written
        if progress:
            progress(done, source.total_bytes)
    return copied


# --- the commands -------------------------------------------------------------------------------

def backup(target: Path, link: bool = False, progress=None) -> dict:
    """Back up the running instance into `target` (new or empty). Raises BackupError, leaving nothing."""
    target = Path(target).resolve()
    data_root = Path(current_app.config["DATA_DIR"]).resolve()
    if target == data_root or data_root in target.parents:
        raise BackupError(f"备份文件夹不能放在数据文件夹 {data_root} 里面")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"目标文件夹不是空的：{target}")
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        with _database_errors():
            return _write_backup(target, data_root, link, progress)
    except BaseException:
        for child in target.iterdir():  # it was empty: whatever is there now is ours
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if created:
            target.rmdir()
        raise


@contextmanager
def _database_errors():
    """A database that cannot be opened or read is the operator's to fix: say which and why."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"无法读取数据库 {_shown_url()}：{exc}") from None
    except DBAPIError as exc:
        raise BackupError(f"无法读取数据库 {_shown_url()}：{str(exc.orig).strip()}") from None


def _shown_url() -> str:
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def _write_backup(target: Path, data_root: Path, link: bool, progress) -> dict:
    engine = db.engine
    dialect = engine.url.get_backend_name()
    manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "dialect": dialect}
    if dialect == "sqlite":
        database = target / SQLITE_FILE
        live, revisions = _backup_sqlite(engine, database)
        copy = _read_sqlite_copy(database, live.ledger_columns)
    elif dialect == "postgresql":
        database = target / POSTGRES_FILE
        live, revisions, manifest["pg_dump_version"] = _backup_postgresql(engine, database)
        copy = _read_postgresql_copy(database, live.ledger_columns)
    else:
        raise BackupError(f"不支持的数据库：{dialect}")
    problems = live.differences(copy)
    if problems:
        raise BackupError("备份校验失败，副本与数据库不一致：" + "；".join(problems))
    files = _copy_files(_instance_data_files(), target / DATA_FOLDER, link, progress)
    manifest.update(database=database.name, schema_revisions=revisions, **copy.as_manifest(),
                    training_records=copy.ledger_rows, data_dir=str(data_root), data_files=len(files.files),
                    data_bytes=files.total_bytes, linked=link)
    (target / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def read_manifest(source: Path) -> dict:
    path = Path(source) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} 不是一份完整的备份：没有 {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BackupError(f"{path} 无法读取：{exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}：不认识的备份格式 {manifest.get('format')}（本程序读格式 {FORMAT}）")
    return manifest


def _refuse_unless_empty(engine, data: DataFiles) -> None:
    """Restore never overwrites: the target database holds no rows and the data folder no files."""
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        filled = {name: rows for name in names if name != SCHEMA_TABLE
                  and (rows := conn.exec_driver_sql(f"SELECT count(*) FROM {_quoted(name)}").scalar())}
    if filled:
        listed = "、".join(f"{name} {rows} 行" for name, rows in sorted(filled.items())[:5])
        raise BackupError(f"目标数据库已有数据（{listed}）：lms restore 只恢复到空的数据库。"
                          "请新建一个空数据库（LMS_DATABASE_URL），或确认不再需要后删除现有数据库")
    if data.files:
        raise BackupError(f"数据文件夹 {data.root} 不是空的（{len(data.files)} 个文件，如 {data.files[0][0]}）："
                          "lms restore 只恢复到空的数据文件夹。请换一个 LMS_DATA_DIR，或确认不再需要后清空它")


def restore(source: Path, progress=None) -> dict:
    """Restore the backup in `source` into this instance's (empty) database and data folder,
    then check the restored database against the manifest. Returns what it found and did."""
    with _database_errors():
        return _restore(Path(source).resolve(), progress)


def _restore(source: Path, progress) -> dict:
    manifest = read_manifest(source)
    engine = db.engine
    dialect = engine.url.get_backend_name()
    if dialect != manifest["dialect"]:
        raise BackupError(f"备份来自 {manifest['dialect']} 数据库，而 LMS_DATABASE_URL 是 {dialect}：请用同一种数据库恢复")
    expected = Figures.from_manifest(manifest)
    database = source / manifest["database"]
    # the backup first: a damaged one is refused before anything is touched
    read_copy = _read_sqlite_copy if dialect == "sqlite" else _read_postgresql_copy
    problems = expected.differences(read_copy(database, expected.ledger_columns))
    backed_up = data_files(source / DATA_FOLDER)
    if (len(backed_up.files), backed_up.total_bytes) != (manifest["data_files"], manifest["data_bytes"]):
        problems.append(f"数据文件应有 {manifest['data_files']} 个 {manifest['data_bytes']} 字节，"
                        f"实有 {len(backed_up.files)} 个 {backed_up.total_bytes} 字节")
    if problems:
        raise BackupError(f"备份 {source} 已损坏：" + "；".join(problems))
    _refuse_unless_empty(engine, _instance_data_files())

    if dialect == "sqlite":
        _restore_sqlite(engine, database)
    else:
        _restore_postgresql(engine, database, manifest.get("pg_dump_version", 0))
    data_root = Path(current_app.config["DATA_DIR"]).resolve()
    restored = _copy_files(backed_up, data_root, link=False, progress=progress)
    if len(restored.files) != len(backed_up.files):
        raise BackupError(f"数据文件只恢复了 {len(restored.files)} / {len(backed_up.files)} 个")
    moved = _repoint_upload_sources(Path(manifest["data_dir"]), data_root)
    with engine.connect() as conn:
        problems = expected.differences(_live_figures(conn))
        revisions = _schema_revisions(conn)
        pending = conn.exec_driver_sql(
            "SELECT count(*) FROM video_asset WHERE status IN ('pending', 'processing')").scalar()
    if problems:
        raise BackupError("恢复后的数据库与备份不一致：" + "；".join(problems))
    return {"manifest": manifest, "data_files": len(restored.files), "repointed_sources": moved,
            "pending_videos": pending, "schema_current": set(revisions) == set(_code_heads())}


def _repoint_upload_sources(old_root: Path, new_root: Path) -> int:
    """Videos waiting to be transcoded name their upload by absolute path under the old data
    folder: point them at the restored copy. Not the ledger; the figures do not change."""
    if old_root == new_root:
        return 0
    from sqlalchemy import column, table, update

    assets = table("video_asset", column("id"), column("source_path"))
    moved = 0
    with db.engine.begin() as conn:
        for asset_id, path in conn.execute(assets.select().where(assets.c.source_path.is_not(None))):
            if old_root in Path(path).parents:
                new_path = str(new_root / Path(path).relative_to(old_root))
                conn.execute(update(assets).where(assets.c.id == asset_id).values(source_path=new_path))
                moved += 1
    return moved


def _code_heads() -> list[str]:
    from alembic.script import ScriptDirectory

    from lms import MIGRATIONS_DIR

    return ScriptDirectory(MIGRATIONS_DIR).get_heads()
