"""Attacks on sign-in (issue 9, defect 5): racing the failure count, listing accounts, locking someone
out, spraying one password, guessing from many addresses; the same for tablet PINs.

Hash checks are counted, not timed: every password and PIN check goes through
lms/accounts/passwords.py verify_password."""
from __future__ import annotations

import re
import threading
from collections import Counter

import pytest

from lms.extensions import db
from tests.conftest import CSRF_RE, BrowserLikeClient
from tests.test_concurrency import race_app  # noqa: F401  (SQLite file, then PostgreSQL)
from tests.test_elder import klass, open_tablet, pupils, teacher, type_pin  # noqa: F401

ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


@pytest.fixture
def hash_checks(monkeypatch):
    """The hashes every password or PIN check was made against, in order, from any thread."""
    from lms.accounts import passwords

    checked, lock, verify = [], threading.Lock(), passwords.verify_password

    def counting(pwhash, password):
        with lock:
            checked.append(pwhash)
        return verify(pwhash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)  # the one place hashes are checked
    return checked


def client_at(app, address: str) -> BrowserLikeClient:
    client = BrowserLikeClient(app.test_client())
    client.client.environ_base["REMOTE_ADDR"] = address
    client.refresh_token("/login")
    return client


def post_login(client: BrowserLikeClient, username: str, password: str):
    return client.client.post("/login", data={"username": username, "password": password,
                                              "csrf_token": client.token})


