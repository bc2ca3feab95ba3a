"""Argon2id checks on one reused block of memory per process (lms/accounts/passwords.py uses this).

argon2-cffi gets a fresh memory_cost block for every check (19 MiB when measured here), and passwords.py makes glibc map it
afresh and hand it back each time, to keep workers lean: faulting in and zeroing 19 MiB costs about
12 ms of a 32 ms check (measured). Here libargon2 computes in a block made once and kept, through its
own allocate/free hooks, so a check costs about 20 ms. libargon2 wipes the block after every use,
as it wipes malloc'd memory.

Only one check at a time uses the block; a check that finds it taken, a hash this does not handle, or
any error leaves the check to argon2-cffi (`verify` answers None). The block costs memory_cost KiB of
resident memory per process while sign-ins keep coming: IDLE_SECONDS after the last check its pages
are given back to the system (the mapping stays; the next check faults them in again).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import mmap
import os
import threading
import time

from argon2 import Type, extract_parameters
from argon2.exceptions import InvalidHashError

try:
    from _argon2_cffi_bindings import ffi, lib
except ImportError:  # argon2-cffi without its usual bindings: argon2-cffi checks alone
    ffi = lib = None

ARGON2_VERSION = 0x13  # the only version written since 2016; others go to argon2-cffi
IDLE_SECONDS = 2.0  # a worker that has checked no password for this long gives the block's pages back

_block_lock = threading.Lock()  # held by the one check using the block
_block: mmap.mmap | None = None
_block_address = None
_hooks = None  # libargon2's allocate and free callbacks, made once
_last_used = 0.0  # time.monotonic() of the last check on the block
_resident = False  # whether the block's pages may be in memory (used since last given back)
_releaser_pid = None  # the process whose thread gives idle pages back (threads do not survive a fork)


def verify(stored_hash: str, password: str, block_kib: int) -> bool | None:
    """Whether `password` matches the Argon2id `stored_hash`, computed on a block of `block_kib` KiB
    (the configured memory cost); None when argon2-cffi should check it (the block is in use, the hash
    needs more memory, or it is not a plain Argon2id v19 one with parallelism 1)."""
    global _last_used, _resident
    if lib is None:
        return None
    decoded = _decode(stored_hash)
    if decoded is None or decoded[1] > block_kib:
        return None
    if not _block_lock.acquire(blocking=False):
        return None
    try:
        return _check(*decoded, password.encode("utf-8"), block_kib * 1024)
    finally:
        _last_used, _resident = time.monotonic(), True
        _block_lock.release()


def _decode(stored_hash: str) -> tuple[int, int, bytes, bytes] | None:
    """(time_cost, memory_cost KiB, salt, digest) of "$argon2id$v=19$m=…,t=…,p=1$salt$digest" (base64
    without padding), or None."""
    try:
        params = extract_parameters(stored_hash)
        salt_b64, digest_b64 = stored_hash.split("$")[-2:]
        salt, digest = _b64(salt_b64), _b64(digest_b64)
    except (InvalidHashError, ValueError, binascii.Error):
        return None
    if params.type is not Type.ID or params.version != ARGON2_VERSION or params.parallelism != 1:
        return None
    return params.time_cost, params.memory_cost, salt, digest


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _check(time_cost: int, memory_cost: int, salt: bytes, digest: bytes, password: bytes,
           block_bytes: int) -> bool | None:
    """Argon2id of `password` on the block, compared with `digest`; None when libargon2 refuses the
    parameters or the block cannot be had (the caller holds _block_lock)."""
    if not _ensure_block(block_bytes):
        return None
    out = ffi.new("uint8_t[]", len(digest))
    pwd = ffi.new("uint8_t[]", password)
    salt_c = ffi.new("uint8_t[]", salt)
    context = ffi.new("argon2_context *", {
        "out": out, "outlen": len(digest), "pwd": pwd, "pwdlen": len(password),
        "salt": salt_c, "saltlen": len(salt), "secret": ffi.NULL, "secretlen": 0, "ad": ffi.NULL, "adlen": 0,
        "t_cost": time_cost, "m_cost": memory_cost, "lanes": 1, "threads": 1, "version": ARGON2_VERSION,
        "allocate_cbk": _hooks[0], "free_cbk": _hooks[1], "flags": lib.ARGON2_DEFAULT_FLAGS,
    })
    if lib.argon2_ctx(context, lib.Argon2_id) != lib.ARGON2_OK:
        return None
    return hmac.compare_digest(ffi.buffer(out)[:], digest)


def _ensure_block(size: int) -> bool:
    """The block exists and has `size` bytes; made (or remade, when the configured cost changed) here.
    False when it cannot be."""
    global _block, _block_address, _hooks
    try:
        if _hooks is None:
            _hooks = (ffi.callback("int(uint8_t **, size_t)", _allocate, onerror=_refuse),
                      ffi.callback("void(uint8_t *, size_t)", _free))
        if _block is None or len(_block) != size:
            block = mmap.mmap(-1, size)  # anonymous, private, zero-filled, page-aligned
            _block, _block_address = block, ffi.from_buffer("uint8_t[]", block)
        _start_releaser()
    except (MemoryError, OSError, RuntimeError, TypeError):  # no callbacks on this platform, no memory
        return False
    return True


def _start_releaser() -> None:
    global _releaser_pid
    if _releaser_pid != os.getpid():
        _releaser_pid = os.getpid()
        threading.Thread(target=_release_when_idle, name="argon2-block-releaser", daemon=True).start()


def _after_fork_in_child() -> None:
    global _block_lock
    _block_lock = threading.Lock()  # the parent's releaser may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def _release_when_idle() -> None:
    while True:
        time.sleep(IDLE_SECONDS / 2)
        release_if_idle()


def release_if_idle(idle_seconds: float = IDLE_SECONDS) -> bool:
    """Give the block's pages back when no check has used it for `idle_seconds`; True when it did."""
    global _resident
    if _block is None or not _resident or time.monotonic() - _last_used < idle_seconds:
        return False  # looked at without the lock, so a check is not sent elsewhere for nothing
    with _block_lock:
        if _block is None or time.monotonic() - _last_used < idle_seconds:
            return False
        _block.madvise(mmap.MADV_DONTNEED)  # private anonymous pages: dropped, zero-filled when touched again
        _resident = False
        return True


def _allocate(memory, size: int) -> int:
    if _block is None or size > len(_block):
        return -1  # libargon2 answers ARGON2_MEMORY_ALLOCATION_ERROR
    memory[0] = _block_address
    return 0


def _free(memory, size: int) -> None:
    """libargon2 has wiped the block already; it stays for the next check."""


def _refuse(exception, value, traceback) -> int:
    return -1
