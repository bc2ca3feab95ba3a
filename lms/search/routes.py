"""GET /search?q= — HTML, or JSON when the client asks for it (Accept: application/json)."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.audiences import AUDIENCE_CODES, audience_label

bp = Blueprint("search", __name__)

EXAMPLES = ("诈骗", "视频通话", "白柚", "碳中和")


def _hit_urls(hit) -> tuple[str, str | None]:
    if hit.kind == "course":
        return url_for("courses.course", slug=hit.course_slug), None
    url = url_for("courses.lesson", slug=hit.course_slug, lesson_slug=hit.lesson_slug)
    return url, (f"{url}#t={hit.caption_start}" if hit.caption_start is not None else None)


def _message(result) -> str | None:
    if not result.query:
        return _("请输入想学的内容，例如：%(examples)s", examples="、".join(EXAMPLES))
    if result.no_terms:
        return _("没有可以搜索的字词。请输入课程里的词语，例如：%(examples)s", examples="、".join(EXAMPLES))
    if not result.total:
        return _("没有找到与“%(q)s”有关的课程。换个说法试试，或者看看下面这些课程。", q=result.query)
    return None


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


@bp.get("/search")
def search():
    from lms.search import query as search_service  # Whoosh (and at the first query jieba) load only where searched

    user_audience = current_user.audience if current_user.is_authenticated else None
    audience = request.args.get("audience")
    audience = audience if audience in AUDIENCE_CODES else None
    page = request.args.get("page", 1, type=int) or 1
    result = search_service.search(request.args.get("q"), user_audience=user_audience,
                                   audience=audience, page=page)
    message = _message(result)
    notice = (_("搜索词太长，只按前 %(n)s 个字搜索。", n=search_service.MAX_QUERY_CHARS)
              if result.truncated else None)
    suggestions = search_service.popular_courses(user_audience) if not result.total else []
    rows = []
    for hit in result.hits:
        url, caption_url = _hit_urls(hit)
        rows.append((hit, url, caption_url))
    if _wants_json():
        return jsonify(
            query=result.query, terms=result.terms, total=result.total, page=result.page, pages=result.pages,
            truncated=result.truncated, message=message, notice=notice,
            results=[{
                "kind": hit.kind, "title": hit.title, "course": hit.course_title, "url": url,
                "snippet": str(hit.snippet), "audiences": hit.audiences, "own_audience": hit.own_audience,
                "all_terms": hit.all_terms, "score": round(hit.score, 4),
                "caption": None if hit.caption_start is None else {
                    "start": hit.caption_start, "url": caption_url, "snippet": str(hit.caption_snippet)},
            } for hit, url, caption_url in rows],
            suggestions=[{"title": c.title, "url": url_for("courses.course", slug=c.slug), "summary": c.summary}
                         for c in suggestions],
        )
    return render_template("search/results.html", result=result, rows=rows, message=message, notice=notice,
                           suggestions=suggestions, audience=audience, user_audience=user_audience,
                           format_seconds=search_service.format_seconds, audience_label=audience_label)
