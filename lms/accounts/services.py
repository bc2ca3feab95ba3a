"""Accounts: units, users, sign-in with throttling."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user, logout_user

from lms.accounts import passwords, throttle
from lms.accounts.models import ROLES, Unit, User
from lms.audiences import AUDIENCE_CODES
from lms.extensions import db

# a right password forgives the account's counts, never its address's (a sprayer could reset theirs
# by signing in to an account of their own)
FORGIVEN_ON_SUCCESS = ("password", "password-account")


class AccountError(ValueError):
    pass


class SignInThrottled(AccountError):
    """Too many failed sign-ins for this account from here, or from here at all: wait `retry_after` s.
    Said alike for accounts that exist and accounts that do not."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def check_unit_code(code: str) -> None:
    """A unit code becomes a segment of the unit's path, so it may not hold "/" (the code "town-a/x"
    under the county would pose as a unit below town-a), spaces or control characters. `_ % \\` are
    allowed: subtree queries (lms/accounts/scope.py) never treat them as wildcards."""
    if not code or len(code) > 64 or "/" in code or any(ch.isspace() or not ch.isprintable() for ch in code):
        raise AccountError(_("单位编码无效：%(code)s（1–64 个字符，不能含 / 、空格或控制字符）", code=repr(code)))


def get_or_create_unit(code: str, name: str, kind: str = "org", parent: Unit | None = None) -> Unit:
    unit = Unit.query.filter_by(code=code).first()
    if unit is None:
        check_unit_code(code)
        unit = Unit(code=code, name=name, kind=kind, parent=parent,
                    path=(parent.path if parent else "/") + code + "/")
        db.session.add(unit)
        db.session.flush()
    return unit


def create_user(username: str, full_name: str, password: str, role: str, audience: str, unit_code: str) -> User:
    if role not in ROLES:
        raise AccountError(_("未知角色：%(role)s（可选 %(choices)s）", role=role, choices=", ".join(ROLES)))
    if audience not in AUDIENCE_CODES:
        raise AccountError(_("未知人群：%(code)s（可选 %(choices)s）", code=audience, choices=", ".join(AUDIENCE_CODES)))
    unit = Unit.query.filter_by(code=unit_code).first()
    if unit is None:
        raise AccountError(_("单位编码不存在：%(code)s", code=unit_code))
    if not unit.active:  # a deactivated unit takes nobody new (lms/accounts/units.py)
        raise AccountError(_("单位已停用：%(code)s", code=unit_code))
    if User.query.filter_by(username=username).first():
        raise AccountError(_("账号已存在：%(name)s", name=username))
    if len(password) < 8:
        raise AccountError(_("密码至少 8 位"))
    user = User(username=username, full_name=full_name, role=role, audience=audience, unit=unit)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(username: str, password: str, address: str | None) -> User | None:
    """The user when the password is right, else None: the same answer, and the same one password-hash
    check, whether or not the account exists. The attempt is counted before the check
    (lms/accounts/throttle.py), so parallel requests get no more checks than the limits allow."""
    username, source = username.strip(), throttle.client_source(address)
    try:
        # the account from this address (growing waits after a few), the address across accounts
        # (spraying), the account across addresses (distributed guessing)
        attempt = throttle.reserve([throttle.Key("password", username, source),
                                    throttle.Key("password-address", source),
                                    throttle.Key("password-account", username)])
    except throttle.Throttled as exc:
        raise SignInThrottled(exc.retry_after) from None
    user = User.query.filter_by(username=username).first()
    # an unknown account costs the same hash check as a known one, so timing tells nothing either
    matches = passwords.verify_password(user.password_hash if user else passwords.dummy_hash(), password)
    if matches and user is not None and user.active:
        if passwords.needs_rehash(user.password_hash):  # an older hash: replaced, in settle's commit
            user.password_hash = passwords.hash_password(password)
        # the account's counts forgotten; the address gets back this sign-in's (a school's class behind
        # one address); one commit
        throttle.settle(attempt, FORGIVEN_ON_SUCCESS, ("password-address",))
        return user
    if attempt.wait_if_wrong:
        raise SignInThrottled(attempt.wait_if_wrong)
    return None


def unlock_account(username: str, address: str | None = None) -> int:
    """An administrator lifts the waits on an account (and, given an address, on that address)."""
    lifted = throttle.clear(("password", "password-account"), subject=username)
    if address:
        lifted += throttle.clear(("password-address",), subject=throttle.client_source(address))
    return lifted


def end_sessions(user: User) -> None:
    """Every session cookie of the user stops working, also copies of it taken before (one UPDATE,
    so two sign-outs at once both count)."""
    User.query.filter_by(id=user.id).update({User.session_version: User.session_version + 1},
                                            synchronize_session=False)
    db.session.commit()


def sign_out() -> None:
    """Sign the current user out for real: their sessions end server-side, not just this cookie."""
    if current_user.is_authenticated:
        end_sessions(current_user)
    logout_user()


def change_password(user: User, password: str) -> None:
    """Set a new password (the user's own change or an administrator's reset); every session signed in
    with the old one ends, and waits on the account are lifted."""
    if len(password) < 8:
        raise AccountError(_("密码至少 8 位"))
    user.set_password(password)
    db.session.commit()
    unlock_account(user.username)
