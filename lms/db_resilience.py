"""Riding through a database restart (issue 12).

When PostgreSQL restarts (an upgrade, `pg_ctl restart`, a failover), every connection open at that
moment dies, and for a few seconds new ones are refused or told "the database system is starting up".
A request caught by that is not answered 500. Instead:

1. The error handlers below recognise a lost or refused connection (`is_unavailable`), roll the
   request's session back and hand the decision to `RerunMiddleware`, which wraps the Flask app.
2. If no commit of this request has succeeded yet (a Session `after_commit` event counts them), its
   body can be read again, and it has not been re-run twice already, the middleware waits for the
   database (a ping with a short backoff, DB_RECONNECT_WAIT_SECONDS at most, for the whole request)
   and runs the request again from the start, in a fresh request context: nothing of the failed try
   was written, and nothing of it (session cookie, flashed messages) is sent.
3. Otherwise — a commit already succeeded (part of the work is saved; running it again could do it
   twice), an upload whose body has been consumed, or the database did not come back in time — the
   answer is 503 with Retry-After: a Chinese page, or JSON for /api/, never a 500 trace.

A commit whose answer is lost with the connection does not count as succeeded, so a request can be
re-run after a commit that the server did in fact make. That is safe for what the site credits:
a heartbeat sent again merges its intervals into those stored (nothing is counted twice), a quiz
attempt is graded once ("a finished one shows its result"), and completions settle under a unique
completion_key (lms/courses/completion.py settle_completion).

A view whose every write is idempotent in that way can say so with `@rerun_safe`: it is then re-run
even after one of its commits succeeded (a quiz submission commits its answers, the grade and the
course's record one after another; run again, it finds the attempt graded and the record there and
shows the same result, 🎉 included), instead of a 503 that leaves the learner unsure what was saved.

Request bodies are kept while they are read (up to REPLAY_LIMIT bytes) so that a re-run reads the
same body; a larger one, or a multipart upload once read (its files may already be in the media
folder), is not re-run. A streamed response is checked up to its first chunk; a connection lost after
that ends the response short (the client sees an incomplete answer, never a wrong complete one).

SQLite has no server to restart: its errors ("database is locked" above all, which busy_timeout has
already waited for) are never handled here.
"""
from __future__ import annotations

import functools
import io
import logging
import time

from flask import Response, current_app, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, PendingRollbackError, SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import InternalServerError

from lms.extensions import db

KEY = "lms.db_resilience"
REPLAY_LIMIT = 1024 * 1024  # MAX_FORM_MEMORY_SIZE: every form without files fits
# SQLSTATE: connection exceptions (08…), and the server shutting down or not ready yet (57P01–57P03)
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
UNAVAILABLE_MESSAGES = (
    "server closed the connection", "terminating connection", "the database system is starting up",
    "the database system is shutting down", "the database system is in recovery mode",
    "not yet accepting connections", "connection refused", "connection failed", "could not connect",
    "connection is closed", "connection not open", "consuming input failed", "connection reset",
    "broken pipe", "no connection to the server", "ssl syscall", "can't reconnect until invalid transaction",
)
log = logging.getLogger(__name__)


# ---- recognising a lost database ---------------------------------------------------------------------
def _chain(exc: BaseException):
    seen = set()
    todo = [exc]
    while todo and len(seen) < 20:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]


