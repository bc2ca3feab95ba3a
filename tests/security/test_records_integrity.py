"""Attacks on the ledger's corrections, closed years and certificates: reversing twice or a reversal,
reversing out of scope or into a closed year, crediting a closed year by any path, re-opening without a
reason, fetching someone else's certificate, and probing /verify."""
from __future__ import annotations

import threading
from datetime import datetime
from urllib.parse import quote

import pytest
from sqlalchemy import event

from lms.accounts.models import utcnow
from lms.courses.models import LessonProgress
from lms.extensions import db
from lms.records import closing, corrections
from lms.records.certificates import YearCertificate
from lms.records.closing import ClosedYear, YearClosed
from lms.records.models import AuditLog, TrainingRecord
from lms.records.services import credit_course_completion, to_local
from tests.conftest import BrowserLikeClient, _make_app
from tests.ledger import add_record, post_form, signed_in
from tests.pdftext import text

THIS_YEAR = to_local(utcnow()).year
LAST_YEAR = THIS_YEAR - 1


@pytest.fixture
def people(make_user):
    return {
        "learner": make_user("zhangsanying88", full_name="张三英", audience="cadre", unit="town-a"),
        "learner_b": make_user("lisi", full_name="李四", audience="cadre", unit="town-b"),
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre"),
    }


def reversals() -> int:
    return TrainingRecord.query.filter_by(kind="correction").count()


def reverse_audits() -> int:
    return AuditLog.query.filter_by(action="record.reverse").count()


# ---- corrections ------------------------------------------------------------------------------

def test_a_correction_cannot_itself_be_reversed(app, people):
    """Reversing a correction (a reversal of a reversal, which would count the hours again) → 409 这条记录本身
    就是更正; the page offers no form; still one correction and one audit row."""
    correction = corrections.reverse_record(people["admin"], add_record(people["learner"]), "重复登记，撤销")
    client = signed_in(app, people["admin"])
    page = client.get(f"/admin/records/{correction.id}/reverse").get_data(as_text=True)
    assert 'id="refusal"' in page and "本身就是更正" in page and 'id="reverse-form"' not in page
    response = post_form(client, f"/admin/records/{correction.id}/reverse", {"reason": "撤销那条更正"})
    assert response.status_code == 409 and "本身就是更正" in response.get_data(as_text=True)
    assert reversals() == 1 and reverse_audits() == 1


def test_a_record_is_reversed_once(app, people):
    """Reversing the same record a second time → 409 已经更正（撤销）过; one correction, one audit row."""
    record = add_record(people["learner"])
    client = signed_in(app, people["admin"])
    assert post_form(client, f"/admin/records/{record.id}/reverse", {"reason": "重复登记，撤销"}).status_code == 302
    again = post_form(client, f"/admin/records/{record.id}/reverse", {"reason": "再撤销一次试试"})
    assert again.status_code == 409 and "已经更正（撤销）过" in again.get_data(as_text=True)
    assert reversals() == 1 and reverse_audits() == 1


def _concurrent_reversals(app, monkeypatch):
    """Two administrators post the reversal of one record at the same instant, with the application's own
    "reversed already?" check switched off, so only the database stands in the way."""
    with app.app_context():
        from lms.accounts.services import create_user, get_or_create_unit

        unit = get_or_create_unit("county", "垫江县", "county")
        learner = create_user("racer", "赛跑者", "correct-horse", "learner", "cadre", unit.code)
        admins = [create_user(f"admin{n}", f"管理员{n}", "correct-horse", "admin", "cadre", unit.code) for n in (1, 2)]
        db.session.commit()
        record_id = add_record(learner).id
        usernames = [admin.username for admin in admins]
        db.session.remove()
    clients = []  # signed in outside that context: each request then has its own, as in production
    for username in usernames:
        client = BrowserLikeClient(app.test_client())
        assert client.login(username).status_code == 302
        client.refresh_token("/my/hours")
        clients.append(client)
    monkeypatch.setattr(corrections, "reversal_of", lambda record: None)
    barrier = threading.Barrier(2)
    statuses = []

    def run(client):
        barrier.wait()
        response = client.post(f"/admin/records/{record_id}/reverse",
                               data={"csrf_token": client.token, "reason": "重复登记，撤销"})
        statuses.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        assert sorted(status for status, _ in statuses) == [302, 409]
        assert "已经更正（撤销）过" in [body for status, body in statuses if status == 409][0]
        assert reversals() == 1 and reverse_audits() == 1
        db.session.remove()
        db.engine.dispose()


def test_two_concurrent_reversals_make_one_correction(tmp_path, media_dir, monkeypatch):
    """Two requests reverse one record at once, the app's check bypassed (SQLite file): the UNIQUE
    completion_key "reversal:<id>" lets one through; the other gets 409 已经更正过 — one correction."""
    _concurrent_reversals(_make_app(tmp_path, data_dir=media_dir), monkeypatch)


@pytest.mark.postgres
def test_two_concurrent_reversals_make_one_correction_on_postgresql(tmp_path, media_dir, postgres_url, monkeypatch):
    """The same race on PostgreSQL: one correction, the other request 409."""
    _concurrent_reversals(_make_app(tmp_path, database_url=postgres_url, data_dir=media_dir), monkeypatch)


