"""The one small interface over ffmpeg-python: probe, transcode, poster, slide rendering.

Outputs are written to a temporary name and renamed into place only when complete, so a
reader never sees half a file.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

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
    width: int | None
    height: int | None
    has_video: bool
    has_audio: bool


def probe(path: str | os.PathLike) -> ProbeResult:
    if not os.path.exists(path):
        raise MediaError("找不到视频文件", str(path))
    if os.path.getsize(path) == 0:
        raise MediaError("视频文件是空的（0 字节）", str(path))
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        raise MediaError("无法识别的视频文件，可能已损坏或不是视频", exc.stderr.decode(errors="replace")[-500:]) from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    try:
        duration = float(info.get("format", {}).get("duration") or (video or {}).get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise MediaError("无法读取视频时长，文件可能已损坏", str(path))
    return ProbeResult(
        duration=duration,
        width=int(video["width"]) if video else None,
        height=int(video["height"]) if video else None,
        has_video=video is not None,
        has_audio=audio is not None,
    )


def _run(stream_spec, what: str) -> None:
    try:
        ffmpeg.run(stream_spec, capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as exc:
        raise MediaError(f"{what}失败", exc.stderr.decode(errors="replace")[-800:]) from None


def _tmp_beside(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    return Path(name)


def transcode(source: str | os.PathLike, out_dir: str | os.PathLike, names=("360p",)) -> dict[str, str]:
    """Decode `source` once and write each rendition (never upscaled) as H.264/AAC MP4 with faststart.

    Returns {rendition name: file name inside out_dir}.
    """
    info = probe(source)
    if not info.has_video:
        raise MediaError("文件里没有视频画面")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = [n for n in names if RENDITIONS[n][0] <= max(info.height or 0, RENDITIONS[names[0]][0])]
    src = ffmpeg.input(str(source))
    video_branches = src.video.filter_multi_output("split", len(wanted)) if len(wanted) > 1 else None
    outputs, temps = [], {}
    for index, name in enumerate(wanted):
        height, v_kbps, a_kbps = RENDITIONS[name]
        branch = video_branches[index] if video_branches is not None else src.video
        scaled = branch.filter("scale", -2, f"min({height},ih)").filter("format", "yuv420p")
        target = out_dir / f"{name}.mp4"
        temps[name] = (_tmp_beside(target), target)
        streams = [scaled] + ([src.audio] if info.has_audio else [])
        outputs.append(ffmpeg.output(
            *streams, str(temps[name][0]), vcodec="libx264", preset="veryfast",
            **{"b:v": f"{v_kbps}k", "maxrate": f"{int(v_kbps * 1.3)}k", "bufsize": f"{v_kbps * 2}k",
               "g": 50, "keyint_min": 50, "sc_threshold": 0, "movflags": "+faststart", "f": "mp4"},
            **({"acodec": "aac", "b:a": f"{a_kbps}k", "ac": 2} if info.has_audio else {}),
        ))
    try:
        _run(ffmpeg.merge_outputs(*outputs), "视频转码")
        result = {}
        for name, (tmp, target) in temps.items():
            os.replace(tmp, target)
            result[name] = target.name
        return result
    finally:
        for tmp, _ in temps.values():
            if tmp.exists():
                tmp.unlink()


def poster(source: str | os.PathLike, target: str | os.PathLike, at: float = 1.0) -> None:
    target = Path(target)
    tmp = _tmp_beside(target)
    try:
        _run(ffmpeg.input(str(source), ss=at).output(str(tmp), vframes=1, f="image2", **{"q:v": 4}), "生成封面")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def cjk_font(bold: bool = False) -> str:
    """A CJK font file for slides (Debian's fonts-noto-cjk)."""
    pattern = "Noto Sans CJK SC:style=Bold" if bold else "Noto Sans CJK SC"
    try:
        found = subprocess.run(["fc-match", pattern, "-f", "%{file}"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        found = ""
    if not found or "CJK" not in found:
        raise MediaError("没有找到中文字体，请安装 fonts-noto-cjk")
    return found


def render_slides(slides: list[dict], durations: list[float], target: str | os.PathLike,
                  size=(640, 360), narration: str | None = None) -> None:
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
            clip = ffmpeg.input(f"color=c=0x12355b:s={width}x{height}:r=25:d={seconds:.2f}", f="lavfi")
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
                               **{"b:a": "48k", "g": 50, "movflags": "+faststart", "f": "mp4"}),
                 "渲染幻灯片视频")
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
