"""Units (单位): the tree an administrator sees, create / edit / move / deactivate, a tree imported from a
spreadsheet, and the unit picker's search. Plain functions, no HTTP (routes: unit_routes.py).

Who may touch what is decided with lms/accounts/scope.py alone: an admin manages every unit; a unit
administrator the units of their own unit's subtree (`oversight_root`). They may rename their own unit
and create, edit, move and deactivate below it, but never move or deactivate their own unit (that would
change their parent's subtree) nor make a unit without a parent; a move stays inside their subtree.

A unit's `path` is the materialised path of codes, so a move rewrites the path of the unit and every
unit below it in one UPDATE; people and their records point at the unit's id and so move with it. A
code is the unit's identity in imports and exports and never changes. Deactivating a unit deactivates
its whole subtree (so an active unit never hangs below an inactive one and `unit.active` alone says
whether people may be put in it); nothing is deleted, and the people already there stay there.

Every change adds an audit row ("unit.create", "unit.update", "unit.move", "unit.deactivate",
"unit.reactivate") in the same transaction.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import aliased

from lms.accounts.bulk import ImportFileError, RowProblem, read_sheet
from lms.accounts.models import Unit, User
from lms.accounts.scope import OutsideScope, in_subtree, oversight_root, unit_in_subtree
from lms.accounts.services import AccountError, check_unit_code
from lms.extensions import db
from lms.records.audit import audit

# kinds in the order a tree lists siblings: county → township/street/department → village/community/school/class
KINDS = {
    "county": _l("县"), "township": _l("乡镇"), "street": _l("街道"), "department": _l("部门"),
    "village": _l("村"), "community": _l("社区"), "school": _l("学校"), "class": _l("班级"), "org": _l("其他"),
}
KIND_ORDER = {kind: position for position, kind in enumerate(KINDS)}
KIND_ALIASES = {"乡": "township", "镇": "township", "村委会": "village", "居委会": "community", "机关": "department"}
NAME_MAX = 120
PATH_MAX = 700
MANAGER_ROLES = ("admin", "unit_admin")


class UnitError(AccountError):
    """A change that cannot be made; `field` names the form field at fault (None: the unit as a whole)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def kind_label(kind: str) -> str:
    return str(KINDS.get(kind, kind))


def parse_kind(text: str) -> str | None:
    """A kind from a code ("village") or its Chinese name ("村"); "" means 其他; None when unknown."""
    text = (text or "").strip()
    if not text:
        return "org"
    if text.lower() in KINDS:
        return text.lower()
    labels = {str(label): kind for kind, label in KINDS.items()}
    return labels.get(text) or KIND_ALIASES.get(text)


# ---- scope --------------------------------------------------------------------------------------

def managed_root(actor) -> Unit | None:
    """The root of the units `actor` manages (None: all). The command line (actor None) and admins
    manage everything; a unit admin their subtree; nobody else any unit."""
    if actor is None:
        return None
    if actor.role not in MANAGER_ROLES:
        raise OutsideScope(actor.role)
    return oversight_root(actor)


def can_manage(actor, unit: Unit) -> bool:
    try:
        return unit_in_subtree(unit, managed_root(actor))
    except OutsideScope:
        return False


def _require(actor, unit: Unit) -> Unit | None:
    root = managed_root(actor)
    if not unit_in_subtree(unit, root):
        raise OutsideScope(unit.code)
    return root


def _require_parent(actor, parent: Unit | None) -> None:
    """`parent` may receive units from `actor`: inside their subtree (their own unit too), active."""
    root = managed_root(actor)
    if parent is None:
        if root is not None:
            raise UnitError(_("请选择上级单位：您只能在自己管辖的单位之下添加或移入单位。"), "parent")
        return
    if not unit_in_subtree(parent, root):
        raise UnitError(_("上级单位“%(code)s”不在您的管辖范围内。", code=parent.code), "parent")
    if not parent.active:
        raise UnitError(_("上级单位“%(name)s”已停用，不能在它下面添加或移入单位。", name=parent.name), "parent")


