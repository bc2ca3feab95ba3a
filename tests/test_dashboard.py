"""The dashboard /admin/dashboard (issue 11): its figures are the export's, in the viewer's scope, with a
drill-down from the county to a unit to its people, every table as CSV, any year; the rollups it reads
equal a full recount of the ledger after any mix of writes (SQLite and PostgreSQL)."""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

import pytest

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import in_subtree
from lms.accounts.services import get_or_create_unit
from lms.audiences import AUDIENCE_CODES, audience_label
from lms.courses.models import Course, CourseAudience
from lms.extensions import db
from lms.records import dashboard, rollups
from lms.records.assignments import set_target
from lms.records.export import export_rows
from lms.records.models import TrainingRecord
from lms.records.services import credit_course_completion, day_start_utc, to_local
from tests.conftest import BrowserLikeClient

YEAR = to_local(utcnow()).year - 1  # last year: the crediting service's records (now) fall in YEAR + 1
CADRE_TARGET = Decimal("4")


def local(year, month, day, hour=12, minute=0) -> datetime:
    """A moment given in Asia/Shanghai, as the ledger's naive UTC."""
    return day_start_utc(date(year, month, day)) + (datetime(2000, 1, 1, hour, minute) - datetime(2000, 1, 1))


def add(user, hours, when, kind="offline", course=None, title="线下科普活动", reverses=None, key=None):
    record = TrainingRecord(user_id=user.id, course_id=course.id if course else None, kind=kind,
                            title=course.title if course and kind == "course" and title == "线下科普活动" else title,
                            hours=Decimal(str(hours)), earned_at=when, source="admin" if kind == "correction" else
                            "online" if kind == "course" else "offline", completion_key=key,
                            reverses_id=reverses.id if reverses else None)
    db.session.add(record)
    db.session.commit()
    return record


