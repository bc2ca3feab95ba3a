"""GET /healthz — the state of database, media tool, search index and job queue."""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from lms.extensions import db
from lms.media import ffmpeg_tools

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True, "dialect": db.engine.dialect.name}
    except Exception as exc:  # report, never raise: this is what monitoring reads
        checks["database"] = {"ok": False, "error": str(exc)[:200]}
    checks["ffmpeg"] = {"ok": ffmpeg_tools.ffmpeg_available()}
    checks["search"] = _search_check()
    from lms.jobs import queue_state

    checks["jobs"] = queue_state()
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ok" if ok else "degraded", "checks": checks, "version": current_app.name}
    return jsonify(body), 200 if ok else 503


def _search_check() -> dict:
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
