"""The dashboard /admin/dashboard and its CSV tables (issue 11): who may see which unit's figures, and
hostile names in the downloaded tables."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest

from lms.accounts.models import utcnow
from lms.accounts.services import get_or_create_unit
from lms.courses.models import Course, CourseAudience
from lms.extensions import db
from lms.records.dashboard import TABLES
from lms.records.models import TrainingRecord
from tests.conftest import BrowserLikeClient

HOSTILE_UNIT = "=HYPERLINK(\"http://evil\",\"点我\")"
HOSTILE_NAME = "+SUM(1+1)*cmd|' /C calc'!A0"
HOSTILE_COURSE = "@cmd /c calc"
HOSTILE_CODE = 'x"y;z'


@pytest.fixture
def world(app, units, make_user):
    """town-a (with a leaf village) and town-b, plus `town-ab`, a sibling whose code starts with town-a's;
    a unit admin of town-a, a learner and an instructor; people with records in every unit."""
    village = get_or_create_unit("village-a1", "桂溪村", "village", units["town_a"])
    prefix = get_or_create_unit("town-ab", "相邻镇", "township", units["county"])
    hostile = get_or_create_unit(HOSTILE_CODE, HOSTILE_UNIT, "village", units["town_b"])
    db.session.commit()
    course = Course(slug="c", title=HOSTILE_COURSE, credit_hours=Decimal("1"), published=True,
                    audience_rows=[CourseAudience(audience="elder")])
    db.session.add(course)
    db.session.commit()
    people = {
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre"),
        "learner": make_user("learner-a", unit="village-a1"),
        "teacher": make_user("teacher-a", role="instructor", unit="town-a", audience="cadre"),
        "b": make_user("learner-b", unit="town-b", full_name="澄溪学员"),
        "ab": make_user("learner-ab", unit="town-ab", full_name="相邻镇学员"),
        "hostile": make_user("mallory", unit=HOSTILE_CODE, full_name=HOSTILE_NAME),
    }
    for who in ("learner", "b", "ab", "hostile"):
        db.session.add(TrainingRecord(user_id=people[who].id, course_id=course.id, title=course.title, kind="course",
                                      hours=Decimal("1"), source="online", earned_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    return {**people, **units, "village": village, "prefix": prefix, "hostile_unit": hostile}


def client_as(app, user=None) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    if user is not None:
        assert client.login(user.username).status_code == 302
    return client


def test_unit_admin_asking_for_a_unit_outside_their_subtree_gets_403(app, world):
    """?unit= naming a sibling township, one whose code merely starts with theirs, or the county above:
    403 for the page and every CSV table — no figure, name or count of those units leaks."""
    client = client_as(app, world["ua_a"])
    for code in ("town-b", "town-ab", "county", HOSTILE_CODE):
        page = client.get("/admin/dashboard", query_string={"unit": code})
        assert page.status_code == 403, code
        assert "澄溪学员" not in page.get_data(as_text=True) and "相邻镇" not in page.get_data(as_text=True)
        for table in TABLES:
            response = client.get("/admin/dashboard.csv", query_string={"table": table, "unit": code})
            assert response.status_code == 403, (code, table)
    own = client.get("/admin/dashboard").get_data(as_text=True)  # their own scope shows none of the others
    assert "桂溪村" in own and "澄溪镇" not in own and "相邻镇" not in own
    people = client.get("/admin/dashboard.csv", query_string={"table": "people", "unit": "village-a1"})
    assert people.status_code == 200 and "相邻镇学员" not in people.get_data(as_text=True)


def test_learners_instructors_and_strangers_are_refused(app, world):
    """A learner or an instructor gets 403 on the page and on every CSV table (a learner reading their
    village's people list would see their neighbours' 学时); anonymous is sent to sign in."""
    for who in ("learner", "teacher"):
        client = client_as(app, world[who])
        assert client.get("/admin/dashboard").status_code == 403, who
        for table in TABLES:
            assert client.get(f"/admin/dashboard.csv?table={table}&unit=village-a1").status_code == 403, (who, table)
    anonymous = app.test_client().get("/admin/dashboard.csv?table=people&unit=village-a1")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def test_formula_like_unit_person_and_course_names_are_neutralised_in_csv(app, world):
    """A unit named =HYPERLINK(…), a person named +SUM(…)|cmd and a course titled @cmd come out of every
    CSV table as text starting with an apostrophe (a spreadsheet shows them, never runs them); the
    numbers beside them stay numbers."""
    client = client_as(app, world["admin"])
    cells = []
    units = read_csv(client.get("/admin/dashboard.csv", query_string={"table": "units", "unit": "town-b"}))
    hostile_row = next(row for row in units if HOSTILE_UNIT in row[0])
    assert hostile_row[0] == "'" + HOSTILE_UNIT and hostile_row[2] == "1.00"
    cells += [row[0] for row in units]
    cadres = read_csv(client.get("/admin/dashboard.csv", query_string={"table": "cadres", "unit": "town-b"}))
    assert ["'" + HOSTILE_UNIT] == [row[0] for row in cadres if HOSTILE_UNIT in row[0]]
    courses = read_csv(client.get("/admin/dashboard.csv", query_string={"table": "courses"}))
    assert courses[1][0] == "'" + HOSTILE_COURSE and courses[1][2] == "4"
    people = read_csv(client.get("/admin/dashboard.csv", query_string={"table": "people", "unit": HOSTILE_CODE}))
    assert people[1][0] == "'" + HOSTILE_NAME and people[1][2] == "'" + HOSTILE_UNIT and people[1][5] == "1.00"
    for rows in (units, cadres, courses, people):
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "-", "|", "%")), cell


def test_a_unit_code_cannot_break_out_of_the_download_header(app, world):
    """A unit code holding a quote and a semicolon goes into the file name as underscores: the
    Content-Disposition header stays one well-formed attachment."""
    client = client_as(app, world["admin"])
    response = client.get("/admin/dashboard.csv", query_string={"table": "people", "unit": HOSTILE_CODE})
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="tongji-people-') and disposition.endswith('-x_y_z.csv"')
    assert disposition.count('"') == 2