def _not_own_root(actor, unit: Unit, message: str) -> None:
    root = managed_root(actor)
    if root is not None and unit.id == root.id:
        raise UnitError(message)


def unit_in_field(field) -> Unit | None:
    """The unit a filter form's 单位编码 field names (None when empty, or when the field already has errors);
    an unknown code becomes the field's error."""
    code = (field.data or "").strip()
    if not code or field.errors:
        return None
    unit = Unit.query.filter_by(code=code).first()
    if unit is None:
        field.errors.append(_("单位编码不存在"))
    return unit


def find_unit(actor, code: str, field: str = "parent") -> Unit:
    """The unit of a typed (or picked) code that `actor` may manage; a clear error naming `field` if not."""
    code = (code or "").strip()
    unit = Unit.query.filter_by(code=code).first() if code else None
    if unit is None or not can_manage(actor, unit):
        raise UnitError(_("单位编码“%(code)s”不存在，或不在您的管辖范围内。", code=code) if code
                        else _("请选择单位。"), field)
    return unit


# ---- checks shared by the forms and the import --------------------------------------------------

def clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise UnitError(_("请填写单位名称。"), "name")
    if len(name) > NAME_MAX:
        raise UnitError(_("单位名称太长（最多 %(n)d 个字）。", n=NAME_MAX), "name")
    return name


def clean_kind(kind: str | None) -> str:
    parsed = parse_kind(kind or "")
    if parsed is None:
        raise UnitError(_("类型“%(kind)s”无效（可选：%(kinds)s）。", kind=kind,
                          kinds="、".join(str(label) for label in KINDS.values())), "kind")
    return parsed


def clean_code(code: str | None) -> str:
    code = (code or "").strip()
    try:
        check_unit_code(code)
    except AccountError:
        raise UnitError(_("单位编码“%(code)s”无效：1–64 个字符，不能含 /、空格或控制字符。", code=code), "code") from None
    return code


# ---- changes ------------------------------------------------------------------------------------

def create_unit(actor, code: str, name: str, kind: str, parent: Unit | None) -> Unit:
    """A new unit under `parent` (None: a new top-level unit, admins only). Committed, audited."""
    code, name, kind = clean_code(code), clean_name(name), clean_kind(kind)
    _require_parent(actor, parent)
    if db.session.query(Unit.id).filter_by(code=code).first():
        raise UnitError(_("单位编码“%(code)s”已被使用，请换一个。", code=code), "code")
    path = (parent.path if parent else "/") + code + "/"
    if len(path) > PATH_MAX:
        raise UnitError(_("单位层级太深或编码太长。"), "code")
    unit = Unit(code=code, name=name, kind=kind, parent=parent, path=path, active=True)
    db.session.add(unit)
    audit(actor, "unit.create", unit, f"{name}（{code}）" + (f"，上级 {parent.code}" if parent else "，顶级单位"))
    _commit_or_duplicate(code)
    return unit


def update_unit(actor, unit: Unit, name: str, kind: str) -> bool:
    """Rename a unit and/or change its kind (its own unit too, for a unit admin). False when nothing changed."""
    _require(actor, unit)
    name, kind = clean_name(name), clean_kind(kind)
    changes = []
    if name != unit.name:
        changes.append(f"名称 {unit.name} → {name}")
    if kind != unit.kind:
        changes.append(f"类型 {kind_label(unit.kind)} → {kind_label(kind)}")
    if not changes:
        return False
    unit.name, unit.kind = name, kind
    audit(actor, "unit.update", unit, "；".join(changes))
    db.session.commit()
    return True


