"""People management (issue 10) as plain functions: the list, create, edit and move, deactivate and
reactivate, password resets and unlocks, browser imports, and each user's own password change.

Who may do what (`check_manage`, `check_placement`):
- an admin manages everyone and may give any role in any unit;
- a unit admin manages the people of their unit's subtree (lms/accounts/scope.py) except admins and
  unit admins of their own unit or above; they give the roles learner, instructor, and unit admin in
  a unit strictly below their own, and place people only inside their subtree;
- a teacher (instructor) manages the learners of the class units in their subtree (lms/classroom):
  adds them, takes them off the roster and back;
- nobody manages their own account here (so nobody raises their own role or deactivates themselves);
  everyone changes their own password at /account/password.

Nobody is ever deleted: a person's records, attempts and audit rows keep pointing at them, so an
account that should go away is deactivated (its sessions end) and may be reactivated. Every change
writes an audit row in the same transaction (lms/records/audit.py).
"""
from __future__ import annotations

import csv
import io
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError

from lms.accounts import bulk, throttle
from lms.accounts.models import ROLES, Unit, User
from lms.accounts.scope import in_subtree, oversight_root, scoped_unit, unit_in_subtree
from lms.accounts.services import AccountError, authenticate, change_password, end_sessions
from lms.audiences import AUDIENCE_CODES
from lms.extensions import db
from lms.records.audit import audit
from lms.records.models import TrainingRecord

PAGE_SIZE = 50
SEARCH_ONE_PASS = 5000  # a search matching up to this many people is read once for its count and page
PHONE_PART_RE = re.compile(r"^\+?[0-9]{3,20}$")  # what a search for part of a phone number looks like
MANAGER_ROLES = ("admin", "unit_admin")
ROLE_NAMES = {"learner": _l("学员"), "instructor": _l("教师"), "unit_admin": _l("单位管理员"), "admin": _l("管理员")}
PASSWORD_SCOPES = ("password", "password-account")  # the account's sign-in waits (lms/accounts/services.py)
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# generated passwords: no 0/O, 1/l/I, so they can be read out over the phone
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_LENGTH = 10
MIN_PASSWORD = 8


class NotAllowed(PermissionError):
    """The actor may not do this to this person (routes answer 403)."""


class PersonError(AccountError):
    """Bad input, naming the form field it is about; nothing was saved."""

    def __init__(self, field_name: str, message):
        super().__init__(str(message))
        self.field = field_name
        self.message = message


def role_name(role: str) -> str:
    return str(ROLE_NAMES.get(role, role))


def generate_password() -> str:
    """A password shown once to an administrator: 10 characters, letters and digits both."""
    while True:
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_LENGTH))
        if any(c.isdigit() for c in password) and any(c.isalpha() for c in password):
            return password


# ---- who may do what --------------------------------------------------------------------------

def may_manage(actor: User, person: User) -> bool:
    if person.id == actor.id:
        return False
    if actor.role == "admin":
        return True
    if actor.role == "instructor":
        return person.role == "learner" and person.unit.kind == "class" and unit_in_subtree(person.unit, actor.unit)
    if actor.role != "unit_admin":
        return False
    if person.role == "admin" or not unit_in_subtree(person.unit, actor.unit):
        return False
    return person.role != "unit_admin" or person.unit.path != actor.unit.path


def check_manage(actor: User, person: User) -> None:
    if not may_manage(actor, person):
        raise NotAllowed(person.id)


def visible(actor: User, person: User) -> bool:
    """May `actor` open this person's page at all (their own, read-only, included)?"""
    return actor.role in MANAGER_ROLES and unit_in_subtree(person.unit, oversight_root(actor))


def assignable_roles(actor: User) -> tuple[str, ...]:
    """The roles `actor` may give (a teacher only adds learners to classes; a learner none)."""
    return {"admin": ROLES, "unit_admin": ("learner", "instructor", "unit_admin"),
            "instructor": ("learner",)}.get(actor.role, ())


def placement_problem(actor: User, role: str, unit: Unit | None, moving: bool = True) -> tuple[str, object] | None:
    """(field, message) when `actor` may not place a person of `role` in `unit`, else None.
    `moving`: the unit is new for the person (a deactivated unit takes nobody new)."""
    if unit is None:
        return "unit", _l("没有这个单位编码")
    if not unit_in_subtree(unit, oversight_root(actor)):
        return "unit", _l("单位“%(name)s”不在您管辖的范围内", name=unit.name)
    if moving and not unit.active:
        return "unit", _l("单位“%(name)s”已停用，不能再加人", name=unit.name)
    if role not in assignable_roles(actor):
        return "role", _l("您不能设置“%(role)s”角色", role=role_name(role))
    if actor.role == "instructor" and unit.kind != "class":
        return "unit", _l("教师只能把学员加到班级里")
    if role == "unit_admin" and actor.role != "admin" and unit.path == actor.unit.path:
        return "role", _l("单位管理员只能设在您下级的单位")
    return None


