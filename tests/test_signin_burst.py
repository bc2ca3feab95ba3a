"""Sign-in day (issue 12): hash checks bounded per process, two commits per sign-in, SQLite's writers
taking turns, and Argon2id checks on one reused block of memory that answer exactly as argon2-cffi."""
from __future__ import annotations

import fcntl
import os
import runpy
import threading
import time
from types import SimpleNamespace

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event

from lms import sqlite_turns
from lms.accounts import argon2_reuse, passwords, throttle
from lms.accounts.models import SignInThrottle
from lms.extensions import db
from tests.conftest import BrowserLikeClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- hashing slots ---------------------------------------------------------------------------------

@pytest.fixture
def one_slot():
    passwords.limit_concurrent_hashing(1)
    yield
    passwords.limit_concurrent_hashing(os.cpu_count() or 1)


def test_one_hashing_slot_checks_one_password_at_a_time(app, one_slot, monkeypatch):
    """Eight sign-in checks at once in a process limited to one slot: never two hashes at the same time,
    and every answer right."""
    stored = passwords.hash_password("correct-horse")
    running, most, lock = [0], [0], threading.Lock()
    verify = argon2_reuse.verify

    def counting(*args):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.02)
            return verify(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(argon2_reuse, "verify", counting)
    answers = []

    def check(password):
        with app.app_context():
            answers.append((password, passwords.verify_password(stored, password)))

    threads = [threading.Thread(target=check, args=(p,)) for p in ["correct-horse", "wrong"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert sorted(answers) == sorted([("correct-horse", True), ("wrong", False)] * 4)


def test_gunicorn_gives_each_worker_cores_divided_by_workers_slots(monkeypatch):
    """gunicorn.conf.py's post_fork: 2 cores and 5 workers → 1 slot each; 8 cores and 2 workers → 4."""
    settings = runpy.run_path(os.path.join(ROOT, "gunicorn.conf.py"))
    given = []
    monkeypatch.setattr(passwords, "limit_concurrent_hashing", given.append)
    for cores, workers in ((2, 5), (8, 2)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        server = SimpleNamespace(cfg=SimpleNamespace(workers=workers, preload_app=False), app=None)
        settings["post_fork"](server, None)
    assert given == [0, 4]  # limit_concurrent_hashing makes 0 into its minimum, 1


def test_limit_concurrent_hashing_keeps_at_least_one_slot(app, monkeypatch):
    passwords.limit_concurrent_hashing(0)
    try:
        assert passwords.verify_password(passwords.hash_password("correct-horse"), "correct-horse")
    finally:
        passwords.limit_concurrent_hashing(os.cpu_count() or 1)


# --- the reused block ------------------------------------------------------------------------------

COSTS = [(2, 19 * 1024), (1, 8), (3, 4096)]


def on_block(stored: str, password: str) -> bool | None:
    """argon2_reuse.verify, again when it found the block taken for a moment (its idle-page releaser)."""
    for _ in range(50):
        with argon2_reuse._block_lock:
            pass
        answer = argon2_reuse.verify(stored, password, 19 * 1024)
        if answer is not None:
            return answer
    return None


@pytest.mark.parametrize("time_cost,memory_cost", COSTS)
@pytest.mark.parametrize("password", ["correct-horse", "", "长辈版口令123", "x" * 300])
def test_reused_block_answers_as_argon2_cffi(time_cost, memory_cost, password):
    stored = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1).hash(password)
    assert on_block(stored, password) is True
    assert on_block(stored, password + "1") is False
    assert on_block(stored[:-2] + ("AA" if stored[-2:] != "AA" else "BB"), password) is False


@pytest.mark.parametrize("stored,matches", [
    (PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2).hash("pw"), True),  # parallelism 2
    (PasswordHasher(time_cost=1, memory_cost=64 * 1024, parallelism=1).hash("pw"), True),  # more than the block
    ("$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", False),  # Argon2i
    ("$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", False),  # an old version
    ("$argon2id$v=19$m=1024,t=1,p=1$c2Fs!HNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", False),  # not base64
    ("$argon2id$v=19$m=1024,t=1,p=1$bad", False),
])
def test_hashes_the_block_does_not_handle_go_to_argon2_cffi(app, stored, matches):
    assert argon2_reuse.verify(stored, "pw", 19 * 1024) is None
    assert passwords.verify_password(stored, "pw") is matches


def test_a_check_finding_the_block_taken_is_left_to_argon2_cffi(app):
    stored = passwords.hash_password("correct-horse")
    with argon2_reuse._block_lock:
        assert argon2_reuse.verify(stored, "correct-horse", 19 * 1024) is None
        assert passwords.verify_password(stored, "correct-horse") is True
        assert passwords.verify_password(stored, "wrong") is False


def test_parallel_checks_on_the_block_all_answer_right(app):
    """Threads checking at once (the block for one, argon2-cffi for the others): every answer right."""
    hasher = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1)
    stored = [(hasher.hash(f"password-{n}"), f"password-{n}") for n in range(6)]
    wrong = []

    def check(n):
        for round_ in range(4):
            pwhash, password = stored[(n + round_) % len(stored)]
            if passwords.verify_password(pwhash, password) is not True or passwords.verify_password(pwhash, "x"):
                wrong.append(n)

    threads = [threading.Thread(target=check, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def test_an_idle_block_gives_its_memory_back():
    stored = PasswordHasher(time_cost=1, memory_cost=16 * 1024, parallelism=1).hash("pw")
    assert on_block(stored, "pw") is True
    assert not argon2_reuse.release_if_idle(idle_seconds=3600)  # just used: kept
    before = _rss_kib()
    assert argon2_reuse.release_if_idle(idle_seconds=0)
    assert before - _rss_kib() > 12 * 1024  # most of the 19 MiB block back
    assert on_block(stored, "pw") is True  # and it works again


# --- the throttle's writes -------------------------------------------------------------------------

@pytest.fixture
def commits(app):
    counted = []
    with app.app_context():
        engine = db.engine
    listener = lambda connection: counted.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    yield counted
    event.remove(engine, "commit", listener)


def test_a_sign_in_commits_twice(app, make_user, commits):
    """One commit reserves the attempt on all three keys, one settles the right password (and an
    upgraded hash would ride in it)."""
    person = make_user()
    client = BrowserLikeClient(app.test_client())
    client.refresh_token("/login")
    commits.clear()
    answer = client.client.post("/login", data={"username": person.username, "password": "correct-horse",
                                                "csrf_token": client.token})
    assert answer.status_code == 302 and len(commits) == 2


def test_an_attempt_refused_on_one_key_counts_on_none(app):
    """The account from this address may still try, but the address must wait: nothing is counted."""
    with app.app_context():
        app.config["SIGNIN_LIMITS"]["password-address"] = (1, 60, 900, 3600)
        address = throttle.Key("password-address", "10.0.0.9")
        throttle.reserve([address])  # the address's one free failure
        account = throttle.Key("password", "zhang", "10.0.0.9")
        with pytest.raises(throttle.Throttled):
            throttle.reserve([account, address])
        assert db.session.query(SignInThrottle).filter_by(scope="password").count() == 0


def test_giving_back_after_others_counted_takes_off_one_and_keeps_their_wait(app):
    with app.app_context():
        app.config["SIGNIN_LIMITS"]["password-address"] = (3, 60, 900, 3600)
        school = [throttle.Key("password-address", "10.0.0.7")]
        mine = throttle.reserve(school)
        for _ in range(2):  # others from the address: the third failure reaches the limit and starts a wait
            throttle.reserve(school)
        row = db.session.query(SignInThrottle).one()
        assert row.failures == 3 and row.blocked_until is not None
        blocked_until = row.blocked_until
        throttle.settle(mine, (), ("password-address",))
        db.session.expire_all()
        row = db.session.query(SignInThrottle).one()
        assert row.failures == 2 and row.blocked_until == blocked_until


def test_giving_back_untouched_restores_the_row(app):
    with app.app_context():
        school = [throttle.Key("password-address", "10.0.0.8")]
        throttle.reserve(school)
        before = db.session.query(SignInThrottle).one()
        failures, window_start = before.failures, before.window_start
        mine = throttle.reserve(school)
        throttle.settle(mine, (), ("password-address",))
        db.session.expire_all()
        row = db.session.query(SignInThrottle).one()
        assert (row.failures, row.window_start, row.blocked_until) == (failures, window_start, None)


def test_sqlite_throttle_writers_wait_their_turn(app):
    """While another process holds the turn (the lock file beside the database), a reservation waits, and
    goes through as soon as the turn is free."""
    with app.app_context():
        path = sqlite_turns.lock_path("signin")
        assert path and path.endswith(".signin-lock")
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # another open file: as another process
    fcntl.flock(holder, fcntl.LOCK_EX)
    done = threading.Event()

    def reserve():
        with app.app_context():
            throttle.reserve([throttle.Key("password", "li", "10.0.0.1")])
        done.set()

    thread = threading.Thread(target=reserve)
    thread.start()
    try:
        assert not done.wait(0.3)
    finally:
        os.close(holder)
    assert done.wait(10)
    thread.join()



def test_a_right_pin_on_a_class_tablet_commits_twice_and_leaves_the_tablet_its_count(app, make_user, commits):
    """A PIN sign-in settles like a password: the learner's counts forgotten and this try given back to the
    tablet (a class of 40 signs in on one) in one commit after the one that reserved it."""
    from lms.classroom.services import verify_pin

    with app.app_context():
        learner = db.session.merge(make_user())
        learner.pin_hash = passwords.hash_password("2468")
        db.session.commit()
        commits.clear()
        verify_pin(learner, "2468", "tablet-1")
        assert len(commits) == 2
        rows = {row.scope: row.failures for row in SignInThrottle.query}
        assert rows.get("pin", 0) == rows.get("pin-learner", 0) == rows.get("pin-tablet", 0) == 0
