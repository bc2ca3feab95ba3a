"""Contests as plain functions: organising (who, create, edit, delete), taking an attempt (the draw,
serving one question at a time, the server's timing, the first answer counting), results, rankings,
exports and crediting 学时.

Clock: every function that depends on the time takes `now` (naive UTC; None = the real clock), so
tests set the time without patching it. Randomness: `rng` (default SystemRandom) for a seeded draw.

Who organises: an admin any contest; a unit admin a contest all of whose units lie in their subtree
(lms/accounts/scope.py) — anything else answers 404 as if it did not exist. Who takes part: an active
person of one of the contest's units' subtrees whose audience is one of the contest's.
"""
from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from lms.accounts import people
from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import in_subtree, oversight_root, unit_in_subtree
from lms.activities.services import from_local
from lms.admin.forms import FieldError
from lms.audiences import AUDIENCE_CODES, audience_label
from lms.contests.models import (SCORE_RULES, Contest, ContestAnswer, ContestAttempt, ContestAudience,
                                 ContestCourse, ContestUnit)
from lms.courses.models import Course, Lesson
from lms.extensions import add_once, db
from lms.quizzes.models import QUESTION_KINDS, Question, Quiz
from lms.records.audit import audit
from lms.records.export import csv_cell, neutralise
from lms.records.models import TrainingRecord
from lms.records.services import to_local
from lms.records.xlsx import SheetWriter
from lms.templating import format_hours

ORGANISER_ROLES = ("admin", "unit_admin")
GRACE_SECONDS = 2  # for the network: an answer this much after the limit still counts
MAX_QUESTIONS = 100
MAX_SECONDS = 600
MAX_ATTEMPTS_PER_DAY = 20
MAX_HOURS = Decimal("8")
LEARNER_TOP = 20
RULES = {"first": _l("第一次成绩"), "best": _l("最好成绩")}

_random = random.SystemRandom()  # one draw tells nothing about the next


class ContestError(FieldError):
    """Bad input to create/edit a contest, naming the form field it is about; nothing was saved."""


class ContestRefused(Exception):
    """This person cannot start (or go on with) an attempt now; `message` says why, for the page.
    Nothing was recorded."""

    def __init__(self, message, status: int = 409, code: str = ""):
        super().__init__(str(message))
        self.message = str(message)
        self.status = status
        self.code = code  # "no_choice": the page asks again, nothing else went wrong


