"""Training-hour exports against formula injection (issue 9, defect 11): a hostile name, unit name or
course title is neutralised in CSV and XLSX, while numbers — a correction's -1.00 — stay numbers."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import event

from lms.extensions import db

HOSTILE_NAME = "=HYPERLINK(\"http://evil\",\"点我\")"
HOSTILE_UNIT = "@SUM(1+1)*cmd|' /C calc'!A0"
HOSTILE_TITLES = ["－1+1", "\t=1+1", "＝HYPERLINK(\"x\")", "%0A=1", "|calc", "+1", "\r=1"]


@pytest.fixture
def hostile_records(app, units, make_user):
    """A learner with a hostile name in a unit with a hostile name: one record per hostile title,
    and a correction (-1.00) reversing the first."""
    from lms.accounts.models import utcnow
    from lms.records.models import TrainingRecord

    units["town_a"].name = HOSTILE_UNIT
    learner = make_user("mallory", full_name=HOSTILE_NAME, unit="town-a")
    records = [TrainingRecord(user_id=learner.id, title=title, kind="course", hours=Decimal("1.00"),
                              source="online", earned_at=utcnow()) for title in HOSTILE_TITLES]
    db.session.add_all(records)
    db.session.flush()
    db.session.add(TrainingRecord(user_id=learner.id, title="更正：重复记录", kind="correction",
                                  hours=Decimal("-1.00"), source="admin", earned_at=utcnow(),
                                  reverses_id=records[0].id))
    db.session.commit()
    return learner


def read_csv(raw: bytes) -> list[dict]:
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def signed_in_admin(browser_client, make_user):
    admin = make_user("boss", role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    return browser_client


def test_csv_neutralises_hostile_text_and_keeps_negative_hours_a_number(hostile_records, browser_client, make_user):
    """Detail CSV with hostile name/unit/titles (ASCII, full-width, tab, CR) and a correction: text
    cells get a leading ', the correction's 学时 is -1.00 (no ')."""
    client = signed_in_admin(browser_client, make_user)
    rows = read_csv(client.get("/admin/hours/export?fmt=csv").data)
    assert {r["姓名"] for r in rows} == {"'" + HOSTILE_NAME}
    assert {r["单位"] for r in rows} == {"'" + HOSTILE_UNIT}
    assert sorted(r["课程/活动"] for r in rows if r["类型"] == "线上课程") == sorted("'" + t for t in HOSTILE_TITLES)
    correction = next(r for r in rows if r["类型"] == "更正")
    assert correction["学时"] == "-1.00" and correction["课程/活动"] == "更正：重复记录"


def test_csv_summary_keeps_totals_numbers_and_neutralises_names(hostile_records, browser_client, make_user):
    """Per-person summary CSV: the hostile learner's name and unit neutralised, totals plain numbers —
    also a negative one (a person whose only record in the period is a correction: -1.00, no ')."""
    from lms.accounts.models import utcnow
    from lms.records.models import TrainingRecord

    corrected = make_user("trent", full_name="王五", unit="town-b")
    db.session.add(TrainingRecord(user_id=corrected.id, title="更正", kind="correction", hours=Decimal("-1.00"),
                                  source="admin", earned_at=utcnow()))
    db.session.commit()
    client = signed_in_admin(browser_client, make_user)
    rows = {row["账号"]: row for row in read_csv(client.get("/admin/hours/export?fmt=csv&summary=y").data)}
    assert rows["mallory"]["姓名"] == "'" + HOSTILE_NAME and rows["mallory"]["单位"] == "'" + HOSTILE_UNIT
    assert rows["mallory"]["学时合计"] == f"{len(HOSTILE_TITLES) - 1}.00"
    assert rows["trent"]["学时合计"] == "-1.00" and rows["trent"]["姓名"] == "王五"


def test_xlsx_writes_text_as_strings_and_hours_as_numbers(hostile_records, app, tmp_path):
    """`lms hours export --format xlsx` (detail and --summary) of hostile text: no formula cell
    anywhere, text cells are neutralised strings (full-width ＝ － too), 学时 (also the correction's -1)
    are numeric cells."""
    from openpyxl import load_workbook

    for summary in (False, True):
        out = tmp_path / f"hours-{summary}.xlsx"
        args = ["hours", "export", "--format", "xlsx", "-o", str(out)] + (["--summary"] if summary else [])
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
        sheet = load_workbook(out).active
        header = [cell.value for cell in sheet[1]]
        body = list(sheet.iter_rows(min_row=2))
        assert all(cell.data_type != "f" for row in body for cell in row)
        name, unit_name = header.index("姓名"), header.index("单位")
        assert {(row[name].data_type, row[name].value) for row in body} == {("s", "'" + HOSTILE_NAME)}
        assert {row[unit_name].value for row in body} == {"'" + HOSTILE_UNIT}
        hours = [row[header.index("学时合计" if summary else "学时")] for row in body]
        assert all(cell.data_type == "n" for cell in hours)
        expected = [len(HOSTILE_TITLES) - 1] if summary else [1] * len(HOSTILE_TITLES) + [-1]
        assert sorted(cell.value for cell in hours) == sorted(expected)
        if not summary:
            # a CR is stored as Excel's escape _x000D_, which openpyxl leaves as it is
            titles = [row[header.index("课程/活动")].value.replace("_x000D_", "\r") for row in body]
            assert sorted(titles) == sorted(["'" + t for t in HOSTILE_TITLES] + ["更正：重复记录"])


def test_summary_equals_detail_summed_and_is_one_grouped_query(app, units, make_user, tmp_path):
    """Summary export (CLI and web) of 12 people with several records and corrections: each total is
    the sum of that person's detail rows, and the ledger is read by one GROUP BY query, not per
    record or per person."""
    from lms.accounts.models import utcnow
    from lms.records.models import TrainingRecord

    people = [make_user(f"p{n:02d}", audience=("cadre", "elder")[n % 2], unit=("town-a", "town-b")[n % 3 == 0])
              for n in range(12)]
    for n, person in enumerate(people):
        for hours in ("0.25", "0.50", "1.00")[: 1 + n % 3]:
            db.session.add(TrainingRecord(user_id=person.id, title="课程", kind="course", hours=Decimal(hours),
                                          source="online", earned_at=utcnow()))
        if n % 4 == 0:
            db.session.add(TrainingRecord(user_id=person.id, title="更正", kind="correction",
                                          hours=Decimal("-0.25"), source="admin", earned_at=utcnow()))
    db.session.commit()
    runner = app.test_cli_runner()
    detail, summary = tmp_path / "detail.csv", tmp_path / "summary.csv"
    assert runner.invoke(args=["hours", "export", "-o", str(detail)]).exit_code == 0

    statements = []
    listener = lambda conn, cursor, sql, *rest: statements.append(sql)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        result = runner.invoke(args=["hours", "export", "--summary", "-o", str(summary)])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert result.exit_code == 0, result.output

    summed: dict[str, Decimal] = {}
    for row in read_csv(detail.read_bytes()):
        summed[row["账号"]] = summed.get(row["账号"], Decimal("0")) + Decimal(row["学时"])
    totals = {row["账号"]: Decimal(row["学时合计"]) for row in read_csv(summary.read_bytes())}
    assert totals == summed and len(totals) == 12
    ledger_reads = [sql for sql in statements if "training_record" in sql]
    assert len(ledger_reads) <= 2  # the count for the progress bar and the grouped rows
    assert all("GROUP BY" in sql for sql in ledger_reads)
    assert len(statements) < 12  # nothing per person (targets are read once per audience)

    from tests.conftest import BrowserLikeClient

    client = BrowserLikeClient(app.test_client())
    client.login(make_user("boss", role="admin", unit="county").username)
    web = {row["账号"]: Decimal(row["学时合计"]) for row in read_csv(client.get("/admin/hours/export?summary=y").data)}
    assert web == summed


def test_zero_target_reads_as_no_target_in_the_summary(app, units, make_user, tmp_path):
    """An audience with annual target 0 (no target): the summary says 无目标, not 否."""
    from lms.accounts.models import utcnow
    from lms.records import assignments
    from lms.records.models import TrainingRecord

    learner = make_user("youth1", audience="youth")
    db.session.add(TrainingRecord(user_id=learner.id, title="课程", kind="course", hours=Decimal("1.00"),
                                  source="online", earned_at=utcnow()))
    db.session.commit()
    assignments.set_target("youth", "0")
    out = tmp_path / "summary.csv"
    assert app.test_cli_runner().invoke(args=["hours", "export", "--summary", "-o", str(out)]).exit_code == 0
    (row,) = read_csv(out.read_bytes())
    assert row["年度目标"] == "0.00" and row["是否达标"] == "无目标"


def test_xlsx_text_that_looks_like_sheet_xml_stays_text(app, units, make_user, tmp_path):
    """A course title shaped as xlsxwriter's "rich string" (<r>…</r>), which its constant-memory mode
    would copy into the sheet as raw XML — here smuggling a formula cell and a cell over column A —
    is written as escaped text by `lms hours export --format xlsx` (detail and summary, the web's
    background job uses the same writer): no formula cell, the title reads back unchanged."""
    from openpyxl import load_workbook

    from lms.accounts.models import utcnow
    from lms.records.models import TrainingRecord

    smuggled = '<r><t>x</t></r></is></c><c r="A2"><f>HYPERLINK("http://evil","点我")</f></c><c r="Z9" t="inlineStr"><is><r><t>y</t></r>'
    learner = make_user("eve", full_name="<r><t>伊</t></r>")
    db.session.add(TrainingRecord(user_id=learner.id, title=smuggled, kind="course", hours=Decimal("1.00"),
                                  source="online", earned_at=utcnow()))
    db.session.commit()
    for summary in (False, True):
        out = tmp_path / f"rich-{summary}.xlsx"
        args = ["hours", "export", "--format", "xlsx", "-o", str(out)] + (["--summary"] if summary else [])
        assert app.test_cli_runner().invoke(args=args).exit_code == 0
        sheet = load_workbook(out).active
        cells = [cell for row in sheet.iter_rows() for cell in row]
        assert all(cell.data_type != "f" for cell in cells) and sheet.max_row == 2
        values = {cell.value for cell in cells}
        assert "<r><t>伊</t></r>" in values and (summary or smuggled in values)