def move_unit(actor, unit: Unit, new_parent: Unit) -> int:
    """Put `unit` (and everything below it) under `new_parent`: one UPDATE rewrites the paths. Returns the
    number of units moved. People and records follow, since they point at the units' ids."""
    _require(actor, unit)
    _not_own_root(actor, unit, _("不能移动您自己的单位，请联系上级管理员。"))
    if new_parent is None:
        raise UnitError(_("请选择新的上级单位。"), "parent")
    _require_parent(actor, new_parent)
    if unit_in_subtree(new_parent, unit):
        raise UnitError(_("不能把单位移到它自己或它的下级单位之下。"), "parent")
    if new_parent.id == unit.parent_id:
        raise UnitError(_("“%(name)s”已经在“%(parent)s”之下。", name=unit.name, parent=new_parent.name), "parent")
    old_path, parent_path = unit.path, new_parent.path
    _lock_for_move(unit, new_parent)
    if unit.path != old_path or new_parent.path != parent_path or unit_in_subtree(new_parent, unit):
        db.session.rollback()
        raise UnitError(_("这些单位刚刚被其他人改动过，请刷新页面后重试。"))
    new_path = parent_path + unit.code + "/"
    longest = db.session.execute(select(func.max(func.length(Unit.path))).where(in_subtree(unit))).scalar_one()
    if longest - len(old_path) + len(new_path) > PATH_MAX:
        db.session.rollback()
        raise UnitError(_("移动后层级太深，无法保存。"), "parent")
    # the UPDATE itself re-checks that both units are still where they were read (and the parent still
    # active): on SQLite the write lock is taken by this statement, so a move committed meanwhile is seen
    unchanged = aliased(Unit)
    moved = db.session.execute(
        update(Unit).where(in_subtree(unit),
                           exists().where(unchanged.id == unit.id, unchanged.path == old_path),
                           exists().where(unchanged.id == new_parent.id, unchanged.path == parent_path,
                                          unchanged.active.is_(True)))
        .values(path=literal(new_path, String) + func.substr(Unit.path, len(old_path) + 1))
        .execution_options(synchronize_session=False)).rowcount
    if not moved:
        db.session.rollback()
        raise UnitError(_("这些单位刚刚被其他人改动过，请刷新页面后重试。"))
    old_parent_code = unit.parent.code if unit.parent else "—"
    unit.parent_id = new_parent.id
    _expire_unit_paths()
    audit(actor, "unit.move", unit, f"上级 {old_parent_code} → {new_parent.code}；{old_path} → {new_path}（{moved} 个单位）")
    db.session.commit()
    return moved


def _lock_for_move(unit: Unit, new_parent: Unit) -> None:
    """Lock the moved unit and the new parent's chain of ancestors (PostgreSQL: FOR UPDATE; on SQLite the
    guarded UPDATE in move_unit does it), then reload both: two crossing moves cannot both pass the
    cycle check."""
    segments = [segment for segment in new_parent.path.split("/") if segment]
    chain = ["/" + "/".join(segments[:n]) + "/" for n in range(1, len(segments) + 1)]
    db.session.execute(select(Unit.id).where(or_(Unit.id == unit.id, Unit.path.in_(chain)))
                       .order_by(Unit.id).with_for_update())
    db.session.refresh(unit)
    db.session.refresh(new_parent)


def _expire_unit_paths() -> None:
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Unit):
            db.session.expire(obj, ["path"])


def set_active(actor, unit: Unit, active: bool) -> int:
    """Deactivate (or reactivate) a unit with its whole subtree in one UPDATE; nobody and nothing is
    removed. Returns the number of units changed."""
    _require(actor, unit)
    if not active:
        _not_own_root(actor, unit, _("不能停用您自己的单位，请联系上级管理员。"))
    elif unit.parent is not None and not unit.parent.active:
        raise UnitError(_("上级单位“%(name)s”已停用：请先启用上级单位。", name=unit.parent.name))
    changed = db.session.execute(
        update(Unit).where(in_subtree(unit), Unit.active.is_(not active)).values(active=active)
        .execution_options(synchronize_session=False)).rowcount
    if not changed:
        return 0
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Unit):
            db.session.expire(obj, ["active"])
    audit(actor, "unit.reactivate" if active else "unit.deactivate", unit,
          f"{unit.name}（{unit.code}）及下级，共 {changed} 个单位")
    db.session.commit()
    return changed