def check_placement(actor: User, role: str, unit: Unit | None, moving: bool = True) -> None:
    problem = placement_problem(actor, role, unit, moving)
    if problem:
        raise PersonError(*problem)


def unit_by_code(code: str | None) -> Unit | None:
    code = (code or "").strip()
    return Unit.query.filter_by(code=code).first() if code else None


# ---- the list ---------------------------------------------------------------------------------

@dataclass
class PeopleFilters:
    q: str = ""  # part of a name, 账号 or phone
    unit: Unit | None = None  # with its subtree
    audience: str | None = None
    role: str | None = None
    active: bool | None = None
    must_change: bool = False
    after: tuple[str, int] | None = None  # keyset: the (full_name, id) of the previous page's last row


@dataclass
class PeoplePage:
    rows: list  # [(User, Unit)]
    total: int
    next_after: tuple[str, int] | None
    root: Unit | None  # the subtree shown (None: every unit)
    locked: set = field(default_factory=set)  # ids of the page's people who must wait to sign in


def _search_condition(text: str):
    """Part of a name, 账号 or phone number, as text (never a wildcard). A phone is searched only for
    what could be part of one; 账号 ignores case (SQLite's LIKE already does, without lower())."""
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    account = User.username.contains(text, autoescape=True) if sqlite else User.username.icontains(text, autoescape=True)
    condition = User.full_name.contains(text, autoescape=True) | account
    phone = bulk.clean_phone(text)
    if PHONE_PART_RE.match(phone):
        condition = condition | User.phone.contains(phone, autoescape=True)
    return condition


def people_query(actor: User, filters: PeopleFilters):
    """SELECT of the (full_name, id) of the people `actor` may see that match `filters` (OutsideScope
    for a unit beyond their subtree), and the subtree root applied. The user table's covering index
    (ix_user_list) answers every condition but the subtree, so a search reads the index, not the table."""
    root = scoped_unit(actor, filters.unit)
    query = select(User.full_name, User.id)
    if root is not None:
        query = query.join(Unit, User.unit_id == Unit.id).where(in_subtree(root))
    text = (filters.q or "").strip()
    if text:
        query = query.where(_search_condition(text))
    if filters.audience:
        query = query.where(User.audience == filters.audience)
    if filters.role:
        query = query.where(User.role == filters.role)
    if filters.active is not None:
        query = query.where(User.active.is_(filters.active))
    if filters.must_change:
        query = query.where(User.must_change_password.is_(True))
    return query, root


def _page_keys(query, filters: PeopleFilters, page_size: int) -> tuple[list, int]:
    """(up to page_size + 1 keys from the cursor on, how many match in all).

    A search reads its matches once — their keys give both the count and the page — since a scan for
    the count and another for the page would read the index twice. Anything else (or a search matching
    more than SEARCH_ONE_PASS people) counts, then reads one page from the cursor through the index."""
    ordered = query.order_by(User.full_name, User.id)
    if (filters.q or "").strip():
        keys = db.session.execute(ordered.limit(SEARCH_ONE_PASS + 1)).all()
        if len(keys) <= SEARCH_ONE_PASS:
            start = 0
            if filters.after:  # the database's order (its collation), so find the cursor, never compare in Python
                start = next((i + 1 for i, key in enumerate(keys) if tuple(key) == tuple(filters.after)), None)
            if start is not None:
                return keys[start:start + page_size + 1], len(keys)
    total = db.session.execute(query.with_only_columns(func.count(User.id)).order_by(None)).scalar_one()
    if filters.after:
        ordered = ordered.where(tuple_(User.full_name, User.id) > tuple_(*filters.after))
    return db.session.execute(ordered.limit(page_size + 1)).all(), total


