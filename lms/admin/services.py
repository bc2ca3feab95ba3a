"""The console's figures and the audit log, as aggregate queries in a user's scope (no HTTP).

Scope: an admin sees everything; a unit admin the people of their unit's subtree
(lms/accounts/scope.py); an instructor the courses they author (lms/courses/authors.py). Every figure
is one aggregate query (or one per active assignment), so the home stays fast at 50,000 people and
1,000,000 ledger records: no per-person or per-record loop runs in Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import (Integer, String, and_, case, cast, distinct, exists, func, literal, literal_column, or_, select,
                        union, union_all)
from sqlalchemy.orm import aliased

from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import covers_every_unit, in_subtree, oversight_root
from lms.courses.authors import authored_courses
from lms.courses.models import Course, Lesson, LessonProgress
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.records.assignments import active_requirements, assignee_conditions, finished_query, today_local
from lms.records.models import AuditLog, TrainingRecord
from lms.records.services import day_start_utc, to_local

ACTIVE_DAYS = 7
WAITING_STATUSES = ("pending", "processing")


@dataclass(frozen=True)
class ConsoleScope:
    """What a console user's figures cover: the unit they oversee (None: all units), the subtree the
    queries filter by (None when it holds every unit, so the filter is left out) and a set of courses
    (None: all courses)."""

    role: str
    unit: Unit | None
    root: Unit | None
    course_ids: tuple[int, ...] | None

    @property
    def shows_videos(self) -> bool:
        return self.role in ("admin", "instructor")


def console_scope(user) -> ConsoleScope:
    if user.role == "instructor":
        return ConsoleScope(user.role, None, None, tuple(course.id for course in authored_courses(user)))
    unit = oversight_root(user)
    return ConsoleScope(user.role, unit, None if covers_every_unit(unit) else unit, None)


def users_in_subtree(root: Unit):
    """SELECT of the ids of the people whose unit lies in `root`'s subtree."""
    return select(User.id).join(Unit, User.unit_id == Unit.id).where(in_subtree(root))


# ---- figures ----------------------------------------------------------------------------------

def active_learners(scope: ConsoleScope, now: datetime | None = None) -> int:
    """People with a heartbeat, a lesson read or a ledger record in the last 7 days (distinct)."""
    since = (now or utcnow()) - timedelta(days=ACTIVE_DAYS)
    watched = select(LessonProgress.user_id).where(LessonProgress.last_heartbeat_at >= since)
    read = select(LessonProgress.user_id).where(LessonProgress.read_at >= since)
    credited = select(TrainingRecord.user_id).where(TrainingRecord.earned_at >= since)
    if scope.course_ids is not None:
        lessons = select(Lesson.id).where(Lesson.course_id.in_(scope.course_ids))
        watched = watched.where(LessonProgress.lesson_id.in_(lessons))
        read = read.where(LessonProgress.lesson_id.in_(lessons))
        credited = credited.where(TrainingRecord.course_id.in_(scope.course_ids))
    people = union(watched, read, credited).subquery()  # UNION: each person once
    query = select(func.count()).select_from(people)
    if scope.root is not None:
        query = query.where(people.c.user_id.in_(users_in_subtree(scope.root)))
    return db.session.execute(query).scalar_one()


def month_starts_utc(year: int) -> list[datetime]:
    """The 13 bounds of the year's months in Asia/Shanghai, as naive UTC."""
    return [day_start_utc(date(year, month, 1)) for month in range(1, 13)] + [day_start_utc(date(year + 1, 1, 1))]


def hours_by_month(scope: ConsoleScope, year: int, people=None) -> list[Decimal]:
    """学时 credited in each month of `year` (Asia/Shanghai), corrections included, read from covering
    indexes of the ledger (never its rows). Two shapes, measured at a million records:
    - the whole county: twelve range sums in one statement, each an index range scan — one pass with
      twelve CASE columns evaluates 24 comparisons on each of the year's rows and is 10–20× slower;
    - a unit subtree or an instructor's courses: one pass over their (far fewer) rows with twelve CASE
      columns — twelve range sums would repeat the subtree's lookups twelve times.
    `people`: a SELECT of user ids to narrow the sums to as well (the dashboard's audience filter)."""
    bounds = month_starts_utc(year)
    earned = TrainingRecord.earned_at
    scoped = []
    if scope.course_ids is not None:
        scoped.append(TrainingRecord.course_id.in_(scope.course_ids))
    if scope.root is not None:
        scoped.append(TrainingRecord.user_id.in_(users_in_subtree(scope.root)))
    if people is not None:
        scoped.append(TrainingRecord.user_id.in_(people))
    if scoped:
        columns = [func.sum(case((and_(earned >= bounds[m], earned < bounds[m + 1]), TrainingRecord.hours)))
                   for m in range(12)]
        row = db.session.execute(select(*columns).where(earned >= bounds[0], earned < bounds[12], *scoped)).one()
        sums = dict(enumerate(row))
    else:
        sums = dict(db.session.execute(union_all(*(
            select(literal_column(str(m), Integer), func.sum(TrainingRecord.hours))
            .where(earned >= bounds[m], earned < bounds[m + 1]) for m in range(12)))).all())
    return [Decimal(str(sums.get(m) or 0)).quantize(Decimal("0.01")) for m in range(12)]