def test_reversal_out_of_scope_is_refused(app, people):
    """A unit admin of another township (and a learner) GET and POST the reversal of a town-a record and open
    that person's records page: 403 each; nothing written."""
    record = add_record(people["learner"])
    for who in ("ua_b", "learner_b"):
        client = signed_in(app, people[who])
        assert client.get(f"/admin/records/{record.id}/reverse").status_code == 403
        assert post_form(client, f"/admin/records/{record.id}/reverse", {"reason": "越权撤销试试"}).status_code == 403
        assert client.get(f"/admin/people/{people['learner'].id}/records").status_code == 403
    with pytest.raises(PermissionError):
        corrections.reverse_record(people["ua_b"], record, "越权撤销试试")
    assert reversals() == 0 and reverse_audits() == 0


def test_a_reversal_without_the_csrf_token_is_refused(app, people):
    """A reversal posted from another site (no CSRF token) → 400; nothing written."""
    record = add_record(people["learner"])
    client = signed_in(app, people["admin"])
    response = client.post(f"/admin/records/{record.id}/reverse", data={"reason": "跨站请求伪造"})
    assert response.status_code == 400 and reversals() == 0


def test_a_reversal_in_a_closed_year_is_refused(app, people, units, monkeypatch):
    """Reversing a record dated in a year closed for its unit → the page says 已关账 with no form, the POST
    409 naming the year and unit; with the service's own check bypassed the ledger's listener still refuses.
    Nothing written; after re-opening it goes through."""
    record = add_record(people["learner"], when=datetime(LAST_YEAR, 5, 1))
    closing.close_year(people["admin"], units["county"], LAST_YEAR)
    client = signed_in(app, people["ua_a"])
    message = f"{LAST_YEAR} 年度已关账（单位：垫江县），如需补录或更正请先重新开放"
    page = client.get(f"/admin/records/{record.id}/reverse").get_data(as_text=True)
    assert message in page and 'id="reverse-form"' not in page
    response = post_form(client, f"/admin/records/{record.id}/reverse", {"reason": "重复登记，撤销"})
    assert response.status_code == 409 and message in response.get_data(as_text=True)
    monkeypatch.setattr(corrections, "refusal", lambda record: None)
    with pytest.raises(corrections.CorrectionError, match="已关账"):
        corrections.reverse_record(people["admin"], record, "重复登记，撤销")
    assert reversals() == 0 and reverse_audits() == 0
    monkeypatch.undo()
    closing.reopen_year(people["admin"], ClosedYear.query.one(), "更正去年的重复登记")
    corrections.reverse_record(people["admin"], record, "重复登记，撤销")
    assert reversals() == 1


# ---- closed years -----------------------------------------------------------------------------

def test_credit_into_a_closed_year_is_refused_by_every_path(app, people, units, course):
    """Into a closed year: a direct ORM insert → YearClosed; credit_course_completion → YearClosed; the real
    heartbeat + quiz flow → 200 pages, the learner's progress kept (lesson complete), nothing credited; the
    next course page view credits nothing either. No record, no credit audit row."""
    from tests.quizzing import RIGHT, submit_quiz
    from tests.test_learning_loop import watch_whole_video

    learner = people["learner"]
    closing.close_year(people["admin"], units["town_a"], THIS_YEAR)
    with pytest.raises(YearClosed):
        add_record(learner)
    db.session.rollback()
    with pytest.raises(YearClosed):
        credit_course_completion(learner.id, course)
    db.session.rollback()
    client = signed_in(app, learner)
    lesson = course.active_lessons[0]
    result, record = watch_whole_video(learner, lesson)
    assert record is None
    assert submit_quiz(client, lesson.id, RIGHT).status_code == 200
    assert client.get(f"/courses/{course.slug}").status_code == 200
    assert TrainingRecord.query.count() == 0 and not AuditLog.query.filter_by(action="record.credit").count()
    assert LessonProgress.query.filter_by(user_id=learner.id, lesson_id=lesson.id).one().completed_at is not None


def test_reopening_needs_a_reason_and_the_scope(app, people, units):
    """Re-opening with no reason, blanks or 3 characters → 400 naming 重新开放的原因; without the CSRF token
    → 400; a unit admin re-opening the county's closing → 403. The year stays closed; no year.reopen row."""
    closing.close_year(people["admin"], units["county"], LAST_YEAR)
    row = ClosedYear.query.one()
    client = signed_in(app, people["admin"])
    for reason, message in (("", "请写明重新开放的原因"), ("   ", "请写明重新开放的原因"), ("要补录", "至少 4 个字")):
        response = post_form(client, f"/admin/closing/{row.id}/reopen", {"reason": reason})
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and "重新开放的原因" in body and message in body, reason
    assert client.post(f"/admin/closing/{row.id}/reopen", data={"reason": "补录去年的活动"}).status_code == 400
    unit_admin = signed_in(app, people["ua_a"])
    assert post_form(unit_admin, f"/admin/closing/{row.id}/reopen", {"reason": "补录去年的活动"}).status_code == 403
    assert post_form(unit_admin, "/admin/closing", {"unit": "county", "year": str(LAST_YEAR - 1)}).status_code == 403
    with pytest.raises(closing.ClosingError):
        closing.reopen_year(people["admin"], row, "")
    db.session.expire_all()
    assert ClosedYear.query.one().is_closed and ClosedYear.query.count() == 1
    assert not AuditLog.query.filter_by(action="year.reopen").count()


