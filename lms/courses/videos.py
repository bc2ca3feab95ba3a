"""Lessons and their videos: which video a lesson plays, and who may fetch a video's files.

The media pipeline (lms/media) knows videos only; the lesson side lives here. When the pipeline has
made an asset ready it sends `video_ready`, and an upload (or a slide video made in the browser) meant
for a lesson replaces that lesson's video then, in the same commit.
"""
from __future__ import annotations

from pathlib import PurePosixPath

from sqlalchemy import and_, exists, or_

from lms.courses.models import Course, CourseAuthor, Lesson
from lms.courses.rules import record_rules
from lms.extensions import db
from lms.media.models import VideoAsset
from lms.media import slides as slide_tools
from lms.media.services import asset_uploader_id, slide_pace, video_ready
from lms.records.audit import audit


def swap_lesson_video(lesson: Lesson, asset: VideoAsset, actor_id: int | None, reason: str) -> None:
    """The one place a lesson's video changes: learners now get `asset`, and the audit log says
    who replaced which asset with which, when. Progress earned on the old asset stays with it
    (lms/courses/services.py starts afresh on the new one); credited records are untouched."""
    old_id = lesson.video_id
    lesson.video = asset
    db.session.flush()
    if old_id is not None and old_id != asset.id:
        audit(actor_id, "video.replace", lesson, f"asset {old_id} → {asset.id} ({reason})")
    change = record_rules(lesson.course)  # a course on the video-length rule: its 学时 follow the new video
    if change.bumped:
        audit(actor_id, "course.rules", f"course:{lesson.course_id}",
              f"第 {change.old_version} 版 → 第 {change.new_version} 版：" + "；".join(change.changes))


@slide_pace.connect
def _pace_of_its_course(_app, asset: VideoAsset, **_extra) -> float | None:
    """Slides made for a lesson are paced for the course's audiences, as its package's slides would be."""
    lesson = db.session.get(Lesson, asset.lesson_id) if asset.lesson_id else None
    return slide_tools.pace_for(lesson.course.audiences) if lesson else None


@video_ready.connect
def _into_its_lesson(_app, asset: VideoAsset, **_extra) -> None:
    """An asset made for a lesson (an upload, a slide script) replaces the lesson's video once ready."""
    if asset.lesson_id:
        lesson = db.session.get(Lesson, asset.lesson_id)
        swap_lesson_video(lesson, asset, actor_id=asset_uploader_id(asset), reason="upload")


def course_id_of(asset: VideoAsset) -> int | None:
    """The course of the lesson an asset was made for (whose search entry a new video changes)."""
    if not asset.lesson_id:
        return None
    return db.session.query(Lesson.course_id).filter(Lesson.id == asset.lesson_id).scalar()


def media_visible_to(user, relpath: str) -> bool:
    """Whether `user` may fetch media/<relpath>: a rendition, poster or captions file of the current
    video of a non-retired lesson of a published course, or of any video of a course they author;
    admins see everything. One query on indexed columns (renditions lie beside their poster)."""
    if user.role == "admin":
        return True
    poster = str(PurePosixPath(relpath).parent / "poster.jpg")
    belongs = or_(VideoAsset.poster_path == poster, VideoAsset.captions_path == relpath)
    published = and_(Lesson.video_id == VideoAsset.id, Lesson.retired.is_(False), Course.published.is_(True))
    query = db.session.query(VideoAsset.id)
    if user.role == "instructor":
        authored = exists().where(CourseAuthor.course_id == Lesson.course_id, CourseAuthor.user_id == user.id)
        query = (query.join(Lesson, or_(Lesson.video_id == VideoAsset.id, Lesson.id == VideoAsset.lesson_id))
                 .join(Course, Course.id == Lesson.course_id).filter(belongs, or_(published, authored)))
    else:
        query = (query.join(Lesson, Lesson.video_id == VideoAsset.id)
                 .join(Course, Course.id == Lesson.course_id).filter(belongs, published))
    return query.limit(1).first() is not None
