"""Import course packages from content/<slug>/ (format: docs/content-format.md).

Each package is validated whole — YAML, fields, referenced files, quizzes, videos — before
anything is written, and written in one transaction, so a bad package leaves the database
as it was. Re-importing updates the course in place (matched by the package's `id:`, lessons by
slug); it never touches the training-record ledger.

A package is only read: every path it names or implies must stay inside its folder (symlinks
included), and what the import makes from it (videos rendered from slides, their captions) goes
under LMS_DATA_DIR, content-addressed.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from flask import current_app

from lms.audiences import AUDIENCE_CODES
from lms.courses.markdown import render_markdown
from lms.courses.models import Course, CourseAudience, Lesson
from lms.courses.rules import record_rules
from lms.courses.videos import swap_lesson_video
from lms.extensions import db
from lms.media import ffmpeg_tools, slides as slide_tools
from lms.media.models import VideoAsset
from lms.media.services import attach_captions, media_root, process_video, sha256_of
from lms.quizzes import authoring as quiz_authoring, format as quiz_format
from lms.quizzes.format import SCENARIO_KINDS, SCENARIO_SPEAKERS
from lms.practices import format as practice_format
from lms.practices.services import write_practice
from lms.quizzes.models import QUESTION_KINDS, Quiz


class ContentError(Exception):
    def __init__(self, file: Path, field: str | None, message: str, line: int | None = None):
        self.file, self.field, self.message, self.line = file, field, message, line
        location = f"{file}:{line}" if line else str(file)
        super().__init__(f"{location}: {field + ': ' if field else ''}{message}")


@dataclass
class LessonSpec:
    slug: str
    title: str
    text: str
    video: Path | None  # a video file in the package
    slides: list | None  # or the slide script its video is rendered from
    captions: Path | None  # captions in the package; absent with slides: made from them
    quiz: dict | None
    quiz_file: Path | None
    narration: Path | None = None  # a recorded voice laid under the rendered slides
    video_sha256: str | None = None  # of the video to play: the package's, or (once rendered) the render
    # set by prepare_media: the video to play (the package's, or rendered) and its captions
    source: Path | None = None
    source_captions: Path | None = None
    practice: dict | None = None  # 练一练, normalised (lms/practices/format.py)
    practice_file: Path | None = None


@dataclass
class CourseSpec:
    package_id: str
    slug: str
    folder: Path
    title: str
    summary: str
    audiences: list[str]
    credit_hours: Decimal | None
    mandatory: bool
    strict: bool
    watch_threshold: float
    bonus_hours: Decimal | None = None
    bonus_min_score: int | None = None
    credit_note: str | None = None  # why a fixed 学时 (shown to administrators)
    published: bool = True
    cover: Path | None = None  # a cover picture in the package
    cover_path: str | None = None  # set by prepare_media: where it is kept, under LMS_DATA_DIR
    sources: list[dict] = field(default_factory=list)  # what a reviewer checks the lessons against
    lessons: list[LessonSpec] = field(default_factory=list)
    content_hash: str = ""
    doc: _YamlFile | None = None  # course.yaml, for errors found after parsing (slug, id)


class _YamlFile:
    """A parsed YAML file that can say on which line a field stands."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ContentError(path, None, "文件不存在") from None
        except UnicodeDecodeError:
            raise ContentError(path, None, "文件不是 UTF-8 编码") from None
        try:
            self.node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise ContentError(path, None, f"YAML 格式错误：{problem}", mark.line + 1 if mark else None) from None

    def line(self, *keys) -> int | None:
        node = self.node
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                match = [v for k, v in node.value if k.value == key]
                if not match:
                    return node.start_mark.line + 1
                node = match[0]
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                node = node.value[key]
            else:
                break
        return node.start_mark.line + 1 if node is not None else None

    def error(self, message: str, *keys) -> ContentError:
        name = "".join(f"[{k}]" if isinstance(k, int) else (f".{k}" if i else k) for i, k in enumerate(keys))
        return ContentError(self.path, name or None, message, self.line(*keys))


