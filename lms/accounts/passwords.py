"""Every password and tablet PIN is hashed and checked here, and only here.

New hashes are Argon2id (argon2-cffi) with the cost in config PASSWORD_ARGON2 (lms/config.py says
why those numbers). Hashes made before — werkzeug's scrypt and pbkdf2 — still verify; `needs_rehash`
says so, and sign-in (lms/accounts/services.py) and PIN entry (lms/classroom/services.py) store a new
hash in the same commit as the successful check, so old hashes disappear as people sign in.
"""
from __future__ import annotations

import ctypes
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from werkzeug.security import check_password_hash

from lms.config import PASSWORD_ARGON2

ARGON2_PREFIX = "$argon2"
# glibc's mallopt: a fixed mmap threshold (see _return_hash_memory)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash` (Argon2id, or an older werkzeug scrypt/pbkdf2 hash).
    A malformed or unknown hash matches nothing."""
    if not stored_hash:
        return False
    if stored_hash.startswith(ARGON2_PREFIX):
        try:
            return _hasher().verify(stored_hash, password)
        except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
            return False
    try:
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
    return _hasher_for(parameters).hash(secrets.token_urlsafe(16))


def _return_hash_memory() -> None:
    """Each Argon2 check allocates memory_cost KiB (19 MiB). glibc's adaptive mmap threshold would soon
    serve such blocks from the heap of each thread's arena and keep them: a gunicorn worker with 4
    threads then holds ~80–100 MB more for good (measured). A fixed threshold maps them afresh each
    time and gives them back at once (about 8 ms more CPU per check, measured). No-op off glibc."""
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        pass


_return_hash_memory()
