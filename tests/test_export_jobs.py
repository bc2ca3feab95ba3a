"""Exports that always finish: small ones download at once, large ones run as a background job with a
progress bar and a download link kept a day; the file is the CLI's, byte for byte."""
from __future__ import annotations

import json
import stat
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event

from lms.accounts.models import utcnow
from lms.extensions import db


@pytest.fixture
def queue(app):
    """The job queue, empty; `run()` executes what was queued, as the worker would."""
    from lms.jobs import huey

    huey.flush()

    class Queue:
        @staticmethod
        def pending() -> int:
            return huey.pending_count()

        @staticmethod
        def run() -> list:
            results = []
            while (task := huey.dequeue()) is not None:
                results.append(huey.execute(task))
            db.session.expire_all()
            return results

    yield Queue
    huey.flush()


def seed_records(make_user, count: int, unit="town-a") -> list:
    from lms.records.models import TrainingRecord

    people = [make_user(f"learner{n}", full_name=("张,三", "=李四", "王五")[n % 3], unit=unit) for n in range(3)]
    for n in range(count):
        db.session.add(TrainingRecord(user_id=people[n % 3].id, title=f"课程{n}", kind=("course", "correction")[n % 4 == 3],
                                      hours=Decimal("-0.50" if n % 4 == 3 else "1.00"), source="online",
                                      earned_at=utcnow() - timedelta(hours=n)))
    db.session.commit()
    return people


def signed_in(browser_client, make_user, username="boss", role="admin", unit="county"):
    user = make_user(username, role=role, unit=unit, audience="cadre")
    browser_client.login(user.username)
    browser_client.refresh_token("/admin/hours")
    return user


def ask(client, **fields):
    data = {"csrf_token": client.token, "fmt": "csv", "date_from": "", "date_to": "", "unit": "", "audience": ""}
    data.update(fields)
    if data.pop("summary", False):
        data["summary"] = "y"
    return client.post("/admin/hours/export", data=data)