def _require(doc: _YamlFile, data: dict, key: str, kind, *prefix):
    if not isinstance(data, dict) or key not in data or data[key] in (None, ""):
        raise doc.error("缺少必填字段", *prefix, key)
    value = data[key]
    if not isinstance(value, kind):
        raise doc.error(f"类型不对，应为 {getattr(kind, '__name__', kind)}", *prefix, key)
    return value


SOURCE_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def _sources(doc: _YamlFile, raw, lesson_slugs: set[str]) -> list[dict]:
    """The package's `sources:` — official pages, standards and laws, each with its date — checked and
    normalised to {title, publisher, date, url, lessons} (url and lessons may be empty)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise doc.error("参考来源应是一个列表", "sources")
    sources = []
    for n, item in enumerate(raw):
        title = _require(doc, item, "title", str, "sources", n).strip()
        publisher = _require(doc, item, "publisher", str, "sources", n).strip()
        date = item.get("date")
        date = date.isoformat() if hasattr(date, "isoformat") else str(date if date is not None else "")
        if not SOURCE_DATE.match(date):
            raise doc.error("日期应写成 YYYY-MM-DD、YYYY-MM 或 YYYY", "sources", n, "date")
        url = item.get("url") or ""
        if url and (not isinstance(url, str) or not re.match(r"^https?://[^\s<>\"']+$", url)):
            raise doc.error("网址应以 http:// 或 https:// 开头", "sources", n, "url")
        lessons = item.get("lessons") or []
        if not isinstance(lessons, list) or any(slug not in lesson_slugs for slug in lessons):
            raise doc.error(f"课时应是本课程的课时标识：{', '.join(sorted(lesson_slugs))}", "sources", n, "lessons")
        sources.append({"title": title, "publisher": publisher, "date": date, "url": url, "lessons": list(lessons)})
    return sources


def _inside(folder: Path, relative: str | Path) -> Path | None:
    """`relative` resolved (symlinks followed) if it stays inside the package folder, else None."""
    root = folder.resolve()
    path = (root / relative).resolve()
    return path if root in path.parents else None


def _package_file(doc: _YamlFile, folder: Path, relative: str | Path, *keys) -> Path:
    path = _inside(folder, relative)
    if path is None:
        raise doc.error(f"“{relative}”指向课程文件夹之外（路径和符号链接都不能离开课程包）", *keys)
    return path


PACKAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")


def _package_id(doc: _YamlFile, data: dict) -> str:
    value = data.get("id")
    if value in (None, ""):
        raise doc.error(f"缺少必填字段：课程包的稳定标识，改文件夹名或 slug 后靠它认出同一门课"
                        f"（可写 id: {uuid.uuid4()}，写好后不要再改）", "id")
    if not isinstance(value, str) or not PACKAGE_ID.fullmatch(value):
        raise doc.error("id 应是 3–64 个字母、数字、点、下划线或连字符（如一个 UUID）", "id")
    return value


def load_package(folder: Path) -> CourseSpec:
    """Parse and validate one package. Raises ContentError naming file and field."""
    folder = Path(folder)
    if _inside(folder, "course.yaml") is None:
        raise ContentError(folder / "course.yaml", None, "指向课程文件夹之外（符号链接不能离开课程包）")
    doc = _YamlFile(folder / "course.yaml")
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("course.yaml 应是一个键值映射")
    package_id = _package_id(doc, data)
    title = _require(doc, data, "title", str)
    audiences = _require(doc, data, "audiences", list)
    for index, code in enumerate(audiences):
        if code not in AUDIENCE_CODES:
            raise doc.error(f"未知的人群“{code}”，可选：{', '.join(AUDIENCE_CODES)}", "audiences", index)
    credit = data.get("credit_hours")
    if credit is not None:
        try:
            credit = Decimal(str(credit))
        except InvalidOperation:
            raise doc.error("学时必须是数字", "credit_hours") from None
        if not (Decimal("0") < credit <= Decimal("100")):
            raise doc.error("学时必须大于 0 且不超过 100", "credit_hours")
    completion = data.get("completion") or {}
    threshold = completion.get("watch_threshold", 0.95) if isinstance(completion, dict) else None
    if not isinstance(threshold, (int, float)) or not 0.5 <= threshold <= 1.0:
        raise doc.error("观看比例必须在 0.5 到 1.0 之间", "completion", "watch_threshold")
    spec = CourseSpec(
        package_id=package_id,
        slug=str(data.get("slug") or folder.name),
        folder=folder,
        title=title,
        summary=str(data.get("summary") or ""),
        audiences=audiences,
        credit_hours=credit,
        mandatory=bool(data.get("mandatory", False)),
        strict=bool(data.get("strict", data.get("mandatory", False))),
        watch_threshold=float(threshold),
        doc=doc,
    )
    files = [folder.resolve() / "course.yaml"]
    spec.bonus_hours, spec.bonus_min_score = _bonus(doc, completion)
    if data.get("credit_note") is not None and not isinstance(data["credit_note"], str):
        raise doc.error("学时说明应是文字", "credit_note")
    spec.credit_note = data.get("credit_note") or None
    if not isinstance(data.get("published", True), bool):
        raise doc.error("published 必须是 true 或 false", "published")
    spec.published = data.get("published", True)
    if data.get("cover"):
        spec.cover = _package_file(doc, folder, str(data["cover"]), "cover")
        if not spec.cover.is_file():
            raise doc.error(f"封面图片不存在：{data['cover']}", "cover")
        files.append(spec.cover)
    lessons = _require(doc, data, "lessons", list)
    seen = set()
    for index, entry in enumerate(lessons):
        at = ("lessons", index)
        if not isinstance(entry, dict):
            raise doc.error("每节课应是一个键值映射", *at)
        slug = str(_require(doc, entry, "slug", str, *at))
        if slug in seen:
            raise doc.error(f"课时标识“{slug}”重复", *at, "slug")
        seen.add(slug)
        text_path = _package_file(doc, folder, _require(doc, entry, "text", str, *at), *at, "text")
        if not text_path.is_file():
            raise doc.error(f"文件不存在：{entry['text']}", *at, "text")
        slides, slides_path = None, None
        if entry.get("slides"):
            slides_path = _package_file(doc, folder, entry["slides"], *at, "slides")
            slides_doc = _YamlFile(slides_path)
            slides = slides_doc.data.get("slides") if isinstance(slides_doc.data, dict) else None
            if not isinstance(slides, list) or not slides:
                raise slides_doc.error("缺少幻灯片列表", "slides")
            for n, slide in enumerate(slides):
                _require(slides_doc, slide, "title", str, "slides", n)
                _require(slides_doc, slide, "caption", str, "slides", n)
                seconds = slide.get("seconds")
                if seconds is not None and (not isinstance(seconds, (int, float)) or not 1 <= seconds <= 60):
                    raise slides_doc.error("幻灯片时长（秒）必须是 1 到 60 之间的数字", "slides", n, "seconds")
            slides = slide_tools.paced(slides, slide_tools.pace_for(audiences))
        # A supplied video wins; without one (or when it is missing) the video is rendered from the slides.
        video = None
        if entry.get("video"):
            video = _package_file(doc, folder, entry["video"], *at, "video")
            if not video.is_file():
                if slides is None:
                    raise doc.error(f"视频文件不存在：{entry['video']}", *at, "video")
                video = None
        captions = None
        if entry.get("captions"):
            captions = _package_file(doc, folder, entry["captions"], *at, "captions")
            if not captions.is_file():
                if slides is None:
                    raise doc.error(f"字幕文件不存在：{entry['captions']}", *at, "captions")
                captions = None
        elif slides_path is not None:
            captions = _captions_beside(doc, folder, slides_path, *at)
        narration = None
        if entry.get("narration"):
            if slides is None or video is not None:
                raise doc.error("朗读录音只能配幻灯片（slides）渲染的视频", *at, "narration")
            narration = _package_file(doc, folder, str(entry["narration"]), *at, "narration")
            if not narration.is_file():
                raise doc.error(f"录音文件不存在：{entry['narration']}", *at, "narration")
        quiz, quiz_file = None, None
        if entry.get("quiz"):
            quiz_file = _package_file(doc, folder, entry["quiz"], *at, "quiz")
            quiz = _load_quiz(_YamlFile(quiz_file))
        practice, practice_file = None, None
        if entry.get("practice"):  # 练一练: checked like a quiz, every problem named with file and field
            practice_file = _package_file(doc, folder, entry["practice"], *at, "practice")
            if not practice_file.is_file():
                raise doc.error(f"练一练文件不存在：{entry['practice']}", *at, "practice")
            practice = practice_format.load_practice(_YamlFile(practice_file))
            files.append(practice_file)
        files += [p for p in (text_path, slides_path, video, captions, quiz_file, narration) if p is not None]
        spec.lessons.append(LessonSpec(
            slug=slug,
            title=str(_require(doc, entry, "title", str, *at)),
            text=text_path.read_text(encoding="utf-8"),
            video=video, slides=slides, captions=captions, quiz=quiz, quiz_file=quiz_file, narration=narration,
        ))
        spec.lessons[-1].practice, spec.lessons[-1].practice_file = practice, practice_file
    spec.sources = _sources(doc, data.get("sources"), {lesson.slug for lesson in spec.lessons})
    spec.content_hash, digests = _hash_files(folder, files, rendered=any(item.slides for item in spec.lessons))
    for item in spec.lessons:
        item.video_sha256 = digests.get(item.video)
    return spec


def _captions_beside(doc: _YamlFile, folder: Path, slides_path: Path, *at) -> Path | None:
    """captions.vtt beside the slide script, if the package has one; it is never written to."""
    beside = slides_path.parent / "captions.vtt"
    if not os.path.lexists(beside):  # lexists: a dangling symlink is there too, and is refused
        return None
    relative = beside.relative_to(folder.resolve())
    path = _package_file(doc, folder, relative, *at, "slides")
    if not path.is_file():
        raise doc.error(f"字幕文件“{relative}”是指向不存在文件的符号链接", *at, "slides")
    return path


def _bonus(doc: _YamlFile, completion: dict) -> tuple[Decimal | None, int | None]:
    """completion.bonus_hours / bonus_min_score: extra credit for a high end-of-course test score."""
    if completion.get("bonus_hours") is None:
        return None, None
    try:
        hours = Decimal(str(completion["bonus_hours"]))
    except InvalidOperation:
        raise doc.error("加分学时必须是数字", "completion", "bonus_hours") from None
    if not Decimal("0") < hours <= Decimal("10"):
        raise doc.error("加分学时必须大于 0 且不超过 10", "completion", "bonus_hours")
    min_score = completion.get("bonus_min_score", 90)
    if not isinstance(min_score, int) or not 0 < min_score <= 100:
        raise doc.error("加分分数线必须是 1 到 100 的整数", "completion", "bonus_min_score")
    return hours, min_score


def _load_quiz(doc: _YamlFile) -> dict:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("测验文件应是一个键值映射")
    pass_score = data.get("pass_score", 60)
    if not isinstance(pass_score, int) or not 0 < pass_score <= 100:
        raise doc.error("及格分必须是 1 到 100 的整数", "pass_score")
    # `questions`: every one is asked; `pool` + `ask`: each attempt draws `ask` of the pool at random
    if "pool" in data and "questions" in data:
        raise doc.error("questions 和 pool 只能写一个：全部都考写 questions，随机抽题写 pool 加 ask", "pool")
    key = "pool" if "pool" in data else "questions"
    questions = _require(doc, data, key, list)
    ask = data.get("ask")
    if key == "questions" and ask is not None:
        raise doc.error("ask 只能和 pool 一起用：随机抽题时把 questions 改名为 pool", "ask")
    if key == "pool" and (isinstance(ask, bool) or not isinstance(ask, int) or not 0 < ask <= len(questions)):
        raise doc.error(f"ask（每次抽几道题）必须是 1 到 {len(questions)}（题库 pool 的题数）之间的整数", "ask")
    parsed = [load_question(doc, q, key, n) for n, q in enumerate(questions)]
    if not parsed:
        raise doc.error("测验至少需要一道题", key)
    return {"pass_score": pass_score, "questions": parsed, "ask": ask}




def load_question(doc: _YamlFile, q, *at) -> dict:
    """One question as quiz.yaml writes it (also a 科学素质自测 item: lms/assessment/pool.py), checked by the
    quiz editor's rules: {kind, text, explanation, choices [(text, correct)], scenario}."""
    kind = _require(doc, q, "type", str, *at)
    if kind not in QUESTION_KINDS:
        raise doc.error(f"未知题型“{kind}”，可选：{', '.join(QUESTION_KINDS)}", *at, "type")
    text = _require(doc, q, "text", str, *at)
    explanation = _require(doc, q, "explanation", str, *at)
    if kind == "truefalse":
        answer = q.get("answer")
        if not isinstance(answer, bool):
            raise doc.error("判断题的 answer 必须是 true 或 false", *at, "answer")
        choices = quiz_format.truefalse_choices(answer)
    else:
        raw = _require(doc, q, "choices", list, *at)
        choices = []
        for c, choice in enumerate(raw):
            choices.append((str(_require(doc, choice, "text", (str, int, float), *at, "choices", c)),
                            bool(choice.get("correct", False))))
        problem = quiz_format.choices_problem(kind, choices)  # the editor's rules too
        if problem:
            raise doc.error(problem, *at, "choices")
    scenario = _load_scenario(doc, q.get("scenario"), *at, "scenario") if q.get("scenario") is not None else None
    return {"kind": kind, "text": text, "explanation": explanation, "choices": choices, "scenario": scenario}


