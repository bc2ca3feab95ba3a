"""科学素质自测 (issue 14): the item pool imports and is validated like quizzes; a sitting draws 12/6/6/6,
is timed by the server, keeps the first answer, scores per dimension out of 40/20/20/20 and counts above
70; retakes wait 30 days; the county's report shows the share with a Wilson interval, in the viewer's
scope, warns under 30 people, and every page says this is a self-selected sample."""
from __future__ import annotations

import shutil
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from lms.accounts.models import utcnow
from lms.assessment import report, services
from lms.assessment.models import AssessmentAnswer, AssessmentItem, AssessmentSitting
from lms.assessment.pool import import_pool, load_pool
from lms.courses.importer import ContentError
from lms.extensions import db
from lms.records.models import TrainingRecord
from tests.assessing import POOL, answer_all, dimension, page_tokens, right_places, wrong_places

DISCLAIMER = "自选样本"
CONTEXT = "15.37%"


@pytest.fixture
def pool(app):
    pool, outcome, counts = import_pool(POOL)
    assert outcome == "created"
    return pool


@pytest.fixture
def pool_copy(tmp_path) -> Path:
    target = tmp_path / "assessment"
    shutil.copytree(POOL, target)
    return target


def _items_file(folder: Path, name="knowledge.yaml"):
    path = folder / "items" / name
    return path, yaml.safe_load(path.read_text(encoding="utf-8"))


def _write(path: Path, data) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


# ---- the pool --------------------------------------------------------------------------------------

def test_the_pool_has_120_balanced_items_and_imports_them(app, pool):
    spec = load_pool(POOL)
    per = Counter(item.dimension for item in spec.items)
    assert len(spec.items) >= 120
    assert per["knowledge"] >= 48 and min(per["methods"], per["thinking"], per["application"]) >= 24
    assert AssessmentItem.query.filter_by(retired=False).count() == len(spec.items)
    assert all(item.benchmark and item.explanation for item in spec.items)
    # the same package again changes nothing
    assert import_pool(POOL)[1] == "unchanged"


def test_item_keys_hide_no_pattern():
    """Right answers spread over the positions, true/false both ways, the right option rarely the longest."""
    spec = load_pool(POOL)
    single = [i for i in spec.items if i.kind == "single"]
    positions = Counter(next(n for n, (_t, ok) in enumerate(i.choices) if ok) for i in single)
    assert max(positions.values()) <= 0.4 * len(single) and min(positions[n] for n in range(4)) >= 0.15 * len(single)
    lengths = [[len(text) for text, _ok in i.choices] for i in single]
    longest_right = sum(1 for i, ls in zip(single, lengths)
                        if ls.count(max(ls)) == 1 and i.choices[ls.index(max(ls))][1])
    assert longest_right <= 0.1 * len(single)
    truefalse = [i.choices[0][1] for i in spec.items if i.kind == "truefalse"]
    assert 0.4 <= sum(truefalse) / len(truefalse) <= 0.6


def test_items_name_only_courses_that_exist():
    spec = load_pool(POOL)
    content = POOL.parent
    named = {slug for item in spec.items for slug in item.courses}
    assert named, "items should point learners at courses"
    assert {slug for slug in named if not (content / slug / "course.yaml").is_file()} == set()


@pytest.mark.parametrize("change, field, message", [
    (lambda q: q.pop("explanation"), "items[0].explanation", "缺少必填字段"),
    (lambda q: q.update(dimension="luck"), "items[0].dimension", "未知的维度"),
    (lambda q: q["choices"][0].update(correct=True), "items[0].choices", "单选题必须恰好有一个正确选项"),
    (lambda q: q.update(difficulty=5), "items[0].difficulty", "难度"),
])
def test_a_malformed_item_is_refused_naming_file_and_field(app, pool_copy, change, field, message):
    path, data = _items_file(pool_copy)
    change(data["items"][0])
    _write(path, data)
    with pytest.raises(ContentError) as refused:
        import_pool(pool_copy)
    assert str(path) in str(refused.value) and field in str(refused.value) and message in str(refused.value)
    assert AssessmentItem.query.count() == 0  # nothing of it written


def test_a_pool_too_small_for_the_draw_is_refused(app, pool_copy):
    path, data = _items_file(pool_copy, "methods.yaml")
    data["items"] = data["items"][:5]  # the draw asks 6 methods items
    _write(path, data)
    with pytest.raises(ContentError) as refused:
        import_pool(pool_copy)
    assert "assessment.yaml" in str(refused.value) and "draw.methods" in str(refused.value)
    assert "题库太小" in str(refused.value)


