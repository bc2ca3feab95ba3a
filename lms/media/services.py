"""Turning a source video into a playable VideoAsset, and the asset's lifecycle.

pending → processing → ready | failed. Renditions are written under a content-addressed
folder and renamed into place only when complete, so nothing partial is ever served; an
asset becomes playable only when all exist.

The pipeline knows videos, not lessons, and not the job queue that calls it: when an asset becomes
ready, `video_ready` is sent (in the asset's transaction, before its commit) and lms/courses/videos.py
puts it in its lesson; what to enqueue next is the caller's business (lms/jobs, lms/cli.py).
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, update

from lms.accounts.models import utcnow
from lms.extensions import db
from lms.media import ffmpeg_tools
from lms.media.models import VideoAsset
from lms.media.upload_gate import UPLOAD_TEMP_PREFIX

log = logging.getLogger(__name__)
# Sent when run_asset has made an asset ready, before committing: receivers (lms/courses/videos.py) may
# change the session, and their changes commit with the asset's new state or not at all.
video_ready = Namespace().signal("video-ready")
# Asked before a slide script is rendered: the reading pace (caption characters a second) of those who will
# watch it — lms/courses/videos.py answers from the lesson's course (slower for elders).
slide_pace = Namespace().signal("slide-pace")
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv", ".3gp", ".mpg", ".mpeg", ".ts",
                  ".wmv", ".mp3", ".m4a", ".aac", ".wav", ".ogg", ".amr"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def media_root() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "media"


def uploads_root() -> Path:
    path = Path(current_app.config["DATA_DIR"]) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


STRAY_UPLOAD_SECONDS = 3600


def remove_stray_uploads(older_than: float = STRAY_UPLOAD_SECONDS) -> list[Path]:
    """Delete upload temp files nobody has written for `older_than` seconds: left by a web process
    killed mid-request, whose own cleanup never ran (an upload in progress keeps its file fresh)."""
    cutoff = time.time() - older_than
    removed = []
    for path in uploads_root().glob(f"{UPLOAD_TEMP_PREFIX}*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # its request finished meanwhile
            continue
    return removed


def process_video(asset: VideoAsset, source: Path, on_progress=None, rendered: bool = False) -> None:
    """Transcode into a content-addressed folder (the same source is transcoded once). `rendered`: the
    source is our own slide render, kept as the rendition of its size.

    Raises ffmpeg_tools.MediaError with a readable reason.
    """
    info = ffmpeg_tools.probe(source)
    digest = sha256_of(source)
    folder_rel = Path("videos") / digest[:2] / digest[2:20]
    folder = media_root() / folder_rel
    planned = ffmpeg_tools.plan_renditions(info)
    renditions = {name: f"{name}.mp4" for name in planned}
    if not all((folder / f).is_file() for f in renditions.values()) or not (folder / "poster.jpg").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".tmp-*"):  # left by a worker killed mid-transcode
            stale.unlink(missing_ok=True)
        renditions = ffmpeg_tools.transcode(source, folder, on_progress=on_progress, info=info,
                                            source_is_rendition=rendered)
        smallest = folder / renditions[planned[0]]
        ffmpeg_tools.poster(smallest, folder / "poster.jpg", at=min(1.0, info.duration / 2))
    asset.renditions = {name: str(folder_rel / file) for name, file in renditions.items()}
    asset.poster_path = str(folder_rel / "poster.jpg")
    asset.source_path = str(source)
    asset.source_sha256 = digest
    asset.width, asset.height = info.width, info.height
    asset.duration = ffmpeg_tools.probe(folder / renditions[planned[0]]).duration
    asset.status, asset.error, asset.progress = "ready", None, 100


SRT_TIME = re.compile(r"(\d{1,2}:\d{2}:\d{2}),(\d{3})")


def srt_to_vtt(text: str) -> str:
    """SubRip → WebVTT: a header, and commas in timestamps become dots."""
    body = text.lstrip("\ufeff").replace("\r\n", "\n").strip()
    return "WEBVTT\n\n" + SRT_TIME.sub(r"\1.\2", body) + "\n"


def read_captions(path: Path) -> str:
    """Captions as WebVTT text; .srt is converted. Raises MediaError for anything else."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ffmpeg_tools.MediaError(_("字幕文件编码无法识别，请保存为 UTF-8"))
    if text.lstrip().startswith("WEBVTT"):
        return text
    if SRT_TIME.search(text):
        return srt_to_vtt(text)
    raise ffmpeg_tools.MediaError(_("字幕文件应为 WebVTT（.vtt）或 SubRip（.srt）格式"))


