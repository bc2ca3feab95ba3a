"""The `lms` console script: a Flask CLI group bound to the app (so `lms run`, `lms db upgrade` work)."""
from __future__ import annotations

import secrets
import sys
from datetime import date
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
    app.cli.add_command(users)
    app.cli.add_command(hours)
    app.cli.add_command(demo)


@click.command("import-content")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@with_appcontext
def import_content(path: Path):
    """Import or update course packages under PATH (one package, or a folder of packages)."""
    from lms.courses.importer import ContentError, import_package, package_folders

    folders = package_folders(path)
    if not folders:
        raise click.ClickException(f"{path} 下没有找到 course.yaml")
    failures = 0
    with tqdm(folders, desc="导入课程", unit="门", file=sys.stderr, disable=None) as bar:
        for folder in bar:
            bar.set_postfix_str(folder.name)
            try:
                course, outcome = import_package(folder)
            except ContentError as exc:
                failures += 1
                tqdm.write(f"错误 {exc}", file=sys.stderr)
                continue
            tqdm.write(f"{ {'created': '新建', 'updated': '更新', 'unchanged': '未变'}[outcome]} {course.slug}（{course.title}）")
    if failures:
        raise click.ClickException(f"{failures} 个课程包有错误，未导入（其余已导入）")


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
    from lms.records import export, services

    unit = None
    if unit_code:
        unit = Unit.query.filter_by(code=unit_code).first()
        if unit is None:
            raise click.ClickException(f"单位编码不存在：{unit_code}")
    query = services.records_query(date_from and date_from.date(), date_to and date_to.date(), unit, audience)
    columns = export.SUMMARY_COLUMNS if summary else export.DETAIL_COLUMNS
    total = query.count()
    rows = (export.summary_rows if summary else export.detail_rows)(query, lang)
    with tqdm(total=total, desc="导出记录", unit="条", file=sys.stderr, disable=None) as bar:
        def counted(iterable):
            for row in iterable:
                bar.update(1) if not summary else None
                yield row

        if fmt == "xlsx":
            export.write_xlsx(str(output), columns, counted(rows), lang)
        else:
            with open(output, "w", encoding="utf-8", newline="") as fh:
                export.write_csv(fh, columns, counted(rows), lang)
        if summary:
            bar.update(total)
    click.echo(f"已导出 {total} 条记录到 {output}")


@click.command("demo-setup")
@click.option("--content", type=click.Path(exists=True, file_okay=False, path_type=Path), default="content")
@with_appcontext
def demo(content: Path):
    """Create the demo unit tree and admin (printing its password), then import the demo content."""
    from lms.accounts.models import User
    from lms.accounts.services import create_user, get_or_create_unit
    from lms.extensions import db

    county = get_or_create_unit("dianjiang", "垫江县", "county")
    town = get_or_create_unit("guixi", "桂溪街道", "township", county)
    get_or_create_unit("guixi-elder-college", "桂溪社区老年学校", "school", town)
    get_or_create_unit("county-gov", "县级机关", "department", county)
    password_file = Path(current_app.config["INSTANCE_DIR"]) / "demo-admin-password"
    if User.query.filter_by(username="admin").first() is None:
        password = secrets.token_urlsafe(9)
        create_user("admin", "系统管理员", password, "admin", "cadre", "dianjiang")
        password_file.write_text(password)
        password_file.chmod(0o600)
    db.session.commit()
    if password_file.exists():
        click.echo(f"演示管理员：admin  密码：{password_file.read_text().strip()}")
    click.get_current_context().invoke(import_content, path=content)
