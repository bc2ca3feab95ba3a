"""Sign-in throttling that every web process and machine shares, kept in the database.

An attempt is counted as a failure *before* its password (or PIN) is checked: a compare-and-set
UPDATE reserves it, so however many requests arrive at once, no more passwords are checked than the
limit allows. A right password forgives the reservation afterwards.

Each scope has a `Rule`: `limit` failures are free; then each further attempt waits, 30 s, 60 s,
2 min … up to `longest_wait`. A count whose window has passed starts afresh. Limits are per subject
and source (an account and a client address, a learner and a tablet), so a guesser elsewhere slows
only themselves, plus looser limits across sources and across subjects (config SIGNIN_LIMITS).
"""
from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lms.accounts.models import SignInThrottle, utcnow
from lms.extensions import db

# compare-and-set rounds before giving up; each lost round means another request was counted
MAX_ROUNDS = 200


@dataclass(frozen=True)
class Rule:
    limit: int  # failures allowed without waiting
    first_wait: int  # seconds to wait once `limit` failures are reached; doubles with each further one
    longest_wait: int
    window: int  # seconds after which a count starts afresh

    def wait_after(self, failures: int) -> timedelta | None:
        if failures < self.limit:
            return None
        doublings = min(failures - self.limit, 30)  # 2**30 × any wait is past any cap
        return timedelta(seconds=min(self.first_wait * 2 ** doublings, self.longest_wait))


@dataclass(frozen=True)
class Key:
    scope: str
    subject: str
    source: str = ""


class Throttled(Exception):
    """Too many failures: no attempt is checked for `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _State:
    failures: int
    window_start: datetime
    blocked_until: datetime | None


@dataclass(frozen=True)
class Reservation:
    key: Key
    row_id: int
    before: _State
    after: _State
    limit: int


@dataclass(frozen=True)
class Attempt:
    """Reserved failures, one per key; `forgive` them when the password turns out right."""

    reservations: tuple[Reservation, ...]
    at: datetime

    @property
    def tries_left(self) -> int:
        return max(0, min(r.limit - r.after.failures for r in self.reservations))

    @property
    def wait_if_wrong(self) -> int:
        """Seconds a wrong answer to this attempt makes the next one wait (0: none)."""
        return max((_seconds_until(r.after.blocked_until, self.at) for r in self.reservations), default=0)


def rule(scope: str) -> Rule:
    return Rule(*current_app.config["SIGNIN_LIMITS"][scope])


def client_source(address: str | None) -> str:
    """The client address a limit counts by; an IPv6 client usually holds a whole /64, so that is one source."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "")[:64]
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def reserve(keys: list[Key], now: datetime | None = None) -> Attempt:
    """Count one failure against every key before anything is checked; Throttled (and nothing
    counted) when any key must still wait."""
    now = now or utcnow()
    wait = _longest_wait(keys, now)
    if wait:
        raise Throttled(wait)
    done: list[Reservation] = []
    try:
        for key in keys:
            done.append(_reserve_one(key, rule(key.scope), now))
    except Throttled:
        for reservation in done:  # another request got there first: this attempt is not checked
            _undo(reservation)
        raise
    return Attempt(tuple(done), now)


def forgive(attempt: Attempt, scopes: tuple[str, ...]) -> None:
    """A right password: the failures counted in these scopes are forgotten (not those across
    subjects, or a sprayer could reset their own count by signing in to an account of theirs)."""
    keys = [r.key for r in attempt.reservations if r.key.scope in scopes]
    if keys:
        db.session.execute(delete(SignInThrottle).where(_any_key(keys)))
        db.session.commit()


def clear(scopes: tuple[str, ...], subject: str | None = None, source: str | None = None) -> int:
    """Lift throttles (an administrator's unlock, a teacher's PIN reset); returns how many were lifted."""
    query = delete(SignInThrottle).where(SignInThrottle.scope.in_(scopes))
    if subject is not None:
        query = query.where(SignInThrottle.subject == subject)
    if source is not None:
        query = query.where(SignInThrottle.source == source)
    count = db.session.execute(query).rowcount
    db.session.commit()
    return count


def blocked_subjects(scopes: tuple[str, ...], subjects: list[str], source: str | None = None,
                     now: datetime | None = None) -> set[str]:
    """Which of `subjects` must wait now in any of `scopes` (from `source`, when given)."""
    query = select(SignInThrottle.subject).where(
        SignInThrottle.scope.in_(scopes), SignInThrottle.subject.in_(subjects),
        SignInThrottle.blocked_until > (now or utcnow()))
    if source is not None:
        query = query.where(SignInThrottle.source.in_((source, "")))
    return set(db.session.scalars(query))


