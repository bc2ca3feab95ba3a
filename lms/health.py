"""GET /healthz — the state of database, media tool, search index and job queue.

Anyone gets the overall status (what a load balancer needs); the checks themselves, with paths and
error texts, only administrators and callers on this machine (monitoring)."""
import ipaddress

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from sqlalchemy import text

from lms.extensions import db
from lms.media import ffmpeg_tools

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks = run_checks()
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ok" if ok else "degraded"}
    if may_see_details():
        body.update(checks=checks, version=current_app.name)
    return jsonify(body), 200 if ok else 503


def may_see_details() -> bool:
    """Administrators, and callers on this machine. Behind a proxy every request arrives from
    loopback: unless LMS_TRUSTED_PROXIES lets ProxyFix restore the client's address, a request
    carrying X-Forwarded-For came through a proxy and counts as remote."""
    proxied_unseen = not current_app.config["TRUSTED_PROXIES"] and "X-Forwarded-For" in request.headers
    if _is_loopback(request.remote_addr) and not proxied_unseen:
        return True
    try:
        return current_user.is_authenticated and current_user.role == "admin"
    except Exception:  # the database is down, so nobody can be recognised: the status alone
        db.session.rollback()
        return False


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:  # a unix socket or nonsense: not provably local
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def run_checks() -> dict:
    """Every check by name, each a dict with "ok" (also what `lms doctor` builds on)."""
    from lms.jobs import queue_state

    return {"database": database_check(), "ffmpeg": ffmpeg_check(), "search": search_check(), "jobs": queue_state()}


def database_check() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as exc:  # report, never raise: this is what monitoring reads
        db.session.rollback()
        return {"ok": False, "error": str(exc)[:200]}


def ffmpeg_check() -> dict:
    return {"ok": ffmpeg_tools.ffmpeg_available()}


def search_check() -> dict:
    """The search index: exists and opens, how many documents and courses, when last written.
    Missing is fine only while there is nothing published to find."""
    from lms.courses.models import Course
    from lms.search.index import index_state

    try:
        state = index_state()
        published = Course.query.filter_by(published=True).count()
    except Exception as exc:  # a corrupt or unreadable index
        return {"ok": False, "error": str(exc)[:200]}
    state["published_courses"] = published
    state["in_step"] = state["courses"] == published
    state["ok"] = state["exists"] or published == 0
    if not state["ok"]:
        state["hint"] = "run: lms search reindex"
    return state