@pytest.fixture
def county(app, units, make_user):
    """The county (town-a with villages a1, a2; town-b a leaf), people of every audience, two courses, and a
    ledger across two years: course completions with a bonus record, offline records, a correction of −1,
    records on both sides of New Year in Asia/Shanghai, a deactivated person with records, and a person
    moved from village a1 to town-b after earning their records."""
    a1 = get_or_create_unit("village-a1", "桂溪村", "village", units["town_a"])
    a2 = get_or_create_unit("village-a2", "新民村", "village", units["town_a"])
    db.session.commit()
    set_target("cadre", CADRE_TARGET)
    fraud = Course(slug="fraud", title="防范电信诈骗", credit_hours=Decimal("1"), published=True,
                   audience_rows=[CourseAudience(audience="elder"), CourseAudience(audience="farmer")])
    ai = Course(slug="ai", title="人工智能前沿", credit_hours=Decimal("2.5"), published=True,
                audience_rows=[CourseAudience(audience="cadre")])
    db.session.add_all([fraud, ai])
    db.session.commit()
    p = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre", full_name="县管理员"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre", full_name="镇管理员"),
        "elder_a1": make_user("elder-a1", unit="village-a1", audience="elder", full_name="张桂兰"),
        "farmer_a1": make_user("farmer-a1", unit="village-a1", audience="farmer", full_name="李富贵"),
        "cadre_a1": make_user("cadre-a1", unit="village-a1", audience="cadre", full_name="王建国"),
        "cadre_a2": make_user("cadre-a2", unit="village-a2", audience="cadre", full_name="赵志强"),
        "idle_a2": make_user("idle-a2", unit="village-a2", audience="worker", full_name="孙小军"),
        "mover": make_user("mover", unit="village-a1", audience="elder", full_name="周秀英"),
        "youth_b": make_user("youth-b", unit="town-b", audience="youth", full_name="吴子涵"),
        "cadre_b": make_user("cadre-b", unit="town-b", audience="cadre", full_name="郑德明"),
        "gone_b": make_user("gone-b", unit="town-b", audience="farmer", full_name="何淑芬"),
        "county_staff": make_user("staff", unit="county", audience="cadre", full_name="县直干部"),
    }
    # course completions (the crediting service: its certificate, key and rollup trigger), one with a bonus
    for who, course in (("elder_a1", fraud), ("farmer_a1", fraud), ("mover", fraud), ("cadre_a1", ai),
                        ("cadre_b", ai), ("gone_b", fraud)):
        credit_course_completion(p[who].id, course)
    completions = {r.user_id: r for r in TrainingRecord.query.filter_by(kind="course")}
    add(p["cadre_a1"], 0.5, completions[p["cadre_a1"].id].earned_at, kind="course", course=ai,
        title="人工智能前沿（结业测验加分）", key=f"bonus:{ai.id}:user:{p['cadre_a1'].id}")
    # the completions happened now; the figures are for YEAR: offline records and more completions in it
    add(p["elder_a1"], 2, local(YEAR, 1, 15))
    add(p["elder_a1"], 1.5, local(YEAR, 3, 2))
    add(p["farmer_a1"], 3, local(YEAR, 3, 20))
    add(p["cadre_a1"], 3, local(YEAR, 5, 1))
    add(p["cadre_a1"], 1.25, local(YEAR, 12, 31, 23, 30))  # 23:30 on New Year's Eve in Shanghai: still YEAR
    add(p["cadre_a2"], 2, local(YEAR, 6, 6))
    add(p["cadre_b"], 4, local(YEAR, 7, 7))
    add(p["youth_b"], 1, local(YEAR, 8, 8))
    add(p["county_staff"], 5, local(YEAR, 9, 9))
    add(p["gone_b"], 2, local(YEAR, 2, 2))
    moved = add(p["mover"], 2.5, local(YEAR, 4, 4))
    old_fraud = add(p["farmer_a1"], 1, local(YEAR, 10, 10), kind="course", course=fraud,
                    key=f"course-{YEAR}:{fraud.id}:user:{p['farmer_a1'].id}")
    add(p["cadre_a2"], 2.5, local(YEAR, 11, 11), kind="course", course=ai,
        key=f"course-{YEAR}:{ai.id}:user:{p['cadre_a2'].id}")
    # a correction: minus one hour of the farmer's course, pointing at it (counts in every sum)
    add(p["farmer_a1"], -1, local(YEAR, 10, 20), kind="correction", title="更正：防范电信诈骗", reverses=old_fraud,
        key=f"reversal:{old_fraud.id}")
    add(p["cadre_b"], 9, local(YEAR - 1, 12, 31, 23, 59))  # the year before (in Shanghai)
    add(p["cadre_b"], 1, local(YEAR + 1, 1, 1, 0, 10))  # the year after: 16:10 UTC on Dec 31
    # the mover goes to town-b, and takes their records along; one person is deactivated
    p["mover"].unit_id = units["town_b"].id
    p["gone_b"].active = False
    db.session.commit()
    assert moved.user.unit.code == "town-b"
    return {**p, **units, "a1": a1, "a2": a2, "fraud": fraud, "ai": ai}


def view_for(user, unit=None, audience=None, year=YEAR):
    return dashboard.make_view(user, year, unit, audience)


def summary(unit, audience=None, year=YEAR) -> list[dict]:
    _columns, _query, rows = export_rows(True, date(year, 1, 1), date(year, 12, 31), unit, audience)
    return list(rows)


def detail(unit, audience=None, year=YEAR) -> list[dict]:
    _columns, _query, rows = export_rows(False, date(year, 1, 1), date(year, 12, 31), unit, audience)
    return list(rows)


def registered(unit, audience=None) -> int:
    query = User.query.join(Unit, User.unit_id == Unit.id).filter(User.active.is_(True), in_subtree(unit))
    if audience:
        query = query.filter(User.audience == audience)
    return query.count()


def direct_rows(rows, unit):
    return [row for row in rows if row["unit_code"] == unit.code]


def assert_group_is_export(group, rows, headcount):
    assert group.hours == sum((row["total_hours"] for row in rows), Decimal("0")), group.label
    assert group.learners == len(rows), group.label
    assert group.headcount == headcount, group.label
    assert group.at_target == sum(row["target_met"] == "是" for row in rows), group.label


