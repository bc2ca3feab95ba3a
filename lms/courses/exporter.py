"""Write a course as a content package (docs/content-format.md) that `lms import-content` reads back
to the same course — whether it was imported or made in the browser.

The files are canonical, so export → import into a fresh database → export gives the same bytes:
YAML with sorted keys (UTF-8, block style, never folded), text with LF line endings, lessons in their
order and quiz questions in theirs, one folder per lesson named after its place and slug. A lesson
rendered from a slide script gets its `slides.yaml` back (not the render); any other video is written
as its original file when the server still has it, else as its highest rendition. Captions are written
unless they are exactly the ones the slides make. Retired lessons and quizzes are not part of the course
a learner sees and are left out.

The package is written to a temporary folder beside the target and renamed into place, so a failed
export leaves the target as it was; an existing package is replaced only when it is this course's.
"""
from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml
from flask import current_app

from lms.audiences import AUDIENCE_CODES
from lms.courses.models import Course, Lesson
from lms.extensions import db
from lms.media import slides as slide_tools
from lms.media.models import VideoAsset
from lms.media.services import media_root, sha256_of
from lms.quizzes.format import quiz_document
from lms.records.audit import audit


class ExportError(Exception):
    """An export refused as a whole (the target is not this course's package, a file is missing)."""


@dataclass
class ExportResult:
    folder: Path
    files: list[str]  # relative paths written, sorted
    notes: list[str]  # what an operator should know (a video written as a rendition, a new id)


class _Dumper(yaml.SafeDumper):
    """Block style; text with line breaks as literal blocks, so explanations stay readable in git."""


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data) -> str:
    """Canonical YAML: sorted keys, UTF-8 characters as they are, lines never folded, LF endings."""
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=True, default_flow_style=False,
                     width=1 << 16, line_break="\n")


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def folder_name(text: str, fallback: str) -> str:
    """A slug as a folder name that stays one plain path segment (a slug from an old package may hold
    anything); course.yaml names the real slugs, so the folder name is only for people."""
    name = re.sub(r"[^\w.-]+", "-", text).strip(".-")
    return name or fallback


def _number(value: Decimal):
    """A Decimal as YAML writes it: 1 rather than 1.00, 0.5 rather than 0.50."""
    return int(value) if value == value.to_integral_value() else float(value)


class _Writer:
    def __init__(self, root: Path):
        self.root, self.files = root, []

    def text(self, relative: str, text: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_lf(text).encode("utf-8"))
        self.files.append(relative)
        return relative

    def copy(self, relative: str, source: Path) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)  # in blocks: videos never whole in memory
        self.files.append(relative)
        return relative