@dataclass
class AssignmentFigures:
    done: int = 0
    due: int = 0
    overdue: int = 0
    overdue_by_requirement: list = field(default_factory=list)  # [(Requirement, people overdue)]


def assignment_figures(scope: ConsoleScope, today: date | None = None) -> AssignmentFigures:
    """(person, assignment) pairs of the active assignments in scope: finished, not yet due, overdue.
    Who must finish and what "finished" means are lms/records/assignments.py's rules
    (assignee_conditions, finished_query). Two counting queries per assignment: the people it asks,
    and those of them with the course's completion in the ledger (read from its covering index)."""
    today = today or today_local()
    figures = AssignmentFigures()
    for requirement in active_requirements():
        if scope.course_ids is not None and requirement.course_id not in scope.course_ids:
            continue
        assignees = assignee_conditions(requirement, scope.root)
        total = db.session.execute(select(func.count()).select_from(User).where(*assignees)).scalar_one()
        finished = finished_query(requirement.course_id).subquery()
        done = db.session.execute(select(func.count(distinct(finished.c.user_id)))
                                  .select_from(finished.join(User, User.id == finished.c.user_id))
                                  .where(*assignees)).scalar_one()
        figures.done += done
        if requirement.due_date < today:
            figures.overdue += total - done
            if total > done:
                figures.overdue_by_requirement.append((requirement, total - done))
        else:
            figures.due += total - done
    return figures


def _scoped_assets(scope: ConsoleScope):
    query = db.session.query(VideoAsset)
    if scope.course_ids is not None:
        query = query.filter(VideoAsset.lesson_id.in_(
            select(Lesson.id).where(Lesson.course_id.in_(scope.course_ids))))
    return query


def video_figures(scope: ConsoleScope) -> dict:
    """Videos waiting to be processed, and lessons whose latest upload failed (a later upload that
    succeeded, or is waiting, settles a failure)."""
    later = aliased(VideoAsset)
    still_failed = _scoped_assets(scope).filter(
        VideoAsset.status == "failed",
        ~exists().where(later.lesson_id == VideoAsset.lesson_id, later.id > VideoAsset.id))
    waiting = _scoped_assets(scope).filter(VideoAsset.status.in_(WAITING_STATUSES)).count()
    failed_rows = (still_failed.outerjoin(Lesson, Lesson.id == VideoAsset.lesson_id)
                   .outerjoin(Course, Course.id == Lesson.course_id)
                   .with_entities(VideoAsset.id, VideoAsset.lesson_id, VideoAsset.error, Lesson.title, Course.title)
                   .order_by(VideoAsset.id.desc()).limit(10).all())
    return {"waiting": waiting, "failed": still_failed.count(), "failed_rows": failed_rows}


def must_change_password_count(scope: ConsoleScope) -> int | None:
    """Active people in scope who must choose a new password at their next sign-in (None for
    instructors, who do not manage people)."""
    if scope.role == "instructor":
        return None
    query = db.session.query(func.count(User.id)).filter(User.must_change_password.is_(True), User.active.is_(True))
    if scope.root is not None:
        query = query.filter(User.id.in_(users_in_subtree(scope.root)))
    return query.scalar()


def dashboard(user, now: datetime | None = None) -> dict:
    now = now or utcnow()
    scope = console_scope(user)
    local_now = to_local(now)
    months = hours_by_month(scope, local_now.year)
    return {
        "scope": scope,
        "year": local_now.year,
        "month": local_now.month,
        "active": active_learners(scope, now),
        "hours_month": months[local_now.month - 1],
        "hours_year": sum(months, Decimal("0.00")),
        "months": months,
        "assignments": assignment_figures(scope, local_now.date()),
        "videos": video_figures(scope) if scope.shows_videos else None,
        "must_change_password": must_change_password_count(scope),
    }


# ---- audit log --------------------------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


@dataclass
class AuditFilters:
    actor: User | None = None
    action: str = ""  # a prefix: "unit." finds every unit change
    target: str = ""  # exact ("user:12"), or every target of a kind when it ends with ":" ("course:")
    date_from: date | None = None  # local days, both inclusive
    date_to: date | None = None
    before: int | None = None  # keyset page: rows older than this id