def check_board_against_export(board, focus, audience=None):
    """Every figure of `board` equals what the export of the same filters gives."""
    rows = summary(focus, audience)
    assert_group_is_export(board.units.total, rows, registered(focus, audience))
    # by month: the detail rows by their local month
    months = defaultdict(Decimal)
    for row in detail(focus, audience):
        months[int(row["completed_at"][5:7])] += row["hours"]
    assert board.months == [months[m].quantize(Decimal("0.01")) for m in range(1, 13)]
    # by unit: each child's subtree; the focus's own people; they add up to the total
    for group in board.units.rows:
        if group.unit is not None:
            unit = Unit.query.filter_by(code=group.unit.code).one()
            assert_group_is_export(group, summary(unit, audience), registered(unit, audience))
            cadres = summary(unit, "cadre") if audience in (None, "cadre") else []
            assert group.cadre.at_target == sum(row["target_met"] == "是" for row in cadres)
            assert group.cadre.hours == sum((row["total_hours"] for row in cadres), Decimal("0"))
            assert group.cadre.headcount == (registered(unit, "cadre") if audience in (None, "cadre") else 0)
        else:
            own = User.query.filter(User.unit_id == focus.id, User.active.is_(True))
            if audience:
                own = own.filter(User.audience == audience)
            assert_group_is_export(group, direct_rows(rows, focus), own.count())
    assert sum((g.hours for g in board.units.rows), Decimal("0")) == board.units.total.hours
    assert sum(g.learners for g in board.units.rows) == board.units.total.learners
    # by audience
    for group in board.audiences:
        assert_group_is_export(group, summary(focus, group.key), registered(focus, group.key))
    # completion per course: people credited (a 线上课程 row of the course) ÷ registered of its audiences
    for row in board.courses:
        credited = {r["username"] for r in detail(focus, audience) if r["type"] == "线上课程" and r["activity"] == row.title}
        assert row.credited == len(credited), row.title
        assert row.expected == sum(registered(focus, a) for a in row.audiences), row.title


def test_county_figures_equal_the_export(county):
    board = dashboard.dashboard(view_for(county["admin"]))
    assert board.view.focus.code == "county" and not board.units.leaf
    assert [g.label for g in board.units.rows] == ["桂溪街道", "澄溪镇", "本级（直属人员）"]
    check_board_against_export(board, county["county"])
    # and by hand, the facts the data was built for
    total = board.units.total
    assert total.hours == Decimal("29.75")  # 2+1.5+3+3+1.25+2+4+1+5+2+2.5+1+2.5−1 (the next and last year not)
    assert board.months[11] == Decimal("1.25") and board.months[9] == Decimal("0.00")  # +1 −1 in October
    town_a, town_b = board.units.rows[0], board.units.rows[1]
    assert town_b.learners == 4 and town_b.headcount == 3  # the mover's records moved; 何淑芬 deactivated
    assert town_a.cadre.at_target == 2 and town_a.cadre.headcount == 3  # 王建国 4.25, 赵志强 4.5; 镇管理员 0
    fraud = next(row for row in board.courses if row.title == "防范电信诈骗")
    assert (fraud.credited, fraud.expected) == (1, 3)  # the YEAR completion; active elders and farmers


def test_a_unit_and_an_audience_filter_equal_the_export(county):
    town_a = county["town_a"]
    for audience in (None, "cadre", "elder", "youth"):
        board = dashboard.dashboard(view_for(county["admin"], town_a, audience))
        check_board_against_export(board, town_a, audience)
    board = dashboard.dashboard(view_for(county["admin"], None, "farmer"))
    check_board_against_export(board, county["county"], "farmer")
    assert [g.key for g in board.audiences] == ["farmer"]


