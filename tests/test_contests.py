"""知识竞赛 (issue 14): an organiser creates a contest over courses' quiz questions; a learner answers
one question at a time, timed by the server; rankings of people and units; exports; 学时 credited once."""
from __future__ import annotations

import io
import random
import threading
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest

from lms.accounts.models import utcnow
from lms.contests import services
from lms.contests.models import Contest, ContestAnswer, ContestAttempt
from lms.extensions import db
from lms.records.models import AuditLog, TrainingRecord
from tests.contesting import (add_people, answers_of, as_user, contest_data, finished_attempt, make_contest, make_pool,
                              page_choices, right_places, take, world, wrong_places)  # noqa: F401  (world: fixture)


def records(user) -> list[TrainingRecord]:
    db.session.expire_all()
    return TrainingRecord.query.filter_by(user_id=user.id).all()


# ---- create and edit ----------------------------------------------------------------------------------

def test_organiser_creates_a_contest_and_it_is_audited(app, world):
    client = as_user(app, world["admin"])
    page = client.get("/admin/contests/new").get_data(as_text=True)
    assert "竞赛题库 contest-pool（6 题）" in page
    response = client.post("/admin/contests/new", data={
        "csrf_token": client.token, "title": "垫江县防诈骗知识竞赛", "description": "每天可答两次",
        "starts_at": "2030-05-01T09:00", "ends_at": "2030-05-07T18:00", "audiences": ["elder", "farmer"],
        "units": "town-a, town-b", "courses": [str(world["pool"].id)], "question_count": "5",
        "seconds_per_question": "20", "attempts_per_day": "2", "score_rule": "first", "hours": "0.5",
        "min_score": "80"})
    assert response.status_code == 302
    contest = Contest.query.one()
    assert (contest.title, contest.audiences, [u.code for u in contest.units]) == (
        "垫江县防诈骗知识竞赛", ["elder", "farmer"], ["town-a", "town-b"])
    assert contest.starts_at.hour == 1  # 09:00 in Shanghai is 01:00 UTC
    assert (contest.question_count, contest.score_rule, contest.hours, contest.min_score) == (
        5, "first", Decimal("0.5"), 80)
    assert AuditLog.query.filter_by(action="contest.create", target=f"contest:{contest.id}").count() == 1
    listing = client.get("/admin/contests").get_data(as_text=True)
    assert "垫江县防诈骗知识竞赛" in listing and "/admin/contests" in client.get("/admin").get_data(as_text=True)
    form = client.get(f"/admin/contests/{contest.id}/edit").get_data(as_text=True)
    assert 'value="2030-05-01T09:00"' in form and 'value="town-a town-b"' in form
    response = client.post(f"/admin/contests/{contest.id}/edit", data={
        "csrf_token": client.token, "title": "垫江县防诈骗知识竞赛（决赛）", "starts_at": "2030-05-01T09:00",
        "ends_at": "2030-05-07T18:00", "audiences": ["elder"], "units": "town-a",
        "courses": [str(world["pool"].id)], "question_count": "6", "seconds_per_question": "20",
        "attempts_per_day": "2", "score_rule": "best", "hours": "0", "min_score": "0"})
    assert response.status_code == 302
    db.session.expire_all()
    contest = db.session.get(Contest, contest.id)
    assert (contest.title, contest.audiences, [u.code for u in contest.units], contest.question_count) == (
        "垫江县防诈骗知识竞赛（决赛）", ["elder"], ["town-a"], 6)
    update = AuditLog.query.filter_by(action="contest.update").one()
    assert "town-a、town-b" in update.detail and "→" in update.detail


