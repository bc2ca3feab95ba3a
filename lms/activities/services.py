"""Offline activities as plain functions: who may organise, create and edit, the rotating QR token, and
crediting an attendance — once — whichever way it was taken (QR scan, roster, paper list).

Clock: every function that depends on the time takes `now` (naive UTC; None = the real clock), so
tests set the time without patching it.

Who may organise an activity of a unit: an admin any; a unit admin a unit of their subtree; a teacher
(instructor) a class they manage (lms/classroom/services.can_manage). Who may attend: an active person
of the activity's unit subtree whose audience is one of the activity's.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError

from lms.accounts import people
from lms.accounts.bulk import ImportFileError, RowProblem, read_sheet
from lms.accounts.models import Unit, User, utcnow
from lms.accounts.scope import can_oversee, in_subtree, oversight_root, unit_in_subtree
from lms.activities.models import KIND_CODES, ActivityAttendance, ActivityAudience, OfflineActivity
from lms.admin.forms import FieldError
from lms.audiences import AUDIENCE_CODES, audience_label
from lms.classroom import services as classroom
from lms.extensions import db
from lms.records.audit import audit
from lms.records.models import TrainingRecord
from lms.records.services import SHANGHAI, to_local
from lms.templating import format_hours

KINDS = dict(zip(KIND_CODES, (_l("讲座"), _l("科普大篷车"), _l("田间课堂"), _l("应急演练"), _l("科普展览"), _l("其他"))))
ORGANISER_ROLES = ("admin", "unit_admin", "instructor")
METHODS = {"qr": "扫码", "roster": "点名", "paper": "纸质签到表"}  # the ledger record's note: how
MAX_HOURS = Decimal("8")
MAX_WINDOW = timedelta(days=31)  # a 科普展览 may run for weeks, not for ever
SLOT_SECONDS = 30  # the QR code changes this often; a token is good for its slot and the one before
PAGE_SIZE = 50
PAPER_HEADERS = {"账号": "username", "username": "username", "姓名": "full_name", "name": "full_name",
                 "full_name": "full_name"}
PAPER_TEMPLATE_HEADER = ("账号", "姓名", "签名")


class ActivityError(FieldError):
    """Bad input to create or edit an activity, naming the form field it is about; nothing was saved."""


class AttendanceRefused(ValueError):
    """This person cannot be credited for this activity (outside its audiences or units, the year
    closed, …); `message` says why, for the page."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


def kind_label(code: str) -> str:
    return str(KINDS.get(code, code))


def clock(now: datetime | None) -> datetime:
    return now if now is not None else utcnow()


def from_local(moment: datetime) -> datetime:
    """A wall-clock time in Asia/Shanghai (as typed) → naive UTC (as stored)."""
    return moment.replace(tzinfo=SHANGHAI).astimezone(timezone.utc).replace(tzinfo=None)


# ---- who may organise ---------------------------------------------------------------------------

def may_organise(user, unit: Unit) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.role == "instructor":
        return classroom.can_manage(user, unit)
    return user.role in ("admin", "unit_admin") and can_oversee(user, unit)


def activities_query(user):
    """The activities `user` organises or oversees, newest first."""
    query = OfflineActivity.query.join(Unit, OfflineActivity.unit_id == Unit.id)
    root = oversight_root(user)
    if root is not None:
        query = query.filter(in_subtree(root))
    if user.role == "instructor":
        query = query.filter(Unit.kind == "class")
    return query.order_by(OfflineActivity.starts_at.desc(), OfflineActivity.id.desc())


def attendance_counts(activity_ids: list[int]) -> dict[int, int]:
    if not activity_ids:
        return {}
    rows = (db.session.query(ActivityAttendance.activity_id, func.count())
            .filter(ActivityAttendance.activity_id.in_(activity_ids)).group_by(ActivityAttendance.activity_id))
    return dict(rows.all())


def attendance_count(activity: OfflineActivity) -> int:
    return attendance_counts([activity.id]).get(activity.id, 0)


# ---- create and edit ----------------------------------------------------------------------------

@dataclass
class ActivityData:
    title: str
    kind: str
    starts_local: datetime | None  # as typed, Asia/Shanghai
    ends_local: datetime | None
    place: str
    unit_code: str
    audiences: list[str]
    hours: Decimal | None


