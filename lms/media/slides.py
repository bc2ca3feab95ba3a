"""Lesson slide scripts → timed cues → a rendered video and its WebVTT captions."""
from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import pgettext

from lms.media import ffmpeg_tools

CHARS_PER_SECOND = 4.5  # a calm reading pace for Chinese captions
ELDER_CHARS_PER_SECOND = 3.2  # slower for courses that elders take: their captions stay under 3.5 a second
MIN_SLIDE_SECONDS = 4.0


def pace_for(audiences) -> float:
    """Characters of caption a second for a course: slower when elders take it."""
    return ELDER_CHARS_PER_SECOND if "elder" in audiences else CHARS_PER_SECOND


def paced(slides: list[dict], chars_per_second: float) -> list[dict]:
    """The slides with each one's duration (`paced_seconds`) fixed at this reading pace (an author's own
    `seconds` wins).

    The pace is written into the slides, so the render cache key, the captions and the video agree; it is
    rounded up to whole frames of the render (ffmpeg_tools.SLIDE_FPS), so a caption changes with its picture.
    """
    fps = ffmpeg_tools.SLIDE_FPS
    return [{**s, "paced_seconds": s.get("seconds") or math.ceil(max(MIN_SLIDE_SECONDS, len(s.get("caption", "")) / chars_per_second) * fps) / fps}
            for s in slides]


def timed_to(slides: list[dict], seconds: float) -> list[dict]:
    """The slides stretched (or shrunk) in proportion so that together they last `seconds` — the length
    of a narration recorded for them, so that captions and pictures follow the voice."""
    durations = slide_durations(slides)
    factor = seconds / sum(durations)
    return [{**s, "paced_seconds": round(d * factor, 2)} for s, d in zip(slides, durations)]


def as_written(slides: list[dict]) -> list[dict]:
    """The slides without the durations the importer worked out (what an author writes in slides.yaml)."""
    return [{key: value for key, value in s.items() if key != "paced_seconds"} for s in slides]


def slide_durations(slides: list[dict]) -> list[float]:
    return [float(s.get("paced_seconds") or s.get("seconds") or round(max(MIN_SLIDE_SECONDS, len(s.get("caption", "")) / CHARS_PER_SECOND), 2))
            for s in slides]


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


RENDER_VERSION = "2"  # bump when the renderer's output changes, so cached renders are redone


def render_key(slides: list[dict], narration: Path | None = None) -> str:
    """The same slides, narration (and renderer) always give the same key: the render cache is content-addressed."""
    voice = hashlib.sha256(narration.read_bytes()).hexdigest() if narration is not None else None
    canonical = json.dumps([RENDER_VERSION, slides] + ([voice] if voice else []), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def render_cache_root() -> Path:
    """Where videos rendered from slides live: a cache under LMS_DATA_DIR, remade when missing."""
    return Path(current_app.config["DATA_DIR"]) / "rendered"


def _render_folder(slides: list[dict], narration: Path | None = None) -> Path:
    key = render_key(slides, narration)
    return Path(key[:2]) / key[2:24]


def is_render_of(path: str | None, slides: list[dict], narration: Path | None = None) -> bool:
    """Whether `path` is the cached render of these slides (wherever LMS_DATA_DIR lies)."""
    return path is not None and Path(path).parent.parts[-2:] == _render_folder(slides, narration).parts


def rendered_paths(slides: list[dict], cache_root: Path, narration: Path | None = None) -> tuple[Path, Path]:
    folder = cache_root / _render_folder(slides, narration)
    return folder / "video.mp4", folder / "captions.vtt"


def rendered_lesson(slides: list[dict], cache_root: Path, narration: Path | None = None,
                    force: bool = False) -> tuple[Path, Path]:
    """The video and captions rendered from `slides` under `cache_root` (rendered when missing).

    Never written into a content package: packages may be read-only, shared, or hold symlinks.
    Both files are written to a fresh temporary name and renamed into place, so a link planted at
    the final name is replaced, never followed.
    """
    video, captions = rendered_paths(slides, cache_root, narration)
    if force or not video.is_file():
        ffmpeg_tools.render_slides(slides, slide_durations(slides), video,
                                   narration=str(narration) if narration is not None else None)
    if force or not captions.is_file():
        write_new_file(captions, captions_vtt(slides))
    return video, captions


def write_new_file(target: Path, text: str) -> None:
    """Write `text` to `target` through a temporary file that is created, never opened through a link."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex}{target.suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# --- slide scripts written in the browser (lms/courses/authoring.py) ----------------------------------

MAX_SCRIPT_CHARS = 20_000
MAX_SLIDES = 40
MAX_POINTS = 3  # render_slides shows up to three points under a title
MAX_TITLE_CHARS, MAX_POINT_CHARS, MAX_CAPTION_CHARS = 30, 40, 200


class SlideScriptError(ValueError):
    """A slide script that cannot be rendered; the message names the slide and the field."""


def parse_slide_script(text: str) -> list[dict]:
    """A slide script as in a package's slides.yaml (`slides:` — each with title, up to three points and
    the caption spoken and shown under it), checked and reduced to those fields. YAML anchors and aliases
    are refused, so a small script cannot expand into a huge one."""
    import yaml

    if len(text) > MAX_SCRIPT_CHARS:
        raise SlideScriptError(_("幻灯片脚本太长：最多 %(n)d 个字符", n=MAX_SCRIPT_CHARS))
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise SlideScriptError(_("幻灯片脚本不能使用 YAML 锚点和别名（& 和 *）"))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or exc
        raise SlideScriptError(
            _("幻灯片脚本的 YAML 格式有误第 %(line)d 行：%(problem)s", line=mark.line + 1, problem=problem) if mark
            else _("幻灯片脚本的 YAML 格式有误：%(problem)s", problem=problem)) from None
    slides = data.get("slides") if isinstance(data, dict) else None
    if not isinstance(slides, list) or not slides:
        raise SlideScriptError(_("幻灯片脚本要以 slides: 开头，下面列出至少一张幻灯片"))
    if len(slides) > MAX_SLIDES:
        raise SlideScriptError(_("幻灯片最多 %(max)d 张，现在有 %(n)d 张", max=MAX_SLIDES, n=len(slides)))
    parsed = []
    for n, slide in enumerate(slides, start=1):
        if not isinstance(slide, dict):
            raise SlideScriptError(_("第 %(n)d 张幻灯片应写成 title、points、caption 几项", n=n))
        parsed.append({"title": _text(slide, "title", n, MAX_TITLE_CHARS, pgettext("slide field", "标题")),
                       "points": _points(slide.get("points"), n),
                       "caption": _text(slide, "caption", n, MAX_CAPTION_CHARS, pgettext("slide field", "字幕"))})
    return parsed


def _text(slide: dict, key: str, n: int, limit: int, name: str) -> str:
    value = slide.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise SlideScriptError(_("第 %(n)d 张幻灯片缺少%(name)s（%(key)s）", n=n, name=name, key=key))
    if len(value.strip()) > limit:
        raise SlideScriptError(_("第 %(n)d 张幻灯片的%(name)s（%(key)s）太长：最多 %(limit)d 个字", n=n, name=name,
                                 key=key, limit=limit))
    return value.strip()


def _points(points, n: int) -> list[str]:
    if points is None:
        return []
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise SlideScriptError(_("第 %(n)d 张幻灯片的要点（points）应是最多 %(max)d 条的列表", n=n, max=MAX_POINTS))
    return [_text({"point": p}, "point", n, MAX_POINT_CHARS, pgettext("slide field", "要点")) for p in points]