def test_a_pool_smaller_than_the_draw_is_refused_clearly(app, world):
    client = as_user(app, world["admin"])
    response = client.post("/admin/contests/new", data={
        "csrf_token": client.token, "title": "题太少", "starts_at": "2030-05-01T09:00", "ends_at": "2030-05-02T09:00",
        "audiences": ["elder"], "units": "county", "courses": [str(world["pool"].id)], "question_count": "7",
        "seconds_per_question": "20", "attempts_per_day": "1", "score_rule": "best", "hours": "0", "min_score": "0"})
    assert response.status_code == 400
    assert "所选课程的题库只有 6 道题，少于每次要抽的 7 道" in response.get_data(as_text=True)
    assert Contest.query.count() == 0
    with pytest.raises(services.ContestError) as error:
        make_contest(world["admin"], [world["pool"]], question_count=7)
    assert error.value.field == "question_count"


def test_a_window_ending_before_it_starts_is_refused(app, world):
    data = contest_data([world["pool"]])
    data.ends_local = data.starts_local - timedelta(minutes=1)
    with pytest.raises(services.ContestError) as error:
        services.create_contest(world["admin"], data)
    assert error.value.field == "ends_at" and "结束时间必须晚于开始时间" in str(error.value.message)
    db.session.rollback()
    assert Contest.query.count() == 0


def test_unit_admin_organises_only_in_their_subtree(app, world):
    with pytest.raises(services.ContestError) as error:
        make_contest(world["ua_a"], [world["pool"]], unit_codes="town-b")
    assert error.value.field == "units"
    db.session.rollback()
    theirs = make_contest(world["ua_a"], [world["pool"]], unit_codes="town-a", title="桂溪竞赛")
    county = make_contest(world["admin"], [world["pool"]], title="全县竞赛")
    other = make_contest(world["ua_b"], [world["pool"]], unit_codes="town-b", title="澄溪竞赛")
    client = as_user(app, world["ua_a"])
    page = client.get("/admin/contests").get_data(as_text=True)
    assert "桂溪竞赛" in page and "全县竞赛" not in page and "澄溪竞赛" not in page
    assert client.get(f"/admin/contests/{theirs.id}/edit").status_code == 200
    for contest in (county, other):
        assert client.get(f"/admin/contests/{contest.id}/edit").status_code == 404
        assert client.get(f"/admin/contests/{contest.id}/results.csv").status_code == 404
        assert client.get(f"/admin/contests/{contest.id}/results.xlsx").status_code == 404


def test_edit_and_delete_are_audited_and_a_taken_contest_is_not_deleted(app, world):
    contest = make_contest(world["admin"], [world["pool"]])
    data = contest_data([world["pool"]], title="改过名字的竞赛")
    assert services.update_contest(world["admin"], contest, data) is True
    assert AuditLog.query.filter_by(action="contest.update").count() == 1
    take(services.start_attempt(contest, world["elder_a"]), "rrr")
    with pytest.raises(services.ContestError):
        services.delete_contest(world["admin"], contest)
    db.session.rollback()
    empty = make_contest(world["admin"], [world["pool"]], title="没人参加")
    client = as_user(app, world["admin"])
    client.refresh_token(f"/admin/contests/{empty.id}/edit")
    assert client.post(f"/admin/contests/{empty.id}/delete", data={"csrf_token": client.token}).status_code == 302
    assert db.session.get(Contest, empty.id) is None and db.session.get(Contest, contest.id) is not None
    assert AuditLog.query.filter_by(action="contest.delete").count() == 1


# ---- an attempt ---------------------------------------------------------------------------------------

def test_each_attempt_draws_its_own_order_of_questions_and_choices(app, world):
    contest = make_contest(world["admin"], [world["pool"]], question_count=6, attempts_per_day=5)
    first = services.start_attempt(contest, world["elder_a"], rng=random.Random(1))
    take(first, "rrrrrr")
    second = services.start_attempt(contest, world["elder_a"], rng=random.Random(2))
    assert first.id != second.id
    assert sorted(i["q"] for i in first.draw) == sorted(i["q"] for i in second.draw)  # the whole pool
    assert [i["q"] for i in first.draw] != [i["q"] for i in second.draw]  # in another order
    choice_orders = lambda a: {i["q"]: i["c"] for i in a.draw}  # noqa: E731
    assert choice_orders(first) != choice_orders(second)
    again = db.session.get(ContestAttempt, second.id)
    assert again.draw == second.draw  # stored


