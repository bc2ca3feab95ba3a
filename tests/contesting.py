"""Helpers of the contest tests: a question pool made directly in the database, contests made through
the service, and answering by the text of a choice as a person reads it."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from lms.accounts.models import User, utcnow
from lms.accounts.services import get_or_create_unit
from lms.contests import services
from lms.contests.models import Contest, ContestAnswer, ContestAttempt
from lms.courses.models import Course, Lesson
from lms.extensions import db
from lms.quizzes.models import Choice, Question, Quiz
from lms.records.services import to_local
from tests.conftest import BrowserLikeClient


def make_pool(slug: str = "contest-pool", questions: int = 6) -> Course:
    """A published course with one lesson whose quiz has `questions` questions: single choice (right
    answer "对{n}"), true/false and multiple choice in turn."""
    course = Course(slug=slug, title=f"竞赛题库 {slug}", credit_hours=Decimal("0.5"), package_id=f"pkg-{slug}")
    lesson = Lesson(course=course, slug="l1", title="第一课", position=1)
    quiz = Quiz(lesson=lesson)
    db.session.add_all([course, lesson, quiz])
    for n in range(1, questions + 1):
        kind = ("single", "truefalse", "multiple")[(n - 1) % 3]
        question = Question(quiz=quiz, position=n, sort_order=n, kind=kind, text=f"第{n}题：问题{n}",
                            explanation=f"解析{n}")
        if kind == "single":
            texts = [(f"对{n}", True), (f"错{n}a", False), (f"错{n}b", False), (f"错{n}c", False)]
        elif kind == "truefalse":
            texts = [("正确", True), ("错误", False)]
        else:
            texts = [(f"对{n}a", True), (f"对{n}b", True), (f"错{n}", False)]
        question.choices = [Choice(position=i, text=text, correct=right) for i, (text, right) in enumerate(texts, 1)]
        db.session.add(question)
    db.session.commit()
    return course


def local(delta: timedelta = timedelta()):
    """Now (plus delta) as a wall-clock time in Asia/Shanghai, as an organiser types it."""
    return to_local(utcnow() + delta).replace(tzinfo=None, second=0, microsecond=0)


def contest_data(courses, **fields) -> services.ContestData:
    values = dict(title="防诈骗知识竞赛", description="答题赢学时", starts_local=local(timedelta(hours=-1)),
                  ends_local=local(timedelta(days=3)), audiences=["elder"], unit_codes="county",
                  course_ids=[c.id for c in courses], question_count=3, seconds_per_question=30, attempts_per_day=2,
                  score_rule="best", hours=Decimal("1"), min_score=60)
    values.update(fields)
    return services.ContestData(**values)


def make_contest(actor, courses, **fields) -> Contest:
    return services.create_contest(actor, contest_data(courses, **fields))


def right_places(attempt: ContestAttempt, index: int) -> list[int]:
    item = attempt.draw[index]
    question = db.session.get(Question, item["q"])
    right = {c.id for c in question.choices if c.correct}
    return [place for place, cid in enumerate(item["c"]) if cid in right]


def wrong_places(attempt: ContestAttempt, index: int) -> list[int]:
    item = attempt.draw[index]
    right = {c.id for c in db.session.get(Question, item["q"]).choices if c.correct}
    return [place for place, cid in enumerate(item["c"]) if cid not in right][:1]


def take(attempt: ContestAttempt, pattern: str, now=None, seconds: float = 5) -> ContestAttempt:
    """Answer every question: "r" right, "w" wrong, each `seconds` after it was served."""
    now = now or utcnow()
    for index, mark in enumerate(pattern):
        served = services.current_question(attempt, now)
        assert served is not None and served.position == index
        now = now + timedelta(seconds=seconds)
        places = right_places(attempt, index) if mark == "r" else wrong_places(attempt, index)
        services.answer(attempt, index, places, now)
    db.session.refresh(attempt)
    assert attempt.finished
    return attempt


def add_people(unit_code: str, count: int, audience: str = "elder", prefix: str | None = None) -> list[User]:
    """Many people at once (without hashing a password each: these never sign in)."""
    unit = get_or_create_unit(unit_code, unit_code, "village")
    people = [User(username=f"{prefix or unit_code}-{n}", full_name=f"{unit_code}村民{n}", password_hash="x",
                   role="learner", audience=audience, unit=unit) for n in range(count)]
    db.session.add_all(people)
    db.session.commit()
    return people


def finished_attempt(contest: Contest, person: User, score: str, time_ms: int, day_seq: int = 1) -> ContestAttempt:
    """A finished attempt written directly (rankings over many people)."""
    now = utcnow()
    attempt = ContestAttempt(contest_id=contest.id, user_id=person.id, day=to_local(now).date(), day_seq=day_seq,
                             draw_json="[]", started_at=now, finished_at=now, right_count=0, score=Decimal(score),
                             time_ms=time_ms)
    db.session.add(attempt)
    db.session.commit()
    return attempt


def as_user(app, user) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    assert client.login(user.username).status_code == 302
    client.refresh_token("/account/password")
    return client


_CHOICE = re.compile(r'name="c" value="(\d+)">\s*<span>([^<]*)</span>')


def page_choices(page: str) -> dict[str, str]:
    """The question page's choices: text → the value the form sends."""
    return {text: value for value, text in _CHOICE.findall(page)}


def answers_of(attempt: ContestAttempt) -> list[ContestAnswer]:
    db.session.expire_all()
    return ContestAnswer.query.filter_by(attempt_id=attempt.id).order_by(ContestAnswer.position).all()


@pytest.fixture
def world(app, units, make_user):
    """County admin; unit admins of town-a and town-b; elder learners in both towns, a farmer in town-a;
    a pool of 6 questions."""
    return {
        **units, "pool": make_pool(),
        "admin": make_user("county-admin", role="admin", unit="county", audience="cadre", full_name="县管理员"),
        "ua_a": make_user("ua-a", role="unit_admin", unit="town-a", audience="cadre", full_name="桂溪管理员"),
        "ua_b": make_user("ua-b", role="unit_admin", unit="town-b", audience="cadre", full_name="澄溪管理员"),
        "elder_a": make_user("elder-a", unit="town-a", audience="elder", full_name="张大爷"),
        "elder_a2": make_user("elder-a2", unit="town-a", audience="elder", full_name="王奶奶"),
        "farmer_a": make_user("farmer-a", unit="town-a", audience="farmer", full_name="李大叔"),
        "elder_b": make_user("elder-b", unit="town-b", audience="elder", full_name="刘奶奶"),
    }
