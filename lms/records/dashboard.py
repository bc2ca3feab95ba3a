"""The dashboard's figures (/admin/dashboard, issue 11): plain functions over the ledger, no HTTP.

A year (Asia/Shanghai) in an overseer's scope, optionally one audience, seen from one unit (the focus):
学时 by month; the units right under the focus side by side; the audiences; completion per course;
cadres' progress to the annual target per unit; at a leaf unit, its people.

The figures are the export's (lms/records/export.py, export_rows) over the same filters, by the same rules:
- ledger figures (学时, people with a record, people at target) count every record earned in the year —
  corrections (negative hours) and offline records included — of the people whose unit is in the subtree
  NOW: a person who moved takes their records along, as the export (which joins the person's current unit);
- a person is at target when their year's total, to the cent, reaches their audience's annual target
  and that target is not 0 (the export summary's 是否达标 = 是);
- "registered people" (headcount: the denominator of participation, completion, share at target and
  average 学时) are the ACTIVE people in the subtree now. A deactivated person's records still count in
  学时 and 有记录人数, as in the export, so a ratio can exceed 100 % when many were deactivated.
- completion of a course: people (any audience) credited with it (a kind="course" record of the course
  earned in the year) ÷ registered people of the course's audiences (of the audience filter, if any).

Speed (scripts/bench/dashboard.py: 50,000 people, 2,000 units, 1,000,000 records, SQLite, 2 shared cores):
each section is one aggregate query; nothing loops over people or records in Python.
- Per person and year the 学时 come from the rollup ledger_user_year (lms/records/rollups.py), ≤ one
  row per person: summing the ledger per person instead reads ~500,000 index entries for a county's year
  (0.3–0.9 s). Every unit, audience and cadre figure comes from those rows summed per (unit, audience).
- Completion per course: for everyone, the rollup ledger_course_year; for a subtree or an audience, their
  records on ix_training_record_course_kind (`course_id > 0` steers SQLite to that covering index).
- 学时 by month: lms/admin/services.py's sums on the ledger's covering indexes (fast without a rollup).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import Numeric, and_, case, distinct, func, literal, or_, select

from lms.accounts.models import Unit, User
from lms.accounts.scope import covers_every_unit, in_subtree, oversight_root, scoped_unit, unit_in_subtree
from lms.accounts.units import KIND_ORDER
from lms.admin.services import ConsoleScope, hours_by_month
from lms.audiences import AUDIENCE_CODES, audience_label
from lms.courses.models import Course
from lms.extensions import db
from lms.records import export
from lms.records.models import TrainingRecord
from lms.records.rollups import LedgerCourseYear, LedgerUserYear
from lms.records.services import annual_target, year_bounds_utc

CENT = Decimal("0.01")
CADRE = "cadre"


def percent(part, whole) -> Decimal | None:
    """part ÷ whole in per cent to one decimal; None when there is no whole (nobody registered)."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"))


def money(value) -> Decimal:
    """A sum from the database as Decimal to the cent (SQLite sums REALs: 49.999999 is 50.00)."""
    return Decimal(str(value or 0)).quantize(CENT)