def test_an_answer_in_time_counts_and_one_after_the_time_scores_zero(app, world):
    contest = make_contest(world["admin"], [world["pool"]], seconds_per_question=20)
    attempt = services.start_attempt(contest, world["elder_a"])
    start = utcnow()
    served = services.current_question(attempt, start)
    result = services.answer(attempt, 0, right_places(attempt, 0), start + timedelta(seconds=21))  # within the grace
    assert result.status == "recorded"
    served = services.current_question(attempt, start + timedelta(seconds=22))
    assert served.position == 1
    late = services.answer(attempt, 1, right_places(attempt, 1), start + timedelta(seconds=22 + 23))
    assert late.status == "late" and "不得分" in late.message
    rows = answers_of(attempt)
    assert [(r.correct, r.late) for r in rows] == [(True, False), (False, True)]
    assert rows[1].elapsed_ms == 20_000  # a late answer counts the whole limit as its time


def test_a_question_left_unanswered_times_out_and_the_next_is_served(app, world):
    contest = make_contest(world["admin"], [world["pool"]], seconds_per_question=10)
    attempt = services.start_attempt(contest, world["elder_a"])
    start = utcnow()
    services.current_question(attempt, start)
    # the person closed the page and comes back later: the first question scored zero, the second starts now
    served = services.current_question(attempt, start + timedelta(minutes=5))
    assert served.position == 1 and served.served_at == start + timedelta(minutes=5)
    first = answers_of(attempt)[0]
    assert (first.correct, first.late, first.elapsed_ms) == (False, True, 10_000)


def test_answering_twice_keeps_the_first_answer(app, world):
    contest = make_contest(world["admin"], [world["pool"]])
    attempt = services.start_attempt(contest, world["elder_a"])
    now = utcnow()
    services.current_question(attempt, now)
    assert services.answer(attempt, 0, wrong_places(attempt, 0), now + timedelta(seconds=3)).status == "recorded"
    second = services.answer(attempt, 0, right_places(attempt, 0), now + timedelta(seconds=4))
    assert second.status == "already" and "以第一次的答案为准" in second.message
    assert answers_of(attempt)[0].correct is False


def test_score_time_and_review_after_the_last_answer(app, world):
    contest = make_contest(world["admin"], [world["pool"]], question_count=3)
    attempt = take(services.start_attempt(contest, world["elder_a"]), "rwr", seconds=4)
    assert (attempt.right_count, attempt.score, attempt.time_ms) == (2, Decimal("66.67"), 12_000)
    items = services.review(attempt)
    assert [item.correct for item in items] == [True, False, True]
    assert all(item.question.explanation for item in items)


def test_no_right_answer_is_shown_before_the_attempt_ends(app, world):
    contest = make_contest(world["admin"], [world["pool"]], question_count=2)
    client = as_user(app, world["elder_a"])
    client.refresh_token(f"/contests/{contest.id}")
    response = client.post(f"/contests/{contest.id}/start", data={"csrf_token": client.token})
    play = response.headers["Location"]
    page = client.get(play).get_data(as_text=True)
    assert "第 1 题，共 2 题" in page and "正确答案" not in page and "解析：" not in page
    attempt = ContestAttempt.query.one()
    client.post(play + "/answer", data={"csrf_token": client.token, "index": "0",
                                        "c": [str(p) for p in right_places(attempt, 0)]})
    page = client.get(play).get_data(as_text=True)
    assert "第 2 题，共 2 题" in page and "正确答案" not in page and "答对了" not in page
    client.post(play + "/answer", data={"csrf_token": client.token, "index": "1",
                                        "c": [str(p) for p in wrong_places(attempt, 1)]})
    page = client.get(play).get_data(as_text=True)
    assert "答对 1 题，共 2 题，得 50.00 分" in page and "（正确答案）" in page and "解析：解析" in page


