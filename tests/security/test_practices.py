"""Attacks on 练一练 (issue 15): forging “finished” to complete a lesson and earn its 学时 without doing the
steps, tapping without the CSRF token, reaching practices of hidden courses, malformed taps, script in
a practice file. Each test's first docstring line names the attack and what it gets."""
from __future__ import annotations

import pytest

from lms.courses.importer import import_package
from lms.extensions import db
from tests.test_practices import PRACTICE, practice_package

RIGHT = ["settings", "display", "cancel"]


@pytest.fixture
def setup(app, tmp_path, make_user, browser_client):
    course, _ = import_package(practice_package(tmp_path / "content", PRACTICE, quiz=False))
    make_user(username="zhang")
    lesson = course.active_lessons[0]
    browser_client.login("zhang")
    page = f"/courses/{course.slug}/lessons/{lesson.slug}/practice"
    browser_client.refresh_token(page)
    return {"course": course, "lesson": lesson, "practice": lesson.practice, "page": page,
            "tap": f"/api/practices/{lesson.practice.id}/tap", "client": browser_client}


def post_tap(setup, step, target, **headers):
    client = setup["client"]
    return client.post(setup["tap"], json={"step": step, "target": target},
                       headers={"X-CSRFToken": client.token, **headers})


def credited(setup):
    from lms.courses.services import course_record
    from lms.accounts.models import User

    user = User.query.filter_by(username="zhang").one()
    return course_record(user.id, setup["course"].id)


def test_forged_finish_without_the_steps(setup):
    """A learner POSTs the last step's right tap (and every step out of order) without doing the earlier steps: gets 409 and nothing — the practice is not finished, the lesson not completed, no 学时."""
    last = len(RIGHT) - 1
    answer = post_tap(setup, last, RIGHT[last])
    assert answer.status_code == 409 and answer.get_json()["outcome"] == "out_of_step"
    assert answer.get_json()["step"] == 0 and not answer.get_json()["finished"]
    for step in (2, 1, 5, -1):
        assert post_tap(setup, step, RIGHT[min(max(step, 0), last)]).status_code == 409
    # a made-up “finished” field, or a jump to the end: ignored
    client = setup["client"]
    forged = client.post(setup["tap"], json={"step": 3, "target": "cancel", "finished": True},
                         headers={"X-CSRFToken": client.token})
    assert forged.status_code == 409
    assert credited(setup) is None
    # done in order, the same taps finish it
    for step, target in enumerate(RIGHT):
        assert post_tap(setup, step, target).status_code == 200
    assert credited(setup) is not None


def test_replaying_the_right_taps_earns_nothing_more(setup):
    """A learner replays the finishing tap many times: gets 409 out_of_step each time and exactly one ledger record."""
    from lms.records.models import TrainingRecord

    for step, target in enumerate(RIGHT):
        post_tap(setup, step, target)
    for _ in range(5):
        assert post_tap(setup, 2, "cancel").status_code == 409
    assert TrainingRecord.query.count() == 1


def test_tap_without_csrf_token(setup):
    """A page elsewhere makes the learner's browser POST taps without the CSRF token: gets 400, the step does not move."""
    client = setup["client"]
    answer = client.post(setup["tap"], json={"step": 0, "target": "settings"})
    assert answer.status_code == 400
    form = client.post(setup["tap"], data={"step": "0", "target": "settings"})
    assert form.status_code == 400
    from lms.practices.services import state_for
    from lms.accounts.models import User

    assert state_for(User.query.filter_by(username="zhang").one().id, setup["practice"]).step == 0


def test_malformed_taps(setup):
    """A learner sends taps with a string step, a boolean, a 10 KB target or no JSON: gets 400 and a readable message, nothing stored."""
    client = setup["client"]
    for payload in ({"step": "0", "target": "settings"}, {"step": True, "target": "settings"},
                    {"step": 0, "target": "x" * 10_000}, {"step": 0}, [0, "settings"]):
        answer = client.post(setup["tap"], json=payload, headers={"X-CSRFToken": client.token})
        assert answer.status_code == 400 and answer.get_json()["error"] == "bad_tap", payload
    from lms.practices.models import PracticeProgress

    assert PracticeProgress.query.count() == 0


def test_hidden_course_and_anonymous(setup):
    """An anonymous visitor, and a learner tapping a practice of an unpublished course: get the sign-in page, and 404."""
    anonymous = setup["client"].client.application.test_client()
    assert anonymous.get(setup["page"]).status_code == 302
    assert "/login" in anonymous.post(setup["tap"], json={"step": 0, "target": "settings"}).headers.get("Location", "/login")
    setup["course"].published = False
    db.session.commit()
    assert setup["client"].get(setup["page"]).status_code == 404
    assert post_tap(setup, 0, "settings").status_code == 404


def test_script_in_a_practice_file_is_text(app, tmp_path, make_user, browser_client):
    """A package author writes <script> into an instruction and a button label: gets it shown as text, never run."""
    evil = dict(PRACTICE, steps=[dict(PRACTICE["steps"][0], instruction="<script>alert(1)</script>点“设置”"),
                                 {"screen": {"elements": [{"kind": "button", "id": "x", "label": "<img src=x onerror=alert(1)>"}]},
                                  "instruction": "点", "targets": ["x"]}])
    course, _ = import_package(practice_package(tmp_path / "content", evil, quiz=False, slug="evil"))
    make_user(username="li")
    browser_client.login("li")
    lesson = course.active_lessons[0]
    page = browser_client.get(f"/courses/{course.slug}/lessons/{lesson.slug}/practice").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img src=x" not in page
