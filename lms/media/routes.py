"""Media serving (Range 206 from Flask, or X-Accel-Redirect to nginx) and video upload/status."""
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, \
    send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from lms.courses import authors, videos
from lms.courses.models import Lesson
from lms.extensions import db
from lms.media import services, upload_gate
from lms.media.forms import VideoUploadForm
from lms.media.models import VideoAsset

bp = Blueprint("media", __name__)

# lazy: rendered in the language of the request that shows them
STATUS_LABELS = {"pending": _l("等待处理"), "processing": _l("处理中"), "ready": _l("可播放"), "failed": _l("失败")}


@bp.get("/media/<path:relpath>")
@login_required
def serve(relpath):
    """Only files the signed-in user may see; anything else is 404, so nothing reveals that it exists."""
    if any(part in ("", ".", "..") or part.startswith(".") for part in relpath.split("/")):
        abort(404)  # no traversal, no hidden or partial (.tmp-) files
    root = (Path(current_app.config["DATA_DIR"]) / "media").resolve()
    path = (root / relpath).resolve()
    if root not in path.parents or not path.is_file() or not videos.media_visible_to(current_user, relpath):
        abort(404)
    prefix = current_app.config.get("MEDIA_ACCEL_PREFIX")
    if prefix:
        response = Response(headers={"X-Accel-Redirect": prefix.rstrip("/") + "/" + relpath})
        response.headers["Content-Type"] = ""
        return response
    response = send_file(path, conditional=True, max_age=86400)
    response.headers["Accept-Ranges"] = "bytes"
    return response


def _authored_asset(asset_id: int) -> VideoAsset:
    """An upload (or imported video) of a course the user authors; 404 for every other asset.
    Learners are refused (403) before any lookup, as on every /admin page."""
    if current_user.role not in ("admin", "instructor"):
        abort(403)
    asset = db.session.get(VideoAsset, asset_id) or abort(404)
    lesson = (db.session.get(Lesson, asset.lesson_id) if asset.lesson_id
              else Lesson.query.filter_by(video_id=asset.id).first())
    if lesson is None or not authors.may_author(current_user, lesson.course_id):
        abort(404)
    return asset


@upload_gate.guard("media.upload", files_to_disk=True)
def _judge_video_upload(lesson_id: int) -> int:
    """Before any byte of the body is read: only an author of this lesson's course may send one."""
    authors.authored_lesson_or_abort(lesson_id)
    return current_app.config["MAX_CONTENT_LENGTH"]


def asset_status(asset: VideoAsset | None) -> dict:
    if asset is None:
        return {"status": "none", "label": _("没有视频")}
    return {"id": asset.id, "status": asset.status, "label": str(STATUS_LABELS[asset.status]),
            "progress": asset.progress, "error": asset.error, "duration": asset.duration,
            "renditions": sorted(asset.renditions)}


def latest_upload(lesson: Lesson) -> VideoAsset | None:
    return VideoAsset.query.filter_by(lesson_id=lesson.id).order_by(VideoAsset.id.desc()).first()


@bp.get("/admin/videos")
@login_required
def overview():
    if current_user.role not in ("admin", "instructor"):
        abort(403)
    courses = authors.authored_courses(current_user)
    uploads = {lesson.id: latest_upload(lesson) for course in courses for lesson in course.active_lessons}
    return render_template("media/overview.html", courses=courses, uploads=uploads, labels=STATUS_LABELS)


@bp.route("/admin/lessons/<int:lesson_id>/video", methods=["GET", "POST"])
@login_required
def upload(lesson_id):
    lesson = authors.authored_lesson_or_abort(lesson_id)
    form = VideoUploadForm()
    if form.validate_on_submit():
        video, captions = form.video.data, form.captions.data
        try:
            asset = services.accept_upload(
                lesson, current_user.id, upload_gate.saved_upload(video), video.filename,
                upload_gate.saved_upload(captions) if captions else None, captions.filename if captions else "")
        except services.UploadRejected as exc:
            getattr(form, exc.field).errors.append(str(exc))
        else:
            from lms.jobs import enqueue_transcode

            enqueue_transcode(asset.id)
            flash(_("已上传，正在排队转码。处理完成前，学员仍观看原来的视频。"))
            return redirect(url_for("media.upload", lesson_id=lesson.id))
    # parts not claimed by accept_upload are removed when the request ends (UploadRequest.close)
    return render_template("media/upload.html", lesson=lesson, form=form, current=asset_status(lesson.video),
                           latest=asset_status(latest_upload(lesson))), 400 if form.errors else 200


@bp.get("/admin/videos/<int:asset_id>/status")
@login_required
def status(asset_id):
    return jsonify(asset_status(_authored_asset(asset_id)))


@bp.post("/admin/videos/<int:asset_id>/retry")
@login_required
def retry(asset_id):
    asset = _authored_asset(asset_id)
    if asset.status == "failed":
        services.retry(asset)
        from lms.jobs import enqueue_transcode

        enqueue_transcode(asset.id)
        flash(_("已重新排队处理。"))
    return redirect(url_for("media.upload", lesson_id=asset.lesson_id) if asset.lesson_id else url_for("media.overview"))


@bp.app_errorhandler(413)
def too_large(error):
    limit_mb = max(1, (request.max_content_length or 0) // (1024 * 1024))
    return render_template("error.html", code=413,
                           message=_("上传的内容太大，最多 %(mb)s MB。", mb=limit_mb)), 413