def test_attempts_beyond_the_daily_limit_are_refused(app, world):
    contest = make_contest(world["admin"], [world["pool"]], attempts_per_day=1)
    now = utcnow()
    take(services.start_attempt(contest, world["elder_a"], now), "rrr", now)
    with pytest.raises(services.ContestRefused) as refused:
        services.start_attempt(contest, world["elder_a"], now + timedelta(minutes=5))
    assert "今天的 1 次答题机会已经用完" in refused.value.message
    db.session.rollback()
    assert ContestAttempt.query.count() == 1
    client = as_user(app, world["elder_a"])
    client.refresh_token(f"/contests/{contest.id}")
    response = client.post(f"/contests/{contest.id}/start", data={"csrf_token": client.token})
    assert response.status_code == 409 and "明天再来" in response.get_data(as_text=True)
    tomorrow = services.start_attempt(contest, world["elder_a"], now + timedelta(days=1))
    assert tomorrow.day_seq == 1 and tomorrow.day != ContestAttempt.query.first().day


def test_a_contest_outside_its_window_records_nothing(app, world):
    later = make_contest(world["admin"], [world["pool"]], starts_local=contest_data([]).ends_local,
                         ends_local=contest_data([]).ends_local + timedelta(days=1), title="还没开始")
    client = as_user(app, world["elder_a"])
    client.refresh_token(f"/contests/{later.id}")
    assert "竞赛还没开始" in client.get(f"/contests/{later.id}").get_data(as_text=True)
    response = client.post(f"/contests/{later.id}/start", data={"csrf_token": client.token})
    assert response.status_code == 409 and "竞赛还没开始" in response.get_data(as_text=True)
    contest = make_contest(world["admin"], [world["pool"]])
    with pytest.raises(services.ContestRefused) as refused:
        services.start_attempt(contest, world["elder_a"], utcnow() + timedelta(days=4))
    assert "结束" in refused.value.message
    db.session.rollback()
    assert ContestAttempt.query.count() == 0


def test_other_audiences_and_units_are_refused(app, world):
    contest = make_contest(world["admin"], [world["pool"]], unit_codes="town-a")
    for person, words in ((world["farmer_a"], "不在其中"), (world["elder_b"], "只对桂溪街道")):
        with pytest.raises(services.ContestRefused) as refused:
            services.start_attempt(contest, person)
        assert words in refused.value.message and refused.value.status == 403
        db.session.rollback()
        client = as_user(app, person)
        assert client.get("/contests").get_data(as_text=True).count(contest.title) == 0
        assert client.get(f"/contests/{contest.id}").status_code == 404
    assert ContestAttempt.query.count() == 0
    assert [c.id for c in services.open_contests(world["elder_a"])] == [contest.id]


# ---- rankings -----------------------------------------------------------------------------------------

def test_a_small_village_outranks_a_big_town_by_participation(app, world):
    contest = make_contest(world["admin"], [world["pool"]], unit_codes="county", hours=Decimal("0"))
    from lms.accounts.services import get_or_create_unit

    get_or_create_unit("village-s", "小山村", "village", world["county"])
    big = add_people("town-big", 100)  # its own unit, under the county (get_or_create_unit gives no parent)
    from lms.accounts.models import Unit

    town = Unit.query.filter_by(code="town-big").one()
    town.parent_id, town.path, town.name = world["county"].id, "/county/town-big/", "大镇"
    db.session.commit()
    small = add_people("village-s", 3)
    for person in big[:20]:
        finished_attempt(contest, person, "80", 60_000)
    for person in small[:2]:
        finished_attempt(contest, person, "60", 90_000)
    stats = {s.unit.code: s for s in services.unit_results(contest)}
    assert (stats["town-big"].participants, stats["town-big"].eligible) == (20, 100)
    assert (stats["village-s"].participants, stats["village-s"].eligible) == (2, 3)
    by_rate = [s.unit.code for s in services.units_by_participation(list(stats.values()))]
    assert by_rate.index("village-s") < by_rate.index("town-big")
    by_score = [s.unit.code for s in services.units_by_score(list(stats.values()))]
    assert by_score.index("town-big") < by_score.index("village-s")
    page = as_user(app, world["admin"]).get(f"/contests/{contest.id}/rankings").get_data(as_text=True)
    table = page[page.index('id="units-by-rate"'):page.index('id="units-by-score"')]
    assert table.index("小山村") < table.index("大镇") and "66.7%" in table and "20.0%" in table