def cli_export(app, tmp_path, *args) -> Path:
    out = tmp_path / f"cli-{len(list(tmp_path.iterdir()))}"
    result = app.test_cli_runner().invoke(args=["hours", "export", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_small_export_downloads_at_once(app, browser_client, make_user, queue, tmp_path):
    from lms.records.export_jobs import ExportJob

    seed_records(make_user, 5)
    client = browser_client
    signed_in(client, make_user)
    response = ask(client)
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    assert response.data == cli_export(app, tmp_path).read_bytes()
    get = client.get("/admin/hours/export?fmt=csv&summary=y")
    assert get.data == cli_export(app, tmp_path, "--summary").read_bytes()
    (tmp_path / "web.xlsx").write_bytes(ask(client, fmt="xlsx").data)
    with zipfile.ZipFile(tmp_path / "web.xlsx") as web, zipfile.ZipFile(cli_export(app, tmp_path, "--format", "xlsx")) as cli:
        assert web.read("xl/worksheets/sheet1.xml") == cli.read("xl/worksheets/sheet1.xml")
    assert ExportJob.query.count() == 0 and queue.pending() == 0


def test_a_large_export_runs_as_a_job_with_progress_and_gives_the_cli_bytes(app, browser_client, make_user, queue,
                                                                               tmp_path, monkeypatch):
    from lms.records import export_jobs, export_sql
    from lms.records.export_jobs import ExportJob

    app.config["EXPORT_INLINE_MAX_ROWS"] = 3
    seed_records(make_user, 9)
    client = browser_client
    signed_in(client, make_user)

    page = client.get("/admin/hours/export?fmt=csv").get_data(as_text=True)  # a link: asks, starts nothing
    assert "共 9 行，超过 3 行，将在后台生成" in page and ExportJob.query.count() == 0

    response = ask(client)
    assert response.status_code == 303
    job_url = response.headers["Location"]
    assert queue.pending() == 1  # a job, not work inside the request
    page = client.get(job_url).get_data(as_text=True)
    assert "排队中" in page and "<progress" in page and 'max="9"' in page and "刷新" in page
    assert "export-job.js" in page and "export-job-download" not in page
    assert client.get(job_url + "/status").get_json()["status"] == "queued"

    monkeypatch.setattr(export_sql, "BATCH", 2)
    monkeypatch.setattr(export_jobs, "PROGRESS_SECONDS", 0)
    seen = []

    def progress_written(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE export_job SET rows_done"):
            seen.append(parameters[0])

    event.listen(db.engine, "before_cursor_execute", progress_written)
    try:
        assert queue.run() == ["done"]
    finally:
        event.remove(db.engine, "before_cursor_execute", progress_written)
    assert seen == [2, 4, 6, 8, 9]  # the bar moves while the file is written

    status = client.get(job_url + "/status").get_json()
    assert status["status"] == "done" and status["done"] == status["total"] == 9 and status["percent"] == 100
    page = client.get(job_url).get_data(as_text=True)
    assert "已完成" in page and "export-job-download" in page and "<progress" not in page
    download = client.get(status["download_url"])
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    assert download.data == cli_export(app, tmp_path).read_bytes()
    job = ExportJob.query.one()
    path = Path(app.config["DATA_DIR"]) / "exports" / job.file_name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert job.expires_at - job.finished_at == timedelta(days=1)
    assert "已完成" in client.get("/admin/hours").get_data(as_text=True)  # listed on the export page


def test_an_xlsx_job_keeps_numbers_numbers(app, browser_client, make_user, queue, tmp_path):
    from openpyxl import load_workbook

    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    seed_records(make_user, 6)
    client = browser_client
    signed_in(client, make_user)
    for summary in (False, True):
        job_url = ask(client, fmt="xlsx", summary=summary).headers["Location"]
        queue.run()
        download = client.get(client.get(job_url + "/status").get_json()["download_url"])
        (tmp_path / "job.xlsx").write_bytes(download.data)
        cli = cli_export(app, tmp_path, "--format", "xlsx", *(["--summary"] if summary else []))
        with zipfile.ZipFile(tmp_path / "job.xlsx") as ours, zipfile.ZipFile(cli) as theirs:
            assert ours.read("xl/worksheets/sheet1.xml") == theirs.read("xl/worksheets/sheet1.xml")
        sheet = load_workbook(tmp_path / "job.xlsx").active
        header = [cell.value for cell in sheet[1]]
        hours = [row[header.index("学时合计" if summary else "学时")] for row in sheet.iter_rows(min_row=2)]
        assert hours and all(cell.data_type == "n" for cell in hours)
        assert -0.5 in [cell.value for cell in hours] or summary


def test_an_expired_export_says_so_and_its_file_is_swept(app, browser_client, make_user, queue):
    from lms.records import export_jobs
    from lms.records.export_jobs import ExportJob

    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    seed_records(make_user, 3)
    client = browser_client
    signed_in(client, make_user)
    job_url = ask(client).headers["Location"]
    queue.run()
    job = ExportJob.query.one()
    path = Path(app.config["DATA_DIR"]) / "exports" / job.file_name
    assert export_jobs.sweep() == 0 and path.exists()  # not yet a day old

    job.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    page = client.get(job_url).get_data(as_text=True)
    assert "已过期" in page and "export-job-download" not in page and "请重新导出" in page
    assert client.get(job_url + "/download").status_code == 302  # back to the page that says why
    assert client.get(job_url + "/status").get_json()["label"] == "已过期"
    assert export_jobs.sweep() == 1 and not path.exists()
    db.session.expire_all()
    assert ExportJob.query.one().file_name is None and "已过期" in client.get(job_url).get_data(as_text=True)


def test_a_failed_job_says_why(app, browser_client, make_user, queue, monkeypatch):
    from lms.records import export_jobs, export_sql
    from lms.records.export_jobs import ExportJob

    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    seed_records(make_user, 4)
    client = browser_client
    signed_in(client, make_user)
    monkeypatch.setattr(export_jobs, "MAX_ROWS", 3)  # XLSX holds fewer rows than asked for
    job_url = ask(client, fmt="xlsx").headers["Location"]
    assert queue.run() == ["failed"]
    page = client.get(job_url).get_data(as_text=True)
    assert "失败" in page and "超过 Excel 一张工作表的上限" in page and "请改用 CSV 或缩小范围" in page

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_sql, "write_csv", broken)
    job_url = ask(client).headers["Location"]
    assert queue.run() == ["failed"]
    assert "导出时发生内部错误（OSError）" in client.get(job_url).get_data(as_text=True)
    assert list((Path(app.config["DATA_DIR"]) / "exports").glob("*.part")) == []  # nothing half-written left
    assert ExportJob.query.filter_by(status="failed").count() == 2


def test_an_xlsx_too_large_for_excel_is_refused_when_asked(app, browser_client, make_user, queue, monkeypatch):
    from lms.records import routes
    from lms.records.export_jobs import ExportJob

    seed_records(make_user, 4)
    client = browser_client
    signed_in(client, make_user)
    monkeypatch.setattr(routes, "MAX_ROWS", 4)  # a worksheet of 3 rows below its header
    response = ask(client, fmt="xlsx")
    assert response.status_code == 400
    assert "共 4 行，超过 Excel 一张工作表的上限（3 行），请改用 CSV 或缩小范围" in response.get_data(as_text=True)
    assert ExportJob.query.count() == 0 and queue.pending() == 0
    assert ask(client, fmt="csv").status_code == 200


def test_a_unit_admin_moved_after_asking_gets_nothing_beyond_the_new_scope(app, browser_client, make_user, queue, units):
    from lms.records.export_jobs import ExportJob

    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    seed_records(make_user, 3, unit="town-a")
    client = browser_client
    unit_admin = signed_in(client, make_user, "ua", role="unit_admin", unit="town-a")
    job_url = ask(client).headers["Location"]
    assert json.loads(ExportJob.query.one().filters_json)["unit"] == "town-a"  # their own subtree, resolved
    unit_admin.unit_id = units["town_b"].id
    db.session.commit()
    assert queue.run() == ["failed"]
    assert "不在申请人的管理范围内" in client.get(job_url).get_data(as_text=True)
    assert ExportJob.query.one().file_name is None


def test_an_abandoned_job_is_taken_again_then_given_up(app, browser_client, make_user, queue):
    from lms import jobs
    from lms.records import export_jobs
    from lms.records.export_jobs import ExportJob

    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    seed_records(make_user, 3)
    client = browser_client
    signed_in(client, make_user)
    ask(client)
    job = ExportJob.query.one()
    assert export_jobs.pending_job_ids() == []  # just queued: its task is in the queue
    job.updated_at = utcnow() - timedelta(hours=1)  # queued long ago: its task may have been lost
    db.session.commit()
    assert export_jobs.pending_job_ids() == [job.id]
    queue.run()
    job = ExportJob.query.one()
    job.status, job.updated_at, job.file_name = "running", utcnow() - timedelta(hours=1), None  # its worker died
    db.session.commit()
    jobs._requeue_abandoned()
    assert queue.run() == ["done"] and ExportJob.query.one().file_name

    job = ExportJob.query.one()
    job.status, job.updated_at, job.attempts = "running", utcnow() - timedelta(hours=1), export_jobs.MAX_ATTEMPTS
    db.session.commit()
    assert export_jobs.pending_job_ids() == [] and export_jobs.run_job(job.id) == "skipped"


def test_cli_export_keeps_its_messages(app, make_user, tmp_path):
    seed_records(make_user, 4)
    runner = app.test_cli_runner()
    for args, message in ((["-o", str(tmp_path / "d.csv")], f"已导出 4 条记录到 {tmp_path / 'd.csv'}"),
                          (["--summary", "-o", str(tmp_path / "s.csv")], f"已导出 3 人的学时汇总到 {tmp_path / 's.csv'}")):
        result = runner.invoke(args=["hours", "export", *args])
        assert result.exit_code == 0 and message in result.output, result.output
    assert (tmp_path / "d.csv").read_bytes().count(b"\r\n") == 5


@pytest.mark.browser
def test_in_a_browser_the_bar_moves_and_the_link_appears(tmp_path, browser):
    """Chromium: the administrator asks for a large export, lands on the job page (no CSP violation,
    no serious axe finding), the worker runs the job, the page's script sees it finish and shows the
    download link; the file downloaded is the CLI's."""
    from playwright.sync_api import expect

    from lms.accounts.services import create_user, get_or_create_unit
    from lms.jobs import huey
    from lms.records.models import TrainingRecord
    from tests.conftest import _make_app, serve_app
    from tests.test_admin_browser import AXE, AXE_RUN
    from tests.test_browser import PASSWORD, sign_in

    app = _make_app(tmp_path, EXPORT_INLINE_MAX_ROWS=2)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county", None)
        get_or_create_unit("town-a", "桂溪街道", "township", county)
        create_user("admin1", "李管理", PASSWORD, "admin", "cadre", "county")
        learner = create_user("farmer1", "刘,师傅", PASSWORD, "learner", "farmer", "town-a")
        db.session.add_all([TrainingRecord(user_id=learner.id, title=f"课程{n}", kind="course", hours=Decimal("0.50"),
                                           source="online", earned_at=utcnow()) for n in range(5)])
        db.session.commit()
        huey.flush()
        db.session.remove()
    with serve_app(app) as base:
        context = browser.new_context(locale="zh-CN", accept_downloads=True)
        page = context.new_page()
        sign_in(page, base, "admin1")
        page.goto(f"{base}/admin/hours")
        with page.expect_navigation():
            page.get_by_role("button", name="下载").click()
        assert "/admin/hours/jobs/" in page.url
        expect(page.locator("#export-job-state")).to_have_text("排队中")
        expect(page.locator("#export-job-refresh")).to_be_visible()
        if AXE.is_file():
            page.evaluate(AXE.read_text(encoding="utf-8"))
            assert page.evaluate(AXE_RUN) == []
        with app.app_context():
            huey.execute(huey.dequeue())  # the worker
        expect(page.locator("#export-job-download")).to_be_visible(timeout=10_000)  # the script reloaded the page
        with page.expect_download() as download:
            page.locator("#export-job-download").click()
        got = open(download.value.path(), "rb").read()
        context.close()
    with app.app_context():
        out = tmp_path / "cli.csv"
        assert app.test_cli_runner().invoke(args=["hours", "export", "-o", str(out)]).exit_code == 0
        assert got == out.read_bytes() and "刘,师傅" in got.decode("utf-8-sig")
        db.session.remove()
        db.engine.dispose()
