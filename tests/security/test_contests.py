"""知识竞赛 (issue 14): the server's clock decides what counts; an attempt is only its owner's; a question
is answerable only once it was served and only once; learners organise nothing; every form needs CSRF."""
from __future__ import annotations

from datetime import timedelta

from lms.accounts.models import utcnow
from lms.contests import services
from lms.contests.models import Contest, ContestAnswer, ContestAttempt
from lms.extensions import db
from lms.records.models import TrainingRecord
from tests.contesting import (answers_of, as_user, contest_data, make_contest, right_places,  # noqa: F401
                              world)


def started(app, person, contest):
    """A signed-in client of `person` on the first question of a new attempt: (client, play URL, attempt)."""
    client = as_user(app, person)
    client.refresh_token(f"/contests/{contest.id}")
    play = client.post(f"/contests/{contest.id}/start", data={"csrf_token": client.token}).headers["Location"]
    client.get(play)
    return client, play, ContestAttempt.query.filter_by(user_id=person.id).one()


def test_a_late_answer_scores_zero_whatever_the_page_says(app, world):
    """A page whose countdown was stopped (or a forged form) sends the right answer 40 s after a 20 s
    question was served: recorded as late, zero; the attempt's score counts it wrong."""
    contest = make_contest(world["admin"], [world["pool"]], seconds_per_question=20, question_count=1)
    client, play, attempt = started(app, world["elder_a"], contest)
    served = answers_of(attempt)[0]
    served.served_at = utcnow() - timedelta(seconds=40)  # the question was served 40 s ago
    db.session.commit()
    response = client.post(play + "/answer", data={"csrf_token": client.token, "index": "0",
                                                   "c": [str(p) for p in right_places(attempt, 0)]},
                           follow_redirects=True)
    assert "时间已到，这道题不得分" in response.get_data(as_text=True)
    row = answers_of(attempt)[0]
    assert (row.correct, row.late) == (False, True)
    db.session.refresh(attempt)
    assert attempt.score == 0 and TrainingRecord.query.count() == 0


def test_an_answer_for_a_question_not_in_the_attempt_is_refused(app, world):
    """A forged index 7 of a 3-question attempt, or -1: 400 这次答题没有这道题, nothing recorded."""
    contest = make_contest(world["admin"], [world["pool"]])
    client, play, attempt = started(app, world["elder_a"], contest)
    for index in ("7", "-1"):
        response = client.post(play + "/answer", data={"csrf_token": client.token, "index": index, "c": ["0"]})
        assert response.status_code == 400 and "这次答题没有这道题" in response.get_data(as_text=True)
    assert [row.answered_at for row in answers_of(attempt)] == [None]


def test_a_choice_place_beyond_the_question_answers_nothing(app, world):
    """Places 99 and -5 (not shown on the page) with nothing else: no choice, asked again, nothing recorded."""
    contest = make_contest(world["admin"], [world["pool"]])
    client, play, attempt = started(app, world["elder_a"], contest)
    response = client.post(play + "/answer", data={"csrf_token": client.token, "index": "0", "c": ["99", "-5"]},
                           follow_redirects=True)
    assert "请先选择答案" in response.get_data(as_text=True)
    assert answers_of(attempt)[0].answered_at is None


def test_another_persons_attempt_is_not_found(app, world):
    """Someone else's attempt id in the URL — to read its questions or answer them: 404, nothing changed."""
    contest = make_contest(world["admin"], [world["pool"]])
    _owner, play, attempt = started(app, world["elder_a"], contest)
    intruder = as_user(app, world["elder_a2"])
    intruder.refresh_token(f"/contests/{contest.id}")
    assert intruder.get(play).status_code == 404
    response = intruder.post(play + "/answer", data={"csrf_token": intruder.token, "index": "0",
                                                     "c": [str(p) for p in right_places(attempt, 0)]})
    assert response.status_code == 404
    assert answers_of(attempt)[0].answered_at is None
    other = make_contest(world["admin"], [world["pool"]], title="另一个竞赛")  # the id under another contest
    assert as_user(app, world["elder_a"]).get(f"/contests/{other.id}/attempts/{attempt.id}").status_code == 404


