"""Certificates: a PDF per completed course and a yearly 学时证明, CJK font embedded, each with a code and a
QR code to the public /verify/<code> page (masked name, whether it still stands)."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest

from lms.accounts.models import utcnow
from lms.records import corrections
from lms.records.certificates import YearCertificate, mask_name
from lms.records.services import to_local
from tests.ledger import add_record, signed_in
from tests.pdftext import links, text

THIS_YEAR = to_local(utcnow()).year


@pytest.fixture
def people(make_user):
    return {
        "learner": make_user("zhang.sanying", full_name="张三英", audience="cadre", unit="town-a"),
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
    }


def test_course_certificate_is_a_small_pdf_with_the_cjk_font_embedded_and_the_record_on_it(app, people):
    learner = people["learner"]
    record = add_record(learner)
    client = signed_in(app, learner)
    page = client.get("/my/hours").get_data(as_text=True)
    assert f'href="/certificates/record/{record.id}.pdf"' in page and "下载结业证书" in page
    response = client.get(f"/certificates/record/{record.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.data
    assert data.startswith(b"%PDF-") and len(data) < 200_000
    # the font program itself is in the file (CFF outlines: FontFile3), subsetted (the ABCDEF+ prefix)
    assert b"/FontFile3" in data or b"/FontFile2" in data
    assert re.search(rb"/BaseFont /[A-Z]{6}\+NotoSansCJKsc", data, re.I)
    shown = text(data)
    assert "结业证书" in shown and "张三英" in shown and "桂溪街道" in shown and "《防范电信诈骗》" in shown
    assert "0.5 学时" in shown and record.certificate_no in shown
    assert f"http://localhost/verify/{record.certificate_no}" in links(data)  # the QR code is a link too


def test_yearly_certificate_lists_the_year_against_the_target_and_keeps_its_code(app, people):
    learner = people["learner"]
    add_record(learner, "30", title="人工智能前沿")
    add_record(learner, "5", title="量子科技", certificate=False, kind="offline")
    add_record(learner, "9", when=datetime(THIS_YEAR - 1, 6, 1), title="去年的课")
    client = signed_in(app, learner)
    page = client.get("/my/hours").get_data(as_text=True)
    assert f'href="/certificates/people/{learner.id}/{THIS_YEAR}.pdf"' in page
    first = client.get(f"/certificates/people/{learner.id}/{THIS_YEAR}.pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    shown = text(first.data)
    assert f"{THIS_YEAR} 年度学时证明" in shown and "张三英" in shown
    assert "人工智能前沿" in shown and "量子科技" in shown and "线下活动" in shown and "去年的课" not in shown
    assert "合计 35 学时" in shown and "年度目标 50 学时，未达成" in shown
    certificate = YearCertificate.query.one()
    assert certificate.hours == Decimal("35") and certificate.code in shown
    assert f"http://localhost/verify/{certificate.code}" in links(first.data)
    # downloaded again (and after more hours): the same code, still one row, the hours as first issued
    add_record(learner, "1", title="碳达峰碳中和")
    again = client.get(f"/certificates/people/{learner.id}/{THIS_YEAR}.pdf")
    assert certificate.code in text(again.data) and "合计 36 学时" in text(again.data)
    assert YearCertificate.query.count() == 1 and YearCertificate.query.one().hours == Decimal("35")
    anonymous = app.test_client().get(f"/verify/{certificate.code}").get_data(as_text=True)
    assert "张*英" in anonymous and f"{THIS_YEAR} 年度" in anonymous and "35" in anonymous
    assert 'id="verify-changed"' in anonymous and "现为 36 学时" in anonymous


def test_a_year_without_records_has_no_certificate(app, people):
    learner = people["learner"]
    client = signed_in(app, learner)
    assert "年度学时证明" not in client.get("/my/hours").get_data(as_text=True)
    response = client.get(f"/certificates/people/{learner.id}/{THIS_YEAR}.pdf")
    assert response.status_code == 404 and f"{THIS_YEAR} 年度没有学时记录" in response.get_data(as_text=True)
    assert YearCertificate.query.count() == 0


def test_verify_shows_a_course_certificate_and_then_that_it_was_revoked(app, people):
    learner = people["learner"]
    record = add_record(learner)
    anonymous = app.test_client()
    page = anonymous.get(f"/verify/{record.certificate_no}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="verify-status"' in body and "有效" in body
    assert "张*英" in body and "防范电信诈骗" in body and "0.5" in body and "桂溪街道" in body
    assert anonymous.get(f"/verify/{record.certificate_no.lower()}").status_code == 200  # typed in lower case
    corrections.reverse_record(people["admin"], record, "重复登记，撤销")
    body = anonymous.get(f"/verify/{record.certificate_no}").get_data(as_text=True)
    assert "已撤销" in body and "有效：" not in body
    # and the learner can no longer download it
    client = signed_in(app, learner)
    assert "下载结业证书" not in client.get("/my/hours").get_data(as_text=True)
    refused = client.get(f"/certificates/record/{record.id}.pdf")
    assert refused.status_code == 404 and "已撤销" in refused.get_data(as_text=True)


def test_an_administrator_in_scope_downloads_from_the_person_page(app, people):
    learner = people["learner"]
    record = add_record(learner)
    for who in ("admin", "ua_a"):
        client = signed_in(app, people[who])
        person_page = client.get(f"/admin/people/{learner.id}").get_data(as_text=True)
        assert f'href="/admin/people/{learner.id}/records"' in person_page
        records_page = client.get(f"/admin/people/{learner.id}/records").get_data(as_text=True)
        assert f'href="/certificates/record/{record.id}.pdf"' in records_page
        assert f'href="/certificates/people/{learner.id}/{THIS_YEAR}.pdf"' in records_page
        assert client.get(f"/certificates/record/{record.id}.pdf").mimetype == "application/pdf"
        assert client.get(f"/certificates/people/{learner.id}/{THIS_YEAR}.pdf").mimetype == "application/pdf"
    assert YearCertificate.query.count() == 1  # the same one, whoever downloads it


@pytest.mark.parametrize("name, masked", [("张三英", "张*英"), ("张三", "张*"), ("欧阳小明", "欧**明"), ("李", "李*"),
                                          (" 王 五 ", "王*五")])
def test_names_are_masked_keeping_first_and_last(name, masked):
    assert mask_name(name) == masked
