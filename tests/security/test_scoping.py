"""Unit scoping (issue 9, defect 4): unit codes holding LIKE wildcards (`_`, `%`), a backslash
(PostgreSQL's LIKE escape) or another letter case must not open a sibling unit's people to the
administrator, instructor or learner of `town_1`, `a%` or `x\\y` — in exports (web and CLI), assignment
reports, classroom lists and learners' task lists."""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest

from lms.extensions import db
from tests.conftest import BrowserLikeClient, _make_app

# an administrator's unit → the siblings that a wildcard (or SQLite's case-blind LIKE) let in before
SIBLINGS = {"town_1": ["town11", "TOWN_1"], "a%": ["ab"], "x\\y": ["xy"]}
CODES = [code for root, siblings in SIBLINGS.items() for code in [root, *siblings]]


def build_tree():
    """Under the county, one unit per code with a class below it; in each, a cadre learner and a
    pupil of the class with 1 学时 each, a unit admin and an instructor (no records). Returns
    {code: usernames of its learners} and a cadre course."""
    from werkzeug.security import generate_password_hash

    from lms.accounts.models import User, utcnow
    from lms.accounts.services import get_or_create_unit
    from lms.courses.models import Course, CourseAudience
    from lms.records.models import TrainingRecord

    password_hash = generate_password_hash("correct-horse")  # once: hashing 28 passwords is slow

    def person(username, role, audience, where):
        user = User(username=username, full_name=f"学员{username}", password_hash=password_hash, role=role,
                    audience=audience, unit=where)
        db.session.add(user)
        return user

    county = get_or_create_unit("county", "垫江县", "county")
    learners = {}
    for n, code in enumerate(CODES):
        unit = get_or_create_unit(code, f"单位{code}", "township", county)
        klass = get_or_create_unit(f"{code}-class", f"班级{code}", "class", unit)
        learners[code] = {f"learner{n}", f"pupil{n}"}
        for username, where in ((f"learner{n}", unit), (f"pupil{n}", klass)):
            db.session.add(TrainingRecord(user=person(username, "learner", "cadre", where), title="防范电信诈骗",
                                          kind="course", hours=Decimal("1.00"), source="admin", earned_at=utcnow()))
        person(f"admin{n}", "unit_admin", "elder", unit)
        person(f"teacher{n}", "instructor", "elder", unit)
    course = Course(slug="scope-course", title="范围测试课程", credit_hours=Decimal("1"),
                    audience_rows=[CourseAudience(audience="cadre")])
    db.session.add(course)
    db.session.commit()
    return learners, course


def staff(kind: str, code: str) -> str:
    return f"{kind}{CODES.index(code)}"


def unit(code):
    from lms.accounts.models import Unit

    return Unit.query.filter_by(code=code).one()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_app(request, tmp_path):
    """An app on SQLite, then on PostgreSQL (where `\\` is LIKE's escape character)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    app = _make_app(tmp_path, database_url=url)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_every_scoped_query_keeps_to_the_subtree_on_sqlite_and_postgres(any_db_app):
    """Subtree of `town_1`, `a%`, `x\\y` asked through records export, summary, assignment report, unit
    assignment, classroom list and task list: gets exactly that subtree — never `town11`, `TOWN_1`, `ab`, `xy`."""
    from lms.accounts.models import Unit, User
    from lms.accounts.scope import in_subtree, unit_in_subtree
    from lms.classroom.services import classes_for
    from lms.records import assignments
    from lms.records.services import records_query, summary_query

    learners, course = build_tree()
    due = assignments.today_local() + timedelta(days=30)
    everyone = assignments.create_requirement(course, due, audience="cadre")
    for root, siblings in SIBLINGS.items():
        subtree = unit(root)
        mine = learners[root]
        assert {user.username for _, user, _ in records_query(unit=subtree)} == mine
        assert {person.username for person in summary_query(unit=subtree)} == mine
        assert {u.username for u in assignments.assignees_query(everyone, within=subtree)} == mine
        assert [u.code for u in classes_for(User.query.filter_by(username=staff("teacher", root)).one())] \
            == [f"{root}-class"]
        assert {u.code for u in Unit.query.filter(in_subtree(subtree))} == {root, f"{root}-class"}
        assert {u.code for u in Unit.query if unit_in_subtree(u, subtree)} == {root, f"{root}-class"}

        for_unit = assignments.create_requirement(course, due, audience="cadre", unit=subtree)
        assert {u.username for u in assignments.assignees_query(for_unit)} == mine
        for sibling in siblings:
            outsider = User.query.filter_by(username=sorted(learners[sibling])[0]).one()
            tasks = assignments.my_assignments(outsider)["items"]
            assert [t["requirement"].id for t in tasks] == [everyone.id]  # not the unit's own task
        assignments.withdraw_requirement(for_unit)


@pytest.fixture
def tree(app):
    return build_tree()


def signed_in(app, username) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(username).status_code == 302
    return client


def usernames_in_csv(raw: bytes, column: str = "账号") -> set[str]:
    return {row[column] for row in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}


def test_unit_admin_web_export_holds_only_their_subtree(app, tree):
    """Unit admins of `town_1`, `a%`, `x\\y` download detail and summary CSV: only their own people;
    asking for a sibling unit by code gets 403."""
    learners, _ = tree
    for root, siblings in SIBLINGS.items():
        client = signed_in(app, staff("admin", root))
        for query in ("fmt=csv", "fmt=csv&summary=y"):
            response = client.get(f"/admin/hours/export?{query}")
            assert response.status_code == 200 and usernames_in_csv(response.data) == learners[root], query
        for sibling in siblings:
            assert client.get(f"/admin/hours/export?fmt=csv&unit={quote(sibling)}").status_code == 403


def test_cli_export_of_a_wildcard_unit_holds_only_its_subtree(app, tree, tmp_path):
    """`lms hours export --unit town_1|a%|x\\y` (detail and --summary): only that subtree's records."""
    learners, _ = tree
    runner = app.test_cli_runner()
    for root in SIBLINGS:
        for extra in ([], ["--summary"]):
            out = tmp_path / "out.csv"
            result = runner.invoke(args=["hours", "export", "--unit", root, *extra, "-o", str(out)])
            assert result.exit_code == 0, result.output
            assert usernames_in_csv(out.read_bytes()) == learners[root]