def _checked(actor: User, data: ActivityData) -> tuple[Unit, datetime, datetime]:
    """The activity's unit and its window in UTC, or ActivityError on the first bad field."""
    title, place = (data.title or "").strip(), (data.place or "").strip()
    if not title:
        raise ActivityError("title", _l("请填写活动名称"))
    if len(title) > 200:
        raise ActivityError("title", _l("活动名称最多 200 个字"))
    if data.kind not in KINDS:
        raise ActivityError("kind", _l("请选择活动类型"))
    if data.starts_local is None:
        raise ActivityError("starts_at", _l("请填写开始时间"))
    if data.ends_local is None:
        raise ActivityError("ends_at", _l("请填写结束时间"))
    if data.ends_local <= data.starts_local:
        raise ActivityError("ends_at", _l("结束时间必须晚于开始时间"))
    if data.ends_local - data.starts_local > MAX_WINDOW:
        raise ActivityError("ends_at", _l("活动最长 31 天"))
    if not place:
        raise ActivityError("place", _l("请填写活动地点"))
    if len(place) > 200:
        raise ActivityError("place", _l("活动地点最多 200 个字"))
    unit = people.unit_by_code(data.unit_code)
    if unit is None:
        raise ActivityError("unit", _l("没有这个单位编码"))
    if not may_organise(actor, unit):
        if actor.role == "instructor":
            raise ActivityError("unit", _l("教师只能为自己管理的班级组织活动"))
        raise ActivityError("unit", _l("单位“%(name)s”不在您管辖的范围内", name=unit.name))
    audiences = [code for code in AUDIENCE_CODES if code in set(data.audiences or [])]
    if not audiences or len(audiences) != len(set(data.audiences or [])):
        raise ActivityError("audiences", _l("请至少选择一个面向人群"))
    if data.hours is None:
        raise ActivityError("hours", _l("请填写学时"))
    if not (Decimal("0") < data.hours <= MAX_HOURS):
        raise ActivityError("hours", _l("学时应大于 0、不超过 8"))
    data.title, data.place, data.audiences = title, place, audiences
    return unit, from_local(data.starts_local), from_local(data.ends_local)


def _describe(activity: OfflineActivity) -> str:
    return (f"{activity.title}，{kind_label(activity.kind)}，{to_local(activity.starts_at):%Y-%m-%d %H:%M}–"
            f"{to_local(activity.ends_at):%Y-%m-%d %H:%M}，{activity.place}，单位 {activity.unit.code}，"
            f"{'、'.join(audience_label(a) for a in activity.audiences)}，{format_hours(activity.hours)} 学时")


def target(activity: OfflineActivity) -> str:
    return f"activity:{activity.id}"


def create_activity(actor: User, data: ActivityData) -> OfflineActivity:
    unit, starts_at, ends_at = _checked(actor, data)
    activity = OfflineActivity(title=data.title, kind=data.kind, starts_at=starts_at, ends_at=ends_at,
                               place=data.place, unit=unit, hours=data.hours, created_by_id=actor.id,
                               audience_rows=[ActivityAudience(audience=a) for a in data.audiences])
    db.session.add(activity)
    db.session.flush()
    audit(actor, "activity.create", target(activity), _describe(activity))
    db.session.commit()
    return activity


def update_activity(actor: User, activity: OfflineActivity, data: ActivityData) -> bool:
    """Save changes; True when something changed. Records already credited keep their 学时 and title
    (the ledger is append-only): a change applies to attendances from now on."""
    unit, starts_at, ends_at = _checked(actor, data)
    before = _describe(activity)
    activity.title, activity.kind, activity.place, activity.hours = data.title, data.kind, data.place, data.hours
    activity.starts_at, activity.ends_at, activity.unit = starts_at, ends_at, unit
    had = set(activity.audiences)
    if had != set(data.audiences):  # keep the rows that stay (same keys), add and drop the others
        activity.audience_rows = ([row for row in activity.audience_rows if row.audience in data.audiences]
                                  + [ActivityAudience(audience=a) for a in data.audiences if a not in had])
    after = _describe(activity)
    if after == before:
        db.session.rollback()
        return False
    credited = attendance_count(activity)
    audit(actor, "activity.update", target(activity),
          f"{before} → {after}" + (f"（已有 {credited} 人签到，其记录不变）" if credited else ""))
    db.session.commit()
    return True


