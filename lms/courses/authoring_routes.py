"""Course and lesson authoring in the console (/admin/courses): thin views over lms/courses/authoring.py.

Every view needs a signed-in admin or instructor (403 for anyone else, before anything is looked up);
an instructor only the courses they author (lms/courses/authors.py: 403 otherwise); a course or lesson
that does not exist, or a lesson of another course, answers 404. Requests that may carry a file (the
course forms with their cover picture, captions) are judged by lms/media/upload_gate.py before their
body is read, and read only up to their own limit."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.admin.access import roles_required
from lms.admin.navigation import AUTHORS
from lms.audiences import AUDIENCES
from lms.courses import authoring, rules as course_rules
from lms.courses.authors import author_names, authored_course_or_abort, authored_courses, authored_lesson_or_abort
from lms.courses.forms import (SLIDES_EXAMPLE, ActionForm, CaptionsForm, EditCourseForm, LessonForm, MoveForm,
                               NewCourseForm, NewLessonForm, SlidesForm)
from lms.courses.models import Course, Lesson
from lms.courses.services import player_settings
from lms.extensions import db
from lms.media import upload_gate
from lms.media.routes import STATUS_LABELS

bp = Blueprint("authoring", __name__, url_prefix="/admin/courses")

FORM_OVERHEAD = 256 * 1024  # the course form's text fields, CSRF token and multipart headers around a file
CAPTIONS_LIMIT = 1024 * 1024


def _lesson(course_id: int, lesson_id: int) -> tuple[Course, Lesson]:
    lesson = authored_lesson_or_abort(lesson_id, course_id)
    return lesson.course, lesson


def _author_role() -> None:
    if current_user.role not in AUTHORS:
        abort(403)


@upload_gate.guard("authoring.new_course")
def _judge_new_course() -> int:
    """Before the body (a cover picture, perhaps) is read: only an admin or instructor, and small."""
    _author_role()
    return authoring.MAX_COVER_BYTES + FORM_OVERHEAD


@upload_gate.guard("authoring.edit_course")
def _judge_course_edit(course_id: int) -> int:
    _author_role()
    authored_course_or_abort(course_id)
    return authoring.MAX_COVER_BYTES + FORM_OVERHEAD


@upload_gate.guard("authoring.captions")
def _judge_captions(course_id: int, lesson_id: int) -> int:
    _author_role()
    _lesson(course_id, lesson_id)
    return CAPTIONS_LIMIT + FORM_OVERHEAD


@bp.errorhandler(413)
def too_large(error):
    """A body over its limit (a 200 MB cover picture) is refused before it is read: nothing is saved."""
    limit_mb = max(1, (request.max_content_length or 0) // (1024 * 1024))
    what = _("字幕文件") if request.endpoint == "authoring.captions" else _("封面图片")
    return render_template("error.html", code=413, message=_(
        "%(what)s太大：最多 %(mb)s MB。什么都没有保存，请换一个小一些的文件再试。", what=what, mb=limit_mb)), 413


def _put_error(form, exc: authoring.AuthoringError) -> None:
    field = form._fields.get(exc.field) if exc.field else None
    if field is not None and exc.field != "csrf_token":
        field.errors = list(field.errors) + [exc.message]
    else:
        form.form_errors.append(exc.message)


def _submitted(form, change) -> tuple[bool, object]:
    """(True, what `change()` returned) when the form is valid and the change is made; else (False, None)
    with every error on its field and nothing saved."""
    if not form.validate_on_submit():
        return False, None
    try:
        return True, change()
    except authoring.AuthoringError as exc:
        db.session.rollback()
        _put_error(form, exc)
        return False, None


def _cover(form):
    storage = form.cover.data
    return storage.stream if storage is not None and getattr(storage, "filename", "") else None


# ---- the list of courses, a new course ------------------------------------------------------------

@bp.get("")
@roles_required(*AUTHORS)
def courses():
    return render_template("courses/admin_courses.html", courses=authored_courses(current_user))


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*AUTHORS)
def new_course():
    form = NewCourseForm()
    if request.method == "GET":
        return render_template("courses/admin_course_new.html", form=form)
    made, course = _submitted(form, lambda: authoring.create_course(
        current_user, form.fields_data(), slug=(form.slug.data or "").strip(), cover=_cover(form)))
    if not made:
        return render_template("courses/admin_course_new.html", form=form), 400
    flash(_("课程已创建（未发布）。请添加课时，准备好后再发布。"))
    return redirect(url_for("authoring.edit_course", course_id=course.id))


# ---- one course -------------------------------------------------------------------------------

def _course_page(course: Course, form: EditCourseForm | None = None, status: int = 200,
                 lesson_form: NewLessonForm | None = None, error: str | None = None):
    """The course's page; its settings form as submitted, or (None) as the course is."""
    if form is None:
        form = EditCourseForm(formdata=None)
        form.fill_from(course)
    return render_template(
        "courses/admin_course.html", course=course, form=form, lesson_form=lesson_form or NewLessonForm(),
        authors=author_names(course), versions=course_rules.versions_of(course),
        problems=authoring.publish_problems(course), retired=[lesson for lesson in course.lessons if lesson.retired],
        minutes=course_rules.video_minutes(course), labels=STATUS_LABELS, audiences=AUDIENCES, error=error,
        uploads={lesson.id: authoring.latest_upload(lesson) for lesson in course.active_lessons}), status