def test_people_with_equal_scores_are_ranked_by_less_time(app, world):
    contest = make_contest(world["admin"], [world["pool"]], hours=Decimal("0"))
    finished_attempt(contest, world["elder_a"], "100", 50_000)
    finished_attempt(contest, world["elder_a2"], "100", 40_000)
    finished_attempt(contest, world["elder_b"], "66.67", 10_000)
    ranking = services.person_results(contest)
    assert [(r.user_id, r.place) for r in ranking] == [
        (world["elder_a2"].id, 1), (world["elder_a"].id, 2), (world["elder_b"].id, 3)]


def test_units_with_equal_rates_are_ranked_by_less_time(app, world):
    contest = make_contest(world["admin"], [world["pool"]], unit_codes="town-a town-b", hours=Decimal("0"))
    finished_attempt(contest, world["elder_a"], "100", 50_000)
    finished_attempt(contest, world["elder_b"], "100", 30_000)
    # town-a: 1 of 2 elders (elder-a, elder-a2); a second elder in town-b makes both rates 50 %
    from lms.accounts.services import create_user

    create_user("elder-b2", "赵大娘", "correct-horse", "learner", "elder", "town-b")
    db.session.commit()
    stats = services.unit_results(contest)
    assert [s.rate for s in stats] == [0.5, 0.5]
    assert [s.unit.code for s in services.units_by_participation(stats)] == ["town-b", "town-a"]
    assert [s.unit.code for s in services.units_by_score(stats)] == ["town-b", "town-a"]


def test_first_or_best_score_counts_per_the_rule(app, world):
    best = make_contest(world["admin"], [world["pool"]], score_rule="best", hours=Decimal("0"))
    first = make_contest(world["admin"], [world["pool"]], score_rule="first", hours=Decimal("0"), title="第一次")
    for contest in (best, first):
        take(services.start_attempt(contest, world["elder_a"]), "wwr")
        take(services.start_attempt(contest, world["elder_a"]), "rrr")
    assert services.counted_result(best, world["elder_a"]).score == Decimal("100.00")
    assert services.counted_result(first, world["elder_a"]).score == Decimal("33.33")


def test_a_learner_sees_the_top_20_and_their_own_place(app, world):
    contest = make_contest(world["admin"], [world["pool"]], unit_codes="county", hours=Decimal("0"))
    crowd = add_people("town-crowd", 25)
    for n, person in enumerate(crowd):
        finished_attempt(contest, person, "100", 1000 + n)
    finished_attempt(contest, world["elder_a"], "10", 1000)
    page = as_user(app, world["elder_a"]).get(f"/contests/{contest.id}/rankings").get_data(as_text=True)
    assert "town-crowd村民19" in page and "town-crowd村民20" not in page
    assert "您排第 26 名（共 26 人）" in page and "张大爷" in page
    organiser_page = as_user(app, world["admin"]).get(f"/contests/{contest.id}/rankings").get_data(as_text=True)
    assert "town-crowd村民24" in organiser_page


# ---- 学时 -----------------------------------------------------------------------------------------------