def _load_scenario(doc: _YamlFile, raw, *at) -> dict:
    """An anti-fraud scenario (phone call, SMS or chat) shown as HTML above the question."""
    if not isinstance(raw, dict):
        raise doc.error("情景应是一个键值映射（kind、from、messages）", *at)
    kind = _require(doc, raw, "kind", str, *at)
    if kind not in SCENARIO_KINDS:
        raise doc.error(f"未知情景类型“{kind}”，可选：{', '.join(SCENARIO_KINDS)}", *at, "kind")
    sender = raw.get("from", "")
    if not isinstance(sender, (str, int)):
        raise doc.error("from 应是文字（来电号码或对方名字）", *at, "from")
    messages = _require(doc, raw, "messages", list, *at)
    if not messages:
        raise doc.error("情景至少需要一条消息", *at, "messages")
    parsed = []
    for m, message in enumerate(messages):
        who = message.get("who", "them") if isinstance(message, dict) else None
        if who not in SCENARIO_SPEAKERS:
            raise doc.error(f"who 只能是 {' 或 '.join(SCENARIO_SPEAKERS)}", *at, "messages", m, "who")
        text = _require(doc, message, "text", (str, int, float), *at, "messages", m)
        parsed.append({"who": who, "text": str(text)})
    return {"kind": kind, "from": str(sender), "messages": parsed}