def _commit_or_duplicate(code: str) -> None:
    from sqlalchemy.exc import IntegrityError

    try:
        db.session.commit()
    except IntegrityError:  # the same code saved by someone else a moment ago
        db.session.rollback()
        raise UnitError(_("单位编码“%(code)s”已被使用，请换一个。", code=code), "code") from None


# ---- the tree -----------------------------------------------------------------------------------

class TreeNode:
    __slots__ = ("id", "code", "name", "kind", "active", "parent_id", "people", "total", "units", "children",
                 "kind_label", "depth", "closes")

    def __init__(self, id, code, name, kind, active, parent_id, labels):
        self.id, self.code, self.name, self.kind, self.active, self.parent_id = id, code, name, kind, active, parent_id
        self.kind_label = labels.get(kind, kind)  # translated once per tree, not once per unit
        self.people = 0  # people of this unit itself
        self.total = 0  # people of the unit and every unit below it
        self.units = 1  # this unit and every unit below it
        self.children: list[TreeNode] | tuple = ()  # a list once it has one (no list for each leaf)
        self.depth = 0  # 0 for the tree's roots
        self.closes = 0  # how many lists of units above end right after this unit (for a flat rendering)


@dataclass
class Tree:
    roots: list[TreeNode]
    flat: list[TreeNode]  # every node in display order (pre-order), so a page renders without recursion
    count: int  # units shown
    people: int  # people in them
    scope: Unit | None  # the subtree shown (None: every unit)


def unit_tree(actor, root: Unit | None = None) -> Tree:
    """The units `actor` manages (or the subtree of `root` within them) as nested nodes with people
    counts: one query for the units, one GROUP BY for the counts; nesting and totals in Python."""
    scope = managed_root(actor)
    if root is not None:
        _require(actor, root)
        scope = root
    units = select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.active, Unit.parent_id)
    # every person who belongs to the unit, deactivated ones too (they keep their records there): the
    # count then reads only the index on user.unit_id
    counts = select(User.unit_id, func.count()).group_by(User.unit_id)
    if scope is not None:
        units = units.where(in_subtree(scope))
        counts = counts.where(User.unit_id.in_(select(Unit.id).where(in_subtree(scope))))
    labels = {kind: str(label) for kind, label in KINDS.items()}
    connection = db.session.connection()  # plain rows: no ORM loading for 2,000 of them
    rows = sorted(connection.execute(units), key=lambda row: (KIND_ORDER.get(row[3], len(KIND_ORDER)), row[1]))
    nodes = {row[0]: TreeNode(*row, labels) for row in rows}  # in sibling order, so children come sorted
    for unit_id, people in connection.execute(counts):
        node = nodes.get(unit_id)
        if node is not None:
            node.people = node.total = people
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.parent_id)
        if parent is None:
            roots.append(node)
        elif parent.children:
            parent.children.append(node)
        else:
            parent.children = [node]
    # totals upwards: children before their parents (reverse breadth-first order)
    sequence, level = [], roots
    while level:
        sequence.extend(level)
        level = [child for node in level for child in node.children]
    for node in reversed(sequence):
        parent = nodes.get(node.parent_id)
        if parent is not None:
            parent.total += node.total
            parent.units += node.units
    flat: list[TreeNode] = []

    def preorder(siblings: list[TreeNode], depth: int) -> None:  # recursion as deep as the tree, not as long
        for node in siblings:
            node.depth = depth
            flat.append(node)
            if node.children:
                preorder(node.children, depth + 1)
                flat[-1].closes += 1  # its last descendant ends its list

    preorder(roots, 0)
    return Tree(roots=roots, flat=flat, count=len(nodes), people=sum(node.total for node in roots), scope=scope)