# ---- certificates -----------------------------------------------------------------------------

def test_someone_elses_certificate_is_not_found(app, people):
    """Learner B, and the unit admin of another township, ask for learner A's course certificate and yearly
    学时证明 by URL: 404 each (as if none existed), and no yearly certificate is made for A."""
    learner = people["learner"]
    record = add_record(learner)
    for who in ("learner_b", "ua_b"):
        client = signed_in(app, people[who])
        assert client.get(f"/certificates/record/{record.id}.pdf").status_code == 404
        assert client.get(f"/certificates/people/{learner.id}/{THIS_YEAR}.pdf").status_code == 404
    assert YearCertificate.query.count() == 0
    anonymous = app.test_client().get(f"/certificates/record/{record.id}.pdf")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


@pytest.mark.parametrize("code", ["abc", "KP2025-1-2-ZZZZZZ", "XS2025-0123", "' OR 1=1 --", "<script>alert(1)</script>",
                                  "KP2025-1-2-" + "A" * 60, "XS2025-0123456789ABCDEFG", "KP２０２５-1-2-ABCDEF"])
def test_a_malformed_verification_code_gets_400_without_a_query(app, code):
    """A malformed code (wrong characters or length, SQL or markup in it) → 400 核验码格式不对, the input not
    echoed in the page's content (nor unescaped anywhere), and no SQL statement run for it."""
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    client = app.test_client()
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get("/verify/" + quote(code, safe=""))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    page = response.get_data(as_text=True)
    main = page[page.index('<main id="main">'):page.index("</main>")]  # (the layout's 长辈版 switch keeps the path)
    assert response.status_code == 400 and "核验码格式不对" in main
    assert "<script>alert" not in page and "alert(1)" not in main and "OR 1=1" not in main and statements == []


def test_an_unknown_verification_code_gets_404(app, people):
    """A well-formed code nobody was issued → 404 没有这张证书 (course and yearly forms alike)."""
    add_record(people["learner"])
    for code in ("KP2025-7-1-0123456789AB", "XS2025-0123456789ABCDEF"):
        response = app.test_client().get(f"/verify/{code}")
        assert response.status_code == 404 and "没有这张证书" in response.get_data(as_text=True)


def test_the_verify_page_leaks_no_account_details(app, people):
    """Anyone with a code sees 张*英 — never the 账号, the full name, the phone number; the page is not indexed."""
    learner = people["learner"]
    learner.phone = "13800138000"
    db.session.commit()
    record = add_record(learner)
    signed_in(app, learner).get(f"/certificates/people/{learner.id}/{THIS_YEAR}.pdf")
    for code in (record.certificate_no, YearCertificate.query.one().code):
        response = app.test_client().get(f"/verify/{code}")
        body = response.get_data(as_text=True)
        assert response.status_code == 200 and "张*英" in body and "桂溪街道" in body
        assert "zhangsanying88" not in body and "张三英" not in body and "13800138000" not in body
        assert response.headers["X-Robots-Tag"] == "noindex"


def test_verification_codes_are_unguessable(app, people):
    """Codes carry ≥ 48 random bits (a course number's tail 12 hex digits, a yearly code 16), so /verify
    cannot be walked; two codes of the same person and year pattern differ."""
    first, second = add_record(people["learner"]), add_record(people["learner"], title="另一门课")
    tails = [record.certificate_no.rsplit("-", 1)[1] for record in (first, second)]
    assert all(len(tail) == 12 for tail in tails) and tails[0] != tails[1]
    signed_in(app, people["learner"]).get(f"/certificates/people/{people['learner'].id}/{THIS_YEAR}.pdf")
    assert len(YearCertificate.query.one().code.split("-", 1)[1]) == 16


def test_asking_for_a_certificate_over_and_over_draws_it_once(app, people, monkeypatch):
    """A script fetching one certificate 20 times (each drawing costs ~0.8 s of CPU): it is drawn once and the
    same bytes served after; when what it shows changes (the person's name), it is drawn afresh."""
    from lms.records import certificates

    drawings = []
    draw = certificates._draw_course_pdf
    monkeypatch.setattr(certificates, "_draw_course_pdf", lambda record: drawings.append(record.id) or draw(record))
    learner = people["learner"]
    record = add_record(learner)
    client = signed_in(app, learner)
    bodies = {client.get(f"/certificates/record/{record.id}.pdf").data for _ in range(20)}
    assert len(drawings) == 1 and len(bodies) == 1
    learner.full_name = "张三英改"
    db.session.commit()
    assert "张三英改" in text(client.get(f"/certificates/record/{record.id}.pdf").data)
    assert len(drawings) == 2