# ---- what is looked at --------------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    """The year, the unit in focus (None: every unit, when there are several top-level units), the
    audience (None: all), and whether the focus covers every unit (then no subtree test is needed,
    which keeps the ledger's indexes usable)."""

    year: int
    focus: Unit | None
    audience: str | None
    whole: bool

    def people_conditions(self) -> list:
        """SQL conditions on User: in the focus's subtree, of the audience."""
        conditions = []
        if not self.whole:
            conditions.append(User.unit_id.in_(select(Unit.id).where(in_subtree(self.focus))))
        if self.audience:
            conditions.append(User.audience == self.audience)
        return conditions

    def people(self):
        """SELECT of the ids of the people in view, or None when that is everyone."""
        conditions = self.people_conditions()
        return select(User.id).where(*conditions) if conditions else None

    def ledger_conditions(self) -> list:
        start, end = year_bounds_utc(self.year)
        conditions = [TrainingRecord.earned_at >= start, TrainingRecord.earned_at < end]
        people = self.people()
        if people is not None:
            conditions.append(TrainingRecord.user_id.in_(people))
        return conditions


def make_view(user, year: int, unit: Unit | None = None, audience: str | None = None) -> View:
    """What `user` sees when asking for `unit` (None: their own scope). OutsideScope beyond their subtree.
    An admin without a unit looks from the only top-level unit, if there is one (the county)."""
    focus = scoped_unit(user, unit)
    if focus is None:
        tops = Unit.query.filter(Unit.parent_id.is_(None)).limit(2).all()
        if len(tops) == 1:
            focus = tops[0]
    return View(year=year, focus=focus, audience=audience or None, whole=covers_every_unit(focus))


def crumbs(user, view: View) -> list[Unit]:
    """The units from the top of `user`'s scope down to the focus (the drill-down's way back up)."""
    if view.focus is None:
        return []
    codes = [code for code in view.focus.path.split("/") if code]
    root = oversight_root(user)
    units = Unit.query.filter(Unit.code.in_(codes)).all()
    return sorted((unit for unit in units if unit_in_subtree(unit, root)), key=lambda unit: len(unit.path))


# ---- per (unit, audience) cells: the ledger and the register --------------------------------------

@dataclass
class Cell:
    learners: int = 0  # people with any record in the year
    hours: Decimal = Decimal("0.00")
    at_target: int = 0
    headcount: int = 0  # active people


def targets() -> dict[str, Decimal]:
    return {code: annual_target(code) for code in AUDIENCE_CODES}


def cells(view: View) -> dict[tuple[int, str], Cell]:
    """(unit id, audience) → Cell for the people in view: two GROUP BY queries, the ledger's side read from
    the per-person rollup (lms/records/rollups.py), the register from the user table."""
    target_of = case({code: literal(hours, Numeric(8, 2)) for code, hours in targets().items()},
                     value=User.audience, else_=literal(Decimal("0"), Numeric(8, 2)))
    totals = LedgerUserYear
    met = and_(target_of > 0, func.round(totals.hours, 2) >= target_of)
    ledger = (select(User.unit_id, User.audience, func.count(), func.sum(totals.hours),
                     func.sum(case((met, 1), else_=0)))
              .select_from(totals).join(User, User.id == totals.user_id)
              .where(totals.year == view.year, *view.people_conditions())
              .group_by(User.audience, User.unit_id))
    register = (select(User.unit_id, User.audience, func.count()).where(User.active.is_(True),
                                                                         *view.people_conditions())
                .group_by(User.audience, User.unit_id))
    # GROUP BY audience first: grouped by unit_id first, SQLite walks people in ix_user_unit_id's order and
    # fetches each one's row (2× slower for the county) instead of the rollup's year with primary-key lookups
    # or the covering ix_user_list
    connection = db.session.connection()
    result: dict[tuple[int, str], Cell] = {}
    for unit_id, audience, learners, hours, at_target in connection.execute(ledger):
        result[(unit_id, audience)] = Cell(learners=learners, hours=money(hours), at_target=int(at_target or 0))
    for unit_id, audience, headcount in connection.execute(register):
        result.setdefault((unit_id, audience), Cell()).headcount = headcount
    return result


# ---- groups: units side by side, audiences ---------------------------------------------------------

@dataclass
class Group:
    """The figures of a set of people: a unit's subtree (or the focus's own people), an audience."""

    key: str  # unit code, audience code
    label: str
    unit: object = None  # a unit (row with .code) to drill down into
    hours: Decimal = Decimal("0.00")
    learners: int = 0
    headcount: int = 0
    at_target: int = 0
    cadre: Cell = field(default_factory=Cell)  # the cadres among them

    def add(self, audience: str, cell: Cell) -> None:
        self.hours += cell.hours
        self.learners += cell.learners
        self.headcount += cell.headcount
        self.at_target += cell.at_target
        if audience == CADRE:
            self.cadre.hours += cell.hours
            self.cadre.learners += cell.learners
            self.cadre.headcount += cell.headcount
            self.cadre.at_target += cell.at_target

    @property
    def participation(self) -> Decimal | None:
        return percent(self.learners, self.headcount)

    @property
    def cadre_share(self) -> Decimal | None:
        return percent(self.cadre.at_target, self.cadre.headcount)

    @property
    def cadre_average(self) -> Decimal | None:
        if not self.cadre.headcount:
            return None
        return (self.cadre.hours / self.cadre.headcount).quantize(CENT)


@dataclass
class UnitGroups:
    total: Group
    rows: list[Group]  # the focus's children (and its own people, when it has any), in unit-tree order
    leaf: bool  # the focus has no units under it


def unit_groups(view: View, grid: dict[tuple[int, str], Cell]) -> UnitGroups:
    """The children of the focus side by side, each with its whole subtree; the focus's own people (if
    any) as one more row "本级", so the rows add up to the total."""
    units = select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.active, Unit.parent_id, Unit.path)
    if not view.whole:
        units = units.where(in_subtree(view.focus))
    units = db.session.connection().execute(units).all()  # plain rows: no ORM loading for 2,000 units
    parent_id = view.focus.id if view.focus is not None else None
    children = sorted((u for u in units if u.parent_id == parent_id),
                      key=lambda u: (KIND_ORDER.get(u.kind, len(KIND_ORDER)), u.code))
    groups = {u.path: Group(key=u.code, label=u.name if u.active else _("%(name)s（已停用）", name=u.name), unit=u)
              for u in children}
    own = Group(key=view.focus.code, label=_("本级（直属人员）")) if view.focus is not None else None
    base = view.focus.path if view.focus is not None else "/"
    bucket: dict[int, Group] = {}
    for unit in units:
        if view.focus is not None and unit.id == view.focus.id:
            bucket[unit.id] = own
        elif unit.path.startswith(base):
            bucket[unit.id] = groups[unit.path[:unit.path.index("/", len(base)) + 1]]
    total = Group(key=view.focus.code if view.focus else "", label=view.focus.name if view.focus else _("全部单位"))
    for (unit_id, audience), cell in grid.items():
        group = bucket.get(unit_id)
        if group is None:  # a unit outside the subtree cannot be in the cells; be safe
            continue
        group.add(audience, cell)
        total.add(audience, cell)
    if not children:  # a leaf: its own row, nothing to drill into (no row at all without any unit)
        if own is not None:
            own.label = total.label
        return UnitGroups(total=total, rows=[own] if own is not None else [], leaf=True)
    rows = list(groups.values())
    if own is not None and (own.headcount or own.learners):
        rows.append(own)
    return UnitGroups(total=total, rows=rows, leaf=False)


