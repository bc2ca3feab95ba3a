"""Every password and tablet PIN is hashed and checked here, and only here.

New hashes are Argon2id (argon2-cffi) with the cost in config PASSWORD_ARGON2 (lms/config.py says
why those numbers); checks run on one block of memory reused by each (lms/accounts/argon2_reuse.py).
Hashes made before — werkzeug's scrypt and pbkdf2 — still verify; `needs_rehash` says so, and sign-in
(lms/accounts/services.py) and PIN entry (lms/classroom/services.py) store a new hash in the same
commit as the successful check, so old hashes disappear as people sign in.

Every hash computed or checked here takes one of the process's hashing slots (`limit_concurrent_hashing`):
gunicorn's workers share the cores, so each worker hashes a bounded few at a time, and the threads that
only render a page or answer a redirect are not left waiting behind a pile of hash checks.
"""
from __future__ import annotations

import ctypes
import functools
import os
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from werkzeug.security import check_password_hash

from lms.accounts import argon2_reuse
from lms.config import PASSWORD_ARGON2

ARGON2_PREFIX = "$argon2"
# glibc's mallopt: a fixed mmap threshold (see _return_hash_memory)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024

# hash computations at once in this process; gunicorn's post_fork sets cores ÷ workers (gunicorn.conf.py)
_hashing_slots = threading.BoundedSemaphore(os.cpu_count() or 1)


def limit_concurrent_hashing(slots: int) -> None:
    """At most `slots` (≥ 1) hash computations at once in this process; the others wait their turn.
    Set before the process serves requests."""
    global _hashing_slots
    _hashing_slots = threading.BoundedSemaphore(max(1, slots))


def hash_password(password: str) -> str:
    hasher = _hasher()
    with _hashing_slots:
        return hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash` (Argon2id, or an older werkzeug scrypt/pbkdf2 hash).
    A malformed or unknown hash matches nothing."""
    if not stored_hash:
        return False
    if stored_hash.startswith(ARGON2_PREFIX):
        hasher = _hasher()
        try:
            with _hashing_slots:
                matches = argon2_reuse.verify(stored_hash, password, hasher.memory_cost)  # None: not there
                return hasher.verify(stored_hash, password) if matches is None else matches
        except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
            return False
    try:
        with _hashing_slots:
            return check_password_hash(stored_hash, password)
    except ValueError:  # an unknown method ("md5$…") or a damaged cost field
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True for a hash of another method (scrypt, pbkdf2) or of other Argon2 costs than configured now."""
    if not stored_hash.startswith(ARGON2_PREFIX):
        return True
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def dummy_hash() -> str:
    """A hash of the configured method and cost, of a password nobody knows: an unknown account is
    checked against it, so it costs the same time as a real one."""
    return _dummy_hash(_parameters())


def _parameters() -> tuple[int, int, int]:
    params = current_app.config["PASSWORD_ARGON2"] if has_app_context() else PASSWORD_ARGON2
    return params["time_cost"], params["memory_cost"], params["parallelism"]


def _hasher() -> PasswordHasher:
    return _hasher_for(_parameters())


@functools.cache
def _hasher_for(parameters: tuple[int, int, int]) -> PasswordHasher:
    time_cost, memory_cost, parallelism = parameters
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


@functools.cache
def _dummy_hash(parameters: tuple[int, int, int]) -> str:
    with _hashing_slots:
        return _hasher_for(parameters).hash(secrets.token_urlsafe(16))


def _return_hash_memory() -> None:
    """Each Argon2 check allocates memory_cost KiB (19 MiB when this was measured). glibc's adaptive mmap
    threshold would soon serve such blocks from the heap of each thread's arena and keep them: a gunicorn
    worker with 4 threads then held ~80–100 MB more for good (measured). A fixed threshold maps them afresh each
    time and gives them back at once (about 8 ms more CPU per check, measured). No-op off glibc."""
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass


_return_hash_memory()
