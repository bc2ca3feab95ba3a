from flask import Blueprint, abort, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.courses import services
from lms.courses.progress import HeartbeatRejected

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
    states = {lesson.id: services.lesson_state(current_user.id, lesson) for lesson in course.active_lessons}
    record = services.course_record(current_user.id, course)
    return render_template("courses/course.html", course=course, states=states, record=record)


@bp.get("/courses/<slug>/lessons/<lesson_slug>")
@login_required
def lesson(slug, lesson_slug):
    try:
        course = services.visible_course(slug)
    except services.LessonNotVisible:
        abort(404)
    lesson = next((item for item in course.active_lessons if item.slug == lesson_slug), None)
    if lesson is None:
        abort(404)
    lessons = course.active_lessons
    index = lessons.index(lesson)
    return render_template(
        "courses/lesson.html",
        course=course,
        lesson=lesson,
        state=services.lesson_state(current_user.id, lesson),
        resume_at=services.resume_position(current_user.id, lesson),
        player=services.player_settings(current_user, lesson),
        previous=lessons[index - 1] if index else None,
        next=lessons[index + 1] if index + 1 < len(lessons) else None,
    )


@bp.post("/api/lessons/<int:lesson_id>/heartbeat")
@login_required
def heartbeat(lesson_id):
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
    return jsonify(
        credited_seconds=round(result.credited_seconds, 2),
        watched_seconds=round(result.watched_seconds, 2),
        watched_share=round(result.watched_share, 4),
        video_done=result.video_done,
        lesson_completed=result.lesson_completed,
        course_completed=record is not None,
    )


@bp.post("/api/me/data-saver")
@login_required
def data_saver():
    """省流量: remembered per user; the player then always starts with the smallest rendition."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("enabled"), bool):
        return jsonify(error="rejected", message="enabled must be true or false"), 400
    services.set_data_saver(current_user, payload["enabled"])
    return jsonify(data_saver=current_user.data_saver)
