"""The fast export path (lms/records/export_sql.py) writes exactly the bytes of the straightforward one
(export.iter_csv over export.export_rows, row dicts built in Python) — on awkward data, every filter,
both languages, detail and summary, SQLite and PostgreSQL — and its XLSX cells are those of the
reference and of xlsxwriter itself."""
from __future__ import annotations

import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest

from lms.extensions import db
from tests.conftest import _make_app

NAMES = ["=1+1", "张,三", '李"四"', "王\n五", "赵\r六", " 前导空格", "－全角减号", "\t制表", "@SUM(A1)", "周 八 ", "",
         "普通人", "%20", "|管道", "＋全角加"]
TITLES = ["防范电信诈骗，第一讲", 'He said "hi", twice', "多行\n标题", "=HYPERLINK(\"http://evil\")", "－1+1", "普通课程",
          "尾随空格 ", "\r=1", "a,b,c,d", "<r><t>x</t></r>"]
HOURS = ["0.25", "0.50", "1.00", "1.50", "-1.00", "2.75", "0.10", "0.20", "9999.99", "-0.40", "0.70", "0.05"]
KINDS = ["course", "offline", "correction", "-odd kind"]
AUDIENCES = ["elder", "farmer", "cadre", "worker", "youth"]


def seed_awkward() -> dict:
    """Units with commas and quotes in their names, people with formula-like and multi-line names in
    every audience, records of every kind with negative hours, NULLs, and times either side of local
    midnight (16:00 UTC) and of a year's end."""
    from lms.accounts.models import Unit, User
    from lms.records import assignments
    from lms.records.models import TrainingRecord

    county = Unit(code="county", name="垫江县", kind="county", path="/county/")
    town_a = Unit(code="town-a", name='桂溪街道,"东"', kind="township", path="/county/town-a/", parent=county)
    town_b = Unit(code="=town-b", name="澄溪\n镇", kind="township", path="/county/=town-b/", parent=county)
    village = Unit(code="v,1", name="@村", kind="village", path="/county/town-a/v,1/", parent=town_a)
    db.session.add_all([county, town_a, town_b, village])
    db.session.flush()
    units = [town_a, town_b, village, county]
    people = []
    for n, name in enumerate(NAMES):
        person = User(username=f"p{n:02d}" if n % 4 else f"-p{n}", full_name=name, password_hash="x", role="learner",
                      audience=AUDIENCES[n % 5], unit_id=units[n % 4].id)
        people.append(person)
    db.session.add_all(people)
    db.session.flush()
    stamps = [datetime(2024, 12, 31, 15, 59, 59, 999999), datetime(2024, 12, 31, 16, 0, 0),
              datetime(2025, 3, 1, 8, 30, 0, 123456), datetime(2025, 6, 30, 23, 59, 59), datetime(2025, 1, 15, 4, 5, 6)]
    n = 0
    for person in people:
        for k in range(3 + len(person.full_name) % 3):
            n += 1
            db.session.add(TrainingRecord(
                user_id=person.id, title=TITLES[n % len(TITLES)], kind=KINDS[n % len(KINDS)],
                hours=Decimal(HOURS[n % len(HOURS)]), watched_minutes=(None, Decimal("12.3"), Decimal("30"), Decimal("0"))[n % 4],
                quiz_score=(None, 0, 80, 100)[n % 4], earned_at=stamps[n % len(stamps)], source="online",
                certificate_no=(None, f"KP2025-{n}", f"=CERT{n}", f"＠{n}")[n % 4]))
    db.session.commit()
    assignments.set_target("youth", "0")  # no target
    assignments.set_target("farmer", "0.30")  # 0.10 + 0.20 reaches it only when summed to cents
    return {"town_a": town_a, "town_b": town_b, "village": village}


def reference_csv(summary, filters, lang) -> bytes:
    from lms.records import export

    columns, _query, rows = export.export_rows(summary, *filters, lang=lang)
    return "".join(export.iter_csv(columns, rows, lang)).encode("utf-8")


def fast_csv(summary, filters, lang) -> bytes:
    from lms.records import export_sql

    return b"".join(export_sql.csv_chunks(summary, export_sql.Filters(*filters), lang))


def filter_cases(units) -> list[tuple]:
    return [(None, None, None, None), (date(2025, 1, 1), date(2025, 3, 1), None, None),
            (None, date(2024, 12, 31), None, None), (None, None, units["town_a"], None),
            (None, None, units["town_b"], "farmer"), (date(2025, 1, 1), None, units["village"], None),
            (date(2030, 1, 1), None, None, None)]


def assert_same_bytes(units):
    for filters in filter_cases(units):
        for summary in (False, True):
            for lang in ("zh", "en"):
                expected = reference_csv(summary, filters, lang)
                assert fast_csv(summary, filters, lang) == expected, (filters, summary, lang)
    return expected


