"""The `lms` console script: a Flask CLI group bound to the app (so `lms run`, `lms db upgrade` work)."""
from __future__ import annotations

import contextlib
import secrets
import sys

from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from tqdm import tqdm

from lms.audiences import AUDIENCE_CODES


def _create_app():
    from lms import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main():
    """科普学堂 command line."""


def register_commands(app):
    app.cli.add_command(import_content)
    app.cli.add_command(export_content)
    app.cli.add_command(users)
    app.cli.add_command(units)
    app.cli.add_command(hours)
    app.cli.add_command(demo)
    app.cli.add_command(media)
    app.cli.add_command(worker)
    app.cli.add_command(backup)
    app.cli.add_command(restore)
    app.cli.add_command(search)
    app.cli.add_command(records)
    app.cli.add_command(courses)
    app.cli.add_command(doctor)


@click.command("import-content")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--rename", is_flag=True,
              help="a package whose slug (or folder name) changed renames its course instead of being refused")
@with_appcontext
def import_content(path: Path, rename: bool = False):
    """Import or update course packages under PATH (one package, or a folder of packages)."""
    from lms.assessment.pool import pool_folders
    from lms.courses.importer import ContentError, duplicate_package_ids, import_package, package_folders
    from lms.extensions import db

    folders = package_folders(path)
    pools = pool_folders(path)  # 科学素质自测 item pools (folders with assessment.yaml; lms/assessment/pool.py)
    if not folders and not pools:
        raise click.ClickException(f"{path} 下没有找到 course.yaml")
    failures = duplicate_package_ids(folders)
    with tqdm(folders, desc="导入课程", unit="门", file=sys.stderr, disable=None) as bar:
        for folder in bar:
            bar.set_postfix_str(folder.name)
            # Package by package: one that fails, for whatever reason, leaves the others to be imported.
            try:
                if folder not in failures:
                    course, outcome = import_package(folder, rename=rename)
            except ContentError as exc:
                failures[folder] = str(exc)
            except Exception as exc:  # noqa: BLE001 — reported with its package below, then exit non-zero
                db.session.rollback()
                first_line = (str(exc).splitlines() or [""])[0]
                failures[folder] = f"内部错误（{type(exc).__name__}）：{first_line}"
            if folder in failures:
                tqdm.write(f"错误 {failures[folder]}", file=sys.stderr)
                continue
            tqdm.write(f"{ {'created': '新建', 'updated': '更新', 'unchanged': '未变'}[outcome]} {course.slug}（{course.title}）")
            if outcome != "unchanged":  # an operator command: index now, under the index lock
                _reindex_courses([course.id])
    _import_pools(pools, failures)
    if failures:
        for folder, reason in failures.items():
            click.echo(f"未导入 {folder.name}：{reason}", err=True)
        rest = "其余已导入" if len(failures) < len(folders) + len(pools) else "没有导入任何课程包"
        raise click.ClickException(f"{len(failures)} 个课程包未导入（{rest}）：{'、'.join(f.name for f in failures)}")


def _import_pools(pools: list[Path], failures: dict) -> None:
    """Import each 科学素质自测 item pool, as atomically as a course package; a failure joins `failures`."""
    from lms.assessment.pool import import_pool
    from lms.courses.importer import ContentError
    from lms.extensions import db

    for folder in pools:
        try:
            pool, outcome, counts = import_pool(folder)
        except ContentError as exc:
            failures[folder] = str(exc)
        except Exception as exc:  # noqa: BLE001 — reported with its package, then exit non-zero
            db.session.rollback()
            failures[folder] = f"内部错误（{type(exc).__name__}）：{(str(exc).splitlines() or [''])[0]}"
        if folder in failures:
            click.echo(f"错误 {failures[folder]}", err=True)
            continue
        label = {"created": "新建", "updated": "更新", "unchanged": "未变"}[outcome]
        click.echo(f"{label} 自测题库 {folder.name}（{pool.title}）：新增 {counts['added']} 题，"
                   f"修改 {counts['changed']} 题，停用 {counts['retired']} 题")