# ---- crediting an attendance --------------------------------------------------------------------

def attendance_key(activity_id: int, user_id: int) -> str:
    return f"activity:{activity_id}:user:{user_id}"


def eligibility_problem(activity: OfflineActivity, person: User) -> str | None:
    """Why `person` cannot attend `activity` (for the page), or None."""
    if not person.active:
        return str(_l("%(name)s 的账号已停用", name=person.full_name))
    if person.audience not in activity.audiences:
        return str(_l("%(name)s（%(audience)s）不在本活动面向的人群（%(audiences)s）中", name=person.full_name,
                      audience=audience_label(person.audience),
                      audiences="、".join(audience_label(a) for a in activity.audiences)))
    if not unit_in_subtree(person.unit, activity.unit):
        return str(_l("%(name)s 不属于本活动的单位“%(unit)s”及其下级单位", name=person.full_name,
                      unit=activity.unit.name))
    return None


def credited_record(key: str) -> TrainingRecord | None:
    """The record already credited under `key` (a quick answer; the unique key is the guarantee)."""
    return TrainingRecord.query.filter_by(completion_key=key).first()


@dataclass
class Credit:
    status: str  # "credited" or "already"
    record: TrainingRecord


def credit_attendance(activity: OfflineActivity, person: User, actor: User | None, method: str,
                      now: datetime | None = None, commit: bool = True) -> Credit:
    """The one way an attendance is credited: one ledger record (kind and source "offline", the
    activity's title and 学时, earned at the moment of attendance clamped inside the window), whose
    completion_key makes a second credit — a second scan, a tick after a scan, a race — "already".

    `actor`: who ticked or imported (None for the person's own scan). AttendanceRefused when the person
    may not attend, or when the ledger refuses the record (a closed year raises a ValueError there).
    `commit=False` leaves the commit to the caller (a paper list is written all or nothing)."""
    problem = eligibility_problem(activity, person)
    if problem:
        raise AttendanceRefused(problem)
    key = attendance_key(activity.id, person.id)
    existing = credited_record(key)
    if existing is not None:
        return Credit("already", existing)
    moment = min(max(clock(now), activity.starts_at), activity.ends_at)
    record = TrainingRecord(user_id=person.id, title=activity.title, kind="offline", hours=activity.hours,
                            earned_at=moment, source="offline", completion_key=key,
                            created_by_id=actor.id if actor is not None else None, note=METHODS[method])
    try:
        with db.session.begin_nested():
            db.session.add(record)
            db.session.flush()
            db.session.add(ActivityAttendance(activity_id=activity.id, user_id=person.id, record_id=record.id,
                                              method=method))
            db.session.flush()
    except IntegrityError:  # credited meanwhile by another request: the database kept the first only
        return Credit("already", TrainingRecord.query.filter_by(completion_key=key).one())
    except ValueError as exc:  # e.g. lms.records.closing.YearClosed: the ledger refuses this year
        raise AttendanceRefused(str(exc)) from None
    audit(actor if actor is not None else person, "activity.attend", person,
          f"{activity.title}（{target(activity)}），{format_hours(activity.hours)} 学时，{METHODS[method]}")
    if commit:
        db.session.commit()
    return Credit("credited", record)


# ---- the QR code at the venue -------------------------------------------------------------------

def _slot(now: datetime) -> int:
    return int(now.replace(tzinfo=timezone.utc).timestamp()) // SLOT_SECONDS


