from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from lms.practices import services
from lms.templating import format_hours

bp = Blueprint("practices", __name__)


@bp.app_template_global()
def practice_finished(lesson) -> bool:
    """For the lesson page's 练一练 button: whether the signed-in learner finished its practice."""
    return current_user.is_authenticated and services.practice_finished(current_user.id, lesson)


def _visible(slug, lesson_slug):
    try:
        return services.visible_practice(slug, lesson_slug)
    except services.PracticeNotVisible:
        abort(404)


@bp.get("/courses/<slug>/lessons/<lesson_slug>/practice")
@login_required
def practice(slug, lesson_slug):
    course, lesson, practice = _visible(slug, lesson_slug)
    state = services.state_for(current_user.id, practice)
    said = request.args.get("tap") if request.args.get("tap") in ("right", "wrong") else None  # the no-JS path
    return render_template("practices/practice.html", course=course, lesson=lesson, practice=practice,
                           steps=practice.steps, screens=services.screens_of(practice), state=state,
                           said=said, form=FlaskForm())


@bp.post("/api/practices/<int:practice_id>/tap")
@login_required
def tap(practice_id):
    """One tap on the phone, judged by the server: JSON from practice.js, or the phone's own form
    without JavaScript (then back to the page). CSRF is checked for both (X-CSRFToken or the form)."""
    try:
        practice = services.visible_practice_by_id(practice_id)
    except services.PracticeNotVisible:
        abort(404)
    as_json = request.is_json
    payload = request.get_json(silent=True) if as_json else {
        "step": int(request.form["step"]) if request.form.get("step", "").isdigit() else None,
        "target": request.form.get("target")}
    try:
        state = services.tap(current_user.id, practice, payload)
    except services.BadTap:
        if as_json:
            return jsonify(error="bad_tap", message=_("没有读懂这次点击，请再点一次。")), 400
        abort(400)
    if not as_json:
        lesson = practice.lesson
        return redirect(url_for("practices.practice", slug=lesson.course.slug, lesson_slug=lesson.slug,
                                tap=state.outcome if state.outcome != "out_of_step" else None), code=303)
    body = dict(outcome=state.outcome, step=state.step, wrong=state.wrong, finished=state.finished,
                hint=state.hint, steps=len(practice.steps))
    if state.credited_hours is not None:
        body["credited"] = _("本课程已完成，获得 %(h)s 学时", h=format_hours(state.credited_hours))
    return jsonify(body), 409 if state.outcome == "out_of_step" else 200


@bp.post("/courses/<slug>/lessons/<lesson_slug>/practice/again")
@login_required
def again(slug, lesson_slug):
    """再练一遍: from the first step again (what was finished stays finished)."""
    _course, _lesson, practice = _visible(slug, lesson_slug)
    if not FlaskForm().validate_on_submit():
        abort(400)
    services.start_again(current_user.id, practice)
    return redirect(url_for("practices.practice", slug=slug, lesson_slug=lesson_slug), code=303)
