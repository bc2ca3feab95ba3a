"""Sign-in throttling that every web process and machine shares, kept in the database.

An attempt is counted as a failure *before* its password (or PIN) is checked: a compare-and-set
UPDATE reserves it, so however many requests arrive at once, no more passwords are checked than the
limit allows. A right password forgives the reservation afterwards.

A sign-in writes twice: one transaction reserves every key of the attempt (all or none), one settles
a right answer (with the caller's pending changes, such as an upgraded hash). Keys are locked in the
attempt's order both times, so two PostgreSQL transactions never wait on each other in a circle.

Each scope has a `Rule`: `limit` failures are free; then each further attempt waits, 30 s, 60 s,
2 min … up to `longest_wait`. A count whose window has passed starts afresh. Limits are per subject
and source (an account and a client address, a learner and a tablet), so a guesser elsewhere slows
only themselves, plus looser limits across sources and across subjects (config SIGNIN_LIMITS).
"""
from __future__ import annotations

import functools
import ipaddress
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lms import sqlite_turns
from lms.accounts.models import SignInThrottle, utcnow
from lms.extensions import db

# compare-and-set rounds before giving up; each lost round means another request was counted
MAX_ROUNDS = 200

# SQLite's writers take turns here (_writers_take_turns): threads on this lock, processes on a lock file
_thread_turn = threading.Lock()


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
    """Reserved failures, one per key; `settle` them when the password turns out right."""

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
    with _writers_take_turns():
        try:
            rows = _rows(keys)
            done = tuple(_reserve_one(key, rule(key.scope), now, rows.get(key)) for key in keys)
        except BaseException:  # Throttled: another request got there first; nothing of this attempt is counted
            db.session.rollback()
            raise
        db.session.commit()  # every key's count in one commit
    return Attempt(done, now)


def settle(attempt: Attempt, forgiven: tuple[str, ...], given_back: tuple[str, ...]) -> None:
    """A right answer, in one commit with whatever the caller has pending.

    The counts of the scopes in `forgiven` are forgotten — an account's or a learner's own, never those
    across subjects, or a sprayer could reset their own count by signing in to an account of theirs.
    In the scopes of `given_back` only this attempt's own count is returned, and earlier failures stand:
    shared keys (an address, a class tablet) use this, so a class of 40 signing in behind one school
    address is not stopped by its own successes, while a sprayer who signs in to an account of their own
    gets back only that sign-in's count."""
    with _writers_take_turns():
        for reservation in attempt.reservations:  # reserve's order: the same lock order
            if reservation.key.scope in forgiven:
                db.session.execute(_statements().forget, _key_params([reservation.key]))
            elif reservation.key.scope in given_back:
                _give_back_one(reservation)
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

@contextmanager
def _writers_take_turns():
    """On SQLite, one throttle transaction at a time across threads and processes (lms/sqlite_turns.py): in
    a burst of sign-ins, SQLite's own waiting kept these short transactions up to 2 s (measured)."""
    path = sqlite_turns.lock_path("signin")
    if path is None:
        yield
        return
    with _thread_turn, sqlite_turns.turn(path):
        yield


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    return max(0, math.ceil((moment - now).total_seconds())) if moment else 0


def _longest_wait(keys: list[Key], now: datetime) -> int:
    ends = db.session.scalars(_waits_of(len(keys)), {**_key_params(keys), "now": now})
    return max((_seconds_until(end, now) for end in ends), default=0)


def _give_back_one(reservation: Reservation) -> None:
    """One UPDATE: the row as it was before the reservation when nobody has counted since; else one
    failure fewer, without touching a wait the others may have started (the caller commits)."""
    before, after = reservation.before, reservation.after
    db.session.execute(_statements().give_back[after.blocked_until is not None],
                       {"row_id": reservation.row_id, **_state_params("seen_", after), **_state_params("old_", before)})


def _insert_counted(key: Key, rule: Rule, now: datetime) -> Reservation | None:
    """The first failure of a key with no row yet, in one INSERT (a right password deletes the account's
    rows, so most sign-ins start here); None when another request inserted the row first."""
    wait = rule.wait_after(1)
    before, after = _State(0, now, None), _State(1, now, now + wait if wait else None)
    on_postgresql = db.session.get_bind().dialect.name == "postgresql"
    inserted = db.session.execute(_statements().insert_counted[on_postgresql],
                                  {**_key_params([key]), **_state_params("new_", after)}).first()
    return Reservation(key, inserted.id, before, after, rule.limit) if inserted else None


def _rows(keys: list[Key]) -> dict:
    """The keys' rows, in one SELECT."""
    return {Key(row.scope, row.subject, row.source): row
            for row in db.session.execute(_rows_of(len(keys)), _key_params(keys))}


# --- the statements, each built once --------------------------------------------------------------
# A sign-in runs ten statements here. Built afresh for each, with the values inside, they took ~10 ms
# of CPU a sign-in, mostly SQLAlchemy building expressions and cache keys; built once with parameters
# they take ~7 ms (measured in one thread, SQLite).

