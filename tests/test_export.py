"""Training-hour export: contract columns, BOM, formula safety, scoping and authorisation."""
import csv
import io
import zipfile

from lms.records.services import credit_course_completion

DETAIL_HEADERS = ["记录编号", "姓名", "账号", "单位", "单位编码", "人群", "课程/活动", "类型", "学时",
                  "观看时长(分钟)", "测验成绩", "完成时间", "证书编号"]


def read_csv(raw: bytes):
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV must start with a UTF-8 BOM for Excel"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_admin_downloads_contract_columns_with_bom_and_neutralised_formula(browser_client, make_user, course):
    learner = make_user(full_name="=HYPERLINK(\"http://evil\")", audience="elder")
    credit_course_completion(learner.id, course)
    admin = make_user(role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    response = browser_client.get("/admin/hours/export?fmt=csv")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response.data)
    assert rows[0] == DETAIL_HEADERS
    row = dict(zip(rows[0], rows[1]))
    assert row["姓名"] == "'=HYPERLINK(\"http://evil\")"
    assert row["人群"] == "老年人" and row["类型"] == "线上课程" and row["学时"] == "0.50"
    assert row["完成时间"].endswith("+08:00")  # ISO 8601 in Asia/Shanghai


def test_learner_gets_403_on_export(browser_client, make_user, course):
    learner = make_user()
    browser_client.login(learner.username)
    assert browser_client.get("/admin/hours/export?fmt=csv").status_code == 403
    assert browser_client.get("/admin/hours").status_code == 403


def test_unit_admin_sees_only_their_subtree(browser_client, make_user, course):
    in_a = make_user(unit="town-a")
    in_b = make_user(unit="town-b")
    for user in (in_a, in_b):
        credit_course_completion(user.id, course)
    unit_admin = make_user(role="unit_admin", unit="town-a", audience="cadre")
    browser_client.login(unit_admin.username)
    rows = read_csv(browser_client.get("/admin/hours/export?fmt=csv").data)
    assert [r[2] for r in rows[1:]] == [in_a.username]
    assert browser_client.get("/admin/hours/export?fmt=csv&unit=town-b").status_code == 403


def test_bad_export_filters_get_messages_not_500(browser_client, make_user, course):
    admin = make_user(role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    response = browser_client.get("/admin/hours/export?date_from=2026-05-01&date_to=2026-01-01&unit=nowhere")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "结束日期不能早于开始日期" in body and "单位编码不存在" in body


def test_period_filter_uses_local_days(browser_client, make_user, course, app):
    learner = make_user()
    credit_course_completion(learner.id, course)
    admin = make_user(role="admin", unit="county", audience="cadre")
    browser_client.login(admin.username)
    rows = read_csv(browser_client.get("/admin/hours/export?date_from=2001-01-01&date_to=2001-12-31").data)
    assert len(rows) == 1  # header only


def test_cli_export_csv_xlsx_and_summary(app, make_user, course, tmp_path):
    learner = make_user(full_name="+张三")
    credit_course_completion(learner.id, course)
    runner = app.test_cli_runner()
    out = tmp_path / "hours.csv"
    result = runner.invoke(args=["hours", "export", "--format", "csv", "--unit", "county", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_csv(out.read_bytes())
    assert rows[0] == DETAIL_HEADERS and rows[1][1] == "'+张三"

    english = tmp_path / "hours-en.csv"
    runner.invoke(args=["hours", "export", "--lang", "en", "-o", str(english)])
    assert read_csv(english.read_bytes())[0][:3] == ["record_id", "name", "username"]

    summary = tmp_path / "summary.csv"
    runner.invoke(args=["hours", "export", "--summary", "--audience", "elder", "-o", str(summary)])
    rows = read_csv(summary.read_bytes())
    assert rows[0] == ["姓名", "账号", "单位", "单位编码", "人群", "学时合计", "年度目标", "是否达标"]
    assert rows[1][5] == "0.50" and rows[1][7] == "否"

    xlsx = tmp_path / "hours.xlsx"
    result = runner.invoke(args=["hours", "export", "--format", "xlsx", "-o", str(xlsx)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(xlsx) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "记录编号" in sheet and "'+张三" in sheet


def test_cli_export_unknown_unit_is_a_clear_error(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["hours", "export", "--unit", "nowhere", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code != 0 and "单位编码不存在：nowhere" in result.output


def test_my_hours_for_an_impossible_year_is_400_with_a_message(browser_client, make_user):
    """/my/hours?year=9999 (or another year outside 2000..next year, or not a number): 400 naming the
    range, not 500."""
    from lms.records.services import report_year

    browser_client.login(make_user().username)
    for year in ["9999", "1999", str(report_year(None) + 2), "abc", "２０２４", "-1", "2024.5"]:
        response = browser_client.get("/my/hours", query_string={"year": year})
        assert response.status_code == 400, year
        assert f"年份应是 2000 到 {report_year(None) + 1} 之间的数字" in response.get_data(as_text=True)


def test_my_hours_for_a_past_year_and_this_year(browser_client, make_user):
    browser_client.login(make_user().username)
    assert "（2021）" in browser_client.get("/my/hours?year=2021").get_data(as_text=True)
    assert browser_client.get("/my/hours").status_code == 200