def all_at_once(calls):
    """Run the calls in parallel threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def comparable(page: str, username: str) -> str:
    """A login page with what legitimately differs (the echoed name, the CSRF token, the seconds left
    to wait, which tick on) blanked out."""
    page = CSRF_RE.sub(lambda match: match.group(0).replace(match.group(1), ""), page).replace(username, "NAME")
    return re.sub(r"\d+ 秒", "N 秒", page)


def make_teacher(app):
    from lms.accounts.services import create_user, get_or_create_unit

    with app.app_context():
        unit = get_or_create_unit("county", "垫江县", "county")
        create_user("wang.teacher", "王老师", "correct-horse", "instructor", "elder", unit.code)
        db.session.commit()


# --- passwords ---------------------------------------------------------------------------------------

def test_forty_parallel_wrong_passwords_get_at_most_five_checks(race_app, hash_checks):
    """40 wrong passwords at once for one account from one address: at most 5 are checked, the rest get 429."""
    make_teacher(race_app)
    clients = [client_at(race_app, ATTACKER) for _ in range(40)]
    responses = all_at_once([lambda c=c: post_login(c, "wang.teacher", "guess") for c in clients])
    assert 1 <= len(hash_checks) <= 5
    statuses = Counter(response.status_code for response in responses)
    assert statuses[429] >= 35 and statuses[302] == 0


def test_right_password_among_parallel_guesses_after_the_limit_is_refused(race_app, hash_checks):
    """5 wrong passwords, then 20 at once with the right one among them: 429 for all, none checked, nobody signed in."""
    make_teacher(race_app)
    attacker = client_at(race_app, ATTACKER)
    for _ in range(5):
        post_login(attacker, "wang.teacher", "guess")
    clients = [client_at(race_app, ATTACKER) for _ in range(20)]
    passwords = ["guess"] * 19 + ["correct-horse"]
    responses = all_at_once([lambda c=c, p=p: post_login(c, "wang.teacher", p) for c, p in zip(clients, passwords)])
    assert [response.status_code for response in responses] == [429] * 20
    assert len(hash_checks) == 5


def test_unknown_account_answers_like_a_wrong_password(app, make_user, hash_checks):
    """An unknown account and a wrong password: same status and page, one hash check each, of the same method and cost."""
    user = make_user(username="wang.teacher")
    real = post_login(client_at(app, ATTACKER), "wang.teacher", "guess")
    unknown = post_login(client_at(app, ATTACKER), "wang.teachr", "guess")
    assert real.status_code == unknown.status_code == 400
    assert comparable(real.get_data(as_text=True), "wang.teacher") == comparable(
        unknown.get_data(as_text=True), "wang.teachr")
    assert len(hash_checks) == 2  # the unknown account still costs a check
    assert hash_checks[0] == user.password_hash and hash_checks[1] != user.password_hash
    assert hash_checks[1].rsplit("$", 2)[0] == user.password_hash.rsplit("$", 2)[0]  # $argon2id$v=19$m=…,t=…,p=…


def test_throttled_unknown_account_reads_like_a_throttled_real_one(app, make_user):
    """Six wrong passwords for a real and for an unknown account: both get the same 429 page, neither says 锁定."""
    make_user(username="wang.teacher")
    pages = {}
    for name, address in (("wang.teacher", "203.0.113.1"), ("nobody.here", "203.0.113.2")):
        client = client_at(app, address)
        responses = [post_login(client, name, "guess") for _ in range(6)]
        assert [r.status_code for r in responses] == [400] * 4 + [429, 429]
        pages[name] = comparable(responses[-1].get_data(as_text=True), name)
        assert "尝试次数太多" in pages[name] and "锁定" not in pages[name]
        assert 0 < int(responses[-1].headers["Retry-After"]) <= 30
    assert pages["wang.teacher"] == pages["nobody.here"]


def test_guesser_elsewhere_cannot_lock_the_owner_out(app, make_user):
    """20 wrong passwords for a teacher from address A: A waits (429); the teacher signs in from address B (302)."""
    make_user(username="wang.teacher")
    attacker = client_at(app, ATTACKER)
    responses = [post_login(attacker, "wang.teacher", "guess") for _ in range(20)]
    assert responses[-1].status_code == 429
    owner = client_at(app, OWNER)
    assert post_login(owner, "wang.teacher", "correct-horse").status_code == 302
    assert owner.get("/my/hours").status_code == 200


def test_password_spraying_from_one_address_is_slowed(app, make_user, hash_checks):
    """One password tried on many account names from one address (limit set to 6): 6 checked, then 429 for every
    account from there, a real one with its right password too; from another address that account signs in."""
    app.config["SIGNIN_LIMITS"]["password-address"] = (6, 60, 900, 3600)
    make_user(username="wang.teacher")
    sprayer = client_at(app, ATTACKER)
    statuses = [post_login(sprayer, f"user{n}", "12345678").status_code for n in range(10)]
    assert statuses == [400] * 5 + [429] * 5 and len(hash_checks) == 6
    assert post_login(sprayer, "wang.teacher", "correct-horse").status_code == 429
    assert post_login(client_at(app, OWNER), "wang.teacher", "correct-horse").status_code == 302


def test_a_class_behind_one_school_address_all_sign_in(app, make_user):
    """Sign-in day: 40 learners sign in with their right passwords through one school address (the
    address-wide limit at its default, 30 an hour): all 40 get in (302) — right passwords are not failures."""
    school = "198.51.100.40"
    people = [make_user() for _ in range(40)]
    statuses = [post_login(client_at(app, school), person.username, "correct-horse").status_code for person in people]
    assert statuses == [302] * 40


def test_a_sprayer_signing_in_to_their_own_account_resets_nothing(app, make_user, hash_checks):
    """A sprayer (address limit set to 6) mixes in right sign-ins to an account of their own: each gives back
    only its own count, so the 6th wrong password from that address already makes it wait (429), as without them."""
    app.config["SIGNIN_LIMITS"]["password-address"] = (6, 60, 900, 3600)
    own = make_user()
    sprayer = client_at(app, ATTACKER)
    statuses = []
    for n in range(6):
        statuses.append(post_login(sprayer, f"user{n}", "12345678").status_code)
        if n % 2 == 0:
            assert post_login(client_at(app, ATTACKER), own.username, "correct-horse").status_code == 302
    assert statuses == [400] * 5 + [429]
    assert post_login(sprayer, "user99", "12345678").status_code == 429


def test_guessing_one_account_from_many_addresses_is_slowed(app, make_user, hash_checks):
    """One account guessed from 4 addresses, 3 wrong passwords each (account-wide limit set to 8): 8 checked,
    then every address waits (429), a fresh one too."""
    app.config["SIGNIN_LIMITS"]["password-account"] = (8, 60, 900, 24 * 3600)
    make_user(username="wang.teacher")
    statuses = [post_login(client_at(app, f"203.0.113.{n}"), "wang.teacher", "guess").status_code
                for n in range(1, 5) for _ in range(3)]
    assert statuses == [400] * 7 + [429] * 5 and len(hash_checks) == 8
    assert post_login(client_at(app, "192.0.2.1"), "wang.teacher", "guess").status_code == 429


def test_ipv6_guesser_cannot_rotate_addresses_within_a_64(app, make_user, hash_checks):
    """Wrong passwords from 10 addresses of one IPv6 /64: counted as one address, so 5 checks then 429."""
    make_user(username="wang.teacher")
    statuses = [post_login(client_at(app, f"2001:db8:1:2::{n:x}"), "wang.teacher", "guess").status_code
                for n in range(1, 11)]
    assert statuses == [400] * 4 + [429] * 6 and len(hash_checks) == 5


def test_admin_unlock_lifts_the_wait(app, make_user):
    """An administrator runs `lms users unlock` for a throttled account: its owner signs in from that address at once."""
    make_user(username="wang.teacher")
    client = client_at(app, ATTACKER)
    for _ in range(5):
        post_login(client, "wang.teacher", "guess")
    assert post_login(client, "wang.teacher", "correct-horse").status_code == 429
    result = app.test_cli_runner().invoke(args=["users", "unlock", "wang.teacher"])
    assert result.exit_code == 0 and "已解除" in result.output
    assert post_login(client, "wang.teacher", "correct-horse").status_code == 302


# --- hashes: Argon2id, older ones upgraded at the next sign-in -----------------------------------------

def old_werkzeug_hash(password: str, method: str = "scrypt") -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password, method=method)


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256"])
def test_old_hash_is_upgraded_at_the_next_sign_in_and_sessions_stay(app, make_user, hash_checks, method):
    """A password stored as werkzeug scrypt/pbkdf2 before the move to Argon2id: a wrong password leaves it alone;
    the right one signs in (302), and in the same commit the hash becomes Argon2id of the configured cost,
    without ending the user's other sessions; it keeps working."""
    from lms.accounts import passwords
    from lms.accounts.models import User

    user = make_user(username="wang.teacher")
    user.password_hash = old_werkzeug_hash("correct-horse", method)
    db.session.commit()
    old_hash, version = user.password_hash, user.session_version
    other_device = client_at(app, OWNER)
    assert post_login(other_device, "wang.teacher", "correct-horse").status_code == 302
    db.session.expire_all()
    stored = db.session.get(User, user.id)
    costs = app.config["PASSWORD_ARGON2"]
    assert stored.password_hash != old_hash and stored.password_hash.startswith(
        f"$argon2id$v=19$m={costs['memory_cost']},t={costs['time_cost']},p=1$")
    assert not passwords.needs_rehash(stored.password_hash) and stored.session_version == version
    assert other_device.get("/my/hours").status_code == 200  # its session was not ended by the upgrade

    stored.password_hash = old_hash  # back to the old hash: a wrong password changes nothing
    db.session.commit()
    assert post_login(client_at(app, ATTACKER), "wang.teacher", "guess").status_code == 400
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == old_hash
    assert post_login(client_at(app, ATTACKER), "wang.teacher", "correct-horse").status_code == 302
    db.session.expire_all()
    upgraded = db.session.get(User, user.id).password_hash
    assert upgraded.startswith("$argon2id$")
    hash_checks.clear()
    assert post_login(client_at(app, "192.0.2.9"), "wang.teacher", "correct-horse").status_code == 302
    db.session.expire_all()
    assert hash_checks == [upgraded] and db.session.get(User, user.id).password_hash == upgraded  # no rehash


