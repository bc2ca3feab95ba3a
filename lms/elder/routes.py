"""长辈版 switches, the help page that names its aliases, and answer-by-answer quiz checking."""
from urllib.parse import urlsplit

from flask import Blueprint, abort, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from lms.courses import services as course_services
from lms.elder import services
from lms.elder.services import continue_target
from lms.quizzes.models import QuizAttempt

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
    """长辈版: show one question's verdict and explanation right after it is answered.

    Nothing is recorded and the quiz goes on, whatever the answer. Without JavaScript the "看答案"
    button posts the whole form here and the page comes back with the explanation under that question;
    with JavaScript elder.js swaps the same markup in place.
    """
    try:
        lesson = course_services.visible_quiz_lesson(lesson_id)
    except course_services.LessonNotVisible:
        abort(404)
    quiz = lesson.quiz
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    from lms.quizzes.routes import _picked_from_form

    picked = _picked_from_form(quiz, request.form)
    wanted = {int(v) for v in request.form.getlist("checked") if v.isdigit()}
    if request.form.get("check", "").isdigit():
        wanted.add(int(request.form["check"]))
    checked = {
        q.position: services.check_answers(q, picked.get(q.position, set()))
        for q in quiz.questions
        if q.position in wanted and picked.get(q.position)
    }
    attempts = QuizAttempt.query.filter_by(user_id=current_user.id, quiz_id=quiz.id).order_by(
        QuizAttempt.created_at.desc()).all()
    context = dict(lesson=lesson, course=lesson.course, quiz=quiz, form=form, attempts=attempts,
                   picked=picked, results=None, attempt=None, missing=[], record=None, checked=checked,
                   focus=request.form.get("check"))
    return render_template("quizzes/take.html", **context)


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