@click.command("export-content")
@click.argument("slug")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def export_content(slug: str, directory: Path):
    """Write course SLUG as a package DIRECTORY/<slug>/ that `lms import-content` reads back to the same course."""
    from lms.courses.exporter import ExportError, export_course
    from lms.courses.models import Course

    course = Course.query.filter_by(slug=slug).first()
    if course is None:
        raise click.ClickException(f"没有课程“{slug}”")
    with tqdm(total=len(course.active_lessons), desc="导出课时", unit="节", file=sys.stderr, disable=None) as bar:
        try:
            result = export_course(course, directory, on_lesson=lambda: bar.update(1))
        except ExportError as exc:
            raise click.ClickException(str(exc)) from None
    for note in result.notes:
        click.echo(f"注意：{note}", err=True)
    click.echo(f"已导出 {course.slug}（{course.title}）到 {result.folder}：{len(result.files)} 个文件")


@click.group()
def users():
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["learner", "instructor", "unit_admin", "admin"]), default="learner")
@click.option("--audience", type=click.Choice(AUDIENCE_CODES), required=True)
@click.option("--unit", "unit_code", required=True, help="单位编码")
@click.option("--name", "full_name", help="姓名（默认同账号）")
@click.option("--password", help="密码；不给则生成并打印")
@with_appcontext
def users_create(username, role, audience, unit_code, full_name, password):
    from lms.accounts.services import AccountError, create_user
    from lms.extensions import db

    generated = password is None
    password = password or secrets.token_urlsafe(9)
    try:
        create_user(username, full_name or username, password, role, audience, unit_code)
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"已创建 {username}" + (f"，初始密码：{password}" if generated else ""))


@users.command("unlock")
@click.argument("username")
@click.option("--address", help="也解除这个客户端地址（跨账号）的登录限速")
@with_appcontext
def users_unlock(username, address):
    """Lift the sign-in waits on an account after failed passwords (any address)."""
    from lms.accounts.services import unlock_account

    lifted = unlock_account(username, address)
    click.echo(f"已解除 {username} 的登录限速（{lifted} 条）" if lifted else f"{username} 没有登录限速")


@users.command("reset-password")
@click.argument("username")
@click.option("--password", help="新密码；不给则生成并打印")
@with_appcontext
def users_reset_password(username, password):
    """Set a new password: the user's sessions everywhere end, and their sign-in waits are lifted."""
    from lms.accounts.models import User
    from lms.accounts.services import AccountError, change_password

    user = User.query.filter_by(username=username).first()
    if user is None:
        raise click.ClickException(f"账号不存在：{username}")
    generated = password is None
    password = password or secrets.token_urlsafe(9)
    try:
        change_password(user, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已重设 {username} 的密码" + (f"：{password}" if generated else "") + "，其所有登录已失效")


@users.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="只检查，不导入")
@click.option("--passwords", "passwords_out", type=click.Path(dir_okay=False, path_type=Path),
              help="把生成的初始密码写入这个 CSV 文件（不写则打印）")
@with_appcontext
def users_import(file, dry_run, passwords_out):
    """Bulk users from CSV (UTF-8/BOM/GBK) or XLSX: 账号, 姓名, 人群, 单位编码[, 角色, 密码]. All or nothing."""
    from lms.accounts.bulk import ImportFileError, import_users

    try:
        report = import_users(file, dry_run=dry_run)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    _refuse_bad_rows(report.problems, "用户")
    if dry_run:
        click.echo(f"检查通过：{len(report.rows)} 个用户可以导入（未导入，去掉 --dry-run 即导入）")
        return
    generated = [(u, p) for u, p in report.created if p]
    if passwords_out:
        with open(passwords_out, "w", encoding="utf-8-sig", newline="") as fh:
            fh.write("账号,初始密码\r\n" + "".join(f"{u},{p}\r\n" for u, p in generated))
    else:
        for username, password in generated:
            click.echo(f"{username}\t{password}")
    click.echo(f"已导入 {len(report.created)} 个用户")


def _refuse_bad_rows(problems, what: str) -> None:
    """An all-or-nothing import with bad rows: name each one, and exit non-zero."""
    if problems:
        for problem in problems:
            click.echo(f"错误 {problem}", err=True)
        raise click.ClickException(f"{len(problems)} 处错误，没有导入任何{what}")


@click.group()
def units():
    """The unit tree (单位)."""


@units.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="只检查，不导入")
@with_appcontext
def units_import(file, dry_run):
    """A unit tree from CSV (UTF-8/BOM/GBK) or XLSX: 单位编码, 单位名称, 上级编码, 类型. All or nothing;
    units already there exactly as the file says are skipped."""
    from lms.accounts.bulk import ImportFileError
    from lms.accounts.units import import_units

    try:
        report = import_units(file, dry_run=dry_run)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    _refuse_bad_rows(report.problems, "单位")
    skipped = f"（{len(report.unchanged)} 个已存在且相同，跳过）" if report.unchanged else ""
    if dry_run:
        click.echo(f"检查通过：{len(report.new)} 个单位可以导入{skipped}（未导入，去掉 --dry-run 即导入）")
        return
    click.echo(f"已导入 {report.created} 个单位{skipped}")