def clock(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def rule_label(code: str) -> str:
    return str(RULES.get(code, code))


# ---- who organises ------------------------------------------------------------------------------

def may_organise(user) -> bool:
    return getattr(user, "is_authenticated", False) and user.role in ORGANISER_ROLES


def may_manage(user, contest: Contest) -> bool:
    """An admin any; a unit admin when every unit of the contest lies in their subtree."""
    if not may_organise(user):
        return False
    root = oversight_root(user)
    return all(unit_in_subtree(unit, root) for unit in contest.units)


def contests_for_organiser(user) -> list[Contest]:
    """The contests `user` manages, newest first (a county has tens of contests a year, not thousands)."""
    contests = Contest.query.order_by(Contest.starts_at.desc(), Contest.id.desc()).all()
    return [contest for contest in contests if may_manage(user, contest)]


# ---- the question pool --------------------------------------------------------------------------

def pool_questions(course_ids) -> list[Question]:
    """The quiz questions (single, multiple, true/false) currently asked in the courses' lessons:
    retired lessons, quizzes and questions are left out."""
    ids = list(course_ids or [])
    if not ids:
        return []
    return (Question.query.join(Quiz, Question.quiz_id == Quiz.id).join(Lesson, Quiz.lesson_id == Lesson.id)
            .filter(Lesson.course_id.in_(ids), Lesson.retired.is_(False), Quiz.retired.is_(False),
                    Question.retired.is_(False), Question.kind.in_(QUESTION_KINDS))
            .order_by(Question.id).all())


def pool_sizes(course_ids) -> dict[int, int]:
    """Course id → how many questions it gives the pool (shown beside each course on the form)."""
    rows = (db.session.query(Lesson.course_id, func.count(Question.id))
            .join(Quiz, Quiz.lesson_id == Lesson.id).join(Question, Question.quiz_id == Quiz.id)
            .filter(Lesson.course_id.in_(list(course_ids)), Lesson.retired.is_(False), Quiz.retired.is_(False),
                    Question.retired.is_(False), Question.kind.in_(QUESTION_KINDS))
            .group_by(Lesson.course_id))
    return dict(rows.all())


def course_choices() -> list[Course]:
    return Course.query.filter_by(published=True).order_by(Course.title, Course.id).all()


# ---- create, edit, delete -----------------------------------------------------------------------

@dataclass
class ContestData:
    title: str
    description: str
    starts_local: datetime | None  # as typed, Asia/Shanghai
    ends_local: datetime | None
    audiences: list[str]
    unit_codes: str  # codes separated by spaces, commas or 、
    course_ids: list[int]
    question_count: int | None
    seconds_per_question: int | None
    attempts_per_day: int | None
    score_rule: str
    hours: Decimal | None
    min_score: int | None


def split_codes(text: str) -> list[str]:
    for separator in (",", "，", "、", ";", "；", "\n"):
        text = text.replace(separator, " ")
    seen = []
    for code in text.split():
        if code not in seen:
            seen.append(code)
    return seen


@dataclass
class Checked:
    units: list[Unit]
    starts_at: datetime
    ends_at: datetime


def _checked(actor: User, data: ContestData) -> Checked:
    """The contest's units and window in UTC, or ContestError on the first bad field."""
    title = (data.title or "").strip()
    if not title:
        raise ContestError("title", _l("请填写竞赛名称"))
    if len(title) > 200:
        raise ContestError("title", _l("竞赛名称最多 200 个字"))
    if len(data.description or "") > 5000:
        raise ContestError("description", _l("竞赛说明最多 5000 个字"))
    if data.starts_local is None:
        raise ContestError("starts_at", _l("请填写开始时间"))
    if data.ends_local is None:
        raise ContestError("ends_at", _l("请填写结束时间"))
    if data.ends_local <= data.starts_local:
        raise ContestError("ends_at", _l("结束时间必须晚于开始时间"))
    audiences = [code for code in AUDIENCE_CODES if code in set(data.audiences or [])]
    if not audiences or len(audiences) != len(set(data.audiences or [])):
        raise ContestError("audiences", _l("请至少选择一个面向人群"))
    codes = split_codes(data.unit_codes or "")
    if not codes:
        raise ContestError("units", _l("请至少填写一个单位编码"))
    if len(codes) > 50:
        raise ContestError("units", _l("最多 50 个单位"))
    units = []
    for code in codes:
        unit = people.unit_by_code(code)
        if unit is None:
            raise ContestError("units", _l("没有单位编码“%(code)s”", code=code))
        if not unit_in_subtree(unit, oversight_root(actor)):
            raise ContestError("units", _l("单位“%(name)s”不在您管辖的范围内", name=unit.name))
        units.append(unit)
    course_ids = sorted(set(data.course_ids or []))
    known = {course.id for course in Course.query.filter(Course.id.in_(course_ids))} if course_ids else set()
    if not course_ids or known != set(course_ids):
        raise ContestError("courses", _l("请至少选择一门课程作为题库"))
    count = data.question_count
    if count is None or not 1 <= count <= MAX_QUESTIONS:
        raise ContestError("question_count", _l("题目数量应在 1 到 %(max)d 之间", max=MAX_QUESTIONS))
    pool = len(pool_questions(course_ids))
    if count > pool:
        raise ContestError("question_count", _l("所选课程的题库只有 %(pool)d 道题，少于每次要抽的 %(count)d 道；"
                                                "请减少题目数量或多选几门课程", pool=pool, count=count))
    if data.seconds_per_question is None or not 5 <= data.seconds_per_question <= MAX_SECONDS:
        raise ContestError("seconds_per_question", _l("每题限时应在 5 到 %(max)d 秒之间", max=MAX_SECONDS))
    if data.attempts_per_day is None or not 1 <= data.attempts_per_day <= MAX_ATTEMPTS_PER_DAY:
        raise ContestError("attempts_per_day", _l("每天答题次数应在 1 到 %(max)d 之间", max=MAX_ATTEMPTS_PER_DAY))
    if data.score_rule not in SCORE_RULES:
        raise ContestError("score_rule", _l("请选择计分方式"))
    hours = data.hours if data.hours is not None else Decimal("0")
    if not Decimal("0") <= hours <= MAX_HOURS:
        raise ContestError("hours", _l("学时应在 0 到 8 之间（0 表示不记学时）"))
    min_score = data.min_score if data.min_score is not None else 0
    if not 0 <= min_score <= 100:
        raise ContestError("min_score", _l("记学时的最低分应在 0 到 100 之间"))
    data.title, data.description, data.audiences = title, (data.description or "").strip(), audiences
    data.course_ids, data.hours, data.min_score = course_ids, hours, min_score
    return Checked(units, from_local(data.starts_local), from_local(data.ends_local))


def _describe(contest: Contest) -> str:
    hours = (f"{format_hours(contest.hours)} 学时（{contest.min_score} 分以上）" if contest.hours else "不记学时")
    return (f"{contest.title}，{to_local(contest.starts_at):%Y-%m-%d %H:%M}–{to_local(contest.ends_at):%Y-%m-%d %H:%M}，"
            f"单位 {'、'.join(unit.code for unit in contest.units)}，"
            f"{'、'.join(audience_label(a) for a in contest.audiences)}，课程 {contest.course_ids}，"
            f"{contest.question_count} 题 × {contest.seconds_per_question} 秒，每天 {contest.attempts_per_day} 次，"
            f"{rule_label(contest.score_rule)}，{hours}")


def target(contest: Contest) -> str:
    return f"contest:{contest.id}"


def _apply(contest: Contest, data: ContestData, checked: Checked) -> None:
    contest.title, contest.description = data.title, data.description
    contest.starts_at, contest.ends_at = checked.starts_at, checked.ends_at
    contest.question_count, contest.seconds_per_question = data.question_count, data.seconds_per_question
    contest.attempts_per_day, contest.score_rule = data.attempts_per_day, data.score_rule
    contest.hours, contest.min_score = data.hours, data.min_score
    # keep the rows that stay (same keys), add and drop the others
    audiences, unit_ids = set(data.audiences), {unit.id for unit in checked.units}
    had = {row.audience for row in contest.audience_rows}
    contest.audience_rows = ([row for row in contest.audience_rows if row.audience in audiences]
                             + [ContestAudience(audience=a) for a in data.audiences if a not in had])
    had = {row.unit_id for row in contest.unit_rows}
    contest.unit_rows = ([row for row in contest.unit_rows if row.unit_id in unit_ids]
                         + [ContestUnit(unit=unit) for unit in checked.units if unit.id not in had])
    had = {row.course_id for row in contest.course_rows}
    contest.course_rows = ([row for row in contest.course_rows if row.course_id in set(data.course_ids)]
                           + [ContestCourse(course_id=c) for c in data.course_ids if c not in had])


def create_contest(actor: User, data: ContestData) -> Contest:
    checked = _checked(actor, data)
    contest = Contest(created_by_id=actor.id)
    _apply(contest, data, checked)
    db.session.add(contest)
    db.session.flush()
    audit(actor, "contest.create", target(contest), _describe(contest))
    db.session.commit()
    return contest


def update_contest(actor: User, contest: Contest, data: ContestData) -> bool:
    """Save changes; True when something changed. Attempts already made keep their draw, and 学时
    already credited stay (the ledger is append-only): a change applies from now on."""
    checked = _checked(actor, data)
    before = _describe(contest)
    _apply(contest, data, checked)
    db.session.flush()
    db.session.expire(contest, ["unit_rows"])  # the units' relationship loads again, in path order
    after = _describe(contest)
    if after == before:
        db.session.rollback()
        return False
    audit(actor, "contest.update", target(contest), f"{before} → {after}")
    db.session.commit()
    return True


def attempt_count(contest: Contest) -> int:
    return ContestAttempt.query.filter_by(contest_id=contest.id).count()


def delete_contest(actor: User, contest: Contest) -> None:
    """Only a contest nobody has taken part in: results (and the 学时 they credited) are not thrown away."""
    taken = attempt_count(contest)
    if taken:
        raise ContestError("delete", _l("已有 %(n)d 次答题，不能删除；可以修改结束时间提前结束竞赛", n=taken))
    audit(actor, "contest.delete", target(contest), _describe(contest))
    db.session.delete(contest)
    db.session.commit()


# ---- who takes part -----------------------------------------------------------------------------

def eligibility_problem(contest: Contest, person: User) -> str | None:
    """Why `person` cannot take part in `contest` (for the page), or None."""
    if not person.active:
        return str(_l("您的账号已停用"))
    if person.audience not in contest.audiences:
        return str(_l("本竞赛面向%(audiences)s，您（%(audience)s）不在其中",
                      audiences="、".join(audience_label(a) for a in contest.audiences),
                      audience=audience_label(person.audience)))
    if not any(unit_in_subtree(person.unit, unit) for unit in contest.units):
        return str(_l("本竞赛只对%(units)s及其下级单位的人开放", units="、".join(u.name for u in contest.units)))
    return None


def window_problem(contest: Contest, now: datetime | None = None) -> str | None:
    now = clock(now)
    if now < contest.starts_at:
        return str(_l("竞赛还没开始，开始时间：%(at)s", at=to_local(contest.starts_at).strftime("%Y-%m-%d %H:%M")))
    if now > contest.ends_at:
        return str(_l("竞赛已于 %(at)s 结束", at=to_local(contest.ends_at).strftime("%Y-%m-%d %H:%M")))
    return None


def open_contests(person: User, now: datetime | None = None) -> list[Contest]:
    """The contests `person` may take part in now."""
    now = clock(now)
    query = (Contest.query.join(ContestAudience, ContestAudience.contest_id == Contest.id)
             .filter(Contest.starts_at <= now, Contest.ends_at >= now, ContestAudience.audience == person.audience)
             .order_by(Contest.ends_at, Contest.id))
    return [contest for contest in query if eligibility_problem(contest, person) is None]


def taken_contests(person: User, now: datetime | None = None) -> list[Contest]:
    """Contests that ended in which `person` finished an attempt (for their rankings)."""
    ids = select(ContestAttempt.contest_id).where(ContestAttempt.user_id == person.id,
                                                  ContestAttempt.finished_at.isnot(None))
    return (Contest.query.filter(Contest.id.in_(ids), Contest.ends_at < clock(now))
            .order_by(Contest.ends_at.desc()).limit(20).all())


def may_view(user, contest: Contest) -> bool:
    """Intro and rankings: the contest's people and its organisers."""
    if may_manage(user, contest):
        return True
    return eligibility_problem(contest, user) is None or ContestAttempt.query.filter_by(
        contest_id=contest.id, user_id=user.id).first() is not None


# ---- an attempt ---------------------------------------------------------------------------------

def open_key(contest_id: int, user_id: int) -> str:
    return f"contest:{contest_id}:user:{user_id}"


def local_day(now: datetime) -> date:
    return to_local(now).date()


def attempts_today(contest: Contest, person: User, now: datetime | None = None) -> int:
    return ContestAttempt.query.filter_by(contest_id=contest.id, user_id=person.id,
                                          day=local_day(clock(now))).count()


def open_attempt(contest: Contest, person: User) -> ContestAttempt | None:
    return ContestAttempt.query.filter_by(open_key=open_key(contest.id, person.id)).first()


def _shown_order(question: Question, rng) -> list[int]:
    order = [choice.id for choice in question.choices]
    if question.kind != "truefalse":  # 正确 / 错误 name themselves: their order hides nothing
        rng.shuffle(order)
    return order


def new_draw(contest: Contest, rng=None) -> list[dict]:
    """N questions drawn from the pool in a random order, each with its choices in a random order."""
    rng = rng or _random
    pool = pool_questions(contest.course_ids)
    if len(pool) < contest.question_count:
        raise ContestRefused(_l("题库题目不够（%(pool)d 道，每次要抽 %(count)d 道），请联系组织者",
                                pool=len(pool), count=contest.question_count))
    return [{"q": question.id, "c": _shown_order(question, rng)}
            for question in rng.sample(pool, contest.question_count)]


def start_attempt(contest: Contest, person: User, now: datetime | None = None, rng=None) -> ContestAttempt:
    """The person's open attempt of this contest, or a new one (with its draw). ContestRefused — and
    nothing recorded — outside the window, for someone not invited, or beyond the attempts of the day
    (Asia/Shanghai); the unique (day, day_seq) makes the database refuse one beyond it under a race."""
    now = clock(now)
    problem = eligibility_problem(contest, person)
    if problem:
        raise ContestRefused(problem, 403)
    problem = window_problem(contest, now)
    if problem:
        raise ContestRefused(problem)
    existing = open_attempt(contest, person)
    if existing is not None:
        return existing
    used = attempts_today(contest, person, now)
    if used >= contest.attempts_per_day:
        raise ContestRefused(_l("今天的 %(n)d 次答题机会已经用完，明天再来吧", n=contest.attempts_per_day))
    attempt = ContestAttempt(contest_id=contest.id, user_id=person.id, day=local_day(now), day_seq=used + 1,
                             draw_json=json.dumps(new_draw(contest, rng)), started_at=now,
                             open_key=open_key(contest.id, person.id))
    # another request of this person may start one meanwhile: then theirs, or today's last chance is gone
    started = add_once(attempt, lambda: open_attempt(contest, person))
    if started is None:
        raise ContestRefused(_l("今天的 %(n)d 次答题机会已经用完，明天再来吧", n=contest.attempts_per_day))
    return started


def attempt_of(contest: Contest, person: User, attempt_id: int) -> ContestAttempt | None:
    """The attempt only when it is this person's, of this contest (else None: the route answers 404)."""
    attempt = db.session.get(ContestAttempt, attempt_id)
    if attempt is None or attempt.contest_id != contest.id or attempt.user_id != person.id:
        return None
    return attempt


def limit(contest: Contest) -> timedelta:
    return timedelta(seconds=contest.seconds_per_question)


def deadline(contest: Contest, served: ContestAnswer) -> datetime:
    """The last moment an answer to `served` counts: the limit plus the network's grace."""
    return served.served_at + limit(contest) + timedelta(seconds=GRACE_SECONDS)


def seconds_left(contest: Contest, served: ContestAnswer, now: datetime | None = None) -> int:
    """What the page's countdown starts from (the limit, without the grace)."""
    left = served.served_at + limit(contest) - clock(now)
    return max(0, int(left.total_seconds() + 0.999))


def _limit_ms(contest: Contest) -> int:
    return contest.seconds_per_question * 1000


def _time_out(contest: Contest, served: ContestAnswer) -> None:
    """No answer in time: zero, and the whole limit as its time (only if still unanswered)."""
    db.session.execute(update(ContestAnswer).where(ContestAnswer.id == served.id, ContestAnswer.answered_at.is_(None))
                       .values(answered_at=deadline(contest, served), correct=False, late=True,
                               elapsed_ms=_limit_ms(contest)))


def current_question(attempt: ContestAttempt, now: datetime | None = None) -> ContestAnswer | None:
    """The question the person is on: the served one still in time, else the next one, served now
    (its clock starts here, on the server). Questions whose time ran out unanswered score zero. None
    when the attempt is over (all asked, or the contest ended): then it is finished."""
    now = clock(now)
    contest = attempt.contest
    if attempt.finished:
        return None
    draw = attempt.draw
    for index, item in enumerate(draw):
        served = ContestAnswer.query.filter_by(attempt_id=attempt.id, position=index).first()
        if served is None:
            if now > contest.ends_at:  # no new question after the end: the rest score zero
                break
            served = ContestAnswer(attempt_id=attempt.id, position=index, question_id=item["q"], served_at=now)
            try:
                with db.session.begin_nested():
                    db.session.add(served)
                db.session.commit()
                return served
            except IntegrityError:  # served by a parallel request of the same page
                db.session.rollback()
                served = ContestAnswer.query.filter_by(attempt_id=attempt.id, position=index).one()
        if served.answered_at is None:
            if now <= deadline(contest, served):
                return served
            _time_out(contest, served)
            db.session.commit()
    finish_attempt(attempt, now)
    return None


@dataclass
class AnswerResult:
    status: str  # recorded, late, already
    message: str
    finished: bool


def _question(question_id: int) -> Question | None:
    return db.session.get(Question, question_id)


def answer(attempt: ContestAttempt, index: int, shown: list[int], now: datetime | None = None) -> AnswerResult:
    """Record the answer to the attempt's `index`-th question, which must have been served. `shown`:
    the places (in this attempt's order) the person picked. After the limit (+ grace) it scores zero;
    a second answer changes nothing. ContestRefused for a finished attempt, a question not in the
    attempt or not served yet, or no choice made while there is still time."""
    now = clock(now)
    contest = attempt.contest
    if attempt.finished:
        raise ContestRefused(_l("这次答题已经结束"))
    draw = attempt.draw
    if not 0 <= index < len(draw):
        raise ContestRefused(_l("这次答题没有这道题"), 400)
    served = ContestAnswer.query.filter_by(attempt_id=attempt.id, position=index).first()
    if served is None:
        raise ContestRefused(_l("这道题还没有出，不能作答"), 400)
    if served.answered_at is not None:
        return AnswerResult("already", str(_l("这道题已经答过，以第一次的答案为准")), False)
    item = draw[index]
    picked = {item["c"][place] for place in set(shown) if 0 <= place < len(item["c"])}
    question = _question(item["q"])
    late = now > deadline(contest, served)
    if not picked and now < served.served_at + limit(contest):
        raise ContestRefused(_l("请先选择答案"), 400, "no_choice")
    # nothing picked when the time is up (the page's countdown sends the form at zero): no answer, zero
    late = late or not picked
    if question is not None and question.kind != "multiple" and len(picked) > 1:
        picked = set()  # a forged second pick of a single-choice question answers nothing
    right = {choice.id for choice in question.choices if choice.correct} if question is not None else set()
    correct = not late and bool(picked) and picked == right
    elapsed = min(int((now - served.served_at).total_seconds() * 1000), _limit_ms(contest))
    done = db.session.execute(
        update(ContestAnswer).where(ContestAnswer.id == served.id, ContestAnswer.answered_at.is_(None))
        .values(answered_at=now, choices_json=json.dumps(sorted(picked)), correct=correct, late=late,
                elapsed_ms=max(0, elapsed))).rowcount == 1
    db.session.commit()
    if not done:  # a parallel request answered first: its answer counts
        return AnswerResult("already", str(_l("这道题已经答过，以第一次的答案为准")), False)
    finished = False
    if index == len(draw) - 1:
        finish_attempt(attempt, now)
        finished = True
    if late:
        return AnswerResult("late", str(_l("时间已到，这道题不得分")), finished)
    return AnswerResult("recorded", str(_l("已记录您的答案")), finished)


def score_of(right: int, asked: int) -> Decimal:
    return (Decimal(right * 100) / Decimal(asked)).quantize(Decimal("0.01"), ROUND_HALF_UP) if asked else Decimal(0)


def finish_attempt(attempt: ContestAttempt, now: datetime | None = None) -> bool:
    """Grade and close the attempt (questions never served score zero); True when this call closed it.
    Then credit 学时 when the person's counted score now reaches the contest's minimum."""
    now = clock(now)
    rows = ContestAnswer.query.filter_by(attempt_id=attempt.id).all()
    right = sum(1 for row in rows if row.correct and row.answered_at is not None)
    time_ms = sum(row.elapsed_ms or 0 for row in rows if row.answered_at is not None)
    closed = db.session.execute(
        update(ContestAttempt).where(ContestAttempt.id == attempt.id, ContestAttempt.finished_at.is_(None))
        .values(finished_at=now, right_count=right, score=score_of(right, len(attempt.draw)), time_ms=time_ms,
                open_key=None)).rowcount == 1
    db.session.commit()
    db.session.refresh(attempt)
    if closed:
        credit_if_due(attempt.contest, attempt.user, now)
    return closed


@dataclass
class ReviewItem:
    number: int
    question: Question | None
    choices: list  # [(Choice, picked: bool)] in the order shown
    correct: bool
    late: bool
    answered: bool
    seconds: float | None


def review(attempt: ContestAttempt) -> list[ReviewItem]:
    """A finished attempt's questions with the person's answers, the right ones and explanations."""
    if not attempt.finished:
        return []
    served = {row.position: row for row in attempt.answers}
    items = []
    for index, item in enumerate(attempt.draw):
        question = _question(item["q"])
        row = served.get(index)
        chosen = row.chosen if row else set()
        by_id = {choice.id: choice for choice in question.choices} if question else {}
        items.append(ReviewItem(
            number=index + 1, question=question,
            choices=[(by_id[cid], cid in chosen) for cid in item["c"] if cid in by_id],
            correct=bool(row and row.correct), late=bool(row and row.late),
            answered=bool(row and row.chosen),
            seconds=(row.elapsed_ms / 1000) if row and row.elapsed_ms is not None else None))
    return items


# ---- results and rankings -----------------------------------------------------------------------

@dataclass
class PersonResult:
    user_id: int
    attempt_id: int
    score: Decimal
    time_ms: int
    finished_at: datetime
    attempts: int
    place: int = 0
    user: User | None = None
    unit: Unit | None = None
    credited: Decimal = Decimal("0")


def _counted(rule: str, attempts: list[ContestAttempt]) -> ContestAttempt:
    """`attempts` in the order started: the first finished one, or the best (then less time, earlier)."""
    if rule == "first":
        return attempts[0]
    return min(attempts, key=lambda a: (-a.score, a.time_ms, a.finished_at, a.id))


def person_results(contest: Contest, user_ids: list[int] | None = None) -> list[PersonResult]:
    """One row per person with a finished attempt, ranked: counted score (first or best per the rule)
    high to low, then less time, then who finished first. Equal score and time share a place."""
    query = ContestAttempt.query.filter(ContestAttempt.contest_id == contest.id, ContestAttempt.finished_at.isnot(None))
    if user_ids is not None:
        query = query.filter(ContestAttempt.user_id.in_(user_ids))
    by_user: dict[int, list[ContestAttempt]] = {}
    for attempt in query.order_by(ContestAttempt.started_at, ContestAttempt.id):
        by_user.setdefault(attempt.user_id, []).append(attempt)
    results = []
    for user_id, attempts in by_user.items():
        counted = _counted(contest.score_rule, attempts)
        results.append(PersonResult(user_id, counted.id, counted.score, counted.time_ms or 0, counted.finished_at,
                                    len(attempts)))
    results.sort(key=lambda r: (-r.score, r.time_ms, r.finished_at, r.user_id))
    for position, result in enumerate(results, start=1):
        previous = results[position - 2] if position > 1 else None
        same = previous is not None and (previous.score, previous.time_ms) == (result.score, result.time_ms)
        result.place = previous.place if same else position
    return results


def counted_result(contest: Contest, person: User) -> PersonResult | None:
    found = person_results(contest, [person.id])
    return found[0] if found else None


def _attach_people(results: list[PersonResult]) -> None:
    ids = [r.user_id for r in results]
    found: dict[int, tuple[User, Unit]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update({user.id: (user, unit) for user, unit in db.session.query(User, Unit)
                      .join(Unit, User.unit_id == Unit.id).filter(User.id.in_(chunk))})
    for result in results:
        result.user, result.unit = found.get(result.user_id, (None, None))


def _attach_credits(contest: Contest, results: list[PersonResult]) -> None:
    keys = {credit_key(contest.id, r.user_id): r for r in results}
    names = list(keys)
    for start in range(0, len(names), 500):
        for key, hours in db.session.query(TrainingRecord.completion_key, TrainingRecord.hours).filter(
                TrainingRecord.completion_key.in_(names[start:start + 500])):
            keys[key].credited = hours


def full_ranking(contest: Contest) -> list[PersonResult]:
    results = person_results(contest)
    _attach_people(results)
    _attach_credits(contest, results)
    return results


@dataclass
class LearnerView:
    top: list[PersonResult]
    mine: PersonResult | None
    total: int


def learner_ranking(contest: Contest, person: User) -> LearnerView:
    """The top 20 and the person's own place (also when below the top)."""
    results = person_results(contest)
    top = results[:LEARNER_TOP]
    mine = next((r for r in results if r.user_id == person.id), None)
    shown = top + ([mine] if mine is not None and mine not in top else [])
    _attach_people(shown)
    return LearnerView(top, mine, len(results))


@dataclass
class UnitResult:
    unit: Unit
    eligible: int
    participants: int
    score_sum: Decimal = Decimal("0")
    time_sum: int = 0

    @property
    def rate(self) -> float:
        return self.participants / self.eligible if self.eligible else 0.0

    @property
    def average(self) -> Decimal | None:
        return (self.score_sum / self.participants).quantize(Decimal("0.01")) if self.participants else None

    @property
    def average_seconds(self) -> float | None:
        return self.time_sum / self.participants / 1000 if self.participants else None


def ranking_units(contest: Contest) -> list[Unit]:
    """The units ranked: the units one level below the contest's units (townships under the county,
    villages under a township); a contest unit with none below is ranked itself."""
    chosen: dict[int, Unit] = {}
    for unit in contest.units:
        below = Unit.query.filter_by(parent_id=unit.id, active=True).order_by(Unit.path).all()
        for child in below or [unit]:
            chosen.setdefault(child.id, child)
    return list(chosen.values())


def _eligible_people(contest: Contest, unit: Unit):
    return (select(func.count(User.id)).join(Unit, User.unit_id == Unit.id)
            .where(in_subtree(unit), User.active.is_(True), User.audience.in_(contest.audiences)))


def unit_results(contest: Contest) -> list[UnitResult]:
    """Per ranked unit: participants ÷ registered active people of its subtree in the contest's
    audiences, and the participants' average counted score and time. Unordered."""
    units = ranking_units(contest)
    stats = [UnitResult(unit, db.session.execute(_eligible_people(contest, unit)).scalar_one(), 0) for unit in units]
    results = person_results(contest)
    _attach_people(results)
    audiences = set(contest.audiences)
    for result in results:
        if result.user is None or not result.user.active or result.user.audience not in audiences:
            continue
        for stat in stats:
            if unit_in_subtree(result.unit, stat.unit):
                stat.participants += 1
                stat.score_sum += result.score
                stat.time_sum += result.time_ms
                break
    return stats


def units_by_participation(stats: list[UnitResult]) -> list[UnitResult]:
    """Participation rate high to low; ties by less average time."""
    return sorted(stats, key=lambda s: (-s.rate, s.average_seconds if s.participants else float("inf"), s.unit.path))


def units_by_score(stats: list[UnitResult]) -> list[UnitResult]:
    """Average counted score high to low (units without participants last); ties by less average time."""
    return sorted(stats, key=lambda s: (s.participants == 0, -(s.average or 0),
                                        s.average_seconds if s.participants else float("inf"), s.unit.path))


# ---- 学时 -----------------------------------------------------------------------------------------

def credit_key(contest_id: int, user_id: int) -> str:
    return f"contest:{contest_id}:user:{user_id}"


@dataclass
class Credit:
    status: str  # credited, already, none (not due), refused (the ledger refused: a closed year)
    record: TrainingRecord | None = None
    message: str = ""


def credit_if_due(contest: Contest, person: User, now: datetime | None = None) -> Credit:
    """Credit the contest's 学时 once when the person's counted score reaches the minimum: one ledger
    record (kind "contest", source "online") whose unique completion_key makes a second credit — a
    later attempt, a race of finishing requests — "already"."""
    if not contest.hours or contest.hours <= 0:
        return Credit("none")
    counted = counted_result(contest, person)
    if counted is None or counted.score < contest.min_score:
        return Credit("none")
    key = credit_key(contest.id, person.id)
    existing = TrainingRecord.query.filter_by(completion_key=key).first()
    if existing is not None:
        return Credit("already", existing)
    record = TrainingRecord(user_id=person.id, title=f"知识竞赛：{contest.title}"[:200], kind="contest", hours=contest.hours,
                            quiz_score=int(counted.score.to_integral_value(ROUND_HALF_UP)),
                            earned_at=clock(now), source="online", completion_key=key,
                            note=f"知识竞赛 {counted.score} 分（记学时最低 {contest.min_score} 分）")
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
    except IntegrityError:  # credited meanwhile by another request: the database kept the first only
        db.session.rollback()
        return Credit("already", TrainingRecord.query.filter_by(completion_key=key).one())
    except ValueError as exc:  # lms.records.closing.YearClosed: the ledger refuses this year
        db.session.rollback()
        return Credit("refused", None, str(exc))
    audit(person, "contest.credit", person, f"{contest.title}（{target(contest)}），{format_hours(contest.hours)} 学时")
    db.session.commit()
    return Credit("credited", record)


def credited(contest: Contest, person: User) -> TrainingRecord | None:
    return TrainingRecord.query.filter_by(completion_key=credit_key(contest.id, person.id)).first()


# ---- export -------------------------------------------------------------------------------------

EXPORT_COLUMNS = [("place", "名次"), ("name", "姓名"), ("username", "账号"), ("unit", "单位"), ("audience", "人群"),
                  ("score", "成绩"), ("seconds", "用时(秒)"), ("attempts", "答题次数"), ("hours", "记入学时")]
NUMBER_COLUMNS = frozenset({"place", "score", "seconds", "attempts", "hours"})


def _unit_paths() -> dict[str, str]:
    """Unit path → "垫江县/桂溪街道/…" (a county's units: a few thousand rows at most)."""
    names = dict(db.session.query(Unit.code, Unit.name).all())
    paths = {}
    for (path,) in db.session.query(Unit.path):
        paths[path] = "/".join(names.get(code, code) for code in path.strip("/").split("/"))
    return paths


def export_rows(contest: Contest) -> list[dict]:
    paths = _unit_paths()
    rows = []
    for result in full_ranking(contest):
        user, unit = result.user, result.unit
        rows.append({"place": result.place, "name": user.full_name if user else "", "username": user.username if user
                     else "", "unit": paths.get(unit.path, unit.name) if unit else "",
                     "audience": audience_label(user.audience) if user else "", "score": result.score,
                     "seconds": Decimal(result.time_ms) / 1000, "attempts": result.attempts, "hours": result.credited})
    return rows


def export_csv(contest: Contest) -> bytes:
    """UTF-8 with BOM (Excel opens it in Chinese); text cells neutralised against formulas."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([zh for _key, zh in EXPORT_COLUMNS])
    for row in export_rows(contest):
        writer.writerow([csv_cell(row[key]) for key, _zh in EXPORT_COLUMNS])
    return out.getvalue().encode("utf-8")


def export_xlsx(contest: Contest) -> bytes:
    out = io.BytesIO()
    keys = [key for key, _zh in EXPORT_COLUMNS]
    numeric = [key in NUMBER_COLUMNS for key in keys]
    with SheetWriter(out, "竞赛成绩", [zh for _key, zh in EXPORT_COLUMNS], numeric) as sheet:
        sheet.write_rows([row[key] if number or row[key] is None else neutralise(str(row[key]))
                          for key, number in zip(keys, numeric)] for row in export_rows(contest))
    return out.getvalue()
