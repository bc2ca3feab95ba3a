"""The county's report (/admin/assessment): how many were assessed and the share above the threshold,
with a 95 % Wilson score interval, by township (the units right under the viewer's focus), by audience and
by quarter — in the viewer's unit subtree (lms/accounts/scope.py).

Who counts: each person once per cell, by their latest finished sitting in the period (a quarter, or all
time); a sitting counts where its person stood when they finished it (unit and audience kept with it).
This is a self-selected sample of people who chose to take a self-assessment: it says nothing about the
county's population and is not comparable with the national survey, and the pages say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms.accounts.models import Unit
from lms.accounts.scope import in_subtree, scoped_unit
from lms.accounts.units import KIND_ORDER
from lms.assessment.models import AssessmentSitting
from lms.audiences import AUDIENCE_CODES, audience_label
from lms.extensions import db
from lms.records.services import to_local

SMALL_SAMPLE = 30  # below this many people a share is shown with a warning
Z95 = 1.959963984540054

# The national survey's figures, shown as context only (a random household sample; ours is not).
NATIONAL_CONTEXT = [
    (_l("第十四次中国公民科学素质抽样调查（2024 年）"), "15.37%", []),
    (_l("第十三次中国公民科学素质抽样调查（2023 年）"), "14.14%", [(_l("城镇"), "17.25%"), (_l("农村"), "9.16%")]),
]


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a share `successes`/`n` (95 % by default), as (low, high) in 0..1;
    None when n is 0. Unlike the normal approximation it stays inside 0..1 and is sensible for small n
    and for shares near 0 or 1."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # exactly 0 and 1 at the ends (floating point leaves 0.9999999…)
    return (0.0 if successes == 0 else low), (1.0 if successes == n else high)


def quarter_of(moment: datetime) -> str:
    """"2026Q4": the quarter (Asia/Shanghai) of a naive UTC moment."""
    local = to_local(moment)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def quarter_label(key: str) -> str:
    year, quarter = key.split("Q")
    return _("%(y)s年第%(q)s季度", y=year, q=quarter)


@dataclass
class Row:
    key: str
    label: str
    assessed: int = 0
    qualified: int = 0

    @property
    def share(self) -> float | None:
        return self.qualified / self.assessed if self.assessed else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.qualified, self.assessed)

    @property
    def small(self) -> bool:
        return self.assessed < SMALL_SAMPLE


@dataclass
class Report:
    focus: Unit | None
    quarter: str | None
    audience: str | None
    total: Row
    townships: list[Row]
    audiences: list[Row]
    quarters: list[Row]
    quarter_keys: list[str]  # every quarter with a sitting in scope (the filter's choices)


def _focus(user, unit: Unit | None) -> Unit | None:
    """The unit the viewer looks from: the asked one (OutsideScope beyond their subtree), else their
    root; an admin with several top-level units looks at them all (None)."""
    focus = scoped_unit(user, unit)
    if focus is None:
        tops = Unit.query.filter(Unit.parent_id.is_(None)).limit(2).all()
        if len(tops) == 1:
            focus = tops[0]
    return focus


def _sittings(focus: Unit | None) -> list:
    query = (select(AssessmentSitting.user_id, AssessmentSitting.finished_at, AssessmentSitting.qualified,
                    AssessmentSitting.audience, Unit.path)
             .join(Unit, Unit.id == AssessmentSitting.unit_id)
             .where(AssessmentSitting.finished_at.isnot(None)))
    if focus is not None:
        query = query.where(in_subtree(focus))
    return db.session.execute(query).all()


def _latest(rows) -> list:
    """Each person's latest sitting among `rows`."""
    latest = {}
    for row in rows:
        if row.user_id not in latest or row.finished_at > latest[row.user_id].finished_at:
            latest[row.user_id] = row
    return list(latest.values())


def _count(row: Row, sitting) -> None:
    row.assessed += 1
    row.qualified += 1 if sitting.qualified else 0


def build(user, unit: Unit | None = None, quarter: str | None = None, audience: str | None = None) -> Report:
    """The report `user` may see (OutsideScope for a unit outside their subtree)."""
    focus = _focus(user, unit)
    rows = _sittings(focus)
    keys = sorted({quarter_of(r.finished_at) for r in rows}, reverse=True)
    if audience:
        rows = [r for r in rows if r.audience == audience]
    # by quarter: each person's latest sitting in each quarter
    by_quarter: dict[str, Row] = {}
    for key in sorted(keys):
        in_quarter = [r for r in rows if quarter_of(r.finished_at) == key]
        row = by_quarter[key] = Row(key=key, label=quarter_label(key))
        for sitting in _latest(in_quarter):
            _count(row, sitting)
    if quarter:
        rows = [r for r in rows if quarter_of(r.finished_at) == quarter]
    people = _latest(rows)
    total = Row(key=focus.code if focus else "", label=focus.name if focus else _("全部单位"))
    audiences = {code: Row(key=code, label=audience_label(code)) for code in AUDIENCE_CODES
                 if not audience or code == audience}
    townships = _township_rows(focus)
    base = focus.path if focus is not None else "/"
    own = Row(key=focus.code if focus else "", label=_("本级（直属人员）"))
    for sitting in people:
        _count(total, sitting)
        if sitting.audience in audiences:
            _count(audiences[sitting.audience], sitting)
        rest = sitting.path[len(base):]
        child = base + rest[:rest.index("/") + 1] if rest else None
        _count(townships.get(child, own) if child else own, sitting)
    township_rows = list(townships.values()) + ([own] if own.assessed else [])
    return Report(focus=focus, quarter=quarter, audience=audience, total=total, townships=township_rows,
                  audiences=list(audiences.values()), quarters=[by_quarter[k] for k in keys], quarter_keys=keys)


def _township_rows(focus: Unit | None) -> dict[str, Row]:
    """path → Row for each unit right under the focus (the townships when the focus is the county)."""
    query = Unit.query.filter(Unit.parent_id == focus.id if focus else Unit.parent_id.is_(None))
    children = sorted(query.all(), key=lambda u: (KIND_ORDER.get(u.kind, len(KIND_ORDER)), u.code))
    return {u.path: Row(key=u.code, label=u.name) for u in children}