def test_page_shows_the_figures_with_a_table_and_csv_under_every_chart(app, county):
    client = signed_in(app, county["admin"])
    response = client.get(f"/admin/dashboard?year={YEAR}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert figure(page, "hours") == "29.75" and figure(page, "headcount") == str(registered(county["county"]))
    for section in ("months", "units", "audiences", "courses", "cadres"):
        block = re.search(rf'<section[^>]*id="{section}">.*?</section>', page, re.S).group(0)
        assert "<svg" in block and f'id="{section}-table"' in block and "<caption>" in block, section
        assert f"/admin/dashboard.csv?table={section}&amp;year={YEAR}&amp;unit=county" in block, section
    assert f'href="/admin/dashboard?unit=town-a&amp;year={YEAR}"' in page  # drill-down keeps the year
    assert "style=" not in page and not re.search(r"<script(?![^>]*\bsrc=)", page)  # the CSP's rules
    assert '<a href="/admin/dashboard" aria-current="page">统计图表</a>' in page


def test_drill_down_from_the_county_to_a_village_and_its_people(app, county):
    client = signed_in(app, county["admin"])
    town = client.get(f"/admin/dashboard?unit=town-a&year={YEAR}").get_data(as_text=True)
    assert f'href="/admin/dashboard?unit=village-a1&amp;year={YEAR}"' in town and "新民村" in town
    assert 'id="people"' not in town  # not a leaf: its villages, not its people
    assert f'<a href="/admin/dashboard?unit=county&amp;year={YEAR}">垫江县</a>' in town  # the way back up
    village = client.get(f"/admin/dashboard?unit=village-a1&year={YEAR}").get_data(as_text=True)
    table = re.search(r'<table class="table" id="people-table">.*?</table>', village, re.S).group(0)
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td>[^<]+</td><td>[^<]+</td><td class="num">([^<]+)</td>'
                      r'<td class="num">([^<]+)</td><td>([^<]+)</td></tr>', table)
    assert sorted(rows) == sorted([("张桂兰", "3.5", "4", "否"), ("李富贵", "3", "8", "否"),
                                   ("王建国", "4.25", "4", "是")])  # the mover has gone to town-b
    # the people shown are the export's summary rows of the village (and nobody of theirs is missing)
    exported = summary(county["a1"])
    assert {(r["name"], r["total_hours"], r["target_met"]) for r in exported} == {
        ("张桂兰", Decimal("3.50"), "否"), ("李富贵", Decimal("3.00"), "否"), ("王建国", Decimal("4.25"), "是")}
    idle = client.get(f"/admin/dashboard?unit=village-a2&year={YEAR}").get_data(as_text=True)
    assert "孙小军" in idle and "赵志强" in idle  # registered people without a record are listed too (0 学时)


def test_unit_admin_sees_their_subtree_and_nothing_above_or_beside(app, county):
    client = signed_in(app, county["ua_a"])
    page = client.get(f"/admin/dashboard?year={YEAR}").get_data(as_text=True)
    assert "桂溪村" in page and "新民村" in page and "澄溪镇" not in page
    board = dashboard.dashboard(view_for(county["ua_a"]))
    assert board.view.focus.code == "town-a"
    check_board_against_export(board, county["town_a"])
    assert "垫江县" not in re.search(r'<nav class="crumbs.*?</nav>', page, re.S).group(0)
    assert client.get("/admin/dashboard?unit=village-a2").status_code == 200
    for outside in ("town-b", "county"):
        assert client.get(f"/admin/dashboard?unit={outside}").status_code == 403
        assert client.get(f"/admin/dashboard.csv?table=units&unit={outside}").status_code == 403