# OWASP Password Storage Cheat Sheet: Argon2id's minimum settings, (memory KiB, passes), one lane each
OWASP_ARGON2ID_MINIMUMS = [(46 * 1024, 1), (19 * 1024, 2), (12 * 1024, 3), (9 * 1024, 4), (7 * 1024, 5)]


def test_new_passwords_are_stored_at_no_less_than_an_owasp_minimum(app, make_user):
    """The configured cost, as written into each new hash, is at least one of OWASP's minimum settings."""
    from argon2 import Type, extract_parameters

    from lms.accounts.models import User

    user = make_user(username="li.new")
    params = extract_parameters(db.session.get(User, user.id).password_hash)
    assert params.type is Type.ID and params.parallelism == 1
    assert any(params.memory_cost >= memory and params.time_cost >= passes
               for memory, passes in OWASP_ARGON2ID_MINIMUMS), params


def test_raised_cost_upgrades_hashes_and_the_dummy_follows(app, make_user, hash_checks):
    """The Argon2 cost is raised in config: the next sign-in rehashes at the new cost, and an unknown account
    is checked against a dummy hash of that new cost, so it still takes as long as a real one."""
    from lms.accounts.models import User

    user = make_user(username="wang.teacher")
    app.config["PASSWORD_ARGON2"] = {"time_cost": 3, "memory_cost": 19 * 1024, "parallelism": 1}
    assert post_login(client_at(app, OWNER), "wang.teacher", "correct-horse").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    assert post_login(client_at(app, ATTACKER), "nobody.here", "guess").status_code == 400
    assert hash_checks[-1].startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    assert hash_checks[-1] != db.session.get(User, user.id).password_hash


def test_malformed_stored_hash_matches_nothing(app, make_user):
    """A damaged hash column (truncated Argon2, junk): that account's sign-in is refused (400), never a 500."""
    from lms.accounts.models import User

    user = make_user(username="wang.teacher")
    for junk in ("$argon2id$v=19$m=19456,t=2,p=1$broken", "x", "scrypt:32768:8:1$salt", "md5$salt$hash",
                 "scrypt:many:8:1$salt$hash"):
        db.session.get(User, user.id).password_hash = junk
        db.session.commit()
        assert post_login(client_at(app, OWNER), "wang.teacher", "correct-horse").status_code == 400
        unlock = app.test_cli_runner().invoke(args=["users", "unlock", "wang.teacher"])  # 5 tries: not the point
        assert unlock.exit_code == 0