def people_page(actor: User, filters: PeopleFilters, page_size: int = PAGE_SIZE) -> PeoplePage:
    """One page in name order (keyset on (full_name, id)), the number matching in all, and which of the
    page's people are locked out of signing in."""
    query, root = people_query(actor, filters)
    keys, total = _page_keys(query, filters, page_size)
    more = len(keys) > page_size
    ids = [key.id for key in keys[:page_size]]
    found = {user.id: (user, unit) for user, unit in
             db.session.query(User, Unit).join(Unit, User.unit_id == Unit.id).filter(User.id.in_(ids))} if ids else {}
    rows = [found[ident] for ident in ids]
    last = rows[-1][0] if rows else None
    locked = locked_ids([user for user, _unit in rows])
    return PeoplePage(rows, total, (last.full_name, last.id) if more and last else None, root, locked)


def locked_ids(people: list[User]) -> set[int]:
    """Which of `people` must wait before their next password sign-in (an administrator can unlock)."""
    if not people:
        return set()
    by_name = {person.username: person.id for person in people}
    return {by_name[name] for name in throttle.blocked_subjects(PASSWORD_SCOPES, list(by_name))}


def record_totals(person: User) -> tuple[int, object]:
    """(ledger records, 学时 in all) of a person: why they are deactivated, never deleted."""
    count, hours = db.session.execute(select(func.count(TrainingRecord.id), func.coalesce(func.sum(TrainingRecord.hours), 0))
                                      .where(TrainingRecord.user_id == person.id)).one()
    return count, hours


# ---- create, edit, move, deactivate -----------------------------------------------------------

@dataclass
class PersonData:
    full_name: str
    audience: str
    role: str
    unit_code: str
    phone: str = ""
    username: str = ""  # only when creating
    password: str = ""  # only when creating; empty: generate one (to be changed at first sign-in)


def _clean(data: PersonData) -> PersonData:
    data.full_name = (data.full_name or "").strip()
    data.phone = bulk.clean_phone(data.phone)
    data.username = (data.username or "").strip()
    data.unit_code = (data.unit_code or "").strip()
    if not data.full_name:
        raise PersonError("full_name", _l("请填写姓名"))
    if len(data.full_name) > 80:
        raise PersonError("full_name", _l("姓名最多 80 个字"))
    if data.phone and not bulk.PHONE_RE.match(data.phone):
        raise PersonError("phone", _l("手机号只能是 6–20 位数字（可以有开头的 +）"))
    if data.audience not in AUDIENCE_CODES:
        raise PersonError("audience", _l("请选择人群"))
    if data.role not in ROLES:
        raise PersonError("role", _l("请选择角色"))
    return data


def create_person(actor: User, data: PersonData) -> tuple[User, str | None]:
    """A new account; returns it with its generated password (None when the actor typed one). A
    generated password must be changed at the first sign-in."""
    data = _clean(data)
    if not USERNAME_RE.match(data.username):
        raise PersonError("username", _l("账号由字母、数字和 . _ @ - 组成，最多 64 位，以字母或数字开头"))
    if User.query.filter(func.lower(User.username) == data.username.lower()).first():
        raise PersonError("username", _l("账号“%(name)s”已被使用", name=data.username))
    unit = unit_by_code(data.unit_code)
    check_placement(actor, data.role, unit)
    if data.password and len(data.password) < MIN_PASSWORD:
        raise PersonError("password", _l("密码至少 %(n)d 位", n=MIN_PASSWORD))
    generated = None if data.password else generate_password()
    user = User(username=data.username, full_name=data.full_name, role=data.role, audience=data.audience,
                unit=unit, phone=data.phone or None, must_change_password=generated is not None)
    user.set_password(data.password or generated)
    db.session.add(user)
    try:
        audit(actor, "user.create", user, f"{data.full_name}（{data.username}），{role_name(data.role)}，"
                                          f"{data.audience}，单位 {unit.code}")
        db.session.commit()
    except IntegrityError:  # the same 账号 created at the same moment by someone else
        db.session.rollback()
        raise PersonError("username", _l("账号“%(name)s”已被使用", name=data.username)) from None
    return user, generated


def update_person(actor: User, person: User, data: PersonData) -> list[str]:
    """Save name, phone, audience, role and unit (a move); returns what changed, as audit text.
    The person's records belong to them, so they move with them."""
    check_manage(actor, person)
    data = _clean(data)
    unit = unit_by_code(data.unit_code)
    moving = unit is not None and unit.id != person.unit_id
    check_placement(actor, data.role, unit, moving=moving)
    changes = []
    for name, new in (("full_name", data.full_name), ("phone", data.phone or None), ("audience", data.audience),
                      ("role", data.role)):
        old = getattr(person, name)
        if old != new:
            changes.append(f"{name}: {old or ''} → {new or ''}")
            setattr(person, name, new)
    if changes:
        audit(actor, "user.update", person, "；".join(changes))
    if moving:
        audit(actor, "user.move", person, f"{person.unit.code} → {unit.code}")
        changes.append(f"unit: {person.unit.code} → {unit.code}")
        person.unit = unit
    db.session.commit()
    return changes


