"""Unit subtrees: the one place that decides which units a query covers and which a user oversees.

A unit's `path` is its materialised path of codes ("/county/town_1/"), so its subtree is every unit
whose path begins with that path. The SQL test compares the leading characters for equality — never
LIKE, where `_` and `%` (and `\\` in PostgreSQL) in a code are wildcards and SQLite ignores case — so
the administrator of `town_1` never sees `town11`, whatever characters unit codes hold.

Every scoped query (exports, assignment reports, classroom lists, task lists, admin pages) goes
through `in_subtree` / `unit_in_subtree`, and every "whose units may this user see" through
`oversight_root` / `scoped_unit`.
"""
from __future__ import annotations

from sqlalchemy import func

from lms.accounts.models import Unit


class OutsideScope(PermissionError):
    """A user asked for a unit outside the subtree they oversee."""


def in_subtree(root: Unit, path_column=Unit.path):
    """SQL condition: the unit whose materialised path is `path_column` is `root` or lies below it.

    substr(path, 1, n) = prefix is exact on SQLite and PostgreSQL under any collation. It cannot use
    the path index, but the unit table is small (a county's units); the large tables (users, records)
    are reached through their own keys."""
    prefix = root.path
    return func.substr(path_column, 1, len(prefix)) == prefix


def unit_in_subtree(unit: Unit, root: Unit | None) -> bool:
    """The same test for one unit in Python; a `root` of None is the whole tree."""
    return root is None or unit.path.startswith(root.path)


def oversight_root(user) -> Unit | None:
    """The root of the units `user` oversees: None (every unit) for admins, else their own unit.

    Which roles may oversee at all (export hours, open a class tablet) is each feature's own check."""
    return None if user.role == "admin" else user.unit


def covers_every_unit(root: Unit | None) -> bool:
    """Whether `root`'s subtree is the whole tree (None, or the only top-level unit): a query scoped to
    it may leave the subtree test out, which keeps the large tables' indexes usable."""
    if root is None:
        return True
    return root.parent_id is None and Unit.query.filter(Unit.parent_id.is_(None)).count() == 1


def can_oversee(user, unit: Unit) -> bool:
    return unit_in_subtree(unit, oversight_root(user))


def scoped_unit(user, unit: Unit | None) -> Unit | None:
    """The unit a report asked for by `user` may cover: the asked unit when it is inside their
    subtree (OutsideScope beyond it); their own root when none is asked (None = all, for admins)."""
    if unit is None:
        return oversight_root(user)
    if not can_oversee(user, unit):
        raise OutsideScope(unit.code)
    return unit
