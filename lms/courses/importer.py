"""Import course packages from content/<slug>/ (format: docs/content-format.md).

Each package is validated whole — YAML, fields, referenced files, quizzes, videos — before
anything is written, and written in one transaction, so a bad package leaves the database
as it was. Re-importing updates the course in place (matched by slug, lessons by slug);
it never touches the training-record ledger.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from lms.audiences import AUDIENCE_CODES
from lms.courses.markdown import render_markdown
from lms.courses.models import Course, CourseAudience, Lesson, VideoAsset
from lms.extensions import db
from lms.media import ffmpeg_tools, slides as slide_tools
from lms.media.services import attach_captions, process_video
from lms.quizzes.models import QUESTION_KINDS, Choice, Question, Quiz


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
    video: Path | None
    slides: list | None
    captions: Path | None
    quiz: dict | None
    quiz_file: Path | None


@dataclass
class CourseSpec:
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
    lessons: list[LessonSpec] = field(default_factory=list)
    content_hash: str = ""


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


def _package_file(doc: _YamlFile, folder: Path, relative: str, *keys) -> Path:
    path = (folder / relative).resolve()
    if folder.resolve() not in path.parents:
        raise doc.error("路径必须在课程文件夹内", *keys)
    return path


def load_package(folder: Path) -> CourseSpec:
    """Parse and validate one package. Raises ContentError naming file and field."""
    folder = Path(folder)
    doc = _YamlFile(folder / "course.yaml")
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("course.yaml 应是一个键值映射")
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
        slug=str(data.get("slug") or folder.name),
        folder=folder,
        title=title,
        summary=str(data.get("summary") or ""),
        audiences=audiences,
        credit_hours=credit,
        mandatory=bool(data.get("mandatory", False)),
        strict=bool(data.get("strict", data.get("mandatory", False))),
        watch_threshold=float(threshold),
    )
    spec.bonus_hours, spec.bonus_min_score = _bonus(doc, completion)
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
        slides, slides_dir = None, None
        if entry.get("slides"):
            slides_doc = _YamlFile(_package_file(doc, folder, entry["slides"], *at, "slides"))
            slides_dir = slides_doc.path.parent
            slides = slides_doc.data.get("slides") if isinstance(slides_doc.data, dict) else None
            if not isinstance(slides, list) or not slides:
                raise slides_doc.error("缺少幻灯片列表", "slides")
            for n, slide in enumerate(slides):
                _require(slides_doc, slide, "title", str, "slides", n)
                _require(slides_doc, slide, "caption", str, "slides", n)
        # A lesson rendered from slides keeps its video and captions beside the slide script.
        video = slides_dir / "video.mp4" if slides_dir and not entry.get("video") else None
        if entry.get("video"):
            video = _package_file(doc, folder, entry["video"], *at, "video")
            if not video.is_file() and slides is None:
                raise doc.error(f"视频文件不存在：{entry['video']}", *at, "video")
        captions = slides_dir / "captions.vtt" if slides_dir and not entry.get("captions") else None
        if entry.get("captions"):
            captions = _package_file(doc, folder, entry["captions"], *at, "captions")
            if not captions.is_file() and slides is None:
                raise doc.error(f"字幕文件不存在：{entry['captions']}", *at, "captions")
        quiz, quiz_file = None, None
        if entry.get("quiz"):
            quiz_file = _package_file(doc, folder, entry["quiz"], *at, "quiz")
            quiz = _load_quiz(_YamlFile(quiz_file))
        spec.lessons.append(LessonSpec(
            slug=slug,
            title=str(_require(doc, entry, "title", str, *at)),
            text=text_path.read_text(encoding="utf-8"),
            video=video, slides=slides, captions=captions, quiz=quiz, quiz_file=quiz_file,
        ))
    return spec


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
    questions = _require(doc, data, "questions", list)
    parsed = []
    for n, q in enumerate(questions):
        at = ("questions", n)
        kind = _require(doc, q, "type", str, *at)
        if kind not in QUESTION_KINDS:
            raise doc.error(f"未知题型“{kind}”，可选：{', '.join(QUESTION_KINDS)}", *at, "type")
        text = _require(doc, q, "text", str, *at)
        explanation = _require(doc, q, "explanation", str, *at)
        if kind == "truefalse":
            answer = q.get("answer")
            if not isinstance(answer, bool):
                raise doc.error("判断题的 answer 必须是 true 或 false", *at, "answer")
            choices = [("正确", answer), ("错误", not answer)]
        else:
            raw = _require(doc, q, "choices", list, *at)
            choices = []
            for c, choice in enumerate(raw):
                choices.append((str(_require(doc, choice, "text", (str, int, float), *at, "choices", c)),
                                bool(choice.get("correct", False))))
            correct = sum(1 for _, ok in choices if ok)
            if len(choices) < 2:
                raise doc.error("至少需要两个选项", *at, "choices")
            if kind == "single" and correct != 1:
                raise doc.error("单选题必须恰好有一个正确选项", *at, "choices")
            if kind == "multiple" and correct < 2:
                raise doc.error("多选题至少要有两个正确选项", *at, "choices")
        scenario = _load_scenario(doc, q.get("scenario"), *at, "scenario") if q.get("scenario") is not None else None
        parsed.append({"kind": kind, "text": text, "explanation": explanation, "choices": choices,
                       "scenario": scenario})
    if not parsed:
        raise doc.error("测验至少需要一道题", "questions")
    return {"pass_score": pass_score, "questions": parsed}


SCENARIO_KINDS = ("call", "sms", "chat")
SCENARIO_SPEAKERS = ("them", "me")


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


def _hash_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix not in (".mp4",):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_media(spec: CourseSpec) -> None:
    """Render slide videos that are missing, then check every video is readable."""
    for index, lesson in enumerate(spec.lessons):
        if lesson.slides and (not lesson.video.is_file() or (lesson.captions and not lesson.captions.is_file())):
            slide_tools.render_lesson_video(lesson.slides, lesson.video, lesson.captions)
        if lesson.video is not None:
            try:
                ffmpeg_tools.probe(lesson.video)
            except ffmpeg_tools.MediaError as exc:
                raise ContentError(spec.folder / "course.yaml", f"lessons[{index}].video",
                                   f"{exc.reason}：{lesson.video.name}") from None


def _credit_for(spec: CourseSpec, durations: list[float]) -> Decimal:
    if spec.credit_hours is not None:
        return spec.credit_hours
    from lms.records.services import credit_hours_for_minutes

    return credit_hours_for_minutes(sum(durations) / 60)


def import_package(folder: Path) -> tuple[Course, str]:
    """Import or update one package atomically. Returns (course, "created"|"updated"|"unchanged")."""
    spec = load_package(folder)
    prepare_media(spec)
    spec.content_hash = _hash_folder(spec.folder)  # after rendering: captions are part of the package
    course = Course.query.filter_by(slug=spec.slug).first()
    if course is not None and course.content_hash == spec.content_hash and _media_ready(course):
        return course, "unchanged"
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


def _media_ready(course: Course) -> bool:
    from flask import current_app

    root = Path(current_app.config["DATA_DIR"]) / "media"
    for lesson in course.active_lessons:
        if lesson.video and (not lesson.video.ready or not all(
                (root / p).is_file() for p in lesson.video.renditions.values())):
            return False
    return True


def _write(spec: CourseSpec, course: Course | None) -> Course:
    if course is None:
        course = Course(slug=spec.slug)
        db.session.add(course)
    course.title, course.summary = spec.title, spec.summary
    course.mandatory, course.strict = spec.mandatory, spec.strict
    course.watch_threshold = spec.watch_threshold
    course.bonus_hours, course.bonus_min_score = spec.bonus_hours, spec.bonus_min_score
    course.content_hash = spec.content_hash
    course.published = True
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
        if item.video is not None:
            if lesson.video is None:
                lesson.video = VideoAsset(status="pending")
            process_video(lesson.video, item.video)
            attach_captions(lesson.video, item.captions)
            durations.append(lesson.video.duration)
        _write_quiz(lesson, item.quiz)
    for leftover in existing.values():
        leftover.retired = True  # keep it: learners' progress points at it
    course.credit_hours = _credit_for(spec, durations)
    db.session.flush()
    return course


def _write_quiz(lesson: Lesson, quiz: dict | None) -> None:
    if quiz is None:
        lesson.quiz = None
        return
    if lesson.quiz is None:
        lesson.quiz = Quiz()
    lesson.quiz.pass_score = quiz["pass_score"]
    # Attempts keep their scores; answers are stored by position, so questions can be rebuilt.
    lesson.quiz.questions = [
        Question(position=n, kind=q["kind"], text=q["text"], explanation=q["explanation"],
                 scenario_json=json.dumps(q["scenario"], ensure_ascii=False) if q.get("scenario") else None,
                 choices=[Choice(position=c, text=text, correct=ok) for c, (text, ok) in enumerate(q["choices"])])
        for n, q in enumerate(quiz["questions"])
    ]


def package_folders(path: Path) -> list[Path]:
    """`path` itself when it is a package, else its sub-folders that hold a course.yaml."""
    path = Path(path)
    if (path / "course.yaml").is_file():
        return [path]
    return sorted(p for p in path.iterdir() if (p / "course.yaml").is_file())
