"""Taking the self-assessment, scoring it, and what it recommends — plain functions, no HTTP.

A sitting is started (or resumed: one open sitting per learner) with its draw — the pool's items drawn at
random per dimension as assessment.yaml says (12/6/6/6), each item's choices shuffled — and a deadline
from the server's clock. The page names a choice by its place in that order and a question by its place
in the draw, so a position means nothing outside its sitting. An answer is committed once (the first
stays) and only before the deadline. Finishing scores the committed answers: each item is worth its
dimension's points ÷ the items drawn of it; the total is out of 100 and above the threshold (70) counts
as 具备科学素质. The self-assessment credits no 学时: nothing here touches the ledger.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from lms.accounts.models import utcnow
from lms.assessment.models import DIMENSIONS, AssessmentAnswer, AssessmentItem, AssessmentPool, AssessmentSitting
from lms.extensions import add_once, db

_random = random.SystemRandom()  # one draw tells nothing about the next
CENT = Decimal("0.01")


class NoPool(LookupError):
    """No item pool imported yet (lms import-content content/)."""


class PoolTooSmall(ValueError):
    def __init__(self, dimension: str, have: int, need: int):
        super().__init__(f"{dimension}: {have} < {need}")
        self.dimension, self.have, self.need = dimension, have, need


class RetakeTooSoon(Exception):
    """The last finished sitting was less than retake_days ago; the next may start at `at` (naive UTC)."""

    def __init__(self, last: AssessmentSitting, at: datetime):
        super().__init__(f"retake at {at:%Y-%m-%d}")
        self.last, self.at = last, at


class SittingNotOpen(LookupError):
    """The form names no open sitting of this learner (someone else's, finished, or made up)."""


class TimeUp(Exception):
    """The answer came after the deadline: not counted; the sitting is finished with what it had."""

    def __init__(self, sitting: AssessmentSitting):
        super().__init__("time up")
        self.sitting = sitting


class InvalidAnswer(ValueError):
    """No such question in the draw, or no usable choice picked."""


# --- the pool and the draw -------------------------------------------------------------------------

def current_pool() -> AssessmentPool:
    pool = AssessmentPool.query.order_by(AssessmentPool.id).first()
    if pool is None:
        raise NoPool()
    return pool


def _shown_order(item: AssessmentItem) -> list[int]:
    order = list(range(len(item.choices)))
    if item.kind != "truefalse":  # 正确 / 错误 name themselves: their order hides nothing
        _random.shuffle(order)
    return order


def new_draw(pool: AssessmentPool) -> list[dict]:
    """draw[dimension] active items of each dimension at random, in a shuffled order, each with its
    choice order; PoolTooSmall when a dimension has fewer items than the draw asks."""
    active = AssessmentItem.query.filter_by(pool_id=pool.id, retired=False).all()
    chosen = []
    for dimension in DIMENSIONS:
        need = pool.rules["draw"][dimension]
        items = [item for item in active if item.dimension == dimension]
        if len(items) < need:
            raise PoolTooSmall(dimension, len(items), need)
        chosen += _random.sample(items, need)
    _random.shuffle(chosen)
    return [{"i": item.id, "c": _shown_order(item)} for item in chosen]


# --- sittings --------------------------------------------------------------------------------------

def _open_key(user_id: int) -> str:
    return f"assessment:user:{user_id}"


def last_finished(user_id: int) -> AssessmentSitting | None:
    return (AssessmentSitting.query.filter(AssessmentSitting.user_id == user_id,
                                           AssessmentSitting.finished_at.isnot(None))
            .order_by(AssessmentSitting.finished_at.desc(), AssessmentSitting.id.desc()).first())


def finished_sittings(user_id: int) -> list[AssessmentSitting]:
    return (AssessmentSitting.query.filter(AssessmentSitting.user_id == user_id,
                                           AssessmentSitting.finished_at.isnot(None))
            .order_by(AssessmentSitting.finished_at.desc()).all())


def retake_at(user_id: int, pool: AssessmentPool, now: datetime | None = None) -> datetime | None:
    """When the learner may start again; None = now."""
    last = last_finished(user_id)
    if last is None:
        return None
    at = last.finished_at + timedelta(days=pool.retake_days)
    return at if at > (now or utcnow()) else None


def open_sitting(user, now: datetime | None = None) -> AssessmentSitting | None:
    """The learner's open sitting; one whose time ran out is finished first (with the answers it has)."""
    sitting = AssessmentSitting.query.filter_by(open_key=_open_key(user.id)).first()
    if sitting is not None and (now or utcnow()) > sitting.deadline_at:
        finish(sitting, user, now)
        return None
    return sitting


def start_or_resume(user, now: datetime | None = None) -> AssessmentSitting:
    """The open sitting, or a new one with a fresh draw and deadline; RetakeTooSoon within retake_days
    of the last finished one. One open sitting per learner, whatever the concurrency."""
    now = now or utcnow()
    sitting = open_sitting(user, now)
    if sitting is not None:
        return sitting
    pool = current_pool()
    wait = retake_at(user.id, pool, now)
    if wait is not None:
        raise RetakeTooSoon(last_finished(user.id), wait)
    rules = dict(pool.rules, threshold=pool.threshold, minutes=pool.minutes)
    sitting = AssessmentSitting(user_id=user.id, pool_id=pool.id, started_at=now,
                                deadline_at=now + timedelta(minutes=pool.minutes), open_key=_open_key(user.id),
                                draw_json=json.dumps(new_draw(pool)), rules_json=json.dumps(rules, sort_keys=True))
    # another request of this learner may open one first: then theirs
    return add_once(sitting, lambda: AssessmentSitting.query.filter_by(open_key=_open_key(user.id)).one())


def sitting_for_form(user_id: int, token: str) -> AssessmentSitting:
    """The sitting a posted form names (its form_token): this learner's; SittingNotOpen otherwise."""
    raw_id = (token or "").split("-", 1)[0]
    sitting = db.session.get(AssessmentSitting, int(raw_id)) if raw_id.isdigit() and len(raw_id) < 12 else None
    if sitting is None or sitting.user_id != user_id or sitting.form_token != token:
        raise SittingNotOpen(token)
    return sitting


def seconds_left(sitting: AssessmentSitting, now: datetime | None = None) -> int:
    return max(0, int((sitting.deadline_at - (now or utcnow())).total_seconds()))


# --- answers ---------------------------------------------------------------------------------------

def _items(sitting: AssessmentSitting) -> dict[int, AssessmentItem]:
    ids = [entry["i"] for entry in sitting.draw]
    return {item.id: item for item in AssessmentItem.query.filter(AssessmentItem.id.in_(ids))}


def _picked(item: AssessmentItem, entry: dict, shown: set[int]) -> set[int]:
    """Shown places → the item's own choice positions; a place not shown, or two picks for a one-answer
    question, is no answer."""
    if any(not 0 <= value < len(entry["c"]) for value in shown):
        return set()
    picked = {entry["c"][value] for value in shown}
    if item.kind != "multiple" and len(picked) > 1:
        return set()
    return picked


def is_correct(item: AssessmentItem, picked: set[int]) -> bool:
    return picked == {n for n, (_text, correct) in enumerate(item.choices) if correct}


def commit_answer(sitting: AssessmentSitting, index: int, shown: set[int], user,
                  now: datetime | None = None) -> AssessmentAnswer:
    """Commit the answer to the draw's `index`-th question. After the deadline: TimeUp (not counted, the
    sitting is finished). A question already answered keeps its first answer."""
    now = now or utcnow()
    if sitting.finished:
        raise SittingNotOpen(sitting.id)
    if now > sitting.deadline_at:
        finish(sitting, user, now)
        raise TimeUp(sitting)
    draw = sitting.draw
    if not 0 <= index < len(draw):
        raise InvalidAnswer(index)
    entry = draw[index]
    existing = AssessmentAnswer.query.filter_by(sitting_id=sitting.id, item_id=entry["i"]).first()
    if existing is not None:
        return existing
    item = db.session.get(AssessmentItem, entry["i"])
    picked = _picked(item, entry, shown)
    if not picked:
        raise InvalidAnswer(index)
    answer = AssessmentAnswer(sitting_id=sitting.id, item_id=item.id, choices_json=json.dumps(sorted(picked)),
                              correct=is_correct(item, picked), answered_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(answer)
        db.session.commit()
        return answer
    except IntegrityError:  # the same answer sent twice at once: the first stays
        db.session.rollback()
        return AssessmentAnswer.query.filter_by(sitting_id=sitting.id, item_id=entry["i"]).one()


# --- scoring ---------------------------------------------------------------------------------------

@dataclass
class Score:
    points: dict[str, Decimal]   # dimension → points, to the cent
    total: Decimal               # out of 100, to the cent
    qualified: bool              # above the threshold (exactly, before rounding)


def score(rules: dict, dimension_of: list[str], right: list[bool]) -> Score:
    """Points per dimension: weight × right ÷ drawn of that dimension. `dimension_of[n]` and `right[n]`
    describe the draw's n-th question (an unanswered question is not right)."""
    drawn = Counter(dimension_of)
    exact = {d: Fraction(rules["weights"][d]) * sum(1 for dim, ok in zip(dimension_of, right) if dim == d and ok)
             / drawn[d] if drawn[d] else Fraction(0) for d in DIMENSIONS}
    total = sum(exact.values(), Fraction(0))

    def cents(value: Fraction) -> Decimal:
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(CENT, rounding=ROUND_HALF_UP)

    return Score(points={d: cents(v) for d, v in exact.items()}, total=cents(total),
                 qualified=total > rules["threshold"])


def finish(sitting: AssessmentSitting, user, now: datetime | None = None) -> AssessmentSitting:
    """Score the committed answers and close the sitting (once, even when two requests finish it)."""
    if sitting.finished:
        return sitting
    items = _items(sitting)
    answers = {a.item_id: a for a in AssessmentAnswer.query.filter_by(sitting_id=sitting.id)}
    draw = sitting.draw
    result = score(sitting.rules, [items[e["i"]].dimension for e in draw],
                   [bool(answers.get(e["i"]) and answers[e["i"]].correct) for e in draw])
    now = now or utcnow()
    db.session.execute(
        update(AssessmentSitting)
        .where(AssessmentSitting.id == sitting.id, AssessmentSitting.finished_at.is_(None))
        .values(finished_at=min(now, sitting.deadline_at), open_key=None,  # a late finish is dated at the deadline
                scores_json=json.dumps({d: str(p) for d, p in result.points.items()}), total=result.total,
                qualified=result.qualified, unit_id=user.unit_id, audience=user.audience)
    )
    db.session.commit()
    db.session.refresh(sitting)
    return sitting


# --- what the pages show ---------------------------------------------------------------------------

@dataclass
class ShownChoice:
    value: int          # its place in this sitting's order: what the form sends
    text: str
    picked: bool
    correct: bool | None  # only on a finished sitting


@dataclass
class ShownItem:
    index: int
    item: AssessmentItem
    choices: list[ShownChoice]
    answered: bool
    verdict: bool | None  # only on a finished sitting

    @property
    def number(self) -> int:
        return self.index + 1


def shown_items(sitting: AssessmentSitting) -> list[ShownItem]:
    items = _items(sitting)
    answers = {a.item_id: a for a in sitting.answers}
    reveal = sitting.finished
    shown = []
    for index, entry in enumerate(sitting.draw):
        item = items[entry["i"]]
        answer = answers.get(item.id)
        picked = answer.picked if answer else set()
        choices = item.choices
        shown.append(ShownItem(
            index=index, item=item, answered=answer is not None,
            verdict=(bool(answer and answer.correct)) if reveal else None,
            choices=[ShownChoice(value=value, text=choices[position][0], picked=position in picked,
                                 correct=choices[position][1] if reveal else None)
                     for value, position in enumerate(entry["c"])],
        ))
    return shown


def next_unanswered(sitting: AssessmentSitting, after: int = -1) -> int | None:
    """The first unanswered question after `after` (wrapping round), or None when all are answered."""
    answered = {a.item_id for a in sitting.answers}
    draw = sitting.draw
    order = list(range(after + 1, len(draw))) + list(range(0, after + 1))
    return next((n for n in order if draw[n]["i"] not in answered), None)


def recommended_courses(sitting: AssessmentSitting, user, limit: int = 4) -> list:
    """Courses that would help most: those named by the items answered wrong (or not at all), each wrong
    item's courses counting once; then those named by any item of the weakest dimension. Published
    courses only, those for the learner's audience first."""
    from lms.courses.models import Course

    votes: Counter = Counter()
    shown = shown_items(sitting)
    for entry in shown:
        if not entry.verdict:
            for slug in entry.item.courses:
                votes[slug] += 2
    scores = sitting.scores
    weights = sitting.rules["weights"]
    weakest = min(DIMENSIONS, key=lambda d: Decimal(scores.get(d, "0")) / weights[d] if weights[d] else 1)
    for entry in shown:
        if entry.item.dimension == weakest:
            for slug in entry.item.courses:
                votes[slug] += 1
    if not votes:
        return []
    courses = Course.query.filter(Course.slug.in_(list(votes)), Course.published.is_(True)).all()
    courses.sort(key=lambda c: (user.audience not in c.audiences, -votes[c.slug], c.title))
    return courses[:limit]


def dimension_rows(sitting: AssessmentSitting) -> list[dict]:
    """Per dimension: points, out of, and the share (for the result's bars)."""
    weights = sitting.rules["weights"]
    scores = sitting.scores
    rows = []
    for d in DIMENSIONS:
        points = Decimal(scores.get(d, "0"))
        rows.append({"dimension": d, "points": points, "of": weights[d],
                     "percent": int((points * 100 / weights[d]).to_integral_value()) if weights[d] else 0})
    return rows
