from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from lms.accounts import session_user
from lms.courses import rules, services
from lms.courses.progress import HeartbeatRejected
from lms.media import upload_gate
from lms.templating import format_hours

bp = Blueprint("courses", __name__)


@bp.get("/")
def catalogue():
    return render_template("courses/catalogue.html", groups=services.catalogue_for(current_user))


@bp.get("/courses/<slug>")
@login_required
def course(slug):
    try:
        course = services.visible_course(slug)
    except services.LessonNotVisible:
        abort(404)
    states, record = services.open_course(current_user.id, course)
    return render_template("courses/course.html", course=course, states=states, record=record,
                           rules=rules.learner_rules(current_user.id, course))


@bp.get("/courses/<slug>/cover")
def cover(slug):
    """A course's cover picture: anyone may see a published course's (the catalogue is public); an
    unpublished one's only its authors. Content-addressed, so it may be cached for long."""
    from lms.courses.authoring import cover_file
    from lms.courses.authors import may_author
    from lms.courses.models import Course

    course = Course.query.filter_by(slug=slug).first()
    path = cover_file(course) if course is not None else None
    if path is None or not (course.published or may_author(current_user, course.id)):
        abort(404)
    return send_file(path, mimetype="image/jpeg", max_age=30 * 86400)


def _visible_course_lesson(slug, lesson_slug):
    try:
        course = services.visible_course(slug)
    except services.LessonNotVisible:
        abort(404)
    lesson = next((item for item in course.active_lessons if item.slug == lesson_slug), None)
    if lesson is None:
        abort(404)
    return course, lesson


@bp.get("/courses/<slug>/lessons/<lesson_slug>")
@login_required
def lesson(slug, lesson_slug):
    course, lesson = _visible_course_lesson(slug, lesson_slug)
    lessons = course.active_lessons
    index = lessons.index(lesson)
    return render_template(
        "courses/lesson.html",
        course=course,
        lesson=lesson,
        state=services.open_lesson(current_user.id, lesson),
        read_form=FlaskForm(),
        resume_at=services.resume_position(current_user.id, lesson),
        player=services.player_settings(current_user, lesson),
        previous=lessons[index - 1] if index else None,
        next=lessons[index + 1] if index + 1 < len(lessons) else None,
    )


@bp.post("/courses/<slug>/lessons/<lesson_slug>/read")
@login_required
def mark_read(slug, lesson_slug):
    """我已读完 on a text-only lesson (CSRF-protected form); the server measures the reading time."""
    course, lesson = _visible_course_lesson(slug, lesson_slug)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        settled = services.mark_read(current_user.id, lesson)
    except services.NotReadingLesson:
        abort(400)
    except services.ReadTooSoon as exc:
        flash(_("请先读完课文：再过 %(s)s 秒才能点“我已读完”。", s=exc.seconds_left))
    else:
        if settled.record is not None and settled.record in settled.credited:
            flash(_("已完成本课程，获得 %(h)s 学时", h=format_hours(settled.record.hours)))
        else:
            flash(_("本节已完成。"))
    return redirect(url_for("courses.lesson", slug=course.slug, lesson_slug=lesson.slug), code=303)


@bp.post("/api/lessons/<int:lesson_id>/heartbeat")
@login_required
def heartbeat(lesson_id):
    """Every viewer, every 10 s: signed in as a SessionUser (no ORM), one SELECT and two UPDATEs. The usual
    heartbeat is answered before Flask by lms/courses/fast_heartbeat.py; this route answers the rest."""
    payload = request.get_json(silent=True)
    try:
        result, record = services.record_heartbeat(current_user, lesson_id, payload)
    except services.LessonNotVisible:
        return jsonify(error="not_visible", message=_("课程不存在或已下线")), 400
    except services.LeaseLost:
        return jsonify(error="lease_lost", player=(payload or {}).get("player"),
                       message=_("您的账号正在另一个窗口或设备上学习，这里已暂停计时。")), 409
    except HeartbeatRejected as exc:
        return jsonify(error="rejected", message=str(exc)), 400
    return jsonify(heartbeat_json(result, record))


def heartbeat_json(result, record) -> dict:
    """What the player is told of a credited heartbeat (here and in lms/courses/fast_heartbeat.py)."""
    return {
        "credited_seconds": round(result.credited_seconds, 2),
        "watched_seconds": round(result.watched_seconds, 2),
        "watched_share": round(result.watched_share, 4),
        "video_done": result.video_done,
        "lesson_completed": result.lesson_completed,
        "course_completed": record is not None,
    }


@bp.post("/api/me/data-saver")
@login_required
def data_saver():
    """省流量: remembered per user; the player then always starts with the smallest rendition."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("enabled"), bool):
        return jsonify(error="rejected", message="enabled must be true or false"), 400
    services.set_data_saver(current_user, payload["enabled"])
    return jsonify(data_saver=current_user.data_saver)


for _endpoint in ("courses.heartbeat", "courses.data_saver"):  # JSON bodies: a small limit, judged before reading
    upload_gate.guard(_endpoint)(upload_gate.json_body)
session_user.ENDPOINTS.add("courses.heartbeat")
