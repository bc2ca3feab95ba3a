"""Corrections (a reversal record with a reason, never an edit) and closing a year (nothing added to or
reversed in it for a unit subtree until it is re-opened, with a reason, in the audit log)."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import event

from lms.accounts.models import utcnow
from lms.extensions import db
from lms.records import closing, corrections
from lms.records.closing import ClosedYear, YearClosed
from lms.records.models import AuditLog, TrainingRecord
from lms.records.services import to_local
from tests.ledger import add_record, post_form, signed_in

THIS_YEAR = to_local(utcnow()).year
LAST_YEAR = THIS_YEAR - 1


@pytest.fixture
def people(make_user):
    return {
        "learner": make_user("learner-a", full_name="张三英", audience="cadre", unit="town-a"),
        "learner_b": make_user("learner-b", full_name="李四", audience="cadre", unit="town-b"),
        "admin": make_user("county-admin", full_name="县管理员", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", full_name="街道管理员", role="unit_admin", unit="town-a", audience="cadre"),
    }


# ---- corrections ------------------------------------------------------------------------------

def test_a_reversal_is_a_new_negative_record_pointing_at_the_original(app, people):
    original = add_record(people["learner"], "1.5", when=datetime(THIS_YEAR, 3, 1, 2), title="人工智能前沿")
    correction = corrections.reverse_record(people["admin"], original, "  重复登记，撤销  ")
    db.session.expire_all()
    assert (correction.kind, correction.source, correction.hours) == ("correction", "admin", Decimal("-1.50"))
    assert correction.reverses_id == original.id and correction.user_id == original.user_id
    assert correction.title == "更正：人工智能前沿" and correction.note == "重复登记，撤销"
    assert correction.created_by_id == people["admin"].id and correction.completion_key == f"reversal:{original.id}"
    assert correction.earned_at == original.earned_at  # nets out in the same year
    fresh = db.session.get(TrainingRecord, original.id)
    assert (fresh.hours, fresh.kind, fresh.title) == (Decimal("1.50"), "course", "人工智能前沿")  # untouched
    log = AuditLog.query.filter_by(action="record.reverse").one()
    assert (log.actor_id, log.target, log.detail) == (people["admin"].id, f"record:{original.id}", "重复登记，撤销")


def test_an_administrator_reverses_from_the_persons_records_page(app, people):
    learner = people["learner"]
    original = add_record(learner, "0.5")
    kept = add_record(learner, "1", title="量子科技")
    client = signed_in(app, people["ua_a"])
    records_page = client.get(f"/admin/people/{learner.id}/records").get_data(as_text=True)
    assert f'href="/admin/records/{original.id}/reverse"' in records_page and "更正" in records_page
    form_page = client.get(f"/admin/records/{original.id}/reverse").get_data(as_text=True)
    assert 'id="reverse-form"' in form_page and "更正原因" in form_page and "-0.5 学时" in form_page
    response = post_form(client, f"/admin/records/{original.id}/reverse", {"reason": "误记到此人名下"})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已更正" in page and "已撤销" in page and "更正：防范电信诈骗" in page and "误记到此人名下" in page
    assert f'href="/admin/records/{original.id}/reverse"' not in page  # no second 更正 button
    assert f'href="/admin/records/{kept.id}/reverse"' in page
    assert 'id="person-total"' in page and "<strong>1</strong>" in page  # 0.5 + 1 − 0.5
    audit_page = client.get("/admin/audit?action=record.").get_data(as_text=True)
    assert "record.reverse" in audit_page and "误记到此人名下" in audit_page


@pytest.mark.parametrize("reason, message", [("", "请写明更正原因"), ("错了", "至少 4 个字"), ("   ", "请写明更正原因")])
def test_a_missing_or_short_reason_is_refused_naming_the_field(app, people, reason, message):
    original = add_record(people["learner"])
    client = signed_in(app, people["admin"])
    response = post_form(client, f"/admin/records/{original.id}/reverse", {"reason": reason})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "更正原因" in body and message in body
    assert TrainingRecord.query.count() == 1 and not AuditLog.query.filter_by(action="record.reverse").count()


def test_corrections_export_as_type_correction_with_negative_hours(app, people):
    original = add_record(people["learner"], "0.5")
    corrections.reverse_record(people["admin"], original, "重复登记，撤销")
    client = signed_in(app, people["admin"])
    response = client.get("/admin/hours/export?fmt=csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(row["类型"], row["学时"]) for row in rows] == [("线上课程", "0.50"), ("更正", "-0.50")]
    assert rows[1]["课程/活动"] == "更正：防范电信诈骗"


def test_my_hours_shows_the_reversed_record_and_the_correction(app, people):
    learner = people["learner"]
    original = add_record(learner, "0.5")
    add_record(learner, "2", title="量子科技")
    corrections.reverse_record(people["admin"], original, "重复登记，撤销")
    page = signed_in(app, learner).get("/my/hours").get_data(as_text=True)
    assert "防范电信诈骗 <strong class=\"revoked\">（已撤销）</strong>" in page
    assert "更正：防范电信诈骗" in page and "-0.5" in page and "重复登记，撤销" in page
    assert "<strong>2</strong>" in page  # the year's total: 0.5 + 2 − 0.5


# ---- closing a year ---------------------------------------------------------------------------

def test_a_closed_year_refuses_new_records_for_its_subtree_only(app, people, units):
    closing.close_year(people["admin"], units["town_a"], LAST_YEAR)
    with pytest.raises(YearClosed) as refused:
        add_record(people["learner"], when=datetime(LAST_YEAR, 7, 1))
    assert str(refused.value) == f"{LAST_YEAR} 年度已关账（单位：桂溪街道），如需补录或更正请先重新开放"
    db.session.rollback()
    add_record(people["learner_b"], when=datetime(LAST_YEAR, 7, 1))  # another township: open
    add_record(people["learner"], when=datetime(THIS_YEAR, 1, 5))  # another year: open
    assert TrainingRecord.query.count() == 2


def test_the_year_is_the_local_one_and_an_ancestor_closing_binds_the_subtree(app, people, units):
    closing.close_year(people["admin"], units["county"], LAST_YEAR)
    new_years_eve = datetime(LAST_YEAR, 12, 31, 16, 30)  # UTC: 00:30 on 1 January in Shanghai
    add_record(people["learner"], when=new_years_eve)  # THIS_YEAR locally: open
    with pytest.raises(YearClosed, match="单位：垫江县"):
        add_record(people["learner"], when=datetime(LAST_YEAR, 12, 31, 15, 30))
    db.session.rollback()
    closing.reopen_year(people["admin"], ClosedYear.query.one(), "补录线下活动学时")
    add_record(people["learner"], when=datetime(LAST_YEAR, 12, 31, 15, 30))
    assert TrainingRecord.query.count() == 2


def test_the_check_is_one_query_per_record(app, people, units):
    closing.close_year(people["admin"], units["town_b"], LAST_YEAR)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        add_record(people["learner"], when=datetime(LAST_YEAR, 3, 1))
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert sum("closed_year" in statement for statement in statements) == 1


def test_closing_and_reopening_from_the_console(app, people):
    client = signed_in(app, people["admin"])
    page = client.get("/admin/closing").get_data(as_text=True)
    assert "年度关账" in page and 'id="close-form"' in page and 'href="/admin/closing"' in page  # in the nav
    response = post_form(client, "/admin/closing", {"unit": "town-a", "year": str(LAST_YEAR)})
    assert response.status_code == 302
    page = client.get("/admin/closing").get_data(as_text=True)
    assert "已关账" in page and "桂溪街道" in page
    again = post_form(client, "/admin/closing", {"unit": "town-a", "year": str(LAST_YEAR)})
    assert again.status_code == 409 and f"{LAST_YEAR} 年度已对“桂溪街道”关账" in again.get_data(as_text=True)
    for year, message in (("25", "年度应是四位数字"), (str(THIS_YEAR + 1), "年度应在")):
        bad = post_form(client, "/admin/closing", {"unit": "town-a", "year": year})
        assert bad.status_code == 400 and message in bad.get_data(as_text=True)
    unknown = post_form(client, "/admin/closing", {"unit": "nowhere", "year": str(LAST_YEAR)})
    assert unknown.status_code == 400 and "没有这个单位编码" in unknown.get_data(as_text=True)
    row = ClosedYear.query.one()
    reopened = post_form(client, f"/admin/closing/{row.id}/reopen", {"reason": "补录 12 月的线下活动"})
    assert reopened.status_code == 302
    db.session.expire_all()
    assert not ClosedYear.query.one().is_closed
    page = client.get("/admin/closing").get_data(as_text=True)
    assert "已重新开放" in page and "补录 12 月的线下活动" in page
    actions = [(log.action, log.detail) for log in AuditLog.query.order_by(AuditLog.id)]
    assert actions == [("year.close", str(LAST_YEAR)), ("year.reopen", f"{LAST_YEAR}：补录 12 月的线下活动")]
    # closed again: the same row holds the state, the audit log the history
    assert post_form(client, "/admin/closing", {"unit": "town-a", "year": str(LAST_YEAR)}).status_code == 302
    db.session.expire_all()
    assert ClosedYear.query.one().is_closed and AuditLog.query.filter_by(action="year.close").count() == 2


def test_a_unit_admin_closes_their_subtree_and_sees_closings_above(app, people, units):
    closing.close_year(people["admin"], units["county"], LAST_YEAR - 1)
    client = signed_in(app, people["ua_a"])
    assert post_form(client, "/admin/closing", {"unit": "town-a", "year": str(LAST_YEAR)}).status_code == 302
    page = client.get("/admin/closing").get_data(as_text=True)
    assert 'id="closed-above"' in page and "垫江县" in page and f"{LAST_YEAR - 1} 年度" in page
    assert 'id="closed-years"' in page and "桂溪街道" in page


def test_course_completion_in_a_closed_year_keeps_the_progress_and_credits_later(app, people, units, course):
    from tests.quizzing import RIGHT, submit_quiz
    from tests.test_learning_loop import watch_whole_video

    learner = people["learner"]
    closing.close_year(people["admin"], units["town_a"], THIS_YEAR)  # unusual, but possible (a mistake, say)
    client = signed_in(app, learner)
    lesson = course.active_lessons[0]
    watch_whole_video(learner, lesson)
    response = submit_quiz(client, lesson.id, RIGHT)
    assert response.status_code == 200 and "通过了" in response.get_data(as_text=True)
    assert TrainingRecord.query.count() == 0
    from lms.courses.models import LessonProgress

    assert LessonProgress.query.filter_by(user_id=learner.id, lesson_id=lesson.id).one().completed_at is not None
    closing.reopen_year(people["admin"], ClosedYear.query.one(), "误关了本年度")
    assert client.get(f"/courses/{course.slug}").status_code == 200  # the next page view settles it
    assert TrainingRecord.query.filter_by(user_id=learner.id, kind="course").count() == 1
