"""A cheaper signed-in user for the hottest JSON endpoints.

Flask-Login's user_loader (lms/accounts/routes.py load_user) loads the whole User through the ORM on
every request. An endpoint a page calls every few seconds for each viewer (the heartbeat) registers
in ENDPOINTS and gets a SessionUser instead: the few columns every request needs, read by one Core
SELECT, with the session version checked exactly as for everyone else. Anything else asked of it
(an error page's template, say) loads the full User once and answers from it.
"""
from __future__ import annotations

import functools

from flask_login import UserMixin
from sqlalchemy import bindparam, select

from lms.accounts.models import User
from lms.extensions import db

ENDPOINTS: set[str] = set()  # endpoints served with a SessionUser (registered by their blueprints)
COLUMNS = ("id", "username", "role", "audience", "unit_id", "active", "must_change_password", "session_version")


class SessionUser(UserMixin):
    def __init__(self, values):
        self.__dict__.update(values)

    @property
    def is_active(self):
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version or 0}"

    def __getattr__(self, name):
        if name.startswith("__") or name == "_full":
            raise AttributeError(name)
        full = self.__dict__.get("_full")
        if full is None:
            full = self.__dict__["_full"] = db.session.get(User, self.id)
        return getattr(full, name)


@functools.cache
def _select():
    table = User.__table__
    return select(*(table.c[name] for name in COLUMNS)).where(table.c.id == bindparam("user_id"))


def load(user_id: int) -> SessionUser | None:
    row = db.session.connection().execute(_select(), {"user_id": user_id}).first()
    return SessionUser(row._mapping) if row is not None else None