@bp.route("/<int:course_id>", methods=["GET", "POST"])
@roles_required(*AUTHORS)
def edit_course(course_id):
    course = authored_course_or_abort(course_id)
    if request.method == "GET":
        return _course_page(course)
    form = EditCourseForm()
    saved, change = _submitted(form, lambda: authoring.update_course(
        current_user, course, form.fields_data(bool(form.published.data)), cover=_cover(form)))
    if not saved:
        return _course_page(course, form, 400)
    flash(_("已保存。") + (_("学习规则有变化，课程进入第 %(v)s 版；已开始学习的学员仍按原来的规则记学时。",
                            v=change.new_version) if change.bumped else ""))
    return redirect(url_for("authoring.edit_course", course_id=course.id))


@bp.post("/<int:course_id>/publish")
@roles_required(*AUTHORS)
def publish(course_id):
    course = authored_course_or_abort(course_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    wanted = request.form.get("published") == "1"
    try:
        authoring.set_published(current_user, course, wanted)
    except authoring.AuthoringError as exc:
        return _course_page(course, status=400, error=exc.message)
    flash(_("课程已发布，学员现在可以学习。") if wanted else _("课程已下线，学员暂时看不到它；已记入的学时不变。"))
    return redirect(url_for("authoring.edit_course", course_id=course.id))


# ---- lessons ----------------------------------------------------------------------------------

@bp.post("/<int:course_id>/lessons")
@roles_required(*AUTHORS)
def add_lesson(course_id):
    course = authored_course_or_abort(course_id)
    lesson_form = NewLessonForm()
    added, lesson = _submitted(lesson_form, lambda: authoring.add_lesson(current_user, course, lesson_form.title.data))
    if not added:
        return _course_page(course, status=400, lesson_form=lesson_form)
    flash(_("已添加课时。写好课文，再加视频或测验。"))
    return redirect(url_for("authoring.edit_lesson", course_id=course.id, lesson_id=lesson.id))


def _lesson_page(course: Course, lesson: Lesson, form: LessonForm | None = None, status: int = 200,
                 preview_html: str | None = None, slides_form: SlidesForm | None = None,
                 captions_form: CaptionsForm | None = None):
    """The lesson's page; each form as submitted, or (None) as the lesson is."""
    if form is None:
        form = LessonForm(formdata=None, obj=lesson)
        form.text.data = lesson.text_markdown
    latest = authoring.latest_upload(lesson)
    slides_form = slides_form or SlidesForm()
    if not slides_form.script.data:  # the script the lesson's video (or its latest one) was made from
        made_from = [asset.slide_script for asset in (latest, lesson.video) if asset is not None and asset.slide_script]
        slides_form.script.data = made_from[0] if made_from else SLIDES_EXAMPLE
    return render_template(
        "courses/admin_lesson.html", course=course, lesson=lesson, form=form,
        slides_form=slides_form, captions_form=captions_form or CaptionsForm(), labels=STATUS_LABELS,
        preview_html=preview_html if preview_html is not None else lesson.text_html,
        latest=latest if latest is not None and latest.id != lesson.video_id else None), status


@bp.route("/<int:course_id>/lessons/<int:lesson_id>", methods=["GET", "POST"])
@roles_required(*AUTHORS)
def edit_lesson(course_id, lesson_id):
    course, lesson = _lesson(course_id, lesson_id)
    if request.method == "GET":
        return _lesson_page(course, lesson)
    form = LessonForm()
    if request.form.get("action") == "preview":  # without JavaScript: show the preview, save nothing
        shown, html = _submitted(form, lambda: authoring.markdown_preview(form.text.data or ""))
        return _lesson_page(course, lesson, form, 200 if shown else 400, preview_html=html)
    saved, _nothing = _submitted(form, lambda: authoring.update_lesson(current_user, lesson, form.title.data,
                                                                        form.text.data or ""))
    if not saved:
        return _lesson_page(course, lesson, form, 400)
    flash(_("课时已保存。"))
    return redirect(url_for("authoring.edit_lesson", course_id=course.id, lesson_id=lesson.id))


@bp.post("/<int:course_id>/lessons/<int:lesson_id>/move")
@roles_required(*AUTHORS)
def move_lesson(course_id, lesson_id):
    course, lesson = _lesson(course_id, lesson_id)
    form = MoveForm()
    if not form.validate_on_submit() or lesson.retired:
        abort(400)
    moved = authoring.move_lesson(current_user, lesson, form.direction.data)
    if request.accept_mimetypes.best == "application/json":  # reorder.js: the page moves the row itself
        return jsonify(moved=moved, order=[item.id for item in course.active_lessons])
    return redirect(url_for("authoring.edit_course", course_id=course.id) + f"#lesson-{lesson.id}")


@bp.post("/<int:course_id>/lessons/<int:lesson_id>/retire")
@roles_required(*AUTHORS)
def retire_lesson(course_id, lesson_id):
    return _set_retired(course_id, lesson_id, True)


@bp.post("/<int:course_id>/lessons/<int:lesson_id>/restore")
@roles_required(*AUTHORS)
def restore_lesson(course_id, lesson_id):
    return _set_retired(course_id, lesson_id, False)


def _set_retired(course_id: int, lesson_id: int, retired: bool):
    course, lesson = _lesson(course_id, lesson_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        change = authoring.set_retired(current_user, lesson, retired)
    except authoring.AuthoringError as exc:
        db.session.rollback()
        return _course_page(course, status=400, error=exc.message)
    message = _("已停用这一节：学员不再看到它，学习记录保留。") if retired else _("已恢复这一节。")
    if change is not None and change.bumped:
        message += _("课程进入第 %(v)s 版；已开始学习的学员仍按原来的课时要求记学时。", v=change.new_version)
    flash(message)
    return redirect(url_for("authoring.edit_course", course_id=course.id))


@bp.post("/<int:course_id>/lessons/<int:lesson_id>/slides")
@roles_required(*AUTHORS)
def slides(course_id, lesson_id):
    slides_form = SlidesForm()
    return _lesson_form_action(course_id, lesson_id, "slides_form", slides_form,
                               lambda lesson: _queue_slides(lesson, slides_form.script.data),
                               _("幻灯片视频已排队生成。生成并转码完成前，学员仍看原来的视频。"))


@bp.post("/<int:course_id>/lessons/<int:lesson_id>/captions")
@roles_required(*AUTHORS)
def captions(course_id, lesson_id):
    captions_form = CaptionsForm()
    upload = captions_form.captions.data
    return _lesson_form_action(course_id, lesson_id, "captions_form", captions_form,
                               lambda lesson: authoring.replace_captions(
                                   current_user, lesson, upload.stream.read(CAPTIONS_LIMIT + 1), upload.filename),
                               _("字幕已更新。"))


def _queue_slides(lesson: Lesson, script: str):
    asset = authoring.queue_slide_video(current_user, lesson, script)
    from lms.jobs import enqueue_transcode

    enqueue_transcode(asset.id)
    return asset


def _lesson_form_action(course_id: int, lesson_id: int, form_name: str, form, action, message: str):
    """A form on the lesson page that does one thing to the lesson: the lesson page again with the
    form's errors (400), or back to it with `message`."""
    course, lesson = _lesson(course_id, lesson_id)
    done, _result = _submitted(form, lambda: action(lesson))
    if not done:
        return _lesson_page(course, lesson, status=400, **{form_name: form})
    flash(message)
    return redirect(url_for("authoring.edit_lesson", course_id=course.id, lesson_id=lesson.id))


@bp.post("/markdown-preview")
@roles_required(*AUTHORS)
def markdown_preview():
    """The live preview of lesson text (markdown-preview.js): the same sanitiser as import, as HTML."""
    if not ActionForm().validate_on_submit():
        return jsonify(error=_("页面已过期，请刷新后再试")), 400
    try:
        return jsonify(html=authoring.markdown_preview(request.form.get("text", "")))
    except authoring.AuthoringError as exc:
        return jsonify(error=exc.message), 400


# ---- preview as a learner ---------------------------------------------------------------------

def _preview(course: Course) -> authoring.Preview:
    return authoring.Preview(course, request.args.get("audience", ""))


@bp.get("/<int:course_id>/preview")
@roles_required(*AUTHORS)
def preview_course(course_id):
    """The course page exactly as a learner of the chosen audience who has not started sees it; read-only."""
    course = authored_course_or_abort(course_id)
    preview = _preview(course)
    return render_template("courses/course.html", course=course, states=preview.states(), record=None,
                           rules=course_rules.current_rules(course), preview=preview,
                           elder_mode=preview.audience == "elder")


@bp.get("/<int:course_id>/preview/<int:lesson_id>")
@roles_required(*AUTHORS)
def preview_lesson(course_id, lesson_id):
    """A lesson page as that learner sees it: no heartbeat, no reading clock, no quiz attempt is written."""
    course, lesson = _lesson(course_id, lesson_id)
    if lesson.retired:
        abort(404)
    preview = _preview(course)
    lessons = course.active_lessons
    index = lessons.index(lesson)
    return render_template(
        "courses/lesson.html", course=course, lesson=lesson, state=preview.lesson_state(lesson), read_form=ActionForm(),
        resume_at=0.0, player=player_settings(preview.learner, lesson), preview=preview,
        elder_mode=preview.audience == "elder",
        previous=lessons[index - 1] if index else None, next=lessons[index + 1] if index + 1 < len(lessons) else None)
