"""Lesson slide scripts → timed cues → a rendered video and its WebVTT captions."""
from __future__ import annotations

from pathlib import Path

from lms.media import ffmpeg_tools

CHARS_PER_SECOND = 4.5  # a calm reading pace for Chinese captions
MIN_SLIDE_SECONDS = 4.0


def slide_durations(slides: list[dict]) -> list[float]:
    return [round(max(MIN_SLIDE_SECONDS, len(s.get("caption", "")) / CHARS_PER_SECOND), 2) for s in slides]


def _stamp(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def captions_vtt(slides: list[dict]) -> str:
    lines, start = ["WEBVTT", ""], 0.0
    for index, (slide, seconds) in enumerate(zip(slides, slide_durations(slides)), start=1):
        end = start + seconds
        lines += [str(index), f"{_stamp(start)} --> {_stamp(end)}", slide.get("caption", "").strip(), ""]
        start = end
    return "\n".join(lines)


def render_lesson_video(slides: list[dict], video_path: Path, captions_path: Path | None = None) -> None:
    """Render the slides to `video_path` and write the matching captions (same text, same timing)."""
    ffmpeg_tools.render_slides(slides, slide_durations(slides), video_path)
    if captions_path is not None:
        captions_path.write_text(captions_vtt(slides), encoding="utf-8")