def read_csv(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_every_table_downloads_as_csv_with_the_pages_figures(app, county):
    client = signed_in(app, county["admin"])
    board = dashboard.dashboard(view_for(county["admin"]))
    units = read_csv(client.get(f"/admin/dashboard.csv?table=units&year={YEAR}"))
    assert units[0] == ["单位", "单位编码", "学时", "注册人数", "有学习记录人数", "参与率(%)"]
    assert units[1:] == [[g.label, g.key, f"{g.hours}", str(g.headcount), str(g.learners),
                          "" if g.participation is None else str(g.participation)] for g in board.units.rows]
    months = read_csv(client.get(f"/admin/dashboard.csv?table=months&year={YEAR}"))
    assert months[1] == ["1月", "2.00"] and len(months) == 13
    audiences = read_csv(client.get(f"/admin/dashboard.csv?table=audiences&year={YEAR}"))
    assert [row[0] for row in audiences[1:]] == [audience_label(code) for code in AUDIENCE_CODES]
    courses = read_csv(client.get(f"/admin/dashboard.csv?table=courses&year={YEAR}"))
    assert ["防范电信诈骗", "老年人、农民", "1", "3", "33.3"] in courses
    cadres = read_csv(client.get(f"/admin/dashboard.csv?table=cadres&year={YEAR}"))
    assert cadres[0] == ["单位", "单位编码", "干部人数", "达标人数", "达标率(%)", "人均学时", "年度目标"]
    assert cadres[1][:6] == ["桂溪街道", "town-a", "3", "2", "66.7", "2.92"]  # (4.25 + 4.5 + 0) / 3
    people = read_csv(client.get(f"/admin/dashboard.csv?table=people&year={YEAR}&unit=village-a1"))
    assert people[0] == ["姓名", "账号", "单位", "单位编码", "人群", "学时合计", "年度目标", "是否达标"]
    assert ["王建国", "cadre-a1", "桂溪村", "village-a1", "领导干部和公务员", "4.25", "4.00", "是"] in people
    response = client.get(f"/admin/dashboard.csv?table=units&year={YEAR}&unit=town-a&audience=cadre")
    assert response.headers["Content-Disposition"] == f'attachment; filename="tongji-units-{YEAR}-town-a-cadre.csv"'


def test_year_filter_and_bad_filters_get_a_clear_answer(app, county):
    client = signed_in(app, county["admin"])
    before = client.get(f"/admin/dashboard?year={YEAR - 1}").get_data(as_text=True)
    assert figure(before, "hours") == "9"  # the one record of the year before
    now = client.get("/admin/dashboard").get_data(as_text=True)
    assert re.search(r'name="year" type="text" value="\d{4}"', now)  # this year when none is asked
    for query, message in (("year=1999", "年份应是 2000 到"), ("year=abc", "年份应是"),
                           ("unit=nowhere", "单位编码不存在"), ("audience=aliens", "没有这个人群")):
        response = client.get(f"/admin/dashboard?{query}")
        assert response.status_code == 400 and message in response.get_data(as_text=True), query
        assert client.get(f"/admin/dashboard.csv?table=units&{query}").status_code == 400
    response = client.get("/admin/dashboard.csv?table=secrets")
    assert response.status_code == 400 and "table 参数应是" in response.get_data(as_text=True)


def test_learners_and_instructors_get_403(app, county, make_user):
    teacher = make_user("teacher", role="instructor", unit="county", audience="cadre")
    for user in (county["elder_a1"], teacher):
        client = signed_in(app, user)
        assert client.get("/admin/dashboard").status_code == 403
        assert client.get("/admin/dashboard.csv?table=people&unit=village-a1").status_code == 403


# ---- the rollups -------------------------------------------------------------------------------

def test_rollups_equal_a_full_recount_after_a_mix_of_writes(county):
    """Completions (with a bonus), offline records, a correction, records across New Year, a person moved
    (the fixture); then a whole unit moved and more writes — the rollups still equal the ledger."""
    assert rollups.stored() == rollups.recount()
    people, courses = rollups.stored()
    assert people[(county["cadre_a1"].id, YEAR)] == (Decimal("4.25"), 2)
    assert people[(county["cadre_b"].id, YEAR - 1)] == (Decimal("9.00"), 1)
    assert courses[(county["ai"].id, YEAR)] == 1  # 赵志强 in YEAR; 王建国's completion and bonus are this year
    from lms.accounts.units import move_unit

    move_unit(county["admin"], county["a2"], county["town_b"])  # a village changes township
    add(county["cadre_a2"], 1, local(YEAR, 12, 1))
    add(county["idle_a2"], -0.5, local(YEAR, 12, 2), kind="correction", title="更正")
    credit_course_completion(county["idle_a2"].id, county["fraud"])
    assert rollups.stored() == rollups.recount()
    board = dashboard.dashboard(view_for(county["admin"]))
    check_board_against_export(board, county["county"])


def test_the_dashboard_reads_the_rollups(county):
    """The figures come from the rollups (so a stale rollup would show): a control for the recount test."""
    from sqlalchemy import text

    before = dashboard.dashboard(view_for(county["admin"])).units.total.hours
    db.session.execute(text("UPDATE ledger_user_year SET hours = hours + 100 WHERE user_id = :u AND year = :y"),
                       {"u": county["elder_a1"].id, "y": YEAR})
    assert dashboard.dashboard(view_for(county["admin"])).units.total.hours == before + 100
    assert rollups.stored() != rollups.recount()
    db.session.rollback()


@pytest.mark.postgres
def test_rollup_triggers_on_postgresql(tmp_path, postgres_url, media_dir):
    from tests.conftest import _make_app

    app = _make_app(tmp_path, database_url=postgres_url, data_dir=media_dir)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        db.session.commit()
        from lms.accounts.services import create_user

        zhang = create_user("zhang", "张三", "correct-horse", "learner", "cadre", "county")
        course = Course(slug="ai", title="人工智能", credit_hours=Decimal("1"), published=True,
                        audience_rows=[CourseAudience(audience="cadre")])
        db.session.add(course)
        db.session.commit()
        credit_course_completion(zhang.id, course)
        add(zhang, 0.5, TrainingRecord.query.one().earned_at, kind="course", course=course, title="加分",
            key=f"bonus:{course.id}:user:{zhang.id}")
        add(zhang, 2, local(YEAR, 12, 31, 23, 59))
        first = add(zhang, 1, local(YEAR + 1, 1, 1, 0, 1))
        add(zhang, -1, local(YEAR + 1, 1, 2), kind="correction", reverses=first, key=f"reversal:{first.id}")
        assert rollups.stored() == rollups.recount()
        people, courses = rollups.stored()
        assert people[(zhang.id, YEAR)] == (Decimal("2.00"), 1)
        assert people[(zhang.id, YEAR + 1)] == (Decimal("1.50"), 4)  # the completion and its bonus are now (YEAR + 1)
        assert courses == {(course.id, YEAR + 1): 1}  # one person, though two records
        board = dashboard.dashboard(dashboard.make_view(zhang_admin(), YEAR + 1, None, None))
        assert board.units.total.learners == 1 and board.units.leaf
        db.session.remove()
        db.engine.dispose()


def zhang_admin():
    from lms.accounts.services import create_user

    admin = create_user("pg-admin", "管理员", "correct-horse", "admin", "cadre", "county")
    db.session.commit()
    return admin


# ---- helpers -------------------------------------------------------------------------------------

def signed_in(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    response = client.login(user.username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def figure(page: str, name: str) -> str:
    match = re.search(rf'id="fig-{name}"><span class="figure-value">([^<]*)</span>', page)
    assert match, f"figure {name} missing"
    return match.group(1)


# ---- in a browser: accessibility and the Content-Security-Policy -----------------------------------

@pytest.mark.browser
def test_dashboard_pages_have_no_serious_axe_violations(tmp_path, media_dir, browser):
    """axe-core on the county's page, a township's, a leaf unit's (its people list) and a page of bad
    filters; the browser fixture also fails on any Content-Security-Policy violation."""
    from lms.accounts.services import create_user
    from tests.conftest import serve_app
    from tests.test_admin_browser import AXE, AXE_RUN
    from tests.test_browser import PASSWORD, sign_in

    if not AXE.is_file():
        pytest.skip("axe-core is missing: run `npm ci`")
    axe = AXE.read_text(encoding="utf-8")
    from tests.conftest import _make_app

    app = _make_app(tmp_path, data_dir=media_dir)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        town = get_or_create_unit("town-a", "桂溪街道", "township", county)
        get_or_create_unit("class-1", "智能手机一班", "class", town)
        create_user("admin1", "李管理", PASSWORD, "admin", "cadre", "county")
        for n, (audience, unit) in enumerate([("cadre", "class-1"), ("elder", "class-1"), ("farmer", "town-a")]):
            person = create_user(f"p{n}", f"学员{n}", PASSWORD, "learner", audience, unit)
            db.session.flush()
            db.session.add(TrainingRecord(user_id=person.id, title="讲座", kind="offline", hours=Decimal(n + 1),
                                          source="offline", earned_at=utcnow()))
        db.session.commit()
        db.session.remove()
    with serve_app(app) as base:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, base, "admin1")
        problems = []
        for path, status in (("/admin/dashboard", 200), ("/admin/dashboard?unit=town-a", 200),
                             ("/admin/dashboard?unit=class-1", 200), ("/admin/dashboard?year=1999", 400)):
            response = page.goto(f"{base}{path}")
            assert response.status == status, path
            page.wait_for_load_state("networkidle")
            page.evaluate(axe)  # through DevTools: an inline <script> would be refused by the CSP
            violations = page.evaluate(AXE_RUN)
            if violations:
                problems.append(f"{path}: {violations}")
        assert page.locator("#people-table").count() == 0  # the last page is the bad filter's
        page.goto(f"{base}/admin/dashboard?unit=class-1")
        assert "学员0" in page.locator("#people-table").inner_text()
        context.close()
    assert not problems, "\n".join(problems)