def test_assignment_report_and_task_list_hold_only_the_subtree(app, tree):
    """Unit admins' 未完成名单 (page and CSV) for an audience-wide task: only their own learners, a
    sibling's report gets 403; a task for unit `town_1`, `a%`, `x\\y` is on /my of its learners
    only, not of `town11`, `TOWN_1`, `ab`, `xy`."""
    from lms.records import assignments

    learners, course = tree
    due = assignments.today_local() + timedelta(days=7)
    assignments.create_requirement(course, due, audience="cadre")
    for root, siblings in SIBLINGS.items():
        client = signed_in(app, staff("admin", root))
        assert usernames_in_csv(client.get("/admin/assignments/report.csv").data) == learners[root]
        page = client.get("/admin/assignments/report").get_data(as_text=True)
        for sibling in siblings:
            assert not any(f"学员{name}<" in page for name in learners[sibling])
            assert client.get(f"/admin/assignments/report?unit={quote(sibling)}").status_code == 403

        # due earlier than the audience-wide task, so /my shows this one where it applies
        task = assignments.create_requirement(course, due - timedelta(days=1), unit=unit(root), note=f"任务{root}")
        for code in [root, *siblings]:
            page = signed_in(app, sorted(learners[code])[0]).get("/my").get_data(as_text=True)
            assert (f"任务{root}" in page) == (code == root), code
        assignments.withdraw_requirement(task)


def test_instructor_classroom_list_holds_only_their_classes(app, tree):
    """Instructors of `town_1`, `a%`, `x\\y`: /classroom lists only their own class; opening a
    sibling's class roster gets 403."""
    for root, siblings in SIBLINGS.items():
        client = signed_in(app, staff("teacher", root))
        page = client.get("/classroom").get_data(as_text=True)
        assert f"班级{root}<" in page
        for sibling in siblings:
            assert f"班级{sibling}<" not in page
            assert client.get(f"/classroom/{quote(sibling + '-class', safe='')}").status_code == 403


def test_unit_code_with_a_slash_is_refused(app, units):
    """Creating unit `town-a/x` under the county (its path would pose as a unit below town-a): refused
    with a message naming the code; nothing is created."""
    from lms.accounts.models import Unit
    from lms.accounts.services import AccountError, get_or_create_unit

    for bad in ("town-a/x", "", "a b", "tab\tcode"):
        with pytest.raises(AccountError, match="单位编码无效"):
            get_or_create_unit(bad, "冒充单位", "village", units["county"])
    db.session.rollback()
    assert Unit.query.filter(Unit.code.in_(["town-a/x", "", "a b", "tab\tcode"])).count() == 0
    assert get_or_create_unit("a%_\\b", "通配符单位", "village", units["county"]).path == "/county/a%_\\b/"