def _starts_with(column, prefix: str):
    """Exact prefix test (no LIKE: `_` and `%` in what an admin types are not wildcards)."""
    return func.substr(column, 1, len(prefix)) == prefix


def audit_scope_parts(root: Unit, indexed: bool = True) -> list:
    """The rows a unit admin of `root` may read, as three alternatives: the actor, the target person
    (`user:<id>`) or the target unit (`unit:<id>`) is in the subtree now — judged by where people and
    units are today, so a person moved into the subtree brings their history along and one moved out
    takes it with them. `indexed=False` writes the same tests so that no index is used for them
    (`+ 0`, `|| ''`): a scan of the newest rows that stops at the page's end."""
    actor = AuditLog.actor_id if indexed else AuditLog.actor_id + 0
    target = AuditLog.target if indexed else AuditLog.target.concat("")
    person_keys = (select(literal("user:") + cast(User.id, String)).join(Unit, User.unit_id == Unit.id)
                   .where(in_subtree(root)))
    unit_keys = select(literal("unit:") + cast(Unit.id, String)).where(in_subtree(root))
    return [actor.in_(users_in_subtree(root)), target.in_(person_keys), target.in_(unit_keys)]


# Expected rows in scope up to which a unit admin's page is collected through the actor/target indexes.
AUDIT_INDEXED_ROWS = 5_000


def _few_rows_in_scope(root: Unit) -> bool:
    """Whether the subtree's share of the log is small: (its people / everyone) × rows in the log."""
    people = db.session.execute(select(func.count()).select_from(users_in_subtree(root).subquery())).scalar_one()
    everyone = db.session.execute(select(func.count(User.id))).scalar_one() or 1
    rows = db.session.execute(select(func.max(AuditLog.id))).scalar_one() or 0
    return people * rows <= AUDIT_INDEXED_ROWS * everyone


def audit_rows(user, filters: AuditFilters, page_size: int = AUDIT_PAGE_SIZE):
    """One page of audit rows `user` may read, newest first, with their actors: ([(AuditLog, User|None)],
    next `before` id or None on the last page). Admins read every row; unit admins those of
    `audit_scope_parts`, collected in one of two ways (measured on 200,000 rows, 50,000 people):
    - a small subtree (a village: few rows): each alternative's newest page through the actor/target
      index, then the newest of those (2 ms; a scan would read most of the log to fill a page: 170 ms);
    - a large one (a township, the county): a scan of the newest rows that stops when the page is
      full (16 ms; collecting every row of the subtree through the indexes and sorting them: 60–800 ms,
      growing with the log)."""
    conditions = []
    if filters.actor is not None:
        conditions.append(AuditLog.actor_id == filters.actor.id)
    if filters.action:
        conditions.append(_starts_with(AuditLog.action, filters.action))
    if filters.target:
        conditions.append(_starts_with(AuditLog.target, filters.target) if filters.target.endswith(":")
                          else AuditLog.target == filters.target)
    if filters.date_from:
        conditions.append(AuditLog.created_at >= day_start_utc(filters.date_from))
    if filters.date_to:
        conditions.append(AuditLog.created_at < day_start_utc(filters.date_to + timedelta(days=1)))
    if filters.before:
        conditions.append(AuditLog.id < filters.before)
    root = oversight_root(user)
    if root is not None:
        if _few_rows_in_scope(root):
            newest = [select(AuditLog.id).where(part, *conditions).order_by(AuditLog.id.desc())
                      .limit(page_size + 1).subquery() for part in audit_scope_parts(root)]
            conditions.append(AuditLog.id.in_(union(*(select(page.c.id) for page in newest))))
        else:
            conditions.append(or_(*audit_scope_parts(root, indexed=False)))
    rows = (db.session.query(AuditLog, User).outerjoin(User, User.id == AuditLog.actor_id).filter(*conditions)
            .order_by(AuditLog.id.desc()).limit(page_size + 1).all())
    more = len(rows) > page_size
    rows = rows[:page_size]
    return rows, (rows[-1][0].id if more else None)


TARGET_MODELS = {"user": (User, User.full_name), "unit": (Unit, Unit.name), "course": (Course, Course.title),
                 "lesson": (Lesson, Lesson.title)}


def target_names(rows) -> dict[str, str]:
    """A readable name for the page's `user:`, `unit:`, `course:` and `lesson:` targets (one query per kind)."""
    wanted: dict[str, set[int]] = {}
    for log, _actor in rows:
        kind, _sep, ident = (log.target or "").partition(":")
        if kind in TARGET_MODELS and ident.isdigit():
            wanted.setdefault(kind, set()).add(int(ident))
    names = {}
    for kind, ids in wanted.items():
        model, name = TARGET_MODELS[kind]
        for ident, label in db.session.query(model.id, name).filter(model.id.in_(ids)):
            names[f"{kind}:{ident}"] = label
    return names