def _hash_files(folder: Path, files: list[Path], rendered: bool) -> tuple[str, dict[Path, str]]:
    """One hash over every file the package uses (videos too, read in blocks), and each file's own."""
    root = folder.resolve()
    digests = {path: sha256_of(path) for path in dict.fromkeys(files)}
    digest = hashlib.sha256(slide_tools.RENDER_VERSION.encode() if rendered else b"")
    for path in sorted(digests):
        digest.update(f"{path.relative_to(root)}\0{digests[path]}\n".encode())
    return digest.hexdigest(), digests


def slides_to_render(lesson: LessonSpec) -> list[dict]:
    """The lesson's slides as rendered: with a recorded narration, stretched to last as long as the voice."""
    if lesson.narration is None:
        return lesson.slides
    info = ffmpeg_tools.probe(lesson.narration)
    if not info.has_audio or info.duration < 1:
        raise ffmpeg_tools.MediaError("录音文件里没有声音", str(lesson.narration))
    return slide_tools.timed_to(lesson.slides, info.duration)


def prepare_media(spec: CourseSpec) -> None:
    """Render slide videos that are not rendered yet (under LMS_DATA_DIR), then check every video is
    readable; keep the cover picture (under LMS_DATA_DIR, by content)."""
    if spec.cover is not None:
        spec.cover_path = _keep_cover(spec)
    cache = slide_tools.render_cache_root()
    for index, lesson in enumerate(spec.lessons):
        if lesson.video is None and lesson.slides:
            try:
                lesson.slides = slides_to_render(lesson)
            except ffmpeg_tools.MediaError as exc:
                raise ContentError(spec.folder / "course.yaml", f"lessons[{index}].narration", exc.reason) from None
    _render_side_by_side([lesson for lesson in spec.lessons if lesson.video is None and lesson.slides], cache)
    for index, lesson in enumerate(spec.lessons):
        at = f"lessons[{index}]"
        lesson.source, lesson.source_captions = lesson.video, lesson.captions
        if lesson.video is None and lesson.slides:
            try:
                lesson.source, generated = slide_tools.rendered_lesson(lesson.slides, cache, lesson.narration)
            except ffmpeg_tools.MediaError as exc:
                raise ContentError(spec.folder / "course.yaml", f"{at}.slides", exc.reason) from None
            lesson.source_captions = lesson.captions or generated
            lesson.video_sha256 = sha256_of(lesson.source)
        if lesson.source is not None:
            try:
                ffmpeg_tools.probe(lesson.source)
            except ffmpeg_tools.MediaError as exc:
                raise ContentError(spec.folder / "course.yaml", f"{at}.video",
                                   f"{exc.reason}：{lesson.source.name}") from None


