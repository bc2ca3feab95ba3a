"""Floods (issue 12, "Bad input"): many sign-ins from one address, connections that send nothing, a huge
heartbeat body, a form of 10,000 fields. Each is refused early and cheaply, and everyone else is still
served. Hash checks are counted (tests/security/test_signin.py's hash_checks), bodies read are counted
with a stream that records what was taken from it."""
from __future__ import annotations

import io
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.security.test_signin import ATTACKER, OWNER, client_at, hash_checks, post_login  # noqa: F401

PROJECT = Path(__file__).resolve().parents[2]
TEN_MB = 10 * 1024 * 1024


class CountingBody(io.RawIOBase):
    """A request body of `size` bytes of JSON-ish filler that counts how many bytes were read from it."""

    def __init__(self, size: int):
        self.size, self.taken = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.taken)
        buffer[:count] = b" " * count
        self.taken += count
        return count


# --- sign-ins -------------------------------------------------------------------------------------------

def test_hundred_rapid_wrong_sign_ins_from_one_address_stop_costing_hashes(app, make_user, hash_checks):
    """100 wrong sign-ins from one address over 100 account names, as fast as they come: 30 are checked (the
    address limit; the 30th already answers 429), the other 70 get 429 without any password hash being computed; the owner of a real
    account signs in from another address (302) meanwhile."""
    make_user(username="wang.teacher")
    flooder = client_at(app, ATTACKER)
    statuses, checks_at_first_429 = [], None
    for n in range(100):
        statuses.append(post_login(flooder, f"user{n}", "12345678").status_code)
        if statuses[-1] == 429 and checks_at_first_429 is None:
            checks_at_first_429 = len(hash_checks)
    assert statuses == [400] * 29 + [429] * 71  # the 30th is checked, and its wrong answer already waits
    assert checks_at_first_429 == len(hash_checks) == 30  # throttled answers never reach the hash
    assert post_login(client_at(app, OWNER), "wang.teacher", "correct-horse").status_code == 302


def test_hundred_wrong_passwords_for_one_account_cost_five_hashes(app, make_user, hash_checks):
    """100 wrong passwords for one account from one address: 5 hashes computed, 95 answers of 429 without one."""
    make_user(username="wang.teacher")
    flooder = client_at(app, ATTACKER)
    statuses = [post_login(flooder, "wang.teacher", f"guess{n}").status_code for n in range(100)]
    assert statuses == [400] * 4 + [429] * 96 and len(hash_checks) == 5


# --- connections that send nothing -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fifty_idle_connections_do_not_stall_gunicorn(app, tmp_path):
    """50 connections opened to gunicorn (gunicorn.conf.py, -w 2, loopback) that never send a byte: a normal
    GET /healthz still answers within 5 s (without the config's early parking: 20–60 s, measured), and the
    idle sockets are closed by the server after the keep-alive time. In production nginx buffers each request
    before it reaches gunicorn, so idle or slow clients never reach it at all (docs/deploy.md)."""
    port = free_port()
    env = {**os.environ, "LMS_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "LMS_DATA_DIR": app.config["DATA_DIR"], "LMS_INSTANCE_DIR": str(tmp_path / "instance"),
           "LMS_SECRET_KEY": secrets.token_hex(16)}
    env.pop("LMS_REDIS_URL", None)
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2",
                                   "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                                  cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 25
        while True:  # both workers up: two answers in a row
            try:
                if all(requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503)
                       for _ in range(2)):
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(50)]
        time.sleep(0.5)  # every worker has accepted its share
        started = time.monotonic()
        response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        elapsed = time.monotonic() - started
        assert response.status_code in (200, 503) and "status" in response.json()
        assert elapsed < 5, f"/healthz took {elapsed:.1f} s behind 50 idle connections"
        idle[0].settimeout(8)  # keepalive = 5: the server hangs up on the idle ones
        assert idle[0].recv(1) == b""
        assert server.poll() is None
    finally:
        for sock in idle:
            sock.close()
        server.terminate()
        server.wait(timeout=30)


# --- bodies ----------------------------------------------------------------------------------------------

def signed_in(app, make_user):
    client = client_at(app, OWNER)
    make_user(username="wang.learner")
    assert post_login(client, "wang.learner", "correct-horse").status_code == 302
    client.refresh_token("/")
    return client


def post_heartbeat_body(client, body: CountingBody, declared: bool = True):
    environ = {"wsgi.input": body, "CONTENT_TYPE": "application/json"}
    if declared:
        environ["CONTENT_LENGTH"] = str(body.size)
    else:  # chunked: no length given, the server knows the end when the stream ends
        environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    return client.client.post("/api/lessons/1/heartbeat", headers={"X-CSRFToken": client.token},
                              environ_overrides=environ)


def test_ten_megabyte_heartbeat_is_refused_before_it_is_read(app, make_user):
    """A signed-in learner's heartbeat with a declared 10 MB body: 413 and not one byte read (the JSON limit is
    16 KB, through the upload gate); sent chunked with no length: refused after reading 16 KB at most. An
    ordinary heartbeat is still judged (400: no such lesson), and anonymous is sent to sign in unread."""
    client = signed_in(app, make_user)
    declared = CountingBody(TEN_MB)
    assert post_heartbeat_body(client, declared).status_code == 413 and declared.taken == 0
    chunked = CountingBody(TEN_MB)  # Werkzeug reads up to the limit and stops: the cut-off JSON is refused
    assert post_heartbeat_body(client, chunked, declared=False).status_code in (400, 413)
    assert chunked.taken <= app.config["MAX_JSON_BYTES"]
    ordinary = client.heartbeat(1, {"player": "p", "seq": 1, "start": True, "position": 0, "intervals": []})
    assert ordinary.status_code == 400 and ordinary.get_json()["error"] == "not_visible"
    anonymous = CountingBody(TEN_MB)
    response = app.test_client().post("/api/lessons/1/heartbeat", environ_overrides={
        "wsgi.input": anonymous, "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(TEN_MB)})
    assert response.status_code in (302, 401) and anonymous.taken == 0


def test_ten_thousand_form_fields_to_login_get_413_quickly(app, make_user, hash_checks):
    """A sign-in POST carrying 10,000 form fields (URL-encoded, or multipart): 413 at once (MAX_FORM_PARTS),
    no password checked, nothing counted; a 2 MB field: 413 too (MAX_FORM_MEMORY_SIZE); the same client
    then signs in normally (302)."""
    make_user(username="wang.teacher")
    client = client_at(app, ATTACKER)
    fields = {f"f{n}": "x" for n in range(10_000)}
    fields.update(username="wang.teacher", password="guess", csrf_token=client.token)
    started = time.monotonic()
    assert client.client.post("/login", data=fields).status_code == 413
    assert client.client.post("/login", data=fields, content_type="multipart/form-data").status_code == 413
    assert time.monotonic() - started < 3
    huge = {"username": "wang.teacher", "password": "x" * (2 * 1024 * 1024), "csrf_token": client.token}
    assert client.client.post("/login", data=huge).status_code == 413
    assert hash_checks == []
    assert post_login(client, "wang.teacher", "correct-horse").status_code == 302
