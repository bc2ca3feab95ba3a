"""Attacks on the self-assessment (issue 14): answering after the time is up, answering questions or
choices the sitting does not hold, writing into another learner's sitting, and posting without the
CSRF token. Each test names the attack and what it gets; the answers table is the thing to protect."""
from __future__ import annotations

from datetime import timedelta

import pytest

from lms.assessment import services
from lms.assessment.models import AssessmentAnswer, AssessmentItem, AssessmentSitting
from lms.assessment.pool import import_pool
from lms.extensions import db
from tests.assessing import POOL, page_tokens, right_places
from tests.conftest import BrowserLikeClient


@pytest.fixture
def pool(app):
    return import_pool(POOL)[0]


def _open(app, make_user, username):
    """A learner signed in with an open sitting; returns (client, sitting, sitting token, csrf token)."""
    make_user(username=username)
    client = BrowserLikeClient(app.test_client())
    client.login(username)
    token = client.refresh_token("/assessment")
    client.post("/assessment/start", data={"csrf_token": token})
    sitting_token, csrf = page_tokens(client.get("/assessment/sitting").get_data(as_text=True))
    sitting = AssessmentSitting.query.order_by(AssessmentSitting.id.desc()).first()
    return client, sitting, sitting_token, csrf


def _answer(client, csrf, sitting_token, index, choices):
    return client.post("/assessment/answer", data={"csrf_token": csrf, "sitting": sitting_token,
                                                   "index": index, "choice": sorted(choices)})


def test_late_answer_gets_409_and_counts_nothing(app, pool, make_user):
    """An answer posted after the deadline (the page's clock held back): 409 时间已经到了, not counted; the
    sitting is finished with the answers given in time."""
    client, sitting, token, csrf = _open(app, make_user, "late")
    assert _answer(client, csrf, token, 0, right_places(sitting, 0)).status_code == 302
    sitting.deadline_at = sitting.deadline_at - timedelta(minutes=16)  # the time ran out
    db.session.commit()
    response = _answer(client, csrf, token, 1, right_places(sitting, 1))
    assert response.status_code == 409 and "时间已经到了" in response.get_data(as_text=True)
    assert AssessmentAnswer.query.filter_by(sitting_id=sitting.id).count() == 1
    db.session.refresh(sitting)
    assert sitting.finished and sitting.total is not None


@pytest.mark.parametrize("index, choices", [(30, {0}), (999, {0}), (-1, {0}), (0, {7}), (0, {0, 1, 2, 3})])
def test_forged_question_or_choice_position_gets_400_and_stores_nothing(app, pool, make_user, index, choices):
    """A question place beyond the sitting's 30, or a choice place the question does not show (or every
    choice of a one-answer question): 400, no answer stored."""
    client, sitting, token, csrf = _open(app, make_user, "forger")
    first = sitting.draw[0]
    if index == 0 and choices == {0, 1, 2, 3} and db.session.get(AssessmentItem, first["i"]).kind == "multiple":
        choices = {0, 9}  # a multiple-choice question may take several: forge a place it does not have
    response = _answer(client, csrf, token, index, choices)
    assert response.status_code == 400
    assert AssessmentAnswer.query.filter_by(sitting_id=sitting.id).count() == 0


def test_forged_item_id_is_meaningless(app, pool, make_user):
    """An item id (of an item not drawn) posted instead of the question's place: the form names places
    only, so the id is read as no place at all — 400, nothing stored."""
    client, sitting, token, csrf = _open(app, make_user, "ids")
    drawn = {entry["i"] for entry in sitting.draw}
    other = next(item.id for item in AssessmentItem.query if item.id not in drawn)
    response = client.post("/assessment/answer", data={"csrf_token": csrf, "sitting": token, "index": 0,
                                                       "item": other, "choice": []})
    assert response.status_code == 400
    assert AssessmentAnswer.query.filter_by(sitting_id=sitting.id).count() == 0


def test_another_learners_sitting_gets_409_and_is_untouched(app, pool, make_user):
    """Learner B posts answers (and hands in) naming learner A's sitting — by its token or by its id
    with a made-up digest: 409 答卷已经失效, A's sitting has no answer and stays open; A's result page is 404 to B."""
    _client_a, sitting_a, token_a, _csrf_a = _open(app, make_user, "victim")
    client_b, _sitting_b, _token_b, csrf_b = _open(app, make_user, "intruder")
    for token in (token_a, f"{sitting_a.id}-0000000000000000", str(sitting_a.id)):
        assert _answer(client_b, csrf_b, token, 0, right_places(sitting_a, 0)).status_code == 409
        finish = client_b.post("/assessment/finish", data={"csrf_token": csrf_b, "sitting": token})
        assert finish.status_code == 409
    assert AssessmentAnswer.query.filter_by(sitting_id=sitting_a.id).count() == 0
    db.session.refresh(sitting_a)
    assert not sitting_a.finished
    services.finish(sitting_a, sitting_a.user)
    assert client_b.get(f"/assessment/result/{sitting_a.id}").status_code == 404


def test_missing_csrf_token_gets_400_and_changes_nothing(app, pool, make_user):
    """A page elsewhere makes the learner's browser start, answer or hand in without the CSRF token:
    400 each, no sitting started, no answer stored, nothing finished."""
    make_user(username="csrf-victim")
    client = BrowserLikeClient(app.test_client())
    client.login("csrf-victim")
    assert client.post("/assessment/start", data={}).status_code == 400
    assert AssessmentSitting.query.count() == 0
    client_b, sitting, token, _csrf = _open(app, make_user, "csrf-victim-2")
    assert _answer(client_b, "", token, 0, right_places(sitting, 0)).status_code == 400
    assert client_b.post("/assessment/finish", data={"sitting": token}).status_code == 400
    assert AssessmentAnswer.query.count() == 0
    db.session.refresh(sitting)
    assert not sitting.finished