@click.group()
def hours():
    """Training-hour (学时) records."""


@hours.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]))
@click.option("--unit", "unit_code", help="单位编码（含下级单位）")
@click.option("--audience", type=click.Choice(AUDIENCE_CODES))
@click.option("--summary", is_flag=True, help="每人一行：学时合计、年度目标、是否达标")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", help="表头语言")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def hours_export(fmt, date_from, date_to, unit_code, audience, summary, lang, output):
    """Export training-hour records (DESIGN.md columns)."""
    from lms.accounts.models import Unit
    from lms.records import export_sql
    from lms.records.xlsx import MAX_ROWS

    unit = None
    if unit_code:
        unit = Unit.query.filter_by(code=unit_code).first()
        if unit is None:
            raise click.ClickException(f"单位编码不存在：{unit_code}")
    filters = export_sql.Filters(date_from and date_from.date(), date_to and date_to.date(), unit, audience)
    total = export_sql.count(summary, filters)
    if fmt == "xlsx" and total >= MAX_ROWS:
        raise click.ClickException(f"共 {total} 行，超过 Excel 一张工作表的上限（{MAX_ROWS - 1} 行），请改用 CSV 或缩小范围")
    with tqdm(total=total, desc="导出记录", unit="人" if summary else "条", file=sys.stderr, disable=None) as bar:
        if fmt == "xlsx":
            export_sql.write_xlsx(str(output), summary, filters, lang, bar.update)
        else:
            with open(output, "wb") as fh:
                export_sql.write_csv(fh, summary, filters, lang, bar.update)
    click.echo(f"已导出 {total} 人的学时汇总到 {output}" if summary else f"已导出 {total} 条记录到 {output}")


@click.group()
def records():
    """The training-hour ledger."""


@records.command("settle")
@click.option("--dry-run", is_flag=True, help="只列出应记入的学时，不写入")
@with_appcontext
def records_settle(dry_run):
    """Credit every completion that is due and not yet in the ledger (safe to run again)."""
    from lms.accounts.models import User
    from lms.courses.completion import settle_candidates, settle_completion
    from lms.extensions import db
    from lms.templating import format_hours

    credited, hours = 0, 0
    for user_id, course_id in tqdm(settle_candidates(), desc="核对完成情况", unit="人次", file=sys.stderr,
                                   disable=None):
        for record in settle_completion(user_id, course_id, dry_run=dry_run).credited:
            user = db.session.get(User, user_id)
            credited, hours = credited + 1, hours + record.hours
            tqdm.write(f"{'应记入' if dry_run else '已记入'} {user.username}（{user.full_name}）"
                       f"{record.title} {format_hours(record.hours)} 学时")
    verb = "应记入" if dry_run else "已记入"
    click.echo(f"{verb} {credited} 条，共 {format_hours(hours)} 学时" + ("（试运行，未写入）" if dry_run else ""))


@click.group()
def courses():
    """课程管理。"""


@courses.command("authors")
@click.argument("slug")
@click.option("--add", "added", multiple=True, metavar="USERNAME", help="加为作者（教师账号，可重复）")
@click.option("--remove", "removed", multiple=True, metavar="USERNAME", help="取消作者（可重复）")
@with_appcontext
def courses_authors(slug, added, removed):
    """List, add or remove the authors of course SLUG: instructors who may replace its videos."""
    from lms.courses import authors
    from lms.courses.models import Course

    try:
        for username in added:
            done = authors.add_author(slug, username)
            click.echo(f"{'已加为作者' if done else '本来就是作者'}：{username}")
        for username in removed:
            done = authors.remove_author(slug, username)
            click.echo(f"{'已取消作者' if done else '本来就不是作者'}：{username}")
    except authors.AuthorshipError as exc:
        raise click.ClickException(str(exc)) from None
    course = Course.query.filter_by(slug=slug).first()
    if course is None:
        raise click.ClickException(f"没有课程“{slug}”")
    click.echo(f"{slug} 的作者：{'、'.join(authors.author_names(course)) or '（无，仅管理员可管理）'}")


@click.group()
def media():
    """Videos: transcoding and state."""