def audience_groups(view: View, grid: dict[tuple[int, str], Cell]) -> list[Group]:
    groups = {code: Group(key=code, label=audience_label(code))
              for code in AUDIENCE_CODES if not view.audience or code == view.audience}
    for (_unit_id, audience), cell in grid.items():
        if audience in groups:
            groups[audience].add(audience, cell)
    return list(groups.values())


# ---- 学时 by month -------------------------------------------------------------------------------

def months(view: View) -> list[Decimal]:
    """学时 earned in each month of the year (lms/admin/services.py's sums, narrowed to the view)."""
    scope = ConsoleScope("admin", view.focus, None if view.whole else view.focus, None)
    people = select(User.id).where(User.audience == view.audience) if view.audience else None
    return hours_by_month(scope, view.year, people=people)


# ---- completion per course -----------------------------------------------------------------------

@dataclass
class CourseRow:
    course_id: int
    title: str
    audiences: list[str]
    credited: int  # people in view credited with it in the year
    expected: int  # registered people in view of its audiences

    @property
    def rate(self) -> Decimal | None:
        return percent(self.credited, self.expected)


def course_rows(view: View, grid: dict[tuple[int, str], Cell]) -> list[CourseRow]:
    """Every published course for an audience in view, and any other course credited in view."""
    if view.people() is None:  # everyone: the per-course rollup
        credited_query = select(LedgerCourseYear.course_id, LedgerCourseYear.learners).where(
            LedgerCourseYear.year == view.year)
    else:  # their records, through the (course_id, kind, user_id, earned_at) covering index
        credited_query = (select(TrainingRecord.course_id, func.count(distinct(TrainingRecord.user_id)))
                          .where(TrainingRecord.course_id > 0, TrainingRecord.kind == "course",
                                 *view.ledger_conditions())
                          .group_by(TrainingRecord.course_id))
    credited = dict(db.session.connection().execute(credited_query).all())
    registered: dict[str, int] = {}
    for (_unit_id, audience), cell in grid.items():
        registered[audience] = registered.get(audience, 0) + cell.headcount
    rows = []
    for course in Course.query.order_by(Course.title, Course.id):
        audiences = [code for code in course.audiences if not view.audience or code == view.audience]
        count = credited.get(course.id, 0)
        if not count and not (course.published and audiences):
            continue
        rows.append(CourseRow(course.id, course.title, audiences, count,
                              sum(registered.get(code, 0) for code in audiences)))
    return rows


# ---- a leaf unit's people ------------------------------------------------------------------------