def _mac(activity_id: int, slot: int) -> str:
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"lms.activities.qr", hashlib.sha256).digest()
    digest = hmac.new(key, f"{activity_id}|{slot}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(activity: OfflineActivity, now: datetime | None = None) -> str:
    """"<activity id>-<30-second slot>-<HMAC of both>": url-safe, unforgeable without SECRET_KEY."""
    slot = _slot(clock(now))
    return f"{activity.id}-{slot}-{_mac(activity.id, slot)}"


def seconds_left(now: datetime | None = None) -> int:
    """Until the current slot ends (when the code shown should change)."""
    stamp = clock(now).replace(tzinfo=timezone.utc).timestamp()
    return max(1, int(SLOT_SECONDS - stamp % SLOT_SECONDS + 0.999))


def qr_svg(url: str) -> str:
    """The QR code of `url` as <svg> markup (no style attributes or scripts: the CSP allows it inline)."""
    import segno  # here: only a process that shows a QR code loads it

    return segno.make(url, error="m").svg_inline(scale=1, border=4, omitsize=True, svgclass="qr-code",
                                                 lineclass="qr-line")


@dataclass
class ScanResult:
    status: str  # credited, already, expired, closed, invalid, refused
    message: str
    activity: OfflineActivity | None = None
    hours: Decimal | None = None


def _parse(token: str) -> tuple[int, int] | None:
    parts = (token or "").split("-", 2)  # the HMAC part may hold "-" itself (url-safe base64)
    if len(parts) != 3 or not parts[0].isascii() or not parts[0].isdigit() or not parts[1].isascii() \
            or not parts[1].isdigit() or len(parts[0]) > 12 or len(parts[1]) > 12:
        return None
    activity_id, slot = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2].encode(), _mac(activity_id, slot).encode()):
        return None
    return activity_id, slot


def scan(token: str, person: User, now: datetime | None = None) -> ScanResult:
    """A signed-in person scanned the venue's code. Good only for that activity, in the slot it was
    shown or the one after (a slow phone), and only inside the activity's window."""
    now = clock(now)
    parsed = _parse(token)
    if parsed is None:
        return ScanResult("invalid", str(_l("二维码无效")))
    activity_id, slot = parsed
    current = _slot(now)
    if slot > current:
        return ScanResult("invalid", str(_l("二维码无效")))
    if slot < current - 1:
        return ScanResult("expired", str(_l("二维码已过期，请重新扫描现场的二维码")))
    activity = db.session.get(OfflineActivity, activity_id)
    if activity is None:
        return ScanResult("invalid", str(_l("二维码无效")))
    if not activity.starts_at <= now <= activity.ends_at:
        return ScanResult("closed", str(_l("活动不在签到时间内")), activity)
    try:
        credit = credit_attendance(activity, person, None, "qr", now)
    except AttendanceRefused as exc:
        db.session.rollback()
        return ScanResult("refused", exc.message + str(_l("，没有记学时。")), activity)
    if credit.status == "already":
        return ScanResult("already", str(_l("您已签到过")), activity, credit.record.hours)
    return ScanResult("credited", str(_l("已签到，记 %(hours)s 学时", hours=format_hours(credit.record.hours))), activity,
                      credit.record.hours)


# ---- the roster on the tablet -------------------------------------------------------------------

@dataclass
class RosterPage:
    rows: list  # [(User, Unit)]
    total: int
    next_after: tuple[str, int] | None
    attended: dict  # user id → method, for the page's people who attended


def roster_page(actor: User, activity: OfflineActivity, q: str = "", after: tuple[str, int] | None = None,
                page_size: int = PAGE_SIZE) -> RosterPage:
    """One page (name order, keyset on (full_name, id)) of the active people who may attend: the
    activity's unit subtree and audiences, matching `q` (part of a name, 账号 or phone)."""
    query, _root = people.people_query(actor, people.PeopleFilters(q=q, unit=activity.unit, active=True))
    query = query.where(User.audience.in_(activity.audiences))
    total = db.session.execute(query.with_only_columns(func.count(User.id)).order_by(None)).scalar_one()
    ordered = query.order_by(User.full_name, User.id)
    if after:
        ordered = ordered.where(tuple_(User.full_name, User.id) > tuple_(*after))
    keys = db.session.execute(ordered.limit(page_size + 1)).all()
    ids = [key.id for key in keys[:page_size]]
    found = {user.id: (user, unit) for user, unit in
             db.session.query(User, Unit).join(Unit, User.unit_id == Unit.id).filter(User.id.in_(ids))} if ids else {}
    rows = [found[ident] for ident in ids]
    attended = dict(db.session.execute(
        select(ActivityAttendance.user_id, ActivityAttendance.method)
        .where(ActivityAttendance.activity_id == activity.id, ActivityAttendance.user_id.in_(ids))).all()) if ids else {}
    last = rows[-1][0] if rows and len(keys) > page_size else None
    return RosterPage(rows, total, (last.full_name, last.id) if last else None, attended)


