"""长辈版 switches, the help page that names its aliases, and answer-by-answer quiz checking."""
from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from lms.elder import services
from lms.elder.services import continue_target
from lms.quizzes import services as quiz_services
from lms.quizzes.routes import quiz_lesson_or_404, render_quiz_page, shown_values

bp = Blueprint("elder", __name__)


def _back(default_endpoint="courses.catalogue") -> str:
    target = request.form.get("next") or request.referrer or ""
    parts = urlsplit(target)
    if parts.netloc and parts.netloc != request.host:
        return url_for(default_endpoint)  # never an open redirect
    path = parts.path + (("?" + parts.query) if parts.query else "")
    if not path.startswith("/") or path.startswith("//"):
        return url_for(default_endpoint)
    return path


def _set_cookie(response, name, value):
    response.set_cookie(name, value, max_age=services.COOKIE_MAX_AGE, samesite="Lax", httponly=True,
                        secure=request.is_secure)


@bp.post("/prefs/elder")
def toggle_elder():
    """The one-tap 长辈版 switch (also called 关怀版 / 亲情版). Works without JavaScript."""
    FlaskForm().validate_on_submit() or abort(400)
    on = request.form.get("elder") == "1"
    services.save_preferences(current_user, elder=on)
    response = redirect(_back())
    _set_cookie(response, services.ELDER_COOKIE, "1" if on else "0")
    return response


@bp.post("/prefs/font")
def set_font():
    FlaskForm().validate_on_submit() or abort(400)
    font = request.form.get("font")
    if font not in services.FONT_SCALES:
        abort(400)
    services.save_preferences(current_user, font=font)
    response = redirect(_back())
    _set_cookie(response, services.FONT_COOKIE, font)
    return response


@bp.get("/help/elder")
def help_page():
    return render_template("elder/help.html", aliases=services.ALIASES)


@bp.post("/session/ping")
def ping():
    """Keeps a tablet sign-in alive (the 继续 button of the time-out warning); the idle clock is reset
    by lms.classroom before every request."""
    return jsonify(signed_in=current_user.is_authenticated, tablet=bool(session.get("tablet")))


@bp.post("/lessons/<int:lesson_id>/quiz/check")
@login_required
def check_question(lesson_id):
    """长辈版 看答案: commit this question's answer into the learner's open attempt, then show its verdict
    (and, outside strict courses, the right answer and explanation). The first answer is the one that
    counts: a question already answered shows its committed answer, whatever this form says, and no
    verdict is ever given for an answer that is not committed.

    Without JavaScript the button posts the whole form here and the page comes back with the verdict
    under that question; with JavaScript elder.js swaps the same markup in place.
    """
    lesson = quiz_lesson_or_404(lesson_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        attempt = quiz_services.attempt_for_form(current_user.id, lesson.quiz, request.form.get("attempt", ""),
                                                 open_only=True)
    except quiz_services.AttemptNotOpen:
        return render_quiz_page(lesson, None, status=409)
    picked = shown_values(request.form, attempt)
    raw = request.form.get("check", "")
    index = int(raw) if raw.isdigit() else None
    try:
        if index is not None:
            quiz_services.commit_answer(attempt, index, picked.get(index, set()))
    except quiz_services.InvalidAnswers:
        return render_quiz_page(lesson, attempt, echo=picked, unanswered_check=index)
    return render_quiz_page(lesson, attempt, echo=picked)


@bp.app_context_processor
def _elder_context():
    """Every page knows whether it is in 长辈版, its font size and whether it runs on a class tablet."""
    user = current_user if current_user else None
    tablet = bool(session.get("tablet"))
    cookie = request.cookies.get(services.ELDER_COOKIE)
    if cookie is None and tablet and not (user and user.is_authenticated):
        cookie = "1"  # a class tablet shows its roster in 长辈版 unless someone switched it off
    elder = services.elder_mode_for(user, cookie)
    idle = None
    if session.get("tablet_learner") and user is not None and user.is_authenticated:
        from flask import current_app

        idle = current_app.config.get("TABLET_IDLE_SECONDS", 15 * 60)
    return {
        "elder_mode": elder,
        "font_scale": services.font_scale_for(user, request.cookies.get(services.FONT_COOKIE)),
        "font_scales": services.FONT_SCALES,
        "on_tablet": tablet,
        "tablet_learner": bool(session.get("tablet_learner")) and user is not None and user.is_authenticated,
        "idle_seconds": idle,
        "continue_learning": lambda: continue_target(current_user.id) if current_user.is_authenticated else None,
    }