@media.command("process")
@click.option("--retry-failed", is_flag=True, help="也重新处理失败的视频")
@with_appcontext
def media_process(retry_failed):
    """Transcode pending videos now, in this process, with a progress bar."""
    from lms.courses.videos import course_id_of
    from lms.extensions import db
    from lms.media.models import VideoAsset
    from lms.media.services import pending_asset_ids, run_asset

    if retry_failed:
        for asset in VideoAsset.query.filter_by(status="failed"):
            asset.status, asset.error = "pending", None
        db.session.commit()
    ids = pending_asset_ids()
    if not ids:
        click.echo("没有等待处理的视频")
        return
    failed = 0
    for asset_id in ids:
        asset = db.session.get(VideoAsset, asset_id)
        label = asset.original_name or f"#{asset_id}"
        with tqdm(total=100, desc=label[:30], unit="%", file=sys.stderr, disable=None) as bar:
            def advance(percent, bar=bar):
                bar.update(percent - bar.n)

            done = run_asset(asset_id, on_progress=advance)
            if done is not None and done.status == "ready":
                bar.update(100 - bar.n)
        if done is None:
            tqdm.write(f"跳过 {label}：另一个进程正在处理")
        elif done.status == "failed":
            failed += 1
            tqdm.write(f"失败 {label}：{done.error}")
        else:
            tqdm.write(f"完成 {label}：{', '.join(sorted(done.renditions))}，{done.duration:.0f} 秒")
            course_id = course_id_of(done)
            if course_id:  # an upload went into its lesson: an operator command indexes now
                _reindex_courses([course_id])
    if failed:
        raise click.ClickException(f"{failed} 个视频处理失败")


@click.command("worker")
@click.option("--workers", default=1, show_default=True, help="并行的任务线程数（转码很耗 CPU，一般 1 个即可）")
@with_appcontext
def worker(workers):
    """Run the background job consumer (transcoding, search index updates)."""
    from lms.jobs import run_worker

    click.echo(f"后台任务进程已启动（{workers} 个线程）")
    run_worker(workers)


@click.command("doctor")
@click.option("--web-user", help="nginx 的运行账户（默认 www-data）：检查它能否读取媒体文件")
@with_appcontext
def doctor(web_user):
    """Check this deployment (database, migrations, folders, ffmpeg, search, workers, clock); exit 1 on a problem."""
    from lms.doctor import run_doctor

    raise SystemExit(run_doctor(web_user, echo=click.echo))


def _reindex_courses(course_ids):
    """Keep the search index in step with an import; a search failure never fails the import."""
    from lms.search.index import update_courses

    try:
        update_courses(course_ids)
    except Exception as exc:  # noqa: BLE001 — reported; `lms search reindex` repairs it
        tqdm.write(f"搜索索引未更新（{exc}），请运行 lms search reindex", file=sys.stderr)


@click.group()
def search():
    """Search index."""


@search.command("reindex")
@with_appcontext
def search_reindex():
    """Rebuild the search index from the database (searches keep working meanwhile)."""
    from lms.search.index import IndexBusy, current_index_dir, rebuild

    with tqdm(total=0, desc="重建搜索索引", unit="门", file=sys.stderr, disable=None) as bar:
        def on_total(total):
            bar.total = total
            bar.refresh()

        def advance(course):
            bar.set_postfix_str(course.slug)
            bar.update(1)

        try:
            documents = rebuild(progress=advance, on_total=on_total)
        except IndexBusy as exc:
            raise click.ClickException(f"搜索索引正被另一个进程写入：{exc}") from None
    click.echo(f"搜索索引已重建：{documents} 条（{current_index_dir()}）")


@click.command("backup")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--link", is_flag=True,
              help="hard-link data files instead of copying them (same disk only: saves space, "
                   "but a disk failure takes the backup with the originals)")
@with_appcontext
def backup(path, link):
    """A verified copy of the database and LMS_DATA_DIR into PATH (an empty or new folder)."""
    from lms.backup import BackupError, backup as run_backup

    with _bytes_bar("备份数据文件") as advance:
        try:
            manifest = run_backup(path, link=link, progress=advance)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"已备份到 {path}：数据库 {manifest['database']}（{len(manifest['tables'])} 张表，"
               f"学时记录 {manifest['training_records']} 条，校验和 {manifest['ledger']['sha256'][:12]}，"
               f"已从副本读回核对一致），数据文件 {manifest['data_files']} 个"
               f"（{manifest['data_bytes'] / 1e6:.1f} MB，{'硬链接' if link else '复制'}）")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@with_appcontext