def _from_driver(e: BaseException) -> bool:
    return isinstance(e, (DBAPIError, PendingRollbackError)) or type(e).__module__.startswith(("psycopg", "psycopg2"))


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database connection was lost or could not be made (a restart)."""
    errors = list(_chain(exc))
    if any(type(e).__module__.startswith("sqlite3") for e in errors):
        return False  # SQLite: "database is locked" is contention, not a restart
    for e in errors:
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        sqlstate = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            return True
        if _from_driver(e) and any(m in str(e).lower() for m in UNAVAILABLE_MESSAGES):
            return True
    return False


def database_back(deadline: float) -> bool:
    """Ping until the database answers (True) or `deadline` (time.monotonic()) passes (False)."""
    delay = 0.05
    while True:
        try:
            with db.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                return False
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


# ---- one request's state, shared by its tries ---------------------------------------------------------
class _State:
    __slots__ = ("commits", "failed", "streamed", "tries", "deadline", "body", "idempotent")

    def __init__(self, body):
        self.commits, self.failed, self.streamed, self.tries, self.deadline, self.body = 0, None, False, 1, None, body
        self.idempotent = False


def _state() -> _State | None:
    return request.environ.get(KEY)


def rerun_safe(view):
    """Mark a view whose writes are all idempotent: re-run after a lost connection even when one of its
    commits succeeded (see the module's docstring)."""
    @functools.wraps(view)
    def marked(*args, **kwargs):
        state = _state()
        if state is not None:
            state.idempotent = True
        return view(*args, **kwargs)

    return marked


@event.listens_for(Session, "after_commit")
def _count_commit(session):
    from flask import has_request_context

    if has_request_context():
        state = _state()
        if state is not None:
            state.commits += 1


class _Body:
    """The request body as read so far, so that a re-run reads it again (then the rest, if any)."""

    def __init__(self, stream, multipart: bool):
        self.stream, self.multipart = stream, multipart
        self.kept, self.read_bytes = bytearray(), 0

    @property
    def replayable(self) -> bool:
        return self.read_bytes == 0 or (self.kept is not None and not self.multipart)

    def _keep(self, data: bytes) -> bytes:
        self.read_bytes += len(data)
        if self.kept is not None:
            if len(self.kept) + len(data) > REPLAY_LIMIT:
                self.kept = None  # too large to hold: this request is not re-run
            else:
                self.kept += data
        return data

    def read(self, size=-1):
        return self._keep(self.stream.read() if size is None or size < 0 else self.stream.read(size))

    def readline(self, size=-1):
        return self._keep(self.stream.readline() if size is None or size < 0 else self.stream.readline(size))

    def reader(self) -> "_Replay":
        return _Replay(bytes(self.kept or b""), self)


class _Replay:
    """What a try reads: the bytes an earlier try read, then on from the client."""

    def __init__(self, prefix: bytes, body: _Body):
        self.prefix, self.body = io.BytesIO(prefix), body

    def read(self, size=-1):
        if size is None or size < 0:
            return self.prefix.read() + self.body.read()
        data = self.prefix.read(size)
        return data if data else self.body.read(size)

    def readline(self, size=-1):
        line = self.prefix.readline(size)
        if line.endswith(b"\n") or (size is not None and 0 <= size <= len(line)):
            return line
        return line + self.body.readline(-1 if size is None or size < 0 else size - len(line))

    def readlines(self, hint=-1):
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")

    def close(self):
        pass


def _has_body(environ) -> bool:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > 0 or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


# ---- inside Flask: noticing the failure ----------------------------------------------------------------
def _on_database_error(error):
    if not is_unavailable(error) or _state() is None:
        raise error
    return _lost(error)


def _on_internal_error(error):
    """Whatever became a 500 (an after_request hook, an error page that queried): the same check."""
    original = getattr(error, "original_exception", None)
    if original is not None and is_unavailable(original) and _state() is not None:
        return _lost(original)
    return error


def _lost(error) -> Response:
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001  (the connection is gone: nothing to roll back on it)
        pass
    state = _state()
    state.failed = error
    log.warning("database unavailable during %s %s (try %d, %d commits): %s", request.method, request.path,
                state.tries, state.commits, str(error).strip().splitlines()[0][:200])
    return Response(status=503)  # a placeholder: RerunMiddleware answers instead


def _end_session(_exc):
    """Before Flask-SQLAlchemy's own teardown (teardowns run last-registered first): a request that
    read, then lost its connection after its answer was made, has nothing left to roll back. Its
    answer stands; the failed ROLLBACK must neither replace it with a 500 nor leave the broken session
    in the registry for a later app context that happens to get the same id."""
    try:
        db.session.remove()
    except SQLAlchemyError as error:
        if not is_unavailable(error):
            raise
        log.warning("database connection lost after the answer was made: %s", str(error).strip().splitlines()[0][:200])
        try:
            db.session.close()
        except SQLAlchemyError:
            pass
        db.session.registry.clear()


def _note_streamed(response):
    state = _state()
    if state is not None and response.is_streamed and not response.direct_passthrough:
        state.streamed = True
    return response


def unavailable_response(saved_part: bool, retry_after: int) -> Response:
    """503 with Retry-After, rendered without the database (no user, no context processors)."""
    if saved_part:
        message = _("服务器刚才连不上数据库，您这次的操作可能只保存了一部分。请刷新页面查看，需要的话再做一次。")
    else:
        message = _("服务器正在重新连接数据库，您这次的操作没有保存。请等几秒钟后再试一次。")
    if request.path.startswith("/api/") or request.is_json:
        response = jsonify(error="db_unavailable", message=message, retry_after=retry_after)
    else:
        from lms.elder.services import ELDER_COOKIE

        template = current_app.jinja_env.get_template("errors/db_unavailable.html")
        response = Response(template.render(message=message, retry_after=retry_after, request=request,
                                            elder=request.cookies.get(ELDER_COOKIE) == "1"),
                            mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- around Flask: re-running or answering 503 -----------------------------------------------------------
class RerunMiddleware:
    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        body = None
        if _has_body(environ):
            multipart = environ.get("CONTENT_TYPE", "").lower().startswith("multipart/")
            body = _Body(environ["wsgi.input"], multipart)
        state = _State(body)
        wait = float(self.app.config["DB_RECONNECT_WAIT_SECONDS"])
        while True:
            env = dict(environ)
            env[KEY] = state
            if body is not None:
                env["wsgi.input"] = body.reader()
            head = []

            def keep_head(status, headers, exc_info=None):
                head[:] = [status, headers, exc_info]
                return lambda data: start_response(*head)(data)  # the old write(): nothing here uses it

            try:
                app_iter = self.wsgi_app(env, keep_head)
            except Exception as exc:  # raised past Flask's handlers (a teardown): the same rules
                if not is_unavailable(exc):
                    raise
                state.failed, app_iter = exc, None
            if state.failed is None and state.streamed:
                app_iter = self._first_chunk(env, app_iter, state)
            if state.failed is None:
                start_response(*head)
                return app_iter
            _close(app_iter)
            if state.deadline is None:
                state.deadline = time.monotonic() + wait
            rerun = ((state.commits == 0 or state.idempotent) and not state.streamed
                     and state.tries <= self.app.config["DB_MAX_RERUNS"]
                     and (body is None or body.replayable))
            if rerun:
                with self.app.app_context():
                    rerun = database_back(state.deadline)
            if not rerun:
                return self._unavailable(env, state, start_response)
            state.tries += 1
            state.failed = None

    def _first_chunk(self, env, app_iter, state):
        iterator = iter(app_iter)
        try:
            first = next(iterator)
        except StopIteration:
            return app_iter
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            state.failed = exc
            return app_iter
        return _Prepended(first, iterator, app_iter)

    def _unavailable(self, env, state, start_response):
        env["wsgi.input"] = io.BytesIO()
        retry_after = max(1, min(30, int(self.app.config["DB_RECONNECT_WAIT_SECONDS"] // 3) or 1))
        with self.app.request_context(env):  # a fresh one: nothing of the failed try (cookie, flashes)
            response = self.app.process_response(unavailable_response(state.commits > 0, retry_after))
            return response(env, start_response)


class _Prepended:
    def __init__(self, first, iterator, original):
        self.first, self.iterator, self.original = first, iterator, original

    def __iter__(self):
        yield self.first
        yield from self.iterator

    def close(self):
        _close(self.original)


def _close(app_iter) -> None:
    close = getattr(app_iter, "close", None)
    if close is not None:
        close()


def init_app(app) -> None:
    """Call before http_security.init_app, so that its ProxyFix wraps this."""
    import os

    app.config.setdefault("DB_RECONNECT_WAIT_SECONDS", float(os.environ.get("LMS_DB_RECONNECT_WAIT_SECONDS", "15")))
    app.config.setdefault("DB_MAX_RERUNS", 2)
    app.register_error_handler(SQLAlchemyError, _on_database_error)
    app.register_error_handler(InternalServerError, _on_internal_error)
    app.after_request(_note_streamed)
    app.teardown_appcontext(_end_session)
    app.wsgi_app = RerunMiddleware(app, app.wsgi_app)