def test_answers_before_the_question_or_the_contest_started_are_refused(app, world):
    """The answer to question 2 sent while question 1 is on screen (its clock not started): 400
    这道题还没有出; starting a contest before its window: 409 竞赛还没开始, no attempt made."""
    contest = make_contest(world["admin"], [world["pool"]])
    client, play, attempt = started(app, world["elder_a"], contest)
    response = client.post(play + "/answer", data={"csrf_token": client.token, "index": "1", "c": ["0"]})
    assert response.status_code == 400 and "这道题还没有出" in response.get_data(as_text=True)
    assert ContestAnswer.query.filter_by(attempt_id=attempt.id).count() == 1
    data = contest_data([world["pool"]], title="明天的竞赛")
    data.starts_local, data.ends_local = data.ends_local, data.ends_local + timedelta(days=1)
    later = services.create_contest(world["admin"], data)
    client.refresh_token(f"/contests/{later.id}")
    response = client.post(f"/contests/{later.id}/start", data={"csrf_token": client.token})
    assert response.status_code == 409 and "竞赛还没开始" in response.get_data(as_text=True)
    assert ContestAttempt.query.filter_by(contest_id=later.id).count() == 0


def test_a_learner_cannot_organise_a_contest(app, world):
    """A learner (and a teacher) opening or POSTing the contest console with a valid CSRF token: 403,
    no contest made."""
    contest = make_contest(world["admin"], [world["pool"]])
    client = as_user(app, world["elder_a"])
    assert client.get("/admin/contests").status_code == 403
    assert client.get("/admin/contests/new").status_code == 403
    response = client.post("/admin/contests/new", data={"csrf_token": client.token, "title": "我自己的竞赛"})
    assert response.status_code == 403
    assert client.get(f"/admin/contests/{contest.id}/results.csv").status_code == 403
    assert client.post(f"/admin/contests/{contest.id}/delete", data={"csrf_token": client.token}).status_code == 403
    assert Contest.query.count() == 1


def test_forms_without_the_csrf_token_are_refused(app, world):
    """A page elsewhere makes a signed-in browser start an attempt, answer, create or delete a contest
    without the CSRF token: 400 each, nothing recorded."""
    contest = make_contest(world["admin"], [world["pool"]])
    client, play, attempt = started(app, world["elder_a"], contest)
    assert client.post(play + "/answer", data={"index": "0", "c": [str(p) for p in right_places(attempt, 0)]}
                       ).status_code == 400
    assert answers_of(attempt)[0].answered_at is None
    other = as_user(app, world["elder_a2"])
    assert other.post(f"/contests/{contest.id}/start").status_code == 400
    assert ContestAttempt.query.filter_by(user_id=world["elder_a2"].id).count() == 0
    admin = as_user(app, world["admin"])
    assert admin.post("/admin/contests/new", data={"title": "无令牌"}).status_code == 400
    empty = make_contest(world["admin"], [world["pool"]], title="空竞赛")
    assert admin.post(f"/admin/contests/{empty.id}/delete").status_code == 400
    assert db.session.get(Contest, empty.id) is not None and Contest.query.count() == 2


def test_a_second_answer_cannot_replace_the_first(app, world):
    """A wrong answer, then the right one re-posted for the same question (a back button, a forged
    form): the first stays, the score counts it wrong."""
    contest = make_contest(world["admin"], [world["pool"]], question_count=1)
    client, play, attempt = started(app, world["elder_a"], contest)
    right = [str(p) for p in right_places(attempt, 0)]
    wrong = [str(p) for p in range(4) if str(p) not in right][:1]
    client.post(play + "/answer", data={"csrf_token": client.token, "index": "0", "c": wrong})
    response = client.post(play + "/answer", data={"csrf_token": client.token, "index": "0", "c": right})
    assert response.status_code == 409 and "这次答题已经结束" in response.get_data(as_text=True)
    db.session.refresh(attempt)
    assert attempt.score == 0


def test_an_organiser_of_another_town_sees_no_results(app, world):
    """The unit admin of town-b asks for the rankings and exports of town-a's contest: 404, as if it did
    not exist; a learner of town-b cannot open its intro either."""
    contest = make_contest(world["ua_a"], [world["pool"]], unit_codes="town-a")
    other = as_user(app, world["ua_b"])
    for path in (f"/contests/{contest.id}/rankings", f"/admin/contests/{contest.id}/results.csv",
                 f"/admin/contests/{contest.id}/results.xlsx", f"/admin/contests/{contest.id}/edit"):
        assert other.get(path).status_code == 404
    assert as_user(app, world["elder_b"]).get(f"/contests/{contest.id}").status_code == 404
