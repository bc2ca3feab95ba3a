"""Media serving (Range 206 from Flask, or X-Accel-Redirect to nginx) and video upload/status."""
import tempfile
from pathlib import Path

from flask import Blueprint, Request, Response, abort, current_app, flash, jsonify, redirect, render_template, \
    send_file, url_for
from flask_login import current_user, login_required

from lms.courses.models import Course, Lesson, VideoAsset
from lms.extensions import db
from lms.media import services
from lms.media.ffmpeg_tools import MediaError
from lms.media.forms import VideoUploadForm

bp = Blueprint("media", __name__)

STATUS_LABELS = {"pending": "等待处理", "processing": "处理中", "ready": "可播放", "failed": "失败"}


class StreamedUploadRequest(Request):
    """File parts of a form go straight to a named file in the uploads folder, so a 2 GB video
    is neither held in memory nor copied again after the request."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if not self.path.startswith("/admin/lessons/"):
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        return tempfile.NamedTemporaryFile(dir=services.uploads_root(), prefix=".tmp-upload-", delete=False)


@bp.get("/media/<path:relpath>")
@login_required
def serve(relpath):
    root = (Path(current_app.config["DATA_DIR"]) / "media").resolve()
    path = (root / relpath).resolve()
    if root not in path.parents or not path.is_file() or path.name.startswith(".tmp-"):
        abort(404)
    prefix = current_app.config.get("MEDIA_ACCEL_PREFIX")
    if prefix:
        response = Response(headers={"X-Accel-Redirect": prefix.rstrip("/") + "/" + relpath})
        response.headers["Content-Type"] = ""
        return response
    response = send_file(path, conditional=True, max_age=86400)
    response.headers["Accept-Ranges"] = "bytes"
    return response


def _require_author():
    if current_user.role not in ("admin", "instructor"):
        abort(403)


def asset_status(asset: VideoAsset | None) -> dict:
    if asset is None:
        return {"status": "none", "label": "没有视频"}
    return {"id": asset.id, "status": asset.status, "label": STATUS_LABELS[asset.status], "progress": asset.progress,
            "error": asset.error, "duration": asset.duration, "renditions": sorted(asset.renditions)}


def latest_upload(lesson: Lesson) -> VideoAsset | None:
    return VideoAsset.query.filter_by(lesson_id=lesson.id).order_by(VideoAsset.id.desc()).first()


@bp.get("/admin/videos")
@login_required
def overview():
    _require_author()
    courses = Course.query.order_by(Course.id).all()
    uploads = {lesson.id: latest_upload(lesson) for course in courses for lesson in course.active_lessons}
    return render_template("media/overview.html", courses=courses, uploads=uploads, labels=STATUS_LABELS)


def _saved_path(storage) -> Path:
    """Where StreamedUploadRequest put this file part."""
    storage.stream.flush()
    storage.stream.close()
    return Path(storage.stream.name)


@bp.route("/admin/lessons/<int:lesson_id>/video", methods=["GET", "POST"])
@login_required
def upload(lesson_id):
    _require_author()
    lesson = db.session.get(Lesson, lesson_id) or abort(404)
    form = VideoUploadForm()
    if form.validate_on_submit():
        video_tmp = _saved_path(form.video.data)
        source = video_tmp.with_name(video_tmp.name.removeprefix(".tmp-upload-")
                                     + Path(form.video.data.filename or "").suffix.lower())
        video_tmp.replace(source)
        captions = _saved_path(form.captions.data) if form.captions.data else None
        try:
            asset = services.create_upload_asset(lesson, source, form.video.data.filename, captions)
        except MediaError as exc:
            form.captions.errors.append(exc.reason)
            source.unlink(missing_ok=True)
        else:
            from lms.jobs import enqueue_transcode

            enqueue_transcode(asset.id)
            flash("已上传，正在排队转码。处理完成前，学员仍观看原来的视频。")
            return redirect(url_for("media.upload", lesson_id=lesson.id))
        finally:
            if captions is not None:
                captions.unlink(missing_ok=True)
    for field in (form.video, form.captions):
        if field.data and hasattr(field.data, "stream") and getattr(field.data.stream, "name", None):
            Path(field.data.stream.name).unlink(missing_ok=True)  # a rejected upload leaves nothing behind
    return render_template("media/upload.html", lesson=lesson, form=form, current=asset_status(lesson.video),
                           latest=asset_status(latest_upload(lesson))), 400 if form.errors else 200


@bp.get("/admin/videos/<int:asset_id>/status")
@login_required
def status(asset_id):
    _require_author()
    return jsonify(asset_status(db.session.get(VideoAsset, asset_id) or abort(404)))


@bp.post("/admin/videos/<int:asset_id>/retry")
@login_required
def retry(asset_id):
    _require_author()
    asset = db.session.get(VideoAsset, asset_id) or abort(404)
    if asset.status == "failed":
        services.retry(asset)
        from lms.jobs import enqueue_transcode

        enqueue_transcode(asset.id)
        flash("已重新排队处理。")
    return redirect(url_for("media.upload", lesson_id=asset.lesson_id) if asset.lesson_id else url_for("media.overview"))


@bp.app_errorhandler(413)
def too_large(error):
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    return render_template("error.html", code=413, message=f"文件太大，最大允许 {limit_mb} MB。"), 413