def _render_side_by_side(lessons: list[LessonSpec], cache: Path) -> None:
    """Render the slide videos not in the cache yet, one ffmpeg per core: a render spends much of its time
    in single-threaded filters (drawing the text), so two at once nearly halve a package's import.
    Failures are left for the caller's own render to report, with the lesson named."""
    todo = [lesson for lesson in lessons
            if not all(path.is_file() for path in slide_tools.rendered_paths(lesson.slides, cache, lesson.narration))]
    if len(todo) < 2:
        return
    app = current_app._get_current_object()

    def render(lesson: LessonSpec) -> None:
        with app.app_context():
            try:
                slide_tools.rendered_lesson(lesson.slides, cache, lesson.narration)
            except ffmpeg_tools.MediaError:
                pass

    with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
        list(pool.map(render, todo))


def _keep_cover(spec: CourseSpec) -> str:
    """A cover that is already what the site keeps (a JPEG within the cover size that decodes) is kept
    byte for byte, so an exported package imports to the same picture; any other picture is re-encoded
    as one uploaded in the browser is. Returns its path under LMS_DATA_DIR."""
    from lms.courses.authoring import COVER_SIZE, MAX_COVER_BYTES, AuthoringError, cover_format, store_cover

    where = (spec.folder / "course.yaml", "cover")
    with open(spec.cover, "rb") as fh:
        data = fh.read(MAX_COVER_BYTES + 1)
    if cover_format(data[:12]) == "jpeg_pipe" and len(data) <= MAX_COVER_BYTES:
        try:
            width, height = ffmpeg_tools.picture_size(spec.cover, "jpeg_pipe")
        except ffmpeg_tools.MediaError:
            raise ContentError(*where, f"封面图片无法读取：{spec.cover.name}") from None
        if width <= COVER_SIZE[0] and height <= COVER_SIZE[1]:
            relative = Path("covers") / f"{hashlib.sha256(data).hexdigest()[:32]}.jpg"
            target = Path(current_app.config["DATA_DIR"]) / relative
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".tmp-{uuid.uuid4().hex}.jpg")
                tmp.write_bytes(data)
                tmp.replace(target)
            return relative.as_posix()
    try:
        return store_cover(io.BytesIO(data))
    except AuthoringError as exc:
        raise ContentError(*where, f"{exc.message}：{spec.cover.name}") from None


