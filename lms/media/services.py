"""Turning a source video into a playable VideoAsset, and the asset's lifecycle.

pending → processing → ready | failed. Renditions are written under a content-addressed
folder and renamed into place only when complete, so nothing partial is ever served; an
asset becomes playable (and replaces its lesson's current video) only when all exist.
"""
from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import or_, update

from lms.accounts.models import utcnow
from lms.courses.models import Lesson, VideoAsset
from lms.extensions import db
from lms.media import ffmpeg_tools

log = logging.getLogger(__name__)
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


def process_video(asset: VideoAsset, source: Path, on_progress=None) -> None:
    """Transcode into a content-addressed folder (the same source is transcoded once).

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
        renditions = ffmpeg_tools.transcode(source, folder, on_progress=on_progress, info=info)
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
        raise ffmpeg_tools.MediaError("字幕文件编码无法识别，请保存为 UTF-8")
    if text.lstrip().startswith("WEBVTT"):
        return text
    if SRT_TIME.search(text):
        return srt_to_vtt(text)
    raise ffmpeg_tools.MediaError("字幕文件应为 WebVTT（.vtt）或 SubRip（.srt）格式")


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

def create_upload_asset(lesson: Lesson, source: Path, original_name: str, captions: Path | None = None) -> VideoAsset:
    """A pending asset for `lesson`; the lesson keeps playing its current video until this one is ready."""
    asset = VideoAsset(lesson_id=lesson.id, status="pending", source_path=str(source), original_name=original_name)
    if captions is not None:
        attach_captions(asset, captions)
    elif lesson.video is not None:
        asset.captions_path = lesson.video.captions_path
    db.session.add(asset)
    db.session.commit()
    return asset


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
        process_video(asset, Path(asset.source_path), on_progress=progress)
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
        asset.status, asset.error = "failed", "处理时发生内部错误，请重试或联系管理员"
        db.session.commit()
        return asset
    if asset.lesson_id:
        lesson = db.session.get(Lesson, asset.lesson_id)
        lesson.video = asset  # the swap: learners now get the new video; credited records are untouched
    db.session.commit()
    if asset.lesson_id:
        from lms.jobs import enqueue_search_update

        enqueue_search_update([db.session.get(Lesson, asset.lesson_id).course_id])
    return asset


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
