"""Assignments and annual targets — plain functions, no HTTP.

A Requirement names a course and a due date, and who must finish it: named users, or every
active user of an audience and/or a unit subtree. "Finished" means the course's completion is in
the ledger (a TrainingRecord with its completion key), whenever it was earned.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import in_subtree, unit_in_subtree
from lms.audiences import AUDIENCE_CODES, audience_label
from lms.courses.models import Course
from lms.extensions import db
from lms.records.audit import audit
from lms.records.models import TrainingRecord
from lms.records.requirements import AnnualTarget, Requirement, RequirementUser
from lms.records.services import annual_target, my_hours, to_local

REPORT_COLUMNS = [
    ("name", "姓名"),
    ("username", "账号"),
    ("unit", "单位"),
    ("unit_code", "单位编码"),
    ("audience", "人群"),
    ("course", "课程"),
    ("due_date", "截止日期"),
    ("status", "状态"),
]


class AssignmentError(ValueError):
    """A requirement or target that cannot be saved; the message is for the admin (in their language)."""


def today_local() -> date:
    return to_local(utcnow()).date()


# ---- annual targets ---------------------------------------------------------------------------

def target_hours(audience: str) -> Decimal:
    return annual_target(audience)


def all_targets() -> dict[str, Decimal]:
    return {code: target_hours(code) for code in AUDIENCE_CODES}


def set_target(audience: str, hours, actor=None) -> AnnualTarget:
    if audience not in AUDIENCE_CODES:
        raise AssignmentError(_("未知人群：%(code)s", code=audience))
    try:
        hours = Decimal(str(hours))
    except InvalidOperation:
        raise AssignmentError(_("学时必须是数字")) from None
    if not (Decimal("0") <= hours <= Decimal("1000")):
        raise AssignmentError(_("年度目标应在 0 到 1000 学时之间"))
    row = db.session.get(AnnualTarget, audience) or AnnualTarget(audience=audience)
    row.hours, row.updated_by_id = hours, getattr(actor, "id", None)
    db.session.add(row)
    audit(actor, "target.set", f"audience:{audience}", f"{hours} 学时")
    db.session.commit()
    return row


# ---- requirements -----------------------------------------------------------------------------

def parse_usernames(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,，、;；]+", text or "") if name]


def create_requirement(course: Course, due_date: date, audience: str | None = None, unit: Unit | None = None,
                       usernames=(), note: str = "", actor=None) -> Requirement:
    usernames = list(dict.fromkeys(usernames))
    if not (audience or unit or usernames):
        raise AssignmentError(_("请选择人群、单位，或填写账号（至少一项）"))
    if audience and audience not in AUDIENCE_CODES:
        raise AssignmentError(_("未知人群：%(code)s", code=audience))
    users = User.query.filter(User.username.in_(usernames)).all() if usernames else []
    missing = sorted(set(usernames) - {u.username for u in users})
    if missing:
        raise AssignmentError(_("这些账号不存在：%(names)s", names="、".join(missing)))
    requirement = Requirement(course_id=course.id, due_date=due_date, audience=None if users else audience,
                              unit_id=None if users or unit is None else unit.id, note=note or "",
                              created_by_id=getattr(actor, "id", None))
    requirement.named = [RequirementUser(user_id=user.id) for user in users]
    db.session.add(requirement)
    db.session.flush()
    audit(actor, "requirement.create", requirement, f"course:{course.id} due {due_date}")
    db.session.commit()
    return requirement


def withdraw_requirement(requirement: Requirement, actor=None) -> None:
    requirement.active = False
    audit(actor, "requirement.withdraw", requirement)
    db.session.commit()


def describe_scope(requirement: Requirement) -> str:
    if requirement.named:
        return "、".join(row.user.full_name for row in requirement.named)
    parts = []
    if requirement.unit is not None:
        parts.append(requirement.unit.name)
    if requirement.audience:
        parts.append(audience_label(requirement.audience))
    return " · ".join(parts)


def active_requirements():
    return Requirement.query.filter_by(active=True).order_by(Requirement.due_date, Requirement.id).all()


def applies_to(requirement: Requirement, user: User) -> bool:
    if requirement.named:
        return user.id in requirement.user_ids
    if requirement.audience and requirement.audience != user.audience:
        return False
    return requirement.unit is None or unit_in_subtree(user.unit, requirement.unit)


def assignee_conditions(requirement: Requirement, within: Unit | None = None) -> list:
    """Who must finish the requirement, as SQL conditions on User: active users (named ones, or of the
    audience and unit subtree), optionally only those in `within`'s subtree. Units are tested through
    `User.unit_id IN (units of the subtree)`, so a count needs no join (the console's figures)."""
    conditions = [User.active.is_(True)]
    if requirement.named:
        conditions.append(User.id.in_(requirement.user_ids))
    else:
        if requirement.audience:
            conditions.append(User.audience == requirement.audience)
        if requirement.unit is not None:
            conditions.append(User.unit_id.in_(select(Unit.id).where(in_subtree(requirement.unit))))
    if within is not None:
        conditions.append(User.unit_id.in_(select(Unit.id).where(in_subtree(within))))
    return conditions


def assignees_query(requirement: Requirement, within: Unit | None = None):
    """Active users who must finish the requirement, optionally only those in `within`'s subtree."""
    return User.query.join(Unit, User.unit_id == Unit.id).filter(*assignee_conditions(requirement, within))


def finished_query(course_id: int):
    """SELECT of the users who finished a course: its completion is in the ledger, whenever earned."""
    return select(TrainingRecord.user_id).where(TrainingRecord.course_id == course_id, TrainingRecord.kind == "course")


def finished_user_ids(course_id: int, user_ids=None) -> set[int]:
    query = finished_query(course_id)
    if user_ids is not None:
        query = query.where(TrainingRecord.user_id.in_(list(user_ids)))
    return set(db.session.execute(query).scalars())


def my_assignments(user: User, today: date | None = None) -> dict:
    """The learner's home: assigned courses (done or not, due soon, overdue) and the year's target."""
    today = today or today_local()
    soon = today + timedelta(days=current_app.config.get("ASSIGNMENT_DUE_SOON_DAYS", 14))
    mine = [r for r in active_requirements() if applies_to(r, user)]
    by_course: dict[int, Requirement] = {}
    for requirement in mine:  # one line per course: the earliest due date counts
        current = by_course.get(requirement.course_id)
        if current is None or requirement.due_date < current.due_date:
            by_course[requirement.course_id] = requirement
    finished = {row.course_id for row in TrainingRecord.query.filter(
        TrainingRecord.user_id == user.id, TrainingRecord.kind == "course",
        TrainingRecord.course_id.in_(list(by_course))).all()} if by_course else set()
    items = []
    for course_id, requirement in by_course.items():
        done = course_id in finished
        items.append({
            "requirement": requirement,
            "course": requirement.course,
            "due_date": requirement.due_date,
            "done": done,
            "overdue": not done and requirement.due_date < today,
            "due_soon": not done and today <= requirement.due_date <= soon,
            "days_left": (requirement.due_date - today).days,
        })
    items.sort(key=lambda item: (item["done"], item["due_date"]))
    return {
        "items": items,
        "overdue": [i for i in items if i["overdue"]],
        "due_soon": [i for i in items if i["due_soon"]],
        "open": [i for i in items if not i["done"] and not i["overdue"] and not i["due_soon"]],
        "done": [i for i in items if i["done"]],
        "hours": my_hours(user),
    }


def outstanding(within: Unit | None = None, today: date | None = None):
    """Who has not finished which assignment, for a unit subtree (None: everyone), as report rows."""
    today = today or today_local()
    for requirement in active_requirements():
        users = assignees_query(requirement, within).order_by(Unit.code, User.username).all()
        finished = finished_user_ids(requirement.course_id, [u.id for u in users])
        for user in users:
            if user.id in finished:
                continue
            overdue = requirement.due_date < today
            yield {
                "name": user.full_name,
                "username": user.username,
                "unit": user.unit.name,
                "unit_code": user.unit.code,
                "audience": audience_label(user.audience),
                "course": requirement.course.title,
                "due_date": requirement.due_date.isoformat(),
                "status": _("已逾期") if overdue else _("未完成"),
                "overdue": overdue,
            }