def _credit_for(spec: CourseSpec, durations: list[float]) -> Decimal:
    if spec.credit_hours is not None:
        return spec.credit_hours
    from lms.records.services import credit_hours_for_minutes

    return credit_hours_for_minutes(sum(durations) / 60)


def import_package(folder: Path, rename: bool = False) -> tuple[Course, str]:
    """Import or update one package atomically. Returns (course, "created"|"updated"|"unchanged").

    `rename`: a package whose slug changed for a known id renames its course instead of being refused.
    """
    spec = load_package(folder)
    course = _match_course(spec, rename)
    if (course is not None and course.content_hash == spec.content_hash and course.slug == spec.slug
            and course.package_id == spec.package_id and _media_ready(course)):
        return course, "unchanged"
    prepare_media(spec)
    outcome = "updated" if course else "created"
    try:
        course = _write(spec, course)
        db.session.commit()
    except ffmpeg_tools.MediaError as exc:
        db.session.rollback()
        raise ContentError(folder / "course.yaml", "video", exc.reason) from None
    except Exception:
        db.session.rollback()
        raise
    return course, outcome


def _match_course(spec: CourseSpec, rename: bool) -> Course | None:
    """The course this package updates: the one with its id (a course imported before packages had
    ids is adopted by slug). A slug that changed for a known id renames it only when asked to."""
    course = Course.query.filter_by(package_id=spec.package_id).first()
    holder = Course.query.filter_by(slug=spec.slug).first()
    if course is None:
        if holder is not None and holder.package_id is not None:
            raise spec.doc.error(f"课程标识“{spec.slug}”已属于另一个课程包（id: {holder.package_id}）；"
                                 "两个课程包不能同名", "slug")
        return holder
    if course.slug != spec.slug:
        if not rename:
            raise spec.doc.error(
                f"这个课程包（id: {spec.package_id}）已导入为课程“{course.slug}”，现在的标识是“{spec.slug}”"
                "（slug 未写时取文件夹名）。确要改名请加 --rename：课程和学习记录保留，只改标识", "slug")
        if holder is not None:
            raise spec.doc.error(f"不能改名为“{spec.slug}”：已有课程使用这个标识", "slug")
    return course