def set_active(actor: User, person: User, active: bool) -> bool:
    """Deactivate (their sessions end; they cannot sign in; records stay) or reactivate; False when
    nothing changed."""
    check_manage(actor, person)
    if person.active == active:
        return False
    if active and not person.unit.active:
        raise PersonError("unit", _l("单位“%(name)s”已停用：请先把此人移到在用的单位", name=person.unit.name))
    person.active = active
    audit(actor, "user.reactivate" if active else "user.deactivate", person)
    db.session.commit()
    if not active:
        end_sessions(person)
    return True


def reset_password(actor: User, person: User) -> str:
    """A generated password, to be shown once; the person must change it at their next sign-in. Their
    sessions end and their sign-in waits are lifted."""
    check_manage(actor, person)
    password = generate_password()
    person.must_change_password = True
    audit(actor, "user.password_reset", person)
    change_password(person, password)  # commits the flag and the audit row with the new password
    return password


def unlock(actor: User, person: User) -> int:
    """Lift the waits on the person's account after failed sign-ins (lms/accounts/throttle.py)."""
    check_manage(actor, person)
    audit(actor, "user.unlock", person)
    db.session.commit()
    return throttle.clear(PASSWORD_SCOPES, subject=person.username)


# ---- one's own password -----------------------------------------------------------------------

def change_own_password(user: User, current: str, new: str, address: str | None) -> None:
    """The current password is checked as a sign-in is (counted against the account, so a borrowed
    session cannot guess it); then every other session of the user ends (the caller signs this one in
    again) and the must-change flag is cleared."""
    if len(new or "") < MIN_PASSWORD:
        raise PersonError("password", _l("新密码至少 %(n)d 位", n=MIN_PASSWORD))
    if new == current:
        raise PersonError("password", _l("新密码不能和当前密码一样"))
    try:
        checked = authenticate(user.username, current or "", address)
    except AccountError as exc:  # SignInThrottled
        raise PersonError("current_password", _l("尝试次数太多，请 %(seconds)s 秒后再试。",
                                                 seconds=getattr(exc, "retry_after", 60))) from None
    if checked is None or checked.id != user.id:
        raise PersonError("current_password", _l("当前密码不正确"))
    user.must_change_password = False
    audit(user, "user.password_change", user)
    change_password(user, new)


# ---- import in the browser --------------------------------------------------------------------

TEMPLATE_HEADER = ("账号", "姓名", "人群", "单位编码", "角色", "密码", "手机号")


def template_csv(actor: User) -> bytes:
    """The import template: the header row and one example row in the actor's own unit (UTF-8 with BOM,
    so Excel opens it in Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TEMPLATE_HEADER)
    # the Chinese label the import reads, not the page's language (str(AUDIENCES[...]) is "Farmers" in English)
    farmer = next(label for label, code in bulk.AUDIENCE_LABELS.items() if code == "farmer")
    writer.writerow(("zhangsan", "张三", farmer, actor.unit.code, "学员", "", "13800000000"))
    return out.getvalue().encode("utf-8-sig")


def import_upload(actor: User, filename: str, raw: bytes, dry_run: bool = False) -> bulk.ImportReport:
    """`lms users import`'s rules on an uploaded file, within what `actor` may do: every bad row is
    reported and nothing is imported unless all are good. Generated passwords must be changed at the
    first sign-in; every person created is audited."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in (".csv", ".xlsx", ".txt"):
        raise bulk.ImportFileError(str(_l("只支持 .csv 或 .xlsx 文件")))

    def placement(role: str, unit_code: str) -> str | None:
        unit = unit_by_code(unit_code)
        if unit is None:
            return None  # the import's own check names a missing unit
        problem = placement_problem(actor, role, unit)
        return str(problem[1]) if problem else None

    def created(user: User, generated: bool) -> None:
        user.must_change_password = generated
        audit(actor, "user.import", user, f"{user.full_name}（{user.username}），{role_name(user.role)}，"
                                          f"单位 {user.unit.code}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(raw)
        return bulk.import_users(path, dry_run=dry_run, placement=placement, on_create=created)