def unit_summary(unit: Unit) -> dict:
    """What the unit's page shows about it: its chain of parents, its children, its people."""
    segments = [segment for segment in unit.path.split("/") if segment][:-1]
    by_code = {u.code: u for u in Unit.query.filter(Unit.code.in_(segments))} if segments else {}
    people = db.session.query(func.count(User.id)).filter(User.unit_id == unit.id).scalar()  # as the tree counts
    below = db.session.query(func.count(User.id)).join(Unit, User.unit_id == Unit.id).filter(in_subtree(unit)).scalar()
    children = Unit.query.filter_by(parent_id=unit.id).all()
    children.sort(key=lambda u: (KIND_ORDER.get(u.kind, len(KIND_ORDER)), u.code))
    return {"ancestors": [by_code[c] for c in segments if c in by_code], "children": children,
            "people": people, "people_below": below}


# ---- picker search ------------------------------------------------------------------------------

SEARCH_LIMIT = 20


def search_units(actor, q: str, include_inactive: bool = False, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Units `actor` may choose whose code or name holds `q` (any case; `%`, `_` are plain characters),
    exact code matches first, then shallow units. Each with the names of the units above it within the
    actor's scope, so two 村委会 of the same name can be told apart."""
    root = managed_root(actor)
    q = (q or "").strip()[:64]
    query = select(Unit.id, Unit.code, Unit.name, Unit.kind, Unit.path, Unit.active)
    if root is not None:
        query = query.where(in_subtree(root))
    if not include_inactive:
        query = query.where(Unit.active.is_(True))
    if q:
        query = query.where(or_(Unit.code.icontains(q, autoescape=True), Unit.name.icontains(q, autoescape=True)))
    query = query.order_by(case((Unit.code == q, 0), (Unit.name == q, 1), else_=2),
                           func.length(Unit.path), Unit.code).limit(limit)
    rows = db.session.execute(query).all()
    top = len([s for s in root.path.split("/") if s]) - 1 if root is not None else 0
    chains = {row.id: [s for s in row.path.split("/") if s][top:-1] for row in rows}
    wanted = {code for chain in chains.values() for code in chain}
    names = dict(db.session.execute(select(Unit.code, Unit.name).where(Unit.code.in_(wanted))).all()) if wanted else {}
    return [{"id": row.id, "code": row.code, "name": row.name, "kind": kind_label(row.kind), "active": row.active,
             "within": " › ".join(names.get(code, code) for code in chains[row.id])} for row in rows]


def unit_label(actor, code: str | None) -> str:
    """"名称（编码）" of a unit `actor` may manage, for a picker showing its current choice; "" otherwise."""
    code = (code or "").strip()
    unit = Unit.query.filter_by(code=code).first() if code else None
    if unit is None or not can_manage(actor, unit):
        return ""
    return f"{unit.name}（{unit.code}）" + ("" if unit.active else _("（已停用）"))


# ---- import -------------------------------------------------------------------------------------

IMPORT_HEADERS = {
    "单位编码": "code", "编码": "code", "code": "code",
    "单位名称": "name", "名称": "name", "name": "name",
    "上级编码": "parent", "上级单位编码": "parent", "parent": "parent", "parent_code": "parent",
    "类型": "kind", "单位类型": "kind", "kind": "kind", "type": "kind",
}
IMPORT_COLUMNS = ("单位编码", "单位名称", "上级编码", "类型")
TEMPLATE_ROWS = (("dianjiang", "垫江县", "", "县"), ("guixi", "桂溪街道", "dianjiang", "街道"),
                 ("guixi-sq1", "桂溪第一社区", "guixi", "社区"), ("guixi-school", "桂溪小学", "guixi", "学校"),
                 ("guixi-school-c1", "一年级一班", "guixi-school", "班级"))


@dataclass
class UnitImportReport:
    new: list[dict] = field(default_factory=list)  # rows to create, parents before children
    unchanged: list[str] = field(default_factory=list)  # codes already there exactly as the file says
    problems: list[RowProblem] = field(default_factory=list)
    created: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_unit_rows(rows: list[tuple[int, dict]], actor=None) -> UnitImportReport:
    """Check every row against the file and the database; name each bad row's every reason."""
    report = UnitImportReport()
    root = managed_root(actor)
    existing = {row.code: row for row in db.session.execute(
        select(Unit.code, Unit.name, Unit.kind, Unit.path, Unit.active, Unit.parent_id, Unit.id))}
    code_of_id = {row.id: row.code for row in existing.values()}
    first_line: dict[str, int] = {}
    problems: dict[int, list[str]] = {}
    parsed: dict[str, dict] = {}  # code → row, for the rows that make a new unit
    for line, raw in rows:
        code, name = raw.get("code", "").strip(), raw.get("name", "").strip()
        parent, kind_text = raw.get("parent", "").strip(), raw.get("kind", "").strip()
        bad = problems.setdefault(line, [])
        if not code:
            bad.append(_("单位编码为空"))
        else:
            try:
                check_unit_code(code)
            except AccountError:
                bad.append(_("单位编码“%(code)s”无效（1–64 个字符，不能含 /、空格或控制字符）", code=code))
        if code and code in first_line:
            bad.append(_("单位编码“%(code)s”与第 %(line)d 行重复", code=code, line=first_line[code]))
        if not name:
            bad.append(_("单位名称为空"))
        elif len(name) > NAME_MAX:
            bad.append(_("单位名称太长（最多 %(n)d 个字）", n=NAME_MAX))
        kind = parse_kind(kind_text)
        if kind is None:
            bad.append(_("类型“%(kind)s”无效（可填：%(kinds)s）", kind=kind_text,
                         kinds="、".join(str(label) for label in KINDS.values())))
        if parent and parent == code:
            bad.append(_("上级编码不能是它自己"))
        if code and code not in first_line:
            first_line[code] = line
            row = {"line": line, "code": code, "name": name, "parent": parent, "kind": kind}
            if code in existing:
                old = existing[code]
                same = (old.name == name and old.kind == kind and code_of_id.get(old.parent_id, "") == parent)
                if same and unit_in_subtree(old, root):
                    report.unchanged.append(code)
                else:
                    bad.append(_("单位编码“%(code)s”已存在，且名称、类型或上级与文件不同（导入只添加新单位，"
                                 "已有单位请在单位页面修改）", code=code) if unit_in_subtree(old, root)
                               else _("单位编码“%(code)s”已被其他单位使用", code=code))
            else:
                parsed[code] = row
    # cycles among the new rows (a row naming itself was reported above)
    in_cycle: set[str] = set()
    state: dict[str, int] = {}  # 1: on the chain being walked, 2: walked
    for start in parsed:
        chain, code = [], start
        while code in parsed and code not in state:
            state[code] = 1
            chain.append(code)
            code = parsed[code]["parent"]
        if code in parsed and state[code] == 1:
            cycle = chain[chain.index(code):]
            in_cycle.update(cycle)
            if len(cycle) > 1:
                for n, member in enumerate(cycle):
                    loop = cycle[n:] + cycle[:n] + [member]  # told from the row's own code
                    problems[parsed[member]["line"]].append(_("上级编码形成循环：%(cycle)s", cycle=" → ".join(loop)))
        for member in chain:
            state[member] = 2

    # paths: each new row hangs from an existing unit in scope, from a good new row, or (admins) from nothing
    paths: dict[str, str | None] = {code: None for code in in_cycle}
    for start in parsed:
        chain, code = [], start
        while code in parsed and code not in paths:
            chain.append(code)
            code = parsed[code]["parent"]
        if not chain:
            continue
        top = parsed[chain[-1]]
        parent, bad = top["parent"], problems[top["line"]]
        if parent in paths:
            base = paths[parent]
            if base is None:
                bad.append(_("上级单位“%(code)s”（第 %(line)d 行）有错误", code=parent, line=parsed[parent]["line"]))
        elif not parent:
            base = "/" if root is None else None
            if base is None:
                bad.append(_("上级编码为空：您只能在自己管辖的单位之下导入单位"))
        elif parent in existing and unit_in_subtree(existing[parent], root):
            base = existing[parent].path if existing[parent].active else None
            if base is None:
                bad.append(_("上级单位“%(code)s”已停用", code=parent))
        else:
            base = None
            bad.append(_("上级编码“%(code)s”不存在", code=parent) if root is None
                       else _("上级编码“%(code)s”不存在，或不在您的管辖范围内", code=parent))
        for code in reversed(chain):
            row = parsed[code]
            if base is None and code != chain[-1]:
                problems[row["line"]].append(_("上级单位“%(code)s”（第 %(line)d 行）有错误", code=row["parent"],
                                               line=parsed[row["parent"]]["line"]))
            path = None if base is None else base + code + "/"
            if path is not None and len(path) > PATH_MAX:
                problems[row["line"]].append(_("层级太深或编码太长"))
                path = None
            paths[code] = base = path

    for line, messages in problems.items():
        report.problems += [RowProblem(line, message) for message in dict.fromkeys(messages)]
    if not report.problems:
        report.new = sorted((dict(parsed[code], path=paths[code]) for code in parsed), key=lambda r: r["path"].count("/"))
    return report


def read_unit_rows(path: Path) -> list[tuple[int, dict]]:
    return read_sheet(path, IMPORT_HEADERS, {"code", "name", "parent", "kind"},
                      _("需要 单位编码、单位名称、上级编码、类型"))


def import_units(path: Path, actor=None, dry_run: bool = False, source: str | None = None) -> UnitImportReport:
    """Check the whole file; when every row is good (and not a dry run) create every new unit in one
    transaction, parents first, each with an audit row. A file with any bad row changes nothing."""
    report = check_unit_rows(read_unit_rows(Path(path)), actor)
    if report.problems or dry_run or not report.new:
        return report
    made: dict[str, Unit] = {}
    try:
        for row in report.new:
            parent = made.get(row["parent"]) or (Unit.query.filter_by(code=row["parent"]).one() if row["parent"] else None)
            unit = Unit(code=row["code"], name=row["name"], kind=row["kind"], parent=parent, path=row["path"], active=True)
            db.session.add(unit)
            made[row["code"]] = unit
        db.session.flush()
        for row in report.new:
            audit(actor, "unit.create", made[row["code"]],
                  f"{row['name']}（{row['code']}），上级 {row['parent'] or '—'}；导入 {source or Path(path).name}")
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    report.created = len(report.new)
    return report


def template_csv() -> bytes:
    """The import template: the header row and an example tree, UTF-8 with BOM (Excel opens it right)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(IMPORT_COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# ---- an upload kept between the check and the confirmation (browser import) ---------------------

STAGE_DIR = "imports"
STAGE_MAX_AGE = 24 * 3600
STAGE_SUFFIXES = (".csv", ".xlsx", ".txt")


def _stage_dir() -> Path:
    folder = Path(current_app.config["DATA_DIR"]) / STAGE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def stage_upload(storage, prefix: str) -> str:
    """Keep an uploaded spreadsheet until the user confirms; returns its token (a file name). Files
    older than a day are swept at the same time."""
    suffix = Path(storage.filename or "").suffix.lower()
    if suffix not in STAGE_SUFFIXES:
        raise ImportFileError(_("只支持 .csv 或 .xlsx 文件"))
    folder = _stage_dir()
    for old in folder.glob("*"):
        try:
            if old.stat().st_mtime < time.time() - STAGE_MAX_AGE:
                old.unlink()
        except OSError:
            pass
    token = f"{prefix}-{secrets.token_urlsafe(16)}{suffix}"
    storage.save(folder / token)
    return token


def staged_file(token: str | None, prefix: str) -> Path | None:
    if not token or not token.startswith(prefix + "-") or "/" in token or "\\" in token or ".." in token:
        return None
    path = _stage_dir() / token
    return path if path.is_file() else None