def test_reimport_updates_changed_items_and_retires_removed_ones_keeping_old_answers(app, pool_copy, make_user):
    import_pool(pool_copy)
    learner = make_user()
    sitting = services.start_or_resume(learner)
    answer_all(sitting, learner)
    services.finish(sitting, learner)
    answered = {a.item_id for a in sitting.answers}
    path, data = _items_file(pool_copy)
    keys = {db.session.get(AssessmentItem, i).key for i in answered}
    changed = next(q for q in data["items"] if q["id"] in keys)
    removed = next(q for q in data["items"] if q["id"] not in keys)
    changed["explanation"] += "（修订）"
    data["items"].remove(removed)
    _write(path, data)
    _pool, outcome, counts = import_pool(pool_copy)
    assert outcome == "updated" and counts == {"added": 0, "changed": 1, "retired": 1}
    versions = AssessmentItem.query.filter_by(key=changed["id"]).order_by(AssessmentItem.version).all()
    assert [(v.version, v.retired) for v in versions] == [(1, True), (2, False)]
    assert versions[1].explanation.endswith("（修订）")
    assert AssessmentItem.query.filter_by(key=removed["id"]).one().retired
    # the old sitting still shows what it answered
    old = db.session.get(AssessmentSitting, sitting.id)
    assert {a.item_id for a in old.answers} == answered and len(services.shown_items(old)) == 30
    assert not versions[1].explanation in [s.item.explanation for s in services.shown_items(old)]


def test_import_content_imports_the_pool_with_the_courses(app, tmp_path, pool_copy):
    result = app.test_cli_runner().invoke(args=["import-content", str(pool_copy.parent)])
    assert result.exit_code == 0, result.output
    assert "自测题库" in result.output and AssessmentItem.query.count() >= 120


def test_import_content_names_a_bad_pool_and_exits_non_zero(app, pool_copy):
    path, data = _items_file(pool_copy, "thinking.yaml")
    data["items"][2]["dimension"] = "feelings"
    _write(path, data)
    result = app.test_cli_runner().invoke(args=["import-content", str(pool_copy)])
    assert result.exit_code != 0
    assert "thinking.yaml" in result.output and "items[2].dimension" in result.output and "未导入 assessment" in result.output
    assert AssessmentItem.query.count() == 0


# ---- a sitting -------------------------------------------------------------------------------------

def test_the_draw_is_balanced_and_shuffled(app, pool, make_user):
    learner = make_user()
    sitting = services.start_or_resume(learner)
    dims = Counter(dimension(sitting, n) for n in range(len(sitting.draw)))
    assert dims == {"knowledge": 12, "methods": 6, "thinking": 6, "application": 6}
    assert len({entry["i"] for entry in sitting.draw}) == 30
    assert sitting.deadline_at - sitting.started_at == timedelta(minutes=15)
    # a second start resumes the open sitting
    assert services.start_or_resume(learner).id == sitting.id
    # choices are shown in another order in some sitting (not always as written)
    orders = [entry["c"] for entry in sitting.draw if len(entry["c"]) > 2]
    assert any(order != sorted(order) for order in orders)


def test_scoring_all_knowledge_right_and_nothing_else_is_40(app, pool, make_user):
    learner = make_user()
    sitting = services.start_or_resume(learner)
    answer_all(sitting, learner, right=lambda n: dimension(sitting, n) == "knowledge")
    services.finish(sitting, learner)
    assert sitting.scores == {"knowledge": "40.00", "methods": "0.00", "thinking": "0.00", "application": "0.00"}
    assert sitting.total == Decimal("40.00") and sitting.qualified is False


def test_seventy_exactly_is_not_above_seventy():
    rules = {"weights": {"knowledge": 40, "methods": 20, "thinking": 20, "application": 20}, "threshold": 70}
    dims = ["knowledge"] * 12 + ["methods"] * 6 + ["thinking"] * 6 + ["application"] * 6
    # 40 + 20 + 10 (3 of 6 thinking) = 70: not above
    right = [True] * 18 + [True] * 3 + [False] * 3 + [False] * 6
    assert services.score(rules, dims, right).total == Decimal("70.00")
    assert services.score(rules, dims, right).qualified is False
    right[22] = True  # one more thinking item: 73.33
    assert services.score(rules, dims, right).total == Decimal("73.33") and services.score(rules, dims, right).qualified