def purge(now: datetime | None = None) -> int:
    """Forget counts whose window has passed and that block nothing (a periodic job)."""
    now = now or utcnow()
    longest = max(Rule(*limits).window for limits in current_app.config["SIGNIN_LIMITS"].values())
    count = db.session.execute(delete(SignInThrottle).where(
        SignInThrottle.window_start < now - timedelta(seconds=longest),
        or_(SignInThrottle.blocked_until.is_(None), SignInThrottle.blocked_until < now))).rowcount
    db.session.commit()
    return count


# --- the compare-and-set ---------------------------------------------------------------------------

def _any_key(keys: list[Key]):
    return or_(*(and_(SignInThrottle.scope == k.scope, SignInThrottle.subject == k.subject,
                      SignInThrottle.source == k.source) for k in keys))


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    return max(0, math.ceil((moment - now).total_seconds())) if moment else 0


def _longest_wait(keys: list[Key], now: datetime) -> int:
    ends = db.session.scalars(select(SignInThrottle.blocked_until).where(
        _any_key(keys), SignInThrottle.blocked_until > now))
    return max((_seconds_until(end, now) for end in ends), default=0)


def give_back(attempt: Attempt, scopes: tuple[str, ...]) -> None:
    """A right answer is not a failure: this attempt's own count in these scopes is returned, and no
    more — earlier failures stand. Shared keys (an address, a class tablet) use this, so a class of 40
    signing in behind one school address is not stopped by its own successes, while a sprayer who signs
    in to an account of their own gets back only that sign-in's count."""
    for reservation in attempt.reservations:
        if reservation.key.scope not in scopes:
            continue
        if _undo(reservation):
            continue
        # others counted since: take one off without touching a wait they may have started
        db.session.execute(
            update(SignInThrottle).where(SignInThrottle.id == reservation.row_id, SignInThrottle.failures > 0)
            .values(failures=SignInThrottle.failures - 1).execution_options(synchronize_session=False))
        db.session.commit()


def _insert_counted(key: Key, rule: Rule, now: datetime) -> Reservation | None:
    """The first failure of a key with no row yet, in one INSERT (a right password deletes the account's
    rows, so most sign-ins start here); None when another request inserted the row first."""
    wait = rule.wait_after(1)
    before, after = _State(0, now, None), _State(1, now, now + wait if wait else None)
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = db.session.execute(dialect.insert(SignInThrottle).values(
        scope=key.scope, subject=key.subject, source=key.source, failures=after.failures,
        window_start=after.window_start, blocked_until=after.blocked_until,
    ).on_conflict_do_nothing(index_elements=["scope", "subject", "source"]).returning(SignInThrottle.id)).first()
    db.session.commit()
    return Reservation(key, inserted.id, before, after, rule.limit) if inserted else None


def _same_state(state: _State):
    blocked = (SignInThrottle.blocked_until.is_(None) if state.blocked_until is None
               else SignInThrottle.blocked_until == state.blocked_until)
    return and_(SignInThrottle.failures == state.failures, SignInThrottle.window_start == state.window_start,
                blocked)


def _reserve_one(key: Key, rule: Rule, now: datetime) -> Reservation:
    for _ in range(MAX_ROUNDS):
        row = db.session.execute(select(
            SignInThrottle.id, SignInThrottle.failures, SignInThrottle.window_start, SignInThrottle.blocked_until,
        ).where(_any_key([key]))).first()
        if row is None:
            reservation = _insert_counted(key, rule, now)
            if reservation:
                return reservation
            continue
        before = _State(row.failures, row.window_start, row.blocked_until)
        if _seconds_until(before.blocked_until, now):
            raise Throttled(_seconds_until(before.blocked_until, now))
        fresh = before.window_start <= now - timedelta(seconds=rule.window)
        failures = 1 if fresh else before.failures + 1
        wait = rule.wait_after(failures)
        after = _State(failures, now if fresh else before.window_start, now + wait if wait else None)
        changed = db.session.execute(
            update(SignInThrottle).where(SignInThrottle.id == row.id, _same_state(before))
            .values(failures=after.failures, window_start=after.window_start, blocked_until=after.blocked_until)
            .execution_options(synchronize_session=False)).rowcount
        db.session.commit()
        if changed == 1:
            return Reservation(key, row.id, before, after, rule.limit)
    raise Throttled(1)  # endless contention: refuse rather than check unbounded


def _undo(reservation: Reservation) -> bool:
    """Give back a reservation whose attempt was never checked, unless others have counted since
    (False then)."""
    before, after = reservation.before, reservation.after
    changed = db.session.execute(
        update(SignInThrottle).where(SignInThrottle.id == reservation.row_id, _same_state(after))
        .values(failures=before.failures, window_start=before.window_start, blocked_until=before.blocked_until)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return changed == 1
