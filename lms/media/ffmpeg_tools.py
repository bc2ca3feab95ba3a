"""The one small interface over ffmpeg-python: probe, transcode, poster, slide rendering.

Outputs are written to a temporary name and renamed into place only when complete, so a
reader never sees half a file.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
from flask_babel import gettext  # not `_`: some functions here use `_` as a throwaway name

RENDITIONS = {  # name: (height, video kb/s, audio kb/s)
    "360p": (360, 320, 64),
    "720p": (720, 1200, 96),
}


class MediaError(Exception):
    """A video could not be read or produced; `reason` is shown to people (Chinese)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


@dataclass
class ProbeResult:
    duration: float
    width: int | None       # as displayed (rotation applied)
    height: int | None
    fps: float | None
    rotation: int
    has_video: bool
    has_audio: bool

    @property
    def portrait(self) -> bool:
        return bool(self.width and self.height and self.height > self.width)


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    try:
        return int(float((stream.get("tags") or {}).get("rotate", 0))) % 360
    except ValueError:
        return 0


def _fps(stream: dict) -> float | None:
    try:
        num, den = (stream.get("avg_frame_rate") or "0/0").split("/")
        return float(num) / float(den) if float(den) else None
    except (ValueError, ZeroDivisionError):
        return None


def probe(path: str | os.PathLike) -> ProbeResult:
    """Read duration and streams; raise MediaError with a reason people can act on."""
    if not os.path.exists(path):
        raise MediaError(gettext("找不到视频文件"), str(path))
    if os.path.getsize(path) == 0:
        raise MediaError(gettext("视频文件是空的（0 字节）"), str(path))
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        raise MediaError(gettext("无法识别的视频文件，可能已损坏或不是视频"), exc.stderr.decode(errors="replace")[-500:]) from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise MediaError(gettext("文件里既没有画面也没有声音"), str(path))
    try:
        duration = float((info.get("format") or {}).get("duration") or (video or audio or {}).get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise MediaError(gettext("无法读取视频时长，文件可能已损坏"), str(path))
    width = height = None
    rotation = _rotation(video) if video else 0
    if video:
        width, height = int(video.get("width") or 0) or None, int(video.get("height") or 0) or None
        if rotation in (90, 270):
            width, height = height, width
    return ProbeResult(duration=duration, width=width, height=height, fps=_fps(video) if video else None,
                       rotation=rotation, has_video=video is not None, has_audio=audio is not None)


def _run(stream_spec, what: str) -> None:
    try:
        ffmpeg.run(stream_spec, capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as exc:
        raise MediaError(gettext("%(what)s失败", what=what), exc.stderr.decode(errors="replace")[-800:]) from None


def _run_with_progress(stream_spec, what: str, duration: float, on_progress=None) -> None:
    """Run ffmpeg reading `-progress pipe:1`; call on_progress(percent 0–100) as it goes."""
    args = ffmpeg.compile(stream_spec.global_args("-progress", "pipe:1", "-nostats"), overwrite_output=True)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        last, last_at = -1, 0.0
        for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.isdigit() and duration > 0 and on_progress:
                percent = min(99, int(int(value) / 1e6 / duration * 100))
                # report each new percent, and at least every 5 s (the job's liveness signal)
                if percent != last or time.monotonic() - last_at > 5:
                    last, last_at = percent, time.monotonic()
                    on_progress(percent)
        if process.wait() != 0:
            errors.seek(0)
            raise MediaError(gettext("%(what)s失败", what=what), errors.read().decode(errors="replace")[-800:])


def _tmp_beside(target: Path) -> Path:
    """A new empty temp file beside `target`, created with mode 0666 less the umask (as ffmpeg and every
    ordinary program create files), not mkstemp's 0600: what it becomes is served by nginx, another
    user, which reads it through its group or the world bits (docs/deploy.md "Users and folders")."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = target.with_name(f".tmp-{uuid.uuid4().hex}{target.suffix}")
        try:
            os.close(os.open(path, flags, 0o666))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free temporary name beside {target}")


def plan_renditions(info: ProbeResult, names=("360p", "720p")) -> list[str]:
    """The renditions worth making: never upscale, but always at least the smallest."""
    short_side = min(info.width or 0, info.height or 0) if info.has_video else 0
    wanted = [n for n in names if RENDITIONS[n][0] <= short_side]
    return wanted or [names[0]]


def transcode_spec(source: str, info: ProbeResult, targets: dict[str, str]):
    """The ffmpeg graph: decode once, split, scale each branch, encode H.264/AAC MP4 with faststart.

    The short side of each rendition is its nominal height (so portrait videos stay portrait),
    keyframes fall every 2 s, and frame rates above 30 are halved to keep small files small.
    """
    src = ffmpeg.input(str(source))
    if info.has_video:
        video = src.video
        if info.fps and info.fps > 30:
            video = video.filter("fps", fps=info.fps / 2 if info.fps / 2 >= 24 else 30)
    else:
        # Audio only: a plain card shown for the whole track, so every lesson plays as a video.
        video = ffmpeg.input(f"color=c=0x12355b:s=640x360:r=25:d={info.duration:.3f}", f="lavfi").video
    branches = video.filter_multi_output("split", len(targets)) if len(targets) > 1 else None
    outputs = []
    for index, (name, target) in enumerate(targets.items()):
        size, v_kbps, a_kbps = RENDITIONS[name]
        branch = branches[index] if branches is not None else video
        if info.portrait:
            scaled = branch.filter("scale", f"min({size},iw)", -2)
        else:
            scaled = branch.filter("scale", -2, f"min({size},ih)")
        streams = [scaled.filter("format", "yuv420p")] + ([src.audio] if info.has_audio else [])
        outputs.append(ffmpeg.output(
            *streams, target, vcodec="libx264", preset="veryfast", profile="main",
            **{"b:v": f"{v_kbps}k", "maxrate": f"{int(v_kbps * 1.2)}k", "bufsize": f"{v_kbps * 2}k",
               "force_key_frames": "expr:gte(t,n_forced*2)", "sc_threshold": 0,
               "movflags": "+faststart", "f": "mp4", "t": f"{info.duration:.3f}"},
            **({"acodec": "aac", "b:a": f"{a_kbps}k", "ac": 2} if info.has_audio else {}),
        ))
    return ffmpeg.merge_outputs(*outputs)


def transcode(source: str | os.PathLike, out_dir: str | os.PathLike, names=("360p", "720p"),
              on_progress=None, info: ProbeResult | None = None, source_is_rendition: bool = False) -> dict[str, str]:
    """Decode `source` once into every worthwhile rendition; files appear only when all are done.

    `source_is_rendition`: the source is one of our own slide renders (render_slides: H.264/AAC,
    yuv420p, a key frame every 2 s, faststart), so the rendition of its own size is the source itself,
    copied rather than encoded again. Returns {rendition name: file name inside out_dir}.
    """
    info = info or probe(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = plan_renditions(info, names)
    temps = {name: (_tmp_beside(out_dir / f"{name}.mp4"), out_dir / f"{name}.mp4") for name in wanted}
    short_side = min(info.width or 0, info.height or 0)
    copied = [name for name in wanted if source_is_rendition and RENDITIONS[name][0] == short_side]
    try:
        for name in copied:
            shutil.copyfile(source, temps[name][0])
        encode = {name: str(tmp) for name, (tmp, _) in temps.items() if name not in copied}
        if encode:
            spec = transcode_spec(str(source), info, encode)
            _run_with_progress(spec, gettext("视频转码"), info.duration, on_progress)
        for tmp, target in temps.values():
            os.replace(tmp, target)
        return {name: target.name for name, (_, target) in temps.items()}
    finally:
        for tmp, _ in temps.values():
            if tmp.exists():
                tmp.unlink()


def poster(source: str | os.PathLike, target: str | os.PathLike, at: float = 1.0) -> None:
    target = Path(target)
    tmp = _tmp_beside(target)
    try:
        _run(ffmpeg.input(str(source), ss=at).output(str(tmp), vframes=1, f="image2", **{"q:v": 4}), gettext("生成封面"))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def still_image(source: str | os.PathLike, target: str | os.PathLike, input_format: str, width: int,
                height: int) -> None:
    """Re-encode one picture as a JPEG that fits in width×height (never enlarged). The input is read only
    through `input_format` (png_pipe, jpeg_pipe, webp_pipe: what its magic bytes said), so nothing but
    that decoder sees it; a file that does not decode fails with MediaError."""
    target = Path(target)
    tmp = _tmp_beside(target)
    fit = (f"scale='min({width},iw)':'min({height},ih)':force_original_aspect_ratio=decrease,"
           "scale=trunc(iw/2)*2:trunc(ih/2)*2")
    try:
        _run(ffmpeg.input(str(source), f=input_format).output(str(tmp), vframes=1, vf=fit, f="image2",
                                                              **{"q:v": 5}), gettext("读取图片"))
        if not tmp.stat().st_size:
            raise MediaError(gettext("读取图片失败"))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def picture_size(source: str | os.PathLike, input_format: str) -> tuple[int, int]:
    """Width and height of one picture read only through `input_format`, after decoding all of it
    (a truncated or corrupt picture fails with MediaError)."""
    try:
        info = ffmpeg.probe(str(source), f=input_format)
        stream = next(s for s in info.get("streams", []) if s.get("codec_type") == "video")
        size = int(stream["width"]), int(stream["height"])
    except (ffmpeg.Error, StopIteration, KeyError, ValueError):
        raise MediaError(gettext("读取图片失败")) from None
    _run(ffmpeg.input(str(source), f=input_format, err_detect="explode").output("-", f="null")
         .global_args("-xerror"), gettext("读取图片"))
    return size


def cjk_font(bold: bool = False) -> str:
    """A CJK font file for slides (Debian's fonts-noto-cjk)."""
    pattern = "Noto Sans CJK SC:style=Bold" if bold else "Noto Sans CJK SC"
    try:
        found = subprocess.run(["fc-match", pattern, "-f", "%{file}"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        found = ""
    if not found or "CJK" not in found:
        raise MediaError(gettext("没有找到中文字体，请安装 fonts-noto-cjk"))
    return found


SLIDE_FPS = 1  # slides hold still: 1 frame a second (a key frame every 2 s for seeking) renders ~8× faster than 25


def render_slides(slides: list[dict], durations: list[float], target: str | os.PathLike,
                  size=(1280, 720), narration: str | None = None) -> None:
    """Render slides (title + up to 3 points each) into an H.264/AAC MP4 with a CJK font.

    `narration` is an optional audio file laid under the video; otherwise a silent track.
    """
    width, height = size
    title_font, body_font = cjk_font(bold=True), cjk_font()
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        clips = []
        for index, (slide, seconds) in enumerate(zip(slides, durations)):
            clip = ffmpeg.input(f"color=c=0x12355b:s={width}x{height}:r={SLIDE_FPS}:d={seconds:.2f}", f="lavfi")
            title_file = Path(workdir, f"{index}-title.txt")
            title_file.write_text(slide["title"], encoding="utf-8")
            clip = clip.drawtext(textfile=str(title_file), fontfile=title_font, fontsize=height // 9,
                                 fontcolor="white", x="(w-text_w)/2", y=height // 8)
            for line_no, point in enumerate(slide.get("points") or []):
                point_file = Path(workdir, f"{index}-{line_no}.txt")
                point_file.write_text("· " + point, encoding="utf-8")
                clip = clip.drawtext(textfile=str(point_file), fontfile=body_font, fontsize=height // 14,
                                     fontcolor="0xfff4c2", x=width // 10, y=int(height * (0.40 + 0.14 * line_no)))
            clips.append(clip)
        video = ffmpeg.concat(*clips, v=1, a=0) if len(clips) > 1 else clips[0]
        total = sum(durations)
        if narration:
            audio = ffmpeg.input(narration).audio.filter("apad").filter("atrim", duration=total)
        else:
            audio = ffmpeg.input("anullsrc=r=44100:cl=mono", f="lavfi", t=f"{total:.2f}").audio
        tmp = _tmp_beside(target)
        try:
            _run(ffmpeg.output(video, audio, str(tmp), vcodec="libx264", preset="veryfast", crf=30,
                               pix_fmt="yuv420p", acodec="aac", t=f"{total:.2f}",
                               **{"b:a": "48k", "g": SLIDE_FPS * 2, "tune": "stillimage", "movflags": "+faststart", "f": "mp4"}),
                 gettext("渲染幻灯片视频"))
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