def _key_params(keys: list[Key]) -> dict:
    """The parameters of _keys_matching(len(keys))."""
    params = {}
    for n, key in enumerate(keys):
        params.update({f"scope{n}": key.scope, f"subject{n}": key.subject, f"source{n}": key.source})
    return params


def _state_params(prefix: str, state: _State) -> dict:
    """The parameters of _same_state(prefix, …), or of the new state for prefix "new_"."""
    return {prefix + "failures": state.failures, prefix + "window_start": state.window_start,
            prefix + "blocked_until": state.blocked_until}


def _keys_matching(count: int):
    return or_(*(and_(SignInThrottle.scope == bindparam(f"scope{n}"),
                      SignInThrottle.subject == bindparam(f"subject{n}"),
                      SignInThrottle.source == bindparam(f"source{n}")) for n in range(count)))


def _same_state(prefix: str, blocked: bool):
    """The row still holds the state given as `<prefix>failures`, … (`blocked`: that state has a wait)."""
    return and_(SignInThrottle.failures == bindparam(prefix + "failures"),
                SignInThrottle.window_start == bindparam(prefix + "window_start"),
                SignInThrottle.blocked_until == bindparam(prefix + "blocked_until") if blocked
                else SignInThrottle.blocked_until.is_(None))


@functools.cache
def _waits_of(count: int):
    return select(SignInThrottle.blocked_until).where(_keys_matching(count),
                                                      SignInThrottle.blocked_until > bindparam("now"))


@functools.cache
def _rows_of(count: int):
    return select(SignInThrottle.scope, SignInThrottle.subject, SignInThrottle.source, SignInThrottle.id,
                  SignInThrottle.failures, SignInThrottle.window_start, SignInThrottle.blocked_until
                  ).where(_keys_matching(count))


@dataclass(frozen=True)
class _Statements:
    forget: object  # DELETE a key's row
    count: tuple  # [the row read has a wait] the compare-and-set UPDATE of a reservation
    give_back: tuple  # [the reservation left a wait] settle's UPDATE of a shared key
    insert_counted: tuple  # [on PostgreSQL] the first failure of a key


@functools.cache
def _statements() -> _Statements:
    row = SignInThrottle.id == bindparam("row_id")
    new = {"failures": bindparam("new_failures"), "window_start": bindparam("new_window_start"),
           "blocked_until": bindparam("new_blocked_until")}
    counts = tuple(update(SignInThrottle).where(row, _same_state("seen_", blocked)).values(new)
                   .execution_options(synchronize_session=False) for blocked in (False, True))
    give_backs = []
    for blocked in (False, True):
        untouched = _same_state("seen_", blocked)
        give_backs.append(update(SignInThrottle).where(row, or_(untouched, SignInThrottle.failures > 0)).values(
            failures=case((untouched, bindparam("old_failures")), else_=SignInThrottle.failures - 1),
            window_start=case((untouched, bindparam("old_window_start")), else_=SignInThrottle.window_start),
            blocked_until=case((untouched, bindparam("old_blocked_until")), else_=SignInThrottle.blocked_until),
        ).execution_options(synchronize_session=False))
    inserts = tuple(dialect.insert(SignInThrottle).values(scope=bindparam("scope0"), subject=bindparam("subject0"),
                                                           source=bindparam("source0"), **new)
                    .on_conflict_do_nothing(index_elements=["scope", "subject", "source"])
                    .returning(SignInThrottle.id) for dialect in (sqlite, postgresql))
    return _Statements(delete(SignInThrottle).where(_keys_matching(1)), counts, tuple(give_backs), inserts)


def _reserve_one(key: Key, rule: Rule, now: datetime, row) -> Reservation:
    """Count one failure on `key`, whose row was just read as `row` (None: no row yet); a round lost to
    another request reads the row again."""
    for _ in range(MAX_ROUNDS):
        if row is None:
            reservation = _insert_counted(key, rule, now)
            if reservation:
                return reservation
            row = _rows([key]).get(key)
            continue
        before = _State(row.failures, row.window_start, row.blocked_until)
        if _seconds_until(before.blocked_until, now):
            raise Throttled(_seconds_until(before.blocked_until, now))
        fresh = before.window_start <= now - timedelta(seconds=rule.window)
        failures = 1 if fresh else before.failures + 1
        wait = rule.wait_after(failures)
        after = _State(failures, now if fresh else before.window_start, now + wait if wait else None)
        changed = db.session.execute(_statements().count[before.blocked_until is not None],
                                     {"row_id": row.id, **_state_params("seen_", before),
                                      **_state_params("new_", after)}).rowcount
        if changed == 1:
            return Reservation(key, row.id, before, after, rule.limit)
        row = _rows([key]).get(key)
    raise Throttled(1)  # endless contention: refuse rather than check unbounded

