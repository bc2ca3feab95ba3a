"""Turning a source video into a playable VideoAsset (renditions, poster, captions)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from flask import current_app

from lms.courses.models import VideoAsset
from lms.media import ffmpeg_tools


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def media_root() -> Path:
    return Path(current_app.config["DATA_DIR"]) / "media"


def process_video(asset: VideoAsset, source: Path, captions: Path | None) -> None:
    """Transcode into a content-addressed folder (same source → same files, reused on re-import).

    Raises ffmpeg_tools.MediaError with a readable reason; the asset is then left unplayable.
    """
    digest = sha256_of(source)
    folder_rel = Path("videos") / digest[:2] / digest[2:20]
    folder = media_root() / folder_rel
    info = ffmpeg_tools.probe(source)
    renditions = {"360p": "360p.mp4"}
    if not (folder / "360p.mp4").exists() or not (folder / "poster.jpg").exists():
        renditions = ffmpeg_tools.transcode(source, folder, names=("360p", "720p"))
        ffmpeg_tools.poster(folder / renditions["360p"], folder / "poster.jpg", at=min(1.0, info.duration / 2))
    elif (folder / "720p.mp4").exists():
        renditions["720p"] = "720p.mp4"
    asset.renditions = {name: str(folder_rel / file) for name, file in renditions.items()}
    asset.poster_path = str(folder_rel / "poster.jpg")
    if captions is not None:
        shutil.copyfile(captions, folder / "captions.vtt")
        asset.captions_path = str(folder_rel / "captions.vtt")
    else:
        asset.captions_path = None
    asset.source_path = str(source)
    asset.source_sha256 = digest
    asset.duration = ffmpeg_tools.probe(folder / renditions["360p"]).duration
    asset.status = "ready"
    asset.error = None
    asset.progress = 100