# --- tablet PINs ----------------------------------------------------------------------------------------

def tablet_copies(client: BrowserLikeClient, count: int) -> list[BrowserLikeClient]:
    """`count` more clients carrying this tablet's session cookie (as a copied cookie would)."""
    cookie = client.client.get_cookie("session").value
    copies = []
    for _ in range(count):
        copy = BrowserLikeClient(client.application.test_client())
        copy.client.set_cookie("session", cookie)
        copy.token = client.token
        copies.append(copy)
    return copies


def test_twenty_parallel_wrong_pins_get_at_most_five_checks(browser_client, teacher, klass, pupils, hash_checks):
    """20 wrong PINs at once for one learner on one tablet: at most 5 are checked, the rest are refused (403)."""
    zhang, _ = pupils
    open_tablet(browser_client, teacher, klass)
    hash_checks.clear()  # the teacher's own sign-in
    responses = all_at_once([lambda c=c: type_pin(c, zhang, "0000") for c in tablet_copies(browser_client, 20)])
    assert 1 <= len(hash_checks) <= 5
    statuses = Counter(response.status_code for response in responses)
    assert statuses[403] >= 15 and statuses[302] == 0


def test_pin_guesser_on_one_tablet_cannot_lock_the_learner_out_of_another(app, teacher, klass, pupils):
    """12 wrong PINs for a learner on tablet A: A refuses (403, 已锁定); on tablet B the learner signs in (302)."""
    zhang, _ = pupils
    tablet_a, tablet_b = (BrowserLikeClient(app.test_client()) for _ in range(2))
    open_tablet(tablet_a, teacher, klass)
    open_tablet(tablet_b, teacher, klass)
    responses = [type_pin(tablet_a, zhang, "0000") for _ in range(12)]
    assert responses[-1].status_code == 403 and "已锁定" in responses[-1].get_data(as_text=True)
    assert type_pin(tablet_a, zhang, "1234").status_code == 403
    assert type_pin(tablet_b, zhang, "1234").status_code == 302


def test_a_whole_class_signs_in_on_one_tablet(app, klass, make_user):
    """Right PINs are not failures: 8 learners sign in one after another on one class tablet whose
    tablet-wide limit is set to 3 — none is refused."""
    from lms.classroom.services import set_pin, verify_pin

    app.config["SIGNIN_LIMITS"]["pin-tablet"] = (3, 30, 300, 3600)
    learners = [make_user(unit="class-1", full_name=f"学员{n}") for n in range(8)]
    for learner in learners:
        set_pin(learner, "2468")
    for learner in learners:
        verify_pin(learner, "2468", "tablet-1")  # raises PinLocked when refused


def test_one_pin_sprayed_over_a_class_roster_is_slowed(app, browser_client, teacher, klass, pupils, make_user, hash_checks):
    """One PIN tried on every learner of a roster (tablet-wide limit set to 3): 3 checked, then the tablet waits
    (403) for everyone, even with a right PIN, until a teacher opens it afresh."""
    from lms.classroom.services import set_pin

    app.config["SIGNIN_LIMITS"]["pin-tablet"] = (3, 30, 300, 3600)
    others = [make_user(unit="class-1", full_name=f"学员{n}") for n in range(3)]
    for learner in others:
        set_pin(learner, "4444")
    open_tablet(browser_client, teacher, klass)
    hash_checks.clear()
    statuses = [type_pin(browser_client, learner, "0000").status_code for learner in (*others, pupils[0])]
    assert statuses == [400, 400, 403, 403] and len(hash_checks) == 3
    assert type_pin(browser_client, pupils[1], "5678").status_code == 403
    open_tablet(browser_client, teacher, klass)
    assert type_pin(browser_client, pupils[1], "5678").status_code == 302


def test_old_pin_hash_is_upgraded_at_the_next_right_pin(browser_client, teacher, klass, pupils):
    """A PIN stored as a werkzeug scrypt hash: the right PIN signs the learner in (302) and the PIN hash becomes
    Argon2id in the same commit; the PIN keeps working."""
    from lms.accounts import passwords
    from lms.accounts.models import User

    zhang, _ = pupils
    zhang.pin_hash = old_werkzeug_hash("1234")
    db.session.commit()
    open_tablet(browser_client, teacher, klass)
    assert type_pin(browser_client, zhang, "1234").status_code == 302
    db.session.expire_all()
    upgraded = db.session.get(User, zhang.id).pin_hash
    assert upgraded.startswith("$argon2id$") and passwords.verify_password(upgraded, "1234")