def not_started(activity: OfflineActivity, now: datetime | None = None) -> bool:
    """Roster ticks and paper lists are taken from the start on (afterwards too: the list comes later)."""
    return clock(now) < activity.starts_at


# ---- the signed paper list ----------------------------------------------------------------------

@dataclass
class PaperRow:
    line: int
    username: str
    full_name: str  # as written on the list
    problem: str | None = None
    already: bool = False
    person: User | None = None


@dataclass
class PaperReport:
    rows: list[PaperRow] = field(default_factory=list)
    credited: int = 0
    written: bool = False

    @property
    def problems(self) -> list[RowProblem]:
        return [RowProblem(row.line, row.problem) for row in self.rows if row.problem]

    @property
    def bad_rows(self) -> list[PaperRow]:
        return [row for row in self.rows if row.problem]

    @property
    def already(self) -> list[PaperRow]:
        return [row for row in self.rows if row.already]

    @property
    def to_credit(self) -> list[PaperRow]:
        return [row for row in self.rows if not row.problem and not row.already]


def _read_paper(filename: str, raw: bytes) -> list[tuple[int, dict]]:
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (".csv", ".xlsx", ".txt"):
        raise ImportFileError(str(_l("只支持 .csv 或 .xlsx 文件")))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(raw)
        return read_sheet(path, PAPER_HEADERS, {"username"}, str(_l("需要 账号 列，可选 姓名 列")))


def check_paper(activity: OfflineActivity, filename: str, raw: bytes) -> PaperReport:
    """Every row of a signed list checked: 账号 known, 姓名 (when given) the person's, the person of
    the activity's units and audiences, no 账号 twice. Rows already credited are marked, not errors.
    ImportFileError when the file as a whole cannot be read."""
    table = _read_paper(filename, raw)
    if not table:
        raise ImportFileError(str(_l("文件里没有签到的人")))
    names = list({row.get("username", "") for _line, row in table if row.get("username")})
    found: dict[str, User] = {}
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        found.update({user.username: user for user in User.query.filter(User.username.in_(chunk))})
    attended = {user_id for (user_id,) in db.session.query(ActivityAttendance.user_id)
                .filter(ActivityAttendance.activity_id == activity.id)}
    report, seen = PaperReport(), {}
    for line, values in table:
        username, written_name = values.get("username", ""), values.get("full_name", "")
        row = PaperRow(line, username, written_name)
        person = found.get(username)
        if not username:
            row.problem = str(_l("账号为空"))
        elif username in seen:
            row.problem = str(_l("账号“%(name)s”与第 %(line)d 行重复", name=username, line=seen[username]))
        elif person is None:
            row.problem = str(_l("没有账号“%(name)s”", name=username))
        elif written_name and written_name != person.full_name:
            row.problem = str(_l("姓名“%(written)s”与账号“%(name)s”的姓名“%(real)s”不一致", written=written_name,
                                 name=username, real=person.full_name))
        else:
            row.problem = eligibility_problem(activity, person)
            row.person = person
            row.already = row.problem is None and person.id in attended
        seen.setdefault(username, line)
        report.rows.append(row)
    return report


def import_paper(actor: User, activity: OfflineActivity, filename: str, raw: bytes, dry_run: bool = False,
                 now: datetime | None = None) -> PaperReport:
    """Credit everyone on a signed paper list — all or nothing: any bad row (or a ledger refusal) and
    nothing is written. A dry run only checks."""
    report = check_paper(activity, filename, raw)
    if report.bad_rows or dry_run:
        return report
    if not_started(activity, now):
        raise ActivityError("file", _l("活动还没开始，不能导入签到表"))
    try:
        for row in report.to_credit:
            credit = credit_attendance(activity, row.person, actor, "paper", now, commit=False)
            if credit.status == "already":  # scanned meanwhile
                row.already = True
            else:
                report.credited += 1
    except AttendanceRefused as exc:
        db.session.rollback()
        raise ActivityError("file", exc.message) from None
    db.session.commit()
    report.written = True
    return report


def paper_template() -> bytes:
    """The sign-in sheet to print: 账号, 姓名 and a column to sign (ignored on import); UTF-8 with BOM
    so Excel opens it in Chinese."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(PAPER_TEMPLATE_HEADER)
    return out.getvalue().encode("utf-8-sig")
