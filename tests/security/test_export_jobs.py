"""Export jobs (issue 11): a background export belongs to the administrator who asked for it, its file
never comes from outside DATA_DIR/exports, and its filters cannot reach beyond the asker's scope —
neither when asked nor when it runs."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from lms.accounts.models import utcnow
from lms.extensions import db
from tests.conftest import BrowserLikeClient


@pytest.fixture
def finished_job(app, units, make_user):
    """The county admin `boss` asked for an export (of town-a's 3 records) that is written and ready."""
    from lms.jobs import huey
    from lms.records import export_jobs, export_sql
    from lms.records.models import TrainingRecord

    huey.flush()
    learner = make_user("learner-a", full_name="张三", unit="town-a")
    db.session.add_all([TrainingRecord(user_id=learner.id, title="课程", kind="course", hours=Decimal("1.00"),
                                       source="online", earned_at=utcnow()) for _ in range(3)])
    db.session.commit()
    boss = make_user("boss", role="admin", unit="county", audience="cadre")
    job = export_jobs.create_job(boss, export_sql.Filters(unit=units["town_a"]), "csv", False, "zh", 3)
    huey.flush()
    assert export_jobs.run_job(job.id) == "done"
    db.session.expire_all()
    yield job
    huey.flush()


def client_for(app, make_user, username, role, unit="county") -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    client.login(make_user(username, role=role, unit=unit, audience="cadre").username)
    client.refresh_token("/admin/hours")
    return client


def test_someone_elses_job_is_404_everywhere(app, make_user, finished_job):
    """Another county admin, or a unit admin, guessing a job id gets 404 for its page, status and
    download — not the file, not even that it exists; an id that does not exist is 404 too."""
    for username, role, unit in (("boss2", "admin", "county"), ("ua", "unit_admin", "town-a")):
        client = client_for(app, make_user, username, role, unit)
        for suffix in ("", "/status", "/download"):
            assert client.get(f"/admin/hours/jobs/{finished_job.id}{suffix}").status_code == 404
            assert client.get(f"/admin/hours/jobs/{finished_job.id + 100}{suffix}").status_code == 404
        assert "export-jobs" not in client.get("/admin/hours").get_data(as_text=True)  # not listed either
    owner = BrowserLikeClient(app.test_client())
    owner.login("boss")
    assert "张三" in owner.get(f"/admin/hours/jobs/{finished_job.id}/download").get_data(as_text=True)


def test_a_path_in_a_job_or_file_name_reaches_nothing_outside_the_exports_folder(app, make_user, finished_job):
    """Traversal in the URL (../ encoded, an absolute path) is 404; a job row whose file name was
    tampered with (../, an absolute path, a symlink out) downloads nothing: the page says why."""
    secret = Path(app.config["DATA_DIR"]).parent / "secret.txt"
    secret.write_text("SECRET-7f3a 123456", encoding="utf-8")
    owner = BrowserLikeClient(app.test_client())
    owner.login("boss")
    for path in ("/admin/hours/jobs/..%2F..%2Fsecret.txt/download", "/admin/hours/jobs/%2Fetc%2Fpasswd/download",
                 f"/admin/hours/jobs/{finished_job.id}/..%2F..%2Fsecret.txt", "/admin/hours/jobs/-1/download"):
        response = owner.get(path)
        assert response.status_code == 404 and "SECRET-7f3a" not in response.get_data(as_text=True), path
    exports = Path(app.config["DATA_DIR"]) / "exports"
    (exports / "link.csv").symlink_to(secret)
    for name in ("../../secret.txt", str(secret), "link.csv"):
        finished_job.file_name = name
        db.session.commit()
        response = owner.get(f"/admin/hours/jobs/{finished_job.id}/download")
        assert response.status_code == 302 and "SECRET-7f3a" not in response.get_data(as_text=True), name
    assert secret.read_text(encoding="utf-8") == "SECRET-7f3a 123456"
    (exports / "link.csv").unlink()
    secret.unlink()


def test_a_unit_admins_forged_unit_filter_is_403_and_exports_nothing(app, units, make_user):
    """A unit admin of town-a asks (with a valid CSRF token) for town-b's records, large enough for a
    job, by POST and by GET: 403, no job row, nothing queued. A job row forged with town-b's code runs
    and fails saying why, and writes no file."""
    from lms.jobs import huey
    from lms.records import export_jobs
    from lms.records.export_jobs import ExportJob
    from lms.records.models import TrainingRecord

    app.config["EXPORT_INLINE_MAX_ROWS"] = 1
    victim = make_user("learner-b", full_name="李四", unit="town-b")
    db.session.add_all([TrainingRecord(user_id=victim.id, title="课程", kind="course", hours=Decimal("1.00"),
                                       source="online", earned_at=utcnow()) for _ in range(3)])
    db.session.commit()
    huey.flush()
    client = client_for(app, make_user, "ua", "unit_admin", "town-a")
    for summary in ("", "y"):
        response = client.post("/admin/hours/export", data={"csrf_token": client.token, "fmt": "csv", "unit": "town-b",
                                                             "summary": summary})
        assert response.status_code == 403 and "李四" not in response.get_data(as_text=True)
    assert client.get("/admin/hours/export?fmt=csv&unit=town-b").status_code == 403
    assert ExportJob.query.count() == 0 and huey.pending_count() == 0

    from lms.accounts.models import User

    unit_admin = User.query.filter_by(username="ua").one()
    forged = ExportJob(requested_by_id=unit_admin.id, fmt="csv", lang="zh", rows_total=3, expires_at=utcnow(),
                       filters_json=json.dumps({"date_from": None, "date_to": None, "unit": "town-b", "audience": None}))
    everything = ExportJob(requested_by_id=unit_admin.id, fmt="csv", lang="zh", rows_total=3, expires_at=utcnow(),
                           filters_json=json.dumps({"date_from": None, "date_to": None, "unit": None, "audience": None}))
    db.session.add_all([forged, everything])
    db.session.commit()
    exports = Path(app.config["DATA_DIR"]) / "exports"  # shared by the session's tests
    before = set(exports.iterdir()) if exports.exists() else set()
    for job in (forged, everything):
        assert export_jobs.run_job(job.id) == "failed"
        db.session.expire_all()
        assert "不在申请人的管理范围内" in db.session.get(ExportJob, job.id).error
        assert "不在申请人的管理范围内" in client.get(f"/admin/hours/jobs/{job.id}").get_data(as_text=True)
    assert set(exports.iterdir()) == before


def test_asking_for_an_export_job_without_the_csrf_token_is_400(app, units, make_user):
    """A page elsewhere makes an administrator's browser POST the export form (no CSRF token): 400,
    no job, nothing queued."""
    from lms.jobs import huey
    from lms.records.export_jobs import ExportJob

    app.config["EXPORT_INLINE_MAX_ROWS"] = 0
    huey.flush()
    client = client_for(app, make_user, "boss", "admin")
    response = client.post("/admin/hours/export", data={"fmt": "csv", "unit": ""})
    assert response.status_code == 400
    assert ExportJob.query.count() == 0 and huey.pending_count() == 0


def test_a_learner_cannot_ask_for_or_open_export_jobs(app, make_user, finished_job):
    """A learner with a valid CSRF token: 403 for the form's POST and for a job's page, status, download."""
    client = BrowserLikeClient(app.test_client())
    client.login(make_user("learner-x").username)
    client.refresh_token("/my")
    assert client.post("/admin/hours/export", data={"csrf_token": client.token, "fmt": "csv"}).status_code == 403
    for suffix in ("", "/status", "/download"):
        assert client.get(f"/admin/hours/jobs/{finished_job.id}{suffix}").status_code == 403
