"""Bulk user import: encodings Excel writes in China, row-level reasons, all-or-nothing."""
import pytest

from lms.accounts.models import User

HEADER = "账号,姓名,人群,单位编码,角色\r\n"


def run(app, path, *extra):
    return app.test_cli_runner().invoke(args=["users", "import", str(path), *extra])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_in_each_encoding_imports_chinese_names(app, units, tmp_path, encoding):
    path = tmp_path / "users.csv"
    path.write_bytes((HEADER + "zhang.san,张三,老年人,town-a,学员\r\nli.si,李四,farmer,town-b,\r\n").encode(encoding))
    result = run(app, path)
    assert result.exit_code == 0, result.output
    assert "已导入 2 个用户" in result.output
    assert {(u.username, u.full_name, u.audience) for u in User.query} == {
        ("zhang.san", "张三", "elder"), ("li.si", "李四", "farmer")}


def test_bad_rows_are_each_named_and_nothing_is_imported(app, units, tmp_path, make_user):
    make_user(username="taken")
    path = tmp_path / "users.csv"
    path.write_text(HEADER + "ok.one,好人,老年人,town-a,学员\r\n"
                    "taken,重名,老年人,town-a,学员\r\n"
                    "bad.unit,无单位,农民,nowhere,学员\r\n"
                    ",无账号,外星人,town-a,学员\r\n"
                    "ok.one,重复,老年人,town-a,学员\r\n", encoding="utf-8")
    result = run(app, path)
    assert result.exit_code != 0
    out = result.output
    assert "第 3 行：账号“taken”已存在" in out
    assert "第 4 行：单位编码“nowhere”不存在" in out
    assert "第 5 行：账号为空" in out and "第 5 行：人群“外星人”无效" in out
    assert "第 6 行：账号“ok.one”与第 2 行重复" in out
    assert User.query.count() == 1  # only the pre-existing user


def test_dry_run_checks_without_importing(app, units, tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(HEADER + "a.b,甲乙,youth,town-a,学员\r\n", encoding="utf-8")
    result = run(app, path, "--dry-run")
    assert result.exit_code == 0 and "检查通过：1" in result.output
    assert User.query.count() == 0


def test_xlsx_import_and_generated_passwords_work(app, units, tmp_path, browser_client):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["账号", "姓名", "人群", "单位编码"])
    book.active.append(["wang.wu", "王五", "产业工人", "county"])
    path = tmp_path / "users.xlsx"
    book.save(path)
    passwords = tmp_path / "passwords.csv"
    result = run(app, path, "--passwords", str(passwords))
    assert result.exit_code == 0, result.output
    username, password = passwords.read_text(encoding="utf-8-sig").splitlines()[1].split(",")
    assert username == "wang.wu"
    assert browser_client.login(username, password).status_code == 302


def test_unreadable_file_gets_a_clear_error(app, units, tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x81")
    result = run(app, path)
    assert result.exit_code != 0 and ("编码无法识别" in result.output or "缺少列" in result.output)
    missing = tmp_path / "cols.csv"
    missing.write_text("账号,姓名\r\nx,y\r\n", encoding="utf-8")
    result = run(app, missing)
    assert "缺少列" in result.output and "人群" in result.output