def test_an_answer_after_the_deadline_is_not_counted(app, pool, make_user):
    learner = make_user()
    sitting = services.start_or_resume(learner)
    services.commit_answer(sitting, 0, right_places(sitting, 0), learner)
    late = sitting.deadline_at + timedelta(seconds=1)
    with pytest.raises(services.TimeUp):
        services.commit_answer(sitting, 1, right_places(sitting, 1), learner, now=late)
    assert AssessmentAnswer.query.filter_by(sitting_id=sitting.id).count() == 1
    assert sitting.finished and sitting.finished_at == sitting.deadline_at


def test_a_second_answer_is_ignored(app, pool, make_user):
    learner = make_user()
    sitting = services.start_or_resume(learner)
    first = services.commit_answer(sitting, 0, wrong_places(sitting, 0), learner)
    again = services.commit_answer(sitting, 0, right_places(sitting, 0), learner)
    assert again.id == first.id and not again.correct
    assert AssessmentAnswer.query.filter_by(sitting_id=sitting.id).count() == 1


def test_a_retake_before_30_days_is_refused_with_the_date(app, pool, make_user, browser_client):
    learner = make_user(username="retaker")
    sitting = services.start_or_resume(learner)
    services.finish(sitting, learner)
    with pytest.raises(services.RetakeTooSoon) as wait:
        services.start_or_resume(learner, now=utcnow() + timedelta(days=29))
    assert wait.value.at == sitting.finished_at + timedelta(days=30)
    browser_client.login("retaker")
    token = browser_client.refresh_token("/assessment")
    response = browser_client.post("/assessment/start", data={"csrf_token": token})
    body = response.get_data(as_text=True)
    date = report.to_local(wait.value.at).strftime("%Y-%m-%d")
    assert response.status_code == 409 and date in body and "以后可以再做一次" in body
    # 30 days on, a new sitting starts
    assert services.start_or_resume(learner, now=sitting.finished_at + timedelta(days=30, seconds=1)).id != sitting.id


def test_the_assessment_credits_no_hours(app, pool, make_user):
    learner = make_user()
    sitting = services.start_or_resume(learner)
    answer_all(sitting, learner)
    services.finish(sitting, learner)
    assert sitting.total == Decimal("100.00") and sitting.qualified
    assert TrainingRecord.query.count() == 0


def test_a_learner_takes_it_over_http_and_sees_scores_courses_and_the_disclaimer(app, pool, make_user, browser_client):
    make_user(username="taker")
    browser_client.login("taker")
    intro = browser_client.get("/assessment").get_data(as_text=True)
    assert "15 分钟" in intro and "30 道题" in intro and "不计学时" in intro and DISCLAIMER in intro
    token = browser_client.refresh_token("/assessment")
    assert browser_client.post("/assessment/start", data={"csrf_token": token}).status_code == 302
    page = browser_client.get("/assessment/sitting").get_data(as_text=True)
    sitting_token, csrf = page_tokens(page)
    sitting = AssessmentSitting.query.one()
    for index in range(3):  # a few answers, every one wrong
        response = browser_client.post("/assessment/answer", data={
            "csrf_token": csrf, "sitting": sitting_token, "index": index,
            "choice": sorted(wrong_places(sitting, index))})
        assert response.status_code == 302
    assert AssessmentAnswer.query.count() == 3
    done = browser_client.post("/assessment/finish", data={"csrf_token": csrf, "sitting": sitting_token})
    result = browser_client.get(done.headers["Location"]).get_data(as_text=True)
    assert "总分 0 分" in result and "科学知识" in result and "解决问题的能力" in result
    assert "最值得学的课程" in result and DISCLAIMER in result and CONTEXT in result
    assert "以后可以再做一次自测" in result


def test_recommended_courses_come_from_wrong_items_published_ones_first_for_the_audience(app, pool, make_user):
    from lms.courses.models import Course, CourseAudience

    learner = make_user(audience="elder")
    db.session.add_all([
        Course(slug="anti-fraud", title="防范电信诈骗", credit_hours=Decimal("1"), published=True, audience_rows=[CourseAudience(audience="elder")]),
        Course(slug="scientific-method", title="科学方法", credit_hours=Decimal("1"), published=True, audience_rows=[CourseAudience(audience="youth")]),
        Course(slug="work-safety", title="安全生产", credit_hours=Decimal("1"), published=False, audience_rows=[CourseAudience(audience="elder")]),
    ])
    db.session.commit()
    sitting = services.start_or_resume(learner)
    answer_all(sitting, learner, right=lambda n: False)
    services.finish(sitting, learner)
    slugs = [c.slug for c in services.recommended_courses(sitting, learner)]
    assert "work-safety" not in slugs  # unpublished
    named = {slug for item in services.shown_items(sitting) for slug in item.item.courses}
    expected = [slug for slug in ("anti-fraud", "scientific-method") if slug in named]
    assert slugs == expected  # the learner's audience first