def test_fast_csv_equals_the_reference_on_awkward_data(app, monkeypatch):
    """Every filter, detail and summary, zh and en: byte for byte the reference — including quoted
    cells (commas, quotes, CR, LF), neutralised ones, negative hours, empty cells and targets met by a
    sum of 0.10 + 0.20. Batches of 3 lines, so quoted rows fall in several batches."""
    from lms.records import export_sql

    units = seed_awkward()
    monkeypatch.setattr(export_sql, "BATCH", 3)
    assert_same_bytes(units)
    whole = fast_csv(False, (None, None, None, None), "zh").decode("utf-8-sig")
    assert ',"张,三",' in whole and ',"李""四""",' in whole and '"王\n五"' in whole and ",-1.00," in whole
    assert ",'=1+1," in whole and ",'＠" in whole and "\r\n" in whole
    summary = fast_csv(True, (None, None, None, None), "zh").decode("utf-8-sig")
    assert "无目标" in summary and "是" in summary and "否" in summary


@pytest.mark.postgres
def test_fast_csv_equals_the_reference_on_postgresql(tmp_path, postgres_url):
    """The same on PostgreSQL, where COPY writes the CSV: '' cells unquoted, CRLF row ends, LF kept
    inside quoted cells."""
    app = _make_app(tmp_path, database_url=postgres_url)
    with app.app_context():
        try:
            units = seed_awkward()
            assert_same_bytes(units)
        finally:
            db.session.remove()
            db.engine.dispose()


def test_crlf_turns_row_ends_only_across_chunk_boundaries():
    from lms.records.export_sql import crlf

    text = b'1,"a\nb",x\n2,"say ""hi""\n",y\n3,,z\n'
    for cut in range(len(text) + 1):
        out, quoted, rows = crlf(text[:cut], False)
        rest, quoted, more = crlf(text[cut:], quoted)
        assert out + rest == b'1,"a\nb",x\r\n2,"say ""hi""\n",y\r\n3,,z\r\n' and rows + more == 3 and not quoted


def sheet_xml(path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("xl/worksheets/sheet1.xml")


def test_fast_xlsx_equals_the_reference_and_numbers_are_numbers(app, tmp_path):
    from openpyxl import load_workbook

    from lms.records import export, export_sql

    units = seed_awkward()
    for summary in (False, True):
        for filters in filter_cases(units)[:4]:
            columns, _query, rows = export.export_rows(summary, *filters)
            export.write_xlsx(tmp_path / "ref.xlsx", columns, rows)
            export_sql.write_xlsx(tmp_path / "fast.xlsx", summary, export_sql.Filters(*filters))
            assert sheet_xml(tmp_path / "fast.xlsx") == sheet_xml(tmp_path / "ref.xlsx"), (summary, filters)
    sheet = load_workbook(tmp_path / "fast.xlsx").active
    header = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        assert row[header.index("学时合计")].data_type == "n" and row[header.index("年度目标")].data_type == "n"
        assert all(cell.data_type != "f" for cell in row)


def test_sheet_writer_writes_cells_as_xlsxwriter_does(tmp_path):
    """lms/records/xlsx.py streams the rows itself; its sheet is xlsxwriter's own, byte for byte."""
    import xlsxwriter

    from lms.records.xlsx import SheetWriter

    texts = ["普通", " lead", "trail ", "a&b<c>d\"e'", "tab\there", "line\nbreak", "cr\rhere", "\x01ctl\x1f",
             "_x0041_ literal", "\ufffe\uffff", "x" * 40000, "😀" * 20000, "\u3000全角空格", "=1+1", "\x1c"]
    numbers = [0, 1, -1, 0.1, 53.7, 344707, 1e20, 2.5e-7, Decimal("1.00"), Decimal("-0.40"), 9999.99]
    rows = [[numbers[n % len(numbers)], texts[n % len(texts)], None if n % 3 else texts[-n % len(texts)]]
            for n in range(40)]
    headers = ["记录编号", "姓名", "备注"]
    workbook = xlsxwriter.Workbook(str(tmp_path / "x.xlsx"), {"constant_memory": True, "strings_to_formulas": False,
                                                               "strings_to_urls": False, "in_memory": False})
    sheet = workbook.add_worksheet("学时")
    sheet.write_row(0, 0, headers, workbook.add_format({"bold": True}))
    for r, row in enumerate(rows, start=1):
        sheet.write_number(r, 0, float(row[0]))
        for c in (1, 2):
            if row[c] is not None:
                sheet.write_string(r, c, row[c])
    workbook.close()
    with SheetWriter(tmp_path / "ours.xlsx", "学时", headers, [True, False, False]) as ours:
        ours.write_rows(iter(rows))
    assert sheet_xml(tmp_path / "ours.xlsx") == sheet_xml(tmp_path / "x.xlsx")
    with zipfile.ZipFile(tmp_path / "ours.xlsx") as a, zipfile.ZipFile(tmp_path / "x.xlsx") as b:
        assert a.namelist() == b.namelist()


def test_xlsx_of_more_rows_than_excel_holds_is_refused(tmp_path, monkeypatch):
    from lms.records import xlsx

    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)
    with pytest.raises(xlsx.TooManyRows):
        with xlsx.SheetWriter(tmp_path / "big.xlsx", "学时", ["n"], [True]) as sheet:
            sheet.write_rows([[n] for n in range(10)])
    assert not (tmp_path / "big.xlsx").exists()