def test_hours_are_credited_once_when_the_minimum_is_first_reached(app, world):
    contest = make_contest(world["admin"], [world["pool"]], hours=Decimal("1.5"), min_score=60, attempts_per_day=5)
    take(services.start_attempt(contest, world["elder_a"]), "wwr")  # 33 < 60: nothing
    assert records(world["elder_a"]) == []
    take(services.start_attempt(contest, world["elder_a"]), "rrw")  # 66.67: credited
    take(services.start_attempt(contest, world["elder_a"]), "rrr")  # 100: already credited
    [record] = records(world["elder_a"])
    assert (record.kind, record.source, record.hours, record.completion_key) == (
        "contest", "online", Decimal("1.50"), f"contest:{contest.id}:user:{world['elder_a'].id}")
    assert record.quiz_score == 67 and record.title == f"知识竞赛：{contest.title}"


def test_first_rule_credits_nothing_when_the_first_attempt_missed_the_minimum(app, world):
    contest = make_contest(world["admin"], [world["pool"]], score_rule="first", min_score=60)
    take(services.start_attempt(contest, world["elder_a"]), "www")
    take(services.start_attempt(contest, world["elder_a"]), "rrr")
    assert records(world["elder_a"]) == []


def test_no_hours_when_the_organiser_chose_none(app, world):
    contest = make_contest(world["admin"], [world["pool"]], hours=Decimal("0"))
    take(services.start_attempt(contest, world["elder_a"]), "rrr")
    assert records(world["elder_a"]) == []


def _race(app, target, racers=10):
    barrier = threading.Barrier(racers)
    errors, results = [], []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                results.append(target())
            except Exception as exc:  # collected and asserted on below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, results


def test_ten_concurrent_finishing_requests_credit_once(app, world):
    """The app fixture's database is a SQLite file: the threads really race on it."""
    contest = make_contest(world["admin"], [world["pool"]], question_count=2, min_score=50)
    person_id, contest_id = world["elder_a"].id, contest.id
    attempt = services.start_attempt(contest, world["elder_a"])
    now = utcnow()
    services.current_question(attempt, now)
    services.answer(attempt, 0, right_places(attempt, 0), now + timedelta(seconds=1))
    services.current_question(attempt, now + timedelta(seconds=2))
    last, attempt_id = right_places(attempt, 1), attempt.id
    db.session.remove()

    def finish():
        mine = db.session.get(ContestAttempt, attempt_id)
        try:
            return services.answer(mine, 1, last, now + timedelta(seconds=3)).status
        except services.ContestRefused:  # loaded after the winner finished the attempt
            return "ended"

    errors, statuses = _race(app, finish)
    assert errors == []
    assert statuses.count("recorded") == 1 and set(statuses) <= {"recorded", "already", "ended"}

    def credit_again():
        from lms.accounts.models import User

        return services.credit_if_due(db.session.get(Contest, contest_id), db.session.get(User, person_id)).status

    errors, statuses = _race(app, credit_again)
    assert errors == [] and set(statuses) == {"already"}
    assert TrainingRecord.query.filter_by(user_id=person_id, kind="contest").count() == 1
    assert ContestAnswer.query.filter_by(attempt_id=attempt_id).count() == 2


def test_ten_concurrent_first_credits_write_one_record(app, world):
    contest = make_contest(world["admin"], [world["pool"]], min_score=0)
    finished_attempt(contest, world["elder_a"], "100", 1000)
    person_id, contest_id = world["elder_a"].id, contest.id
    db.session.remove()

    def credit():
        from lms.accounts.models import User

        return services.credit_if_due(db.session.get(Contest, contest_id), db.session.get(User, person_id)).status

    errors, statuses = _race(app, credit)
    assert errors == [] and statuses.count("credited") == 1 and statuses.count("already") == 9
    assert TrainingRecord.query.filter_by(user_id=person_id).count() == 1