WEBVTT_CUE = re.compile(r"^((?:\d{2,}:)?\d{2}:\d{2}\.\d{3})[ \t]+-->[ \t]+((?:\d{2,}:)?\d{2}:\d{2}\.\d{3})(?:[ \t].*)?$")
MAX_CAPTIONS_BYTES = 1024 * 1024


def _vtt_seconds(stamp: str) -> float:
    parts = [float(part) for part in stamp.split(":")]
    return sum(value * 60 ** power for power, value in enumerate(reversed(parts)))


def check_webvtt(raw: bytes) -> str:
    """Captions uploaded on their own must be WebVTT: UTF-8, the WEBVTT header, at least one cue, and
    every cue's timing well formed and ending after it starts. Raises MediaError naming the line."""
    if len(raw) > MAX_CAPTIONS_BYTES:
        raise ffmpeg_tools.MediaError(_("字幕文件太大，最多 %(kb)d KB", kb=MAX_CAPTIONS_BYTES // 1024))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ffmpeg_tools.MediaError(_("字幕文件不是 UTF-8 编码，请另存为 UTF-8")) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not (lines[0] == "WEBVTT" or lines[0].startswith(("WEBVTT ", "WEBVTT\t"))):
        raise ffmpeg_tools.MediaError(_("第 1 行应是 WEBVTT：这不是 WebVTT 字幕文件"))
    cues = 0
    for number, line in enumerate(lines, start=1):
        if "-->" not in line:
            continue
        match = WEBVTT_CUE.match(line.strip())
        if match is None:
            raise ffmpeg_tools.MediaError(_("第 %(line)d 行的时间格式不对，应像 00:00:01.000 --> 00:00:04.000", line=number))
        if _vtt_seconds(match.group(2)) <= _vtt_seconds(match.group(1)):
            raise ffmpeg_tools.MediaError(_("第 %(line)d 行的结束时间应晚于开始时间", line=number))
        cues += 1
    if not cues:
        raise ffmpeg_tools.MediaError(_("字幕文件里没有任何一条字幕（形如 00:00:01.000 --> 00:00:04.000 的时间行）"))
    return text


def attach_captions(asset: VideoAsset, path: Path | None) -> None:
    if path is None:
        asset.captions_path = None
        return
    text = read_captions(path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    relative = Path("captions") / f"{digest[:24]}.vtt"
    target = media_root() / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex}.vtt")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    asset.captions_path = str(relative)


# --- uploads and jobs ------------------------------------------------------------------------

def create_upload_asset(lesson, source: Path, original_name: str, captions: Path | None = None,
                        uploader_id: int | None = None) -> VideoAsset:
    """A pending asset for `lesson` (a courses Lesson: its id and current video are read); the lesson keeps
    playing its current video until this one is ready (lms/courses/videos.py swaps it in).
    The audit log names the uploader, so the replacement is put down to them when it is swapped in."""
    asset = VideoAsset(lesson_id=lesson.id, status="pending", source_path=str(source), original_name=original_name)
    if captions is not None:
        attach_captions(asset, captions)
    elif lesson.video is not None:
        asset.captions_path = lesson.video.captions_path
    db.session.add(asset)
    if uploader_id is not None:
        from lms.records.audit import audit

        audit(uploader_id, "video.upload", asset, f"lesson:{lesson.id} {original_name}")
    db.session.commit()
    return asset


class UploadRejected(ValueError):
    """An upload refused before it is queued; `field` is the form field it concerns."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def accept_upload(lesson, uploader_id: int, video_part: Path, video_name: str,
                  captions_part: Path | None = None, captions_name: str = "") -> VideoAsset:
    """Queue-ready asset from the parts of an upload request. A file ffprobe cannot read, or captions
    that are neither WebVTT nor SubRip, are refused here, naming the file, so they never reach the
    queue; the request's cleanup then removes every part. The video part becomes the asset's source."""
    try:
        ffmpeg_tools.probe(video_part)
    except ffmpeg_tools.MediaError as exc:
        raise UploadRejected("video", f"{video_name}：{exc.reason}") from None
    if captions_part is not None:
        try:
            read_captions(captions_part)
        except ffmpeg_tools.MediaError as exc:
            raise UploadRejected("captions", f"{captions_name}：{exc.reason}") from None
    source = uploads_root() / f"{uuid.uuid4().hex}{Path(video_name or '').suffix.lower()}"
    video_part.replace(source)
    try:
        return create_upload_asset(lesson, source, video_name, captions_part, uploader_id=uploader_id)
    except BaseException:
        db.session.rollback()
        source.unlink(missing_ok=True)
        raise


def stale_before():
    """A processing job silent since then is presumed dead (its worker was killed)."""
    return utcnow() - timedelta(seconds=current_app.config["JOB_STALE_SECONDS"])


def claim(asset_id: int) -> bool:
    """Atomically take a pending (or abandoned) asset for processing; False if someone else has it."""
    stale = stale_before()
    result = db.session.execute(
        update(VideoAsset)
        .where(VideoAsset.id == asset_id)
        .where(or_(VideoAsset.status == "pending",
                   (VideoAsset.status == "processing") & (VideoAsset.updated_at < stale)))
        .values(status="processing", progress=0, error=None, attempts=VideoAsset.attempts + 1,
                updated_at=utcnow())
    )
    db.session.commit()
    return result.rowcount == 1


def run_asset(asset_id: int, on_progress=None) -> VideoAsset | None:
    """Process one asset end to end (the job body). Never raises for a bad video: it fails the asset."""
    if not claim(asset_id):
        return None
    asset = db.session.get(VideoAsset, asset_id)

    def progress(percent: int) -> None:
        # Each write also refreshes updated_at, the liveness signal for stale-job recovery.
        db.session.execute(update(VideoAsset).where(VideoAsset.id == asset_id)
                           .values(progress=percent, updated_at=utcnow()))
        db.session.commit()
        if on_progress:
            on_progress(percent)

    try:
        source = render_slide_script(asset) if asset.slide_script else Path(asset.source_path)
        process_video(asset, source, on_progress=progress, rendered=bool(asset.slide_script))
    except ffmpeg_tools.MediaError as exc:
        log.warning("video %s failed: %s %s", asset_id, exc.reason, exc.detail[-300:])
        db.session.rollback()
        asset = db.session.get(VideoAsset, asset_id)
        asset.status, asset.error = "failed", exc.reason
        db.session.commit()
        return asset
    except Exception:
        log.exception("video %s crashed", asset_id)
        db.session.rollback()
        asset = db.session.get(VideoAsset, asset_id)
        asset.status, asset.error = "failed", _("处理时发生内部错误，请重试或联系管理员")
        db.session.commit()
        return asset
    video_ready.send(current_app._get_current_object(), asset=asset)  # e.g. into its lesson, same commit
    db.session.commit()
    return asset


def render_slide_script(asset: VideoAsset) -> Path:
    """The video of an asset written as a slide script: rendered now (in the job; cached by content under
    LMS_DATA_DIR/rendered, like a package's slides), its captions made from the same text."""
    from lms.media import slides as slide_tools

    try:
        script = slide_tools.parse_slide_script(asset.slide_script)
    except slide_tools.SlideScriptError as exc:
        raise ffmpeg_tools.MediaError(str(exc)) from None
    paces = [pace for _receiver, pace in slide_pace.send(current_app._get_current_object(), asset=asset) if pace]
    script = slide_tools.paced(script, paces[0] if paces else slide_tools.CHARS_PER_SECOND)
    video, captions = slide_tools.rendered_lesson(script, slide_tools.render_cache_root())
    attach_captions(asset, captions)
    return video


def asset_uploader_id(asset: VideoAsset) -> int | None:
    """Who uploaded this asset, from the audit log (None for imported videos)."""
    from lms.records.models import AuditLog

    row = (db.session.query(AuditLog.actor_id)
           .filter(AuditLog.action == "video.upload", AuditLog.target == f"asset:{asset.id}")
           .order_by(AuditLog.id).first())
    return row[0] if row else None


def retry(asset: VideoAsset) -> None:
    asset.status, asset.error, asset.progress = "pending", None, 0
    db.session.commit()


def pending_asset_ids(include_stale: bool = True) -> list[int]:
    query = db.session.query(VideoAsset.id).filter(VideoAsset.status == "pending")
    if include_stale:
        stale = stale_before()
        query = db.session.query(VideoAsset.id).filter(or_(
            VideoAsset.status == "pending",
            (VideoAsset.status == "processing") & (VideoAsset.updated_at < stale)))
    return [row[0] for row in query.order_by(VideoAsset.id)]