def people_query(view: View):
    """The focus's own people — active ones, and anyone with a record in the year — with their year's
    total, shaped as services.summary_query's rows so export.summary_rows judges the target the same way."""
    totals = LedgerUserYear
    query = (db.session.query(User.full_name, User.username, User.audience, Unit.name.label("unit_name"),
                              Unit.code.label("unit_code"), func.coalesce(totals.hours, 0).label("total_hours"))
             .select_from(User).join(Unit, User.unit_id == Unit.id)
             .outerjoin(totals, and_(totals.user_id == User.id, totals.year == view.year))
             .filter(User.unit_id == view.focus.id, or_(User.active.is_(True), totals.user_id.isnot(None))))
    if view.audience:
        query = query.filter(User.audience == view.audience)
    return query.order_by(User.full_name, User.username)


def people_rows(view: View) -> list[dict]:
    return list(export.summary_rows(people_query(view)))


# ---- the page and its tables -----------------------------------------------------------------------

@dataclass
class Dashboard:
    view: View
    months: list[Decimal]
    units: UnitGroups
    audiences: list[Group]
    courses: list[CourseRow]
    cadre_target: Decimal
    people: list[dict] | None  # a leaf unit's people (export summary rows), else None


def dashboard(view: View) -> Dashboard:
    grid = cells(view)
    units = unit_groups(view, grid)
    return Dashboard(view=view, months=months(view), units=units, audiences=audience_groups(view, grid),
                     courses=course_rows(view, grid), cadre_target=annual_target(CADRE),
                     people=people_rows(view) if units.leaf and view.focus is not None else None)


MONTH_COLUMNS = [("month", "月份"), ("hours", "学时")]
UNIT_COLUMNS = [("unit", "单位"), ("unit_code", "单位编码"), ("hours", "学时"), ("headcount", "注册人数"),
                ("learners", "有学习记录人数"), ("participation", "参与率(%)")]
AUDIENCE_COLUMNS = [("audience", "人群"), ("hours", "学时"), ("headcount", "注册人数"),
                    ("learners", "有学习记录人数"), ("participation", "参与率(%)")]
COURSE_COLUMNS = [("course", "课程"), ("audiences", "面向人群"), ("credited", "完成人数"), ("expected", "应学人数"),
                  ("rate", "完成率(%)")]
CADRE_COLUMNS = [("unit", "单位"), ("unit_code", "单位编码"), ("cadres", "干部人数"), ("at_target", "达标人数"),
                 ("share", "达标率(%)"), ("average", "人均学时"), ("target", "年度目标")]
TABLES = ("months", "units", "audiences", "courses", "cadres", "people")


def month_label(month: int) -> str:
    return _("%(m)d月", m=month)


def table(view: View, name: str) -> tuple[list, list[dict]]:
    """One of the page's tables as export columns and row dicts (for export.iter_csv); only the queries
    that table needs run. "people" is the focus's own people (all of a leaf's). ValueError for an unknown name."""
    if name == "months":
        return MONTH_COLUMNS, [{"month": month_label(m), "hours": hours}
                               for m, hours in enumerate(months(view), start=1)]
    if name == "people":
        if view.focus is None:
            return export.SUMMARY_COLUMNS, []
        return export.SUMMARY_COLUMNS, people_rows(view)
    if name not in TABLES:
        raise ValueError(name)
    grid = cells(view)
    if name == "units":
        return UNIT_COLUMNS, [{"unit": g.label, "unit_code": g.key, "hours": g.hours, "headcount": g.headcount,
                               "learners": g.learners, "participation": g.participation}
                              for g in unit_groups(view, grid).rows]
    if name == "audiences":
        return AUDIENCE_COLUMNS, [{"audience": g.label, "hours": g.hours, "headcount": g.headcount,
                                   "learners": g.learners, "participation": g.participation}
                                  for g in audience_groups(view, grid)]
    if name == "courses":
        return COURSE_COLUMNS, [{"course": row.title, "audiences": "、".join(audience_label(a) for a in row.audiences),
                                 "credited": row.credited, "expected": row.expected, "rate": row.rate}
                                for row in course_rows(view, grid)]
    target = annual_target(CADRE)
    return CADRE_COLUMNS, [{"unit": g.label, "unit_code": g.key, "cadres": g.cadre.headcount,
                            "at_target": g.cadre.at_target, "share": g.cadre_share, "average": g.cadre_average,
                            "target": target} for g in unit_groups(view, grid).rows]