def export_course(course: Course, target: Path, actor=None, on_lesson=None) -> ExportResult:
    """Write `course` as the package `target`/<slug>/ (replacing that folder when it is this course's;
    a slug that is no plain folder name is written as one, course.yaml keeps the slug).
    `on_lesson()` is called as each lesson is written (a progress bar)."""
    folder = Path(target) / folder_name(course.slug, "course")
    _check_target(folder, course)
    notes = []
    if not course.package_id:  # a course imported before packages had ids: it gets one, kept from now on
        course.package_id = str(uuid.uuid4())
        audit(actor, "course.package_id", course, f"导出时分配课程包 id：{course.package_id}")
        db.session.commit()
        notes.append(f"课程还没有课程包 id，已分配并保存：{course.package_id}")
    Path(target).mkdir(parents=True, exist_ok=True)
    work = Path(target) / f".tmp-export-{uuid.uuid4().hex}"
    try:
        writer = _Writer(work)
        document = _course_document(course, writer, notes, on_lesson or (lambda: None))
        writer.text("course.yaml", dump_yaml(document))
        _put_in_place(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(folder=folder, files=sorted(writer.files), notes=notes)


def _check_target(folder: Path, course: Course) -> None:
    if not folder.exists() and not folder.is_symlink():
        return
    if folder.is_symlink() or not folder.is_dir():
        raise ExportError(f"{folder} 已存在且不是文件夹，没有导出")
    manifest = folder / "course.yaml"
    if not any(folder.iterdir()):
        return
    try:
        existing = yaml.safe_load(manifest.read_text(encoding="utf-8")) if manifest.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        existing = None
    if not isinstance(existing, dict) or existing.get("id") != course.package_id or not course.package_id:
        raise ExportError(f"{folder} 已存在，但不是这门课程（id: {course.package_id}）的课程包；"
                          "为避免覆盖别的内容，没有导出。请换一个目标文件夹")


def _put_in_place(work: Path, folder: Path) -> None:
    """The new package replaces the old one with two renames; the old one is removed afterwards."""
    old = None
    if folder.exists():
        old = folder.with_name(f".tmp-replaced-{uuid.uuid4().hex}")
        folder.rename(old)
    try:
        work.rename(folder)
    except BaseException:
        if old is not None:
            old.rename(folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _course_document(course: Course, writer: _Writer, notes: list[str], on_lesson) -> dict:
    audiences = set(course.audiences)
    doc = {
        "id": course.package_id,
        "slug": course.slug,
        "title": course.title,
        "audiences": [code for code in AUDIENCE_CODES if code in audiences],
        "mandatory": bool(course.mandatory),
        "strict": bool(course.strict),
        "completion": {"watch_threshold": float(course.watch_threshold)},
        "lessons": [],
    }
    if course.summary:
        doc["summary"] = _lf(course.summary)
    if course.credit_rule == "fixed":
        doc["credit_hours"] = _number(Decimal(course.credit_hours))
        if course.credit_note:
            doc["credit_note"] = _lf(course.credit_note)
    if course.bonus_hours is not None:
        doc["completion"]["bonus_hours"] = _number(Decimal(course.bonus_hours))
        doc["completion"]["bonus_min_score"] = course.bonus_min_score or 90
    if not course.published:
        doc["published"] = False
    if course.sources:
        doc["sources"] = course.sources
    if course.cover_path:
        cover = Path(current_app.config["DATA_DIR"]) / course.cover_path
        if cover.is_file():
            doc["cover"] = writer.copy("cover.jpg", cover)
        else:
            notes.append(f"封面图片文件不存在（{course.cover_path}），没有导出封面")
    for number, lesson in enumerate(course.active_lessons, start=1):
        base = f"{number:02d}-{folder_name(lesson.slug, 'lesson')}"
        doc["lessons"].append(_lesson_entry(lesson, base, writer, notes))
        on_lesson()
    return doc


def _lesson_entry(lesson: Lesson, base: str, writer: _Writer, notes: list[str]) -> dict:
    entry = {"slug": lesson.slug, "title": lesson.title,
             "text": writer.text(f"{base}/lesson.md", lesson.text_markdown or "")}
    asset = lesson.video
    if asset is not None:
        slides = slides_of(asset, lesson.course.audiences)
        if slides is not None:
            entry["slides"] = writer.text(f"{base}/slides.yaml", dump_yaml({"slides": slide_tools.as_written(slides)}))
        else:
            entry["video"] = _video(asset, base, writer, notes, lesson)
        captions = _captions_text(asset)
        if captions is None and asset.captions_path:
            notes.append(f"课时“{lesson.title}”的字幕文件不存在（{asset.captions_path}），没有导出字幕")
        if captions is not None and not (slides is not None and captions == _lf(slide_tools.captions_vtt(slides))):
            entry["captions"] = writer.text(f"{base}/captions.vtt", captions)
    if lesson.quiz is not None and lesson.quiz.active_questions:
        quiz = quiz_document(lesson.quiz)
        if quiz.get("ask", 0) > len(quiz.get("pool", ())):  # questions retired since `ask` was set
            quiz["ask"] = len(quiz["pool"])
            notes.append(f"课时“{lesson.title}”的测验每次抽题数多于在用的题目，导出为 {quiz['ask']} 道")
        entry["quiz"] = writer.text(f"{base}/quiz.yaml", dump_yaml(quiz))
    elif lesson.quiz is not None:
        notes.append(f"课时“{lesson.title}”的测验没有在用的题目，没有导出")
    if lesson.practice is not None:  # 练一练: the normalised document, which imports back to the same steps
        entry["practice"] = writer.text(f"{base}/practice.yaml", dump_yaml(lesson.practice.document))
    return entry


def slides_of(asset: VideoAsset, audiences=()) -> list[dict] | None:
    """The slides the asset's video was rendered from: the script as the renderer saw it (a package's
    slides as written; a browser script as checked), recognised by the render it made. None when the
    video is not a render of its script (or has none)."""
    if not asset.slide_script:
        return None
    try:
        data = yaml.safe_load(asset.slide_script)
    except yaml.YAMLError:
        data = None
    candidates = [data.get("slides")] if isinstance(data, dict) else []
    try:
        candidates.append(slide_tools.parse_slide_script(asset.slide_script))
    except slide_tools.SlideScriptError:
        pass
    # as the renderer saw them: at the reading pace of the course's audiences (lms/media/slides.py paced)
    pace = slide_tools.pace_for(audiences)
    candidates = [slide_tools.paced(c, pace) for c in candidates if isinstance(c, list) and c]
    return next((c for c in candidates if slide_tools.is_render_of(asset.source_path, c)), None)


def _video(asset: VideoAsset, base: str, writer: _Writer, notes: list[str], lesson: Lesson) -> str:
    source = Path(asset.source_path) if asset.source_path else None
    if source is not None and source.is_file() and asset.source_sha256 and sha256_of(source) == asset.source_sha256:
        return writer.copy(f"{base}/video{source.suffix.lower() or '.mp4'}", source)
    renditions = asset.renditions
    if not renditions:
        raise ExportError(f"课时“{lesson.title}”的视频还没有处理好，也找不到原始文件，无法导出")
    name = max(renditions, key=lambda label: int("".join(ch for ch in label if ch.isdigit()) or 0))
    path = media_root() / renditions[name]
    if not path.is_file():
        raise ExportError(f"课时“{lesson.title}”的视频文件不存在（{renditions[name]}），无法导出")
    notes.append(f"课时“{lesson.title}”的原始视频已不在服务器上，导出的是 {name} 转码版本")
    return writer.copy(f"{base}/video.mp4", path)


def _captions_text(asset: VideoAsset) -> str | None:
    if not asset.captions_path:
        return None
    path = media_root() / asset.captions_path
    return _lf(path.read_text(encoding="utf-8")) if path.is_file() else None
