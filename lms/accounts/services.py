"""Accounts: units, users, sign-in with throttling."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app

from lms.accounts.models import ROLES, Unit, User, utcnow
from lms.audiences import AUDIENCE_CODES
from lms.extensions import db


class AccountError(ValueError):
    pass


class SignInLocked(AccountError):
    pass


def get_or_create_unit(code: str, name: str, kind: str = "org", parent: Unit | None = None) -> Unit:
    unit = Unit.query.filter_by(code=code).first()
    if unit is None:
        unit = Unit(code=code, name=name, kind=kind, parent=parent,
                    path=(parent.path if parent else "/") + code + "/")
        db.session.add(unit)
        db.session.flush()
    return unit


def create_user(username: str, full_name: str, password: str, role: str, audience: str, unit_code: str) -> User:
    if role not in ROLES:
        raise AccountError(f"未知角色：{role}（可选 {', '.join(ROLES)}）")
    if audience not in AUDIENCE_CODES:
        raise AccountError(f"未知人群：{audience}（可选 {', '.join(AUDIENCE_CODES)}）")
    unit = Unit.query.filter_by(code=unit_code).first()
    if unit is None:
        raise AccountError(f"单位编码不存在：{unit_code}")
    if User.query.filter_by(username=username).first():
        raise AccountError(f"账号已存在：{username}")
    if len(password) < 8:
        raise AccountError("密码至少 8 位")
    user = User(username=username, full_name=full_name, role=role, audience=audience, unit=unit)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The user when the password is right; counts failures and locks after too many."""
    user = User.query.filter_by(username=username.strip()).first()
    now = utcnow()
    if user is None:
        return None
    if user.locked_until and user.locked_until > now:
        raise SignInLocked("密码错误次数太多，账号已暂时锁定，请 5 分钟后再试或联系管理员。")
    if not user.check_password(password):
        user.failed_logins += 1
        if user.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(seconds=current_app.config["LOGIN_LOCK_SECONDS"])
            user.failed_logins = 0
        db.session.commit()
        return None
    user.failed_logins, user.locked_until = 0, None
    db.session.commit()
    return user if user.active else None