def test_a_closed_year_refuses_the_credit_but_keeps_the_result(app, world):
    from lms.records.closing import ClosedYear
    from lms.records.services import to_local

    db.session.add(ClosedYear(year=to_local(utcnow()).year, unit_id=world["county"].id, closed_by_id=world["admin"].id))
    db.session.commit()
    contest = make_contest(world["admin"], [world["pool"]])
    attempt = take(services.start_attempt(contest, world["elder_a"]), "rrr")
    assert attempt.score == Decimal("100.00") and records(world["elder_a"]) == []
    assert services.credit_if_due(contest, world["elder_a"]).status == "refused"


# ---- export -------------------------------------------------------------------------------------------

def test_export_csv_and_xlsx_hold_one_row_per_person(app, world):
    contest = make_contest(world["admin"], [world["pool"]], attempts_per_day=3)
    world["elder_a2"].full_name = "=HYPERLINK(\"http://evil\")"
    db.session.commit()
    take(services.start_attempt(contest, world["elder_a"]), "rrr", seconds=2)
    take(services.start_attempt(contest, world["elder_a"]), "rww", seconds=2)
    take(services.start_attempt(contest, world["elder_a2"]), "rrw", seconds=3)
    client = as_user(app, world["admin"])
    response = client.get(f"/admin/contests/{contest.id}/results.csv")
    assert response.status_code == 200 and response.data.startswith("\ufeff".encode())
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == "名次,姓名,账号,单位,人群,成绩,用时(秒),答题次数,记入学时"
    assert lines[1] == "1,张大爷,elder-a,垫江县/桂溪街道,老年人,100.00,6,2,1.00"
    assert lines[2].startswith('2,"\'=HYPERLINK') and lines[2].endswith(",66.67,9,1,1.00")
    assert len(lines) == 3
    response = client.get(f"/admin/contests/{contest.id}/results.xlsx")
    assert response.status_code == 200
    sheet = zipfile.ZipFile(io.BytesIO(response.data)).read("xl/worksheets/sheet1.xml").decode()
    assert "张大爷" in sheet and "垫江县/桂溪街道" in sheet and "<f>" not in sheet and "'=HYPERLINK" in sheet


def test_contest_credits_show_in_the_hours_export_within_its_list_of_types(app, world):
    """类型 stays within the export's closed list (线上课程/线下活动/更正); 课程/活动 says it was a contest."""
    from lms.records.export import export_rows

    contest = make_contest(world["admin"], [world["pool"]])
    take(services.start_attempt(contest, world["elder_a"]), "rrr")
    rows = list(export_rows(False).rows)
    assert [(row["activity"], row["type"]) for row in rows] == [(f"知识竞赛：{contest.title}", "线上课程")]
    from lms.records import export_sql

    text = b"".join(export_sql.csv_chunks(False, export_sql.Filters())).decode("utf-8-sig")
    assert f"知识竞赛：{contest.title},线上课程,1.00" in text


# ---- the learner's pages over HTTP --------------------------------------------------------------------

def test_a_learner_takes_a_contest_over_http(app, world):
    contest = make_contest(world["admin"], [world["pool"]], question_count=3)
    client = as_user(app, world["elder_a"])
    assert contest.title in client.get("/contests").get_data(as_text=True)
    intro = client.get(f"/contests/{contest.id}").get_data(as_text=True)
    assert "每道题 30 秒" in intro
    client.refresh_token(f"/contests/{contest.id}")
    play = client.post(f"/contests/{contest.id}/start", data={"csrf_token": client.token}).headers["Location"]
    attempt = ContestAttempt.query.one()
    for index in range(3):
        page = client.get(play).get_data(as_text=True)
        assert 'data-seconds="30"' in page or 'data-seconds="29"' in page
        choices = page_choices(page)
        assert len(choices) >= 2
        client.post(play + "/answer", data={"csrf_token": client.token, "index": str(index),
                                            "c": [str(p) for p in right_places(attempt, index)]})
    page = client.get(play).get_data(as_text=True)
    assert "答对 3 题，共 3 题，得 100.00 分" in page and "已记 1 学时" in page
    ranking = client.get(f"/contests/{contest.id}/rankings").get_data(as_text=True)
    assert "张大爷" in ranking and "您排第 1 名（共 1 人）" in ranking


