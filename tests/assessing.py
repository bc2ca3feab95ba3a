"""Helpers for the self-assessment tests: the real pool imported, a learner's sitting answered as wished."""
from __future__ import annotations

import re
from pathlib import Path

from lms.assessment import services
from lms.assessment.models import AssessmentItem
from lms.extensions import db

POOL = Path(__file__).resolve().parent.parent / "content" / "assessment"


def right_places(sitting, index: int) -> set[int]:
    """The shown places of the right choices of the draw's `index`-th question."""
    entry = sitting.draw[index]
    item = db.session.get(AssessmentItem, entry["i"])
    return {place for place, position in enumerate(entry["c"]) if item.choices[position][1]}


def wrong_places(sitting, index: int) -> set[int]:
    entry = sitting.draw[index]
    item = db.session.get(AssessmentItem, entry["i"])
    return {next(place for place, position in enumerate(entry["c"]) if not item.choices[position][1])}


def dimension(sitting, index: int) -> str:
    return db.session.get(AssessmentItem, sitting.draw[index]["i"]).dimension


def answer_all(sitting, user, right=lambda index: True, now=None):
    for index in range(len(sitting.draw)):
        places = right_places(sitting, index) if right(index) else wrong_places(sitting, index)
        services.commit_answer(sitting, index, places, user, now=now)


TOKEN = re.compile(r'name="sitting" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def page_tokens(body: str) -> tuple[str, str]:
    """(the sitting's form token, the CSRF token) of a question page."""
    return TOKEN.search(body).group(1), CSRF.search(body).group(1)