def restore(path):
    """Restore the backup in PATH into an empty database and an empty LMS_DATA_DIR, and verify it."""
    from lms.backup import BackupError, restore as run_restore

    with _bytes_bar("恢复数据文件") as advance:
        try:
            outcome = run_restore(path, progress=advance)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
    manifest = outcome["manifest"]
    click.echo(f"已从 {path} 恢复（备份于 {manifest['created_at']}）：学时记录 {manifest['training_records']} 条，"
               f"校验和 {manifest['ledger']['sha256'][:12]} 与备份一致；数据文件 {outcome['data_files']} 个")
    if not outcome["schema_current"]:
        click.echo("数据库结构来自旧版本：先运行 lms db upgrade heads")
    if outcome["pending_videos"]:
        click.echo(f"有 {outcome['pending_videos']} 个视频待转码：运行 lms media process，或启动 lms worker")
    click.echo("搜索索引不在备份里：运行 lms search reindex 重建")


@contextlib.contextmanager
def _bytes_bar(description: str):
    """A progress bar in bytes; yields advance(done, total)."""
    with tqdm(desc=description, unit="B", unit_scale=True, file=sys.stderr, disable=None) as bar:
        def advance(done, total):
            bar.total = total
            bar.update(done - bar.n)

        yield advance


def _create_demo_accounts() -> list[str]:
    """The demo admin, a teacher with a tablet class of three seniors (with PINs), and a cadre."""
    from lms.accounts.services import create_user
    from lms.classroom.services import set_pin

    lines = []
    admin_password = secrets.token_urlsafe(9)
    create_user("admin", "系统管理员", admin_password, "admin", "cadre", "dianjiang")
    lines.append(f"演示管理员：admin  密码：{admin_password}")
    teacher_password = secrets.token_urlsafe(9)
    create_user("teacher", "刘老师", teacher_password, "instructor", "elder", "guixi-elder-college")
    lines.append(f"演示教师（平板班级登录）：teacher  密码：{teacher_password}")
    for username, name in (("elder1", "张秀英"), ("elder2", "王建国"), ("elder3", "李桂兰")):
        learner = create_user(username, name, secrets.token_urlsafe(9), "learner", "elder", "smartphone-class-1")
        pin = f"{secrets.randbelow(10000):04d}"
        set_pin(learner, pin)
        lines.append(f"演示学员（智能手机班）：{name}  PIN：{pin}")
    cadre_password = secrets.token_urlsafe(9)
    create_user("cadre1", "陈干部", cadre_password, "learner", "cadre", "county-gov")
    lines.append(f"演示干部学员：cadre1  密码：{cadre_password}")
    return lines


@click.command("demo-setup")
@click.option("--content", type=click.Path(exists=True, file_okay=False, path_type=Path), default="content")
@with_appcontext
def demo(content: Path):
    """Create the demo unit tree and admin (printing its password), then import the demo content."""
    from lms.accounts.models import User
    from lms.accounts.services import get_or_create_unit
    from lms.extensions import db

    county = get_or_create_unit("dianjiang", "垫江县", "county")
    town = get_or_create_unit("guixi", "桂溪街道", "township", county)
    college = get_or_create_unit("guixi-elder-college", "桂溪社区老年学校", "school", town)
    get_or_create_unit("smartphone-class-1", "智能手机班（一）", "class", college)
    get_or_create_unit("county-gov", "县级机关", "department", county)
    accounts_file = Path(current_app.config["INSTANCE_DIR"]) / "demo-accounts.txt"
    if User.query.filter_by(username="admin").first() is None:
        lines = _create_demo_accounts()
        accounts_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        accounts_file.chmod(0o600)
    db.session.commit()
    if accounts_file.exists():
        click.echo(accounts_file.read_text(encoding="utf-8").rstrip())
    click.get_current_context().invoke(import_content, path=content)
    _make_demo_teacher_author()


def _make_demo_teacher_author() -> None:
    """The demo teacher authors the demo courses (every course of this demo instance)."""
    from lms.accounts.models import User
    from lms.courses import authors
    from lms.courses.models import Course

    if User.query.filter_by(username="teacher", role="instructor").first() is None:
        return
    for course in Course.query.order_by(Course.id):
        authors.add_author(course.slug, "teacher")


if __name__ == "__main__":  # python -m lms.cli …
    main()