def duplicate_package_ids(folders: list[Path]) -> dict[Path, str]:
    """Packages in one run that share an `id:` with another (a copied folder): none of them is imported."""
    ids: dict[Path, object] = {}
    for folder in folders:
        try:
            ids[folder] = (yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8")) or {}).get("id")
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
            continue  # load_package reports it
    clashes = {}
    for folder, package_id in ids.items():
        others = [f.name for f, other in ids.items() if other == package_id and f != folder and package_id]
        if others:
            clashes[folder] = (f"{folder / 'course.yaml'}: id: 与 {', '.join(others)} 的 id 相同（{package_id}），"
                               "每个课程包要有自己的 id")
    return clashes


def _playable(asset: VideoAsset) -> bool:
    root = media_root()
    return asset.ready and all((root / p).is_file() for p in asset.renditions.values())


def _media_ready(course: Course) -> bool:
    return all(_playable(lesson.video) for lesson in course.active_lessons if lesson.video)


def _write(spec: CourseSpec, course: Course | None) -> Course:
    if course is None:
        course = Course(slug=spec.slug)
        db.session.add(course)
    course.slug, course.package_id = spec.slug, spec.package_id
    # set for real below, once the videos' lengths are known; swapping a video flushes before that
    course.credit_hours = course.credit_hours or spec.credit_hours or Decimal("0")
    course.title, course.summary = spec.title, spec.summary
    course.mandatory, course.strict = spec.mandatory, spec.strict
    course.watch_threshold = spec.watch_threshold
    course.bonus_hours, course.bonus_min_score = spec.bonus_hours, spec.bonus_min_score
    course.content_hash = spec.content_hash
    course.published = spec.published
    course.cover_path = spec.cover_path
    wanted = set(spec.audiences)
    course.audience_rows = [row for row in course.audience_rows if row.audience in wanted] + [
        CourseAudience(audience=code) for code in spec.audiences
        if code not in {row.audience for row in course.audience_rows}
    ]
    existing = {lesson.slug: lesson for lesson in course.lessons}
    durations = []
    for position, item in enumerate(spec.lessons):
        lesson = existing.pop(item.slug, None)
        if lesson is None:
            lesson = Lesson(slug=item.slug, course=course)
            db.session.add(lesson)
        lesson.position, lesson.title, lesson.retired = position, item.title, False
        lesson.text_markdown, lesson.text_html = item.text, render_markdown(item.text)
        if item.source is not None:
            _set_video(lesson, item)
            durations.append(lesson.video.duration)
        _write_quiz(lesson, item.quiz)
        write_practice(lesson, item.practice)
    for leftover in existing.values():
        leftover.retired = True  # keep it: learners' progress points at it
    course.credit_hours = _credit_for(spec, durations)
    course.credit_rule = "fixed" if spec.credit_hours is not None else "tiers"
    course.credit_note = spec.credit_note
    course.sources = spec.sources or None
    record_rules(course)  # a new version when the rules changed under learners in progress (lms/courses/rules.py)
    return course


def _set_video(lesson: Lesson, item: LessonSpec) -> None:
    """Keep the lesson's video while the package gives the same one; a different one becomes a new
    asset, swapped in (progress earned on the old asset stays with it)."""
    current = lesson.video
    # A video rendered from slides keeps its script, so an export writes the slides (lms/courses/exporter.py).
    script = slide_script_text(item.slides) if item.video is None and item.slides else None
    if current is not None and _same_source(current, item):
        if not _playable(current):
            # the same source: only its lost files are made again
            process_video(current, item.source, rendered=script is not None)
        attach_captions(current, item.source_captions)
        if script is not None:
            current.slide_script = script
        return
    asset = VideoAsset(status="pending", slide_script=script)
    db.session.add(asset)
    process_video(asset, item.source, rendered=script is not None)
    attach_captions(asset, item.source_captions)
    swap_lesson_video(lesson, asset, actor_id=None, reason="import")


def slide_script_text(slides: list) -> str:
    """A package's slides as the slide script kept with their video: YAML, the slides as written."""
    return yaml.safe_dump({"slides": slides}, allow_unicode=True, sort_keys=True)


def _same_source(asset: VideoAsset, item: LessonSpec) -> bool:
    """The same bytes; or, for a video rendered from slides, a render of the same slides (rendered
    again after the cache was emptied, perhaps by another ffmpeg, its bytes may differ)."""
    if asset.source_sha256 == item.video_sha256:
        return True
    return item.video is None and slide_tools.is_render_of(asset.source_path, item.slides, item.narration)


def _write_quiz(lesson: Lesson, quiz: dict | None) -> None:
    if quiz is None:
        if lesson.quiz is not None:
            # Retired, never deleted: learners' attempts point at it. The lesson no longer asks it.
            lesson.quiz.retired = True
            db.session.flush()
            db.session.expire(lesson, ["quiz"])
        return
    if lesson.quiz is None:
        # a quiz dropped earlier and now back is the same quiz again, with its attempts
        dropped = Quiz.query.filter_by(lesson_id=lesson.id).first() if lesson.id else None
        lesson.quiz = dropped or Quiz()
        lesson.quiz.retired = False
    lesson.quiz.pass_score, lesson.quiz.ask = quiz["pass_score"], quiz.get("ask")
    # As in the editor: unchanged questions stay, answered ones are retired rather than changed or deleted,
    # so attempts (stored by question position) keep showing what they answered; an open attempt whose
    # draw no longer fits is dropped when next opened (lms.quizzes.services).
    quiz_authoring.write_questions(lesson.quiz, quiz["questions"])


def package_folders(path: Path) -> list[Path]:
    """`path` itself when it is a package, else its sub-folders that hold a course.yaml."""
    path = Path(path)
    if (path / "course.yaml").is_file():
        return [path]
    return sorted(p for p in path.iterdir() if (p / "course.yaml").is_file())