def test_submitting_without_a_choice_in_time_asks_again_and_records_nothing(app, world):
    contest = make_contest(world["admin"], [world["pool"]])
    client = as_user(app, world["elder_a"])
    client.refresh_token(f"/contests/{contest.id}")
    play = client.post(f"/contests/{contest.id}/start", data={"csrf_token": client.token}).headers["Location"]
    client.get(play)
    response = client.post(play + "/answer", data={"csrf_token": client.token, "index": "0"}, follow_redirects=True)
    assert "请先选择答案" in response.get_data(as_text=True)
    assert answers_of(ContestAttempt.query.one())[0].answered_at is None


def test_elder_mode_page_has_large_targets(app, world):
    contest = make_contest(world["admin"], [world["pool"]])
    client = as_user(app, world["elder_a"])  # elders get 长辈版 by default
    client.refresh_token(f"/contests/{contest.id}")
    play = client.post(f"/contests/{contest.id}/start", data={"csrf_token": client.token}).headers["Location"]
    page = client.get(play).get_data(as_text=True)
    assert 'class="elder' in page and "contest-choice" in page and "button primary big" in page
    css = (app.static_folder + "/css/contest.css")
    assert ".elder .contest-choice { min-height: 80px; }" in open(css, encoding="utf-8").read()


def test_the_countdown_sending_an_empty_form_at_zero_moves_on_with_zero(app, world):
    contest = make_contest(world["admin"], [world["pool"]], seconds_per_question=10)
    attempt = services.start_attempt(contest, world["elder_a"])
    now = utcnow()
    services.current_question(attempt, now)
    with pytest.raises(services.ContestRefused):  # 9 s: still time to choose
        services.answer(attempt, 0, [], now + timedelta(seconds=9))
    db.session.rollback()
    result = services.answer(attempt, 0, [], now + timedelta(seconds=10))
    assert result.status == "late"
    row = answers_of(attempt)[0]
    assert (row.correct, row.late, row.elapsed_ms) == (False, True, 10_000)
    assert services.current_question(attempt, now + timedelta(seconds=11)).position == 1


@pytest.mark.postgres
def test_ten_concurrent_finishing_requests_credit_once_on_postgresql(tmp_path, postgres_url):
    """The same race on PostgreSQL (skipped when none is reachable)."""
    from lms.accounts.services import create_user, get_or_create_unit
    from tests.conftest import _make_app

    app = _make_app(tmp_path, database_url=postgres_url)
    with app.app_context():
        county = get_or_create_unit("county", "垫江县", "county")
        admin = create_user("pg-admin", "管理员", "correct-horse", "admin", "cadre", county.code)
        person = create_user("pg-elder", "张大爷", "correct-horse", "learner", "elder", county.code)
        db.session.commit()
        contest = make_contest(admin, [make_pool()], question_count=1, min_score=50)
        attempt = services.start_attempt(contest, person)
        now = utcnow()
        services.current_question(attempt, now)
        right, attempt_id, person_id = right_places(attempt, 0), attempt.id, person.id
        db.session.remove()

        def finish():
            try:
                return services.answer(db.session.get(ContestAttempt, attempt_id), 0, right,
                                       now + timedelta(seconds=2)).status
            except services.ContestRefused:  # loaded after the winner finished the attempt
                return "ended"

        errors, statuses = _race(app, finish)
        assert errors == [] and statuses.count("recorded") == 1
        assert set(statuses) <= {"recorded", "already", "ended"}
        assert TrainingRecord.query.filter_by(user_id=person_id, kind="contest").count() == 1
        db.session.remove()
        db.engine.dispose()