# ---- the report ------------------------------------------------------------------------------------

def test_wilson_interval_values():
    low, high = report.wilson(15, 100)  # 9.31 %–23.28 % (the brief's "about 9.3 %–23.4 %")
    assert round(low * 100, 2) == 9.31 and round(high * 100, 2) == 23.28
    assert report.wilson(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)  # symmetric about a half
    assert report.wilson(0, 10)[0] == 0.0 and 0.27 < report.wilson(0, 10)[1] < 0.28
    assert report.wilson(10, 10)[1] == 1.0
    assert report.wilson(0, 0) is None
    with pytest.raises(ValueError):
        report.wilson(11, 10)


def _sit(user, qualified: bool, when=None):
    """A finished sitting, all right or all wrong."""
    sitting = services.start_or_resume(user, now=when)
    answer_all(sitting, user, right=lambda n: qualified, now=when)
    return services.finish(sitting, user, now=when)


def test_report_by_township_scoped_with_warning_and_disclaimer(app, pool, make_user, units, browser_client):
    for n in range(3):
        _sit(make_user(unit="town-a", audience="elder"), qualified=n == 0)
    for n in range(2):
        _sit(make_user(unit="town-b", audience="farmer", full_name=f"澄溪学员{n}"), qualified=True)
    board = report.build(make_user(role="admin", unit="county"))
    rows = {row.key: row for row in board.townships}
    assert (rows["town-a"].assessed, rows["town-a"].qualified) == (3, 1)
    assert (rows["town-b"].assessed, rows["town-b"].qualified) == (2, 2)
    assert board.total.assessed == 5 and all(row.small for row in board.townships)
    audiences = {row.key: row for row in board.audiences}
    assert (audiences["elder"].assessed, audiences["farmer"].assessed) == (3, 2)
    assert [row.assessed for row in board.quarters] == [5]
    # the unit admin of town A sees town A's people only
    make_user(username="admin-a", role="unit_admin", unit="town-a")
    browser_client.login("admin-a")
    page = browser_client.get("/admin/assessment")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "桂溪街道" in body and "澄溪镇" not in body
    assert "不足 30 人" in body and DISCLAIMER in body and CONTEXT in body and "<svg" in body
    scoped = report.build(make_user(role="unit_admin", unit="town-a"))
    assert scoped.total.assessed == 3
    assert browser_client.get("/admin/assessment?unit=town-b").status_code == 403


def test_a_person_counts_once_by_their_latest_sitting(app, pool, make_user):
    learner = make_user(unit="town-a")
    first = _sit(learner, qualified=False, when=utcnow() - timedelta(days=40))
    _sit(learner, qualified=True)
    assert first.qualified is False
    board = report.build(make_user(role="admin", unit="county"))
    assert (board.total.assessed, board.total.qualified) == (1, 1)


def test_learners_get_403_on_the_report(app, pool, make_user, browser_client):
    make_user(username="plain")
    browser_client.login("plain")
    assert browser_client.get("/admin/assessment").status_code == 403


@pytest.mark.postgres
def test_a_sitting_and_the_report_on_postgresql(tmp_path, postgres_url):
    """The same flow on PostgreSQL: import, draw, answers (a second one ignored), finish, report."""
    from lms.accounts.services import create_user, get_or_create_unit
    from tests.conftest import _make_app

    app = _make_app(tmp_path, database_url=postgres_url)
    with app.app_context():
        import_pool(POOL)
        county = get_or_create_unit("county", "垫江县", "county")
        get_or_create_unit("town_a", "桂溪街道", "township", county)
        get_or_create_unit("town_a1", "澄溪镇", "township", county)  # `_` in codes is no wildcard
        learner = create_user("pg-learner", "学员", "correct-horse", "learner", "elder", "town_a1")
        admin = create_user("pg-admin", "管理员", "correct-horse", "unit_admin", "cadre", "town_a")
        db.session.commit()
        sitting = services.start_or_resume(learner)
        answer_all(sitting, learner, right=lambda n: dimension(sitting, n) != "application")
        services.commit_answer(sitting, 0, wrong_places(sitting, 0), learner)
        services.finish(sitting, learner)
        assert sitting.total == Decimal("80.00") and sitting.qualified
        assert report.build(admin).total.assessed == 0
        assert report.build(create_user("pg-root", "县管理员", "correct-horse", "admin", "cadre", "county")).total.qualified == 1
        db.session.remove()
        db.engine.dispose()
